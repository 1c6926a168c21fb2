/**
 * xxHash3-64 (seed 0) of a byte string, as the 8 bytes of its canonical big-endian form (the bytes
 * of Python's `xxhash.xxh3_64(data).digest()`).
 *
 * Uses `hash-wasm` (WebAssembly, works in every runtime). Its hasher is created once with a
 * top-level `await`, so hashing itself stays synchronous.
 *
 * @module
 */
import { createXXHash3 } from "hash-wasm";

const hasher = await createXXHash3(0, 0);

/** xxHash3-64 of `data`, big-endian, 8 bytes. */
export function xxh3(data: Uint8Array): Uint8Array {
  hasher.init();
  hasher.update(data);
  return hasher.digest("binary");
}

/**
 * xxHash3-64 of `data` as 16 lowercase hex digits (the same big-endian bytes). What the read side
 * compares with: a string is built on the JavaScript heap, where `digest("binary")` copies into a
 * new `ArrayBuffer`, and an `ArrayBuffer` is costly to allocate and free under Deno (measured: the
 * hex digest of 450 bytes takes less than half the time of the binary one).
 */
export function xxh3Hex(data: Uint8Array): string {
  hasher.init();
  hasher.update(data);
  return hasher.digest("hex");
}
