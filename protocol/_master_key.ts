/**
 * Master-key parsing: the hex form of `CACHEKIT_MASTER_KEY`, with the checks that refuse a short
 * or obviously weak key. Apart because configuration reads it without needing the cipher, and the
 * key ring uses it for keys given as hex.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import { fromHex } from "./_hex.ts";

/** Smallest master key accepted as configuration (bytes; 256 bits, as in cachekit-py). */
export const MIN_MASTER_KEY_BYTES = 32;

/**
 * Parse a hex master key (as in `CACHEKIT_MASTER_KEY`): at least 32 bytes (64 hex characters);
 * surrounding whitespace is ignored. Refuses keys that are obviously weak: a short repeating
 * pattern (`"aa" * 32`, a 16-byte block twice), fewer than 16 distinct byte values, or an
 * arithmetic run (`00 01 02 …`). The key never appears in the error.
 *
 * @param hex The key as hex.
 * @param option Name reported in errors, default `"CACHEKIT_MASTER_KEY"`.
 * @returns The key bytes.
 * @throws {CacheConfigError} For malformed, short or weak keys (value redacted).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseMasterKey } from "@cachekit/core/protocol";
 *
 * const hex = Array.from(crypto.getRandomValues(new Uint8Array(32)),
 *   (b) => b.toString(16).padStart(2, "0")).join("");
 * assert.equal(parseMasterKey(hex).length, 32);
 * ```
 */
export function parseMasterKey(hex: string, option: string = "CACHEKIT_MASTER_KEY"): Uint8Array {
  const fail = (expected: string): never => {
    throw new CacheConfigError(option, undefined, expected, { secret: true });
  };
  if (typeof hex !== "string") return fail("a hex string");
  const bytes = fromHex(hex.trim());
  if (bytes === null) {
    return fail("a hex string (characters 0-9, a-f) of even length");
  }
  if (bytes.length < MIN_MASTER_KEY_BYTES) {
    return fail(
      `at least ${MIN_MASTER_KEY_BYTES} bytes (${
        MIN_MASTER_KEY_BYTES * 2
      } hex characters) of random data`,
    );
  }
  const why = weakness(bytes);
  if (why !== null) {
    bytes.fill(0);
    return fail(
      `random key material; this key is weak (${why}). Generate one with \`openssl rand -hex 32\``,
    );
  }
  return bytes;
}

/** Why a key is obviously weak (a pattern, a run, few distinct bytes), or `null`. */
function weakness(key: Uint8Array): string | null {
  for (let p = 1; p <= key.length / 2; p++) {
    let periodic = true;
    for (let i = p; i < key.length && periodic; i++) periodic = key[i] === key[i - p];
    if (periodic) return `it repeats a ${p}-byte pattern`;
  }
  const step = (key[1] - key[0]) & 0xff;
  let run = true;
  for (let i = 2; i < key.length && run; i++) run = ((key[i] - key[i - 1]) & 0xff) === step;
  if (run) return "it is an arithmetic sequence";
  if (new Set(key).size < 16) return "it has fewer than 16 distinct byte values";
  return null;
}
