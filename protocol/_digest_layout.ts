/**
 * The digest layout: how cachekit-py 0.3.0 protects the payload of its `orjson` (and `arrow`)
 * serializer. No ByteStorage envelope and no LZ4: with integrity checking on, `data` is the
 * 8-byte xxHash3-64 of the payload (big-endian, as Python's `xxhash.xxh3_64_digest` gives it)
 * followed by the payload; with it off, the payload alone. The document says `compressed: false`
 * either way, so the reader takes the layout from its own configuration, as 0.3.0 does (the
 * framed form says it in a flag, `0x10`).
 *
 * A JavaScript `undefined` is stored as the serializer's `null` under a marker digest (the
 * undefined envelope's marker, `_undefined_envelope.ts`), so that a lost flag is a checksum
 * failure, never `null`, and cachekit-py sees a checksum mismatch (a miss) rather than `None`.
 *
 * @module
 */
import { IntegrityError } from "../errors.ts";
import { xxh3 } from "./_xxh3.ts";
import { toHex } from "./_hex.ts";
import { marker } from "./_undefined_envelope.ts";

/** The digest's length in bytes. */
export const DIGEST_BYTES = 8;

/** Formats whose entries use the digest layout instead of the ByteStorage envelope. */
const DIGEST_FORMATS: ReadonlySet<string> = new Set(["orjson", "arrow"]);

/** Whether entries of `format` use the digest layout (cachekit-py 0.3.0's orjson and arrow). */
export function usesDigestLayout(format: string): boolean {
  return DIGEST_FORMATS.has(format);
}

/**
 * `xxh3_64(payload) ‖ payload`, or the marker digest for `undefined`.
 *
 * @param payload The serializer's bytes (its `null` for `undefined`).
 * @param undef Whether the value is `undefined`.
 * @returns The stored data.
 */
export function withDigest(payload: Uint8Array, undef: boolean): Uint8Array {
  const out = new Uint8Array(DIGEST_BYTES + payload.length);
  out.set(undef ? marker(payload) : xxh3(payload));
  out.set(payload, DIGEST_BYTES);
  return out;
}

/**
 * Verify digest-layout data and return its payload (a view) and digest (16 hex).
 *
 * @param data The stored data (plaintext).
 * @param undef Whether the entry is flagged `undefined`.
 * @param nil The reader's serializer's `null`: an `undefined` entry must be exactly it under the
 *   marker digest.
 * @throws {IntegrityError} Too short, a digest that does not match, or a flag that does not.
 */
export function openDigest(
  data: Uint8Array,
  undef: boolean,
  nil: Uint8Array,
): { payload: Uint8Array; checksum: string } {
  if (data.length <= DIGEST_BYTES) {
    throw new IntegrityError(`${data.length} bytes: no room for the 8-byte digest and a value`);
  }
  const payload = data.subarray(DIGEST_BYTES);
  const expected = undef ? marker(nil) : xxh3(payload);
  for (let i = 0; i < DIGEST_BYTES; i++) {
    if (data[i] !== expected[i]) {
      throw new IntegrityError(
        undef
          ? "an entry flagged undefined that is not the undefined marker"
          : "checksum mismatch: the data is not what was written",
      );
    }
  }
  if (undef && (payload.length !== nil.length || payload.some((b, i) => b !== nil[i]))) {
    throw new IntegrityError("an entry flagged undefined whose payload is not null");
  }
  return { payload, checksum: toHex(data, 0, DIGEST_BYTES) };
}
