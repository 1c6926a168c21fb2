/**
 * Blake2b-256, the hash of every cachekit key: `hash-wasm` (instantiated once when this module
 * loads, then used synchronously), with `@noble/hashes` where WebAssembly is unavailable. Apart
 * because the standard and the interop key builders both hash with it.
 *
 * @module
 */
import { blake2b as nobleBlake2b } from "@noble/hashes/blake2.js";
import { createBLAKE2b, type IHasher } from "hash-wasm";
import { toHex } from "./_hex.ts";

let wasmHasher: IHasher | null = null;
try {
  wasmHasher = await createBLAKE2b(256);
} catch {
  wasmHasher = null; // no WebAssembly here: fall back to the pure-JS implementation
}

/**
 * Blake2b with a 32-byte digest, unkeyed (Python's `hashlib.blake2b(data, digest_size=32)`).
 * Synchronous.
 *
 * @param bytes The message.
 * @returns The 32-byte digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blake2b256 } from "@cachekit/core/protocol";
 * assert.equal(blake2b256(new Uint8Array([0x90])).length, 32);
 * ```
 */
export function blake2b256(bytes: Uint8Array): Uint8Array {
  if (wasmHasher) {
    wasmHasher.init();
    wasmHasher.update(bytes);
    return wasmHasher.digest("binary");
  }
  return nobleBlake2b(bytes, { dkLen: 32 });
}

/**
 * Blake2b-256 of `bytes` as 64 lowercase hex characters.
 *
 * @param bytes The message.
 * @returns The hex digest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blake2b256Hex } from "@cachekit/core/protocol";
 * // The interop hash of zero arguments (canonical bytes 0x90).
 * assert.equal(
 *   blake2b256Hex(new Uint8Array([0x90])),
 *   "8064bf5f945dba521b017bb3f32b31a293a6e16944838d171ea9e77fab085e8e",
 * );
 * ```
 */
export function blake2b256Hex(bytes: Uint8Array): string {
  if (wasmHasher) {
    wasmHasher.init();
    wasmHasher.update(bytes);
    return wasmHasher.digest("hex");
  }
  return toHex(nobleBlake2b(bytes, { dkLen: 32 }));
}
