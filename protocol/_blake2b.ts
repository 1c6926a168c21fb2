/**
 * Blake2b-256, the hash of every cachekit key. A message of at most one block (128 bytes, the
 * MessagePack of nearly every call's arguments) goes through `_blake2b_block.ts`, a one-block
 * WebAssembly function assembled on the first hash (about 2.5× cheaper than `hash-wasm` on
 * key-sized input, hex digits included: `bench/keys_paired_bench.ts`); a longer one through
 * `hash-wasm` (instantiated once when this module loads, then used synchronously); `@noble/hashes`
 * takes over where WebAssembly is unavailable. Apart because the standard and the interop key
 * builders both hash with it.
 *
 * @module
 */
import { blake2b as nobleBlake2b } from "@noble/hashes/blake2.js";
import { createBLAKE2b, type IHasher } from "hash-wasm";
import { BLOCK, blockModuleBytes, DIGEST_AT, HEX_AT } from "./_blake2b_block.ts";
import { toHex } from "./_hex.ts";

let wasmHasher: IHasher | null = null;
try {
  wasmHasher = await createBLAKE2b(256);
} catch {
  wasmHasher = null; // no WebAssembly here: fall back to the pure-JS implementation
}

/** The one-block function and its memory (message at 0, digest and hex at `DIGEST_AT`, `HEX_AT`). */
interface OneBlock {
  mem: Uint8Array;
  hash: (length: number) => void;
}

/** Blake2b-256 of `[0x90]` (the interop hash of no arguments): the one-block module's self-check. */
const CHECK = "8064bf5f945dba521b017bb3f32b31a293a6e16944838d171ea9e77fab085e8e";

function oneBlock(): OneBlock | null {
  try {
    if (typeof WebAssembly !== "object") return null;
    const bytes = blockModuleBytes() as Uint8Array<ArrayBuffer>;
    const exports = new WebAssembly.Instance(new WebAssembly.Module(bytes), {}).exports;
    const mem = new Uint8Array((exports.m as WebAssembly.Memory).buffer);
    const block = { mem, hash: exports.h as (length: number) => void };
    return hexOf(block, new Uint8Array([0x90])) === CHECK ? block : null;
  } catch {
    return null; // no WebAssembly (or a refused module): the general path hashes everything
  }
}

/** Hash `bytes` (at most {@linkcode BLOCK} of them) in the one-block module; its hex digits. */
function hexOf(b: OneBlock, bytes: Uint8Array): string {
  const m = b.mem;
  const n = bytes.length;
  m.set(bytes);
  m.fill(0, n, BLOCK);
  b.hash(n);
  // One flat string from the 64 digits (a table's 32 concatenations make a rope that every Map
  // lookup or socket write of the key then flattens).
  const H = HEX_AT;
  // deno-fmt-ignore
  return String.fromCharCode(
    m[H], m[H + 1], m[H + 2], m[H + 3], m[H + 4], m[H + 5], m[H + 6], m[H + 7], m[H + 8], m[H + 9],
    m[H + 10], m[H + 11], m[H + 12], m[H + 13], m[H + 14], m[H + 15], m[H + 16], m[H + 17],
    m[H + 18], m[H + 19], m[H + 20], m[H + 21], m[H + 22], m[H + 23], m[H + 24], m[H + 25],
    m[H + 26], m[H + 27], m[H + 28], m[H + 29], m[H + 30], m[H + 31], m[H + 32], m[H + 33],
    m[H + 34], m[H + 35], m[H + 36], m[H + 37], m[H + 38], m[H + 39], m[H + 40], m[H + 41],
    m[H + 42], m[H + 43], m[H + 44], m[H + 45], m[H + 46], m[H + 47], m[H + 48], m[H + 49],
    m[H + 50], m[H + 51], m[H + 52], m[H + 53], m[H + 54], m[H + 55], m[H + 56], m[H + 57],
    m[H + 58], m[H + 59], m[H + 60], m[H + 61], m[H + 62], m[H + 63],
  );
}

// Assembled on the first hash, not at import: a process that never hashes a key pays nothing.
let built: OneBlock | null | undefined;
const oneBlockFn = (): OneBlock | null => built === undefined ? (built = oneBlock()) : built;

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
  const block = bytes.length <= BLOCK ? oneBlockFn() : null;
  if (block !== null) {
    hexOf(block, bytes);
    return block.mem.slice(DIGEST_AT, DIGEST_AT + 32);
  }
  return generalDigest(bytes);
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
  const block = bytes.length <= BLOCK ? oneBlockFn() : null;
  if (block !== null) return hexOf(block, bytes);
  if (wasmHasher) {
    wasmHasher.init();
    wasmHasher.update(bytes);
    return wasmHasher.digest("hex");
  }
  return toHex(nobleBlake2b(bytes, { dkLen: 32 }));
}

/** The general path (any length): `hash-wasm`, or `@noble/hashes` without WebAssembly. */
function generalDigest(bytes: Uint8Array): Uint8Array {
  if (wasmHasher) {
    wasmHasher.init();
    wasmHasher.update(bytes);
    return wasmHasher.digest("binary");
  }
  return nobleBlake2b(bytes, { dkLen: 32 });
}

/**
 * For tests and benchmarks: the general path's hex digest (`hash-wasm`, or `@noble/hashes`),
 * whatever the length, to compare the one-block module against.
 */
export function generalBlake2b256Hex(bytes: Uint8Array): string {
  return toHex(generalDigest(bytes));
}

/** For tests: whether the one-block module is in use here. */
export function oneBlockActive(): boolean {
  return oneBlockFn() !== null;
}
