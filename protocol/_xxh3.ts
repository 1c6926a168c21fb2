/**
 * xxHash3-64 (seed 0) of a byte string, as the 8 bytes of its canonical big-endian form (the bytes
 * of Python's `xxhash.xxh3_64(data).digest()`).
 *
 * Runs the package's WebAssembly codec (`_wasm_codec.ts`: xxHash 0.8.1 compiled to wasm32), which
 * hashes in one call over a reused buffer. `hash-wasm`'s xxHash3, an independent build (created
 * once with a top-level `await`, so hashing stays synchronous), is the fallback where that module
 * cannot load and the reference the tests compare with. There is no pure-JavaScript xxHash3 here:
 * `hash-wasm` also supplies Blake2b for every key, so the package needs WebAssembly regardless.
 *
 * @module
 */
import { createXXHash3 } from "hash-wasm";
import { digestIs, wasmCodec } from "./_wasm_codec.ts";

const hasher = await createXXHash3(0, 0);

/** xxHash3-64 of `data` by `hash-wasm`, big-endian, 8 bytes (a new array). */
export function xxh3Fallback(data: Uint8Array): Uint8Array {
  hasher.init();
  hasher.update(data);
  return hasher.digest("binary");
}

/** xxHash3-64 of `data` by `hash-wasm`, 16 lowercase hex digits. */
export function xxh3HexFallback(data: Uint8Array): string {
  hasher.init();
  hasher.update(data);
  return hasher.digest("hex");
}

/** xxHash3-64 of `data`, big-endian, 8 bytes (a new array). */
export function xxh3(data: Uint8Array): Uint8Array {
  return wasmCodec !== null ? wasmCodec.xxh3(data) : xxh3Fallback(data);
}

/**
 * xxHash3-64 of `data` as 16 lowercase hex digits (the same big-endian bytes). What the read side
 * compares with: a string is built on the JavaScript heap, where a binary digest needs a new
 * `ArrayBuffer`, and an `ArrayBuffer` is costly to allocate and free under Deno (measured: the
 * hex digest of 450 bytes takes less than half the time of the binary one).
 */
export function xxh3Hex(data: Uint8Array): string {
  return wasmCodec !== null ? wasmCodec.xxh3Hex(data) : xxh3HexFallback(data);
}

/**
 * Whether the xxHash3-64 of `data` is the 8 bytes of `sum` at `at` (big-endian), compared as
 * numbers where the digest was written: no hex string, no new array.
 */
export function xxh3Matches(data: Uint8Array, sum: Uint8Array, at: number): boolean {
  const d = wasmCodec !== null ? wasmCodec.digest(data) : xxh3Fallback(data);
  return digestIs(d, 0, readU32(sum, at), readU32(sum, at + 4));
}

function readU32(b: Uint8Array, at: number): number {
  return ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;
}
