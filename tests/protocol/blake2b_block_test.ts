/**
 * The one-block Blake2b-256 (`protocol/_blake2b_block.ts`, used by `blake2b256` and
 * `blake2b256Hex` up to 128 bytes) against published digests (Python's `hashlib.blake2b(m,
 * digest_size=32)`) and, on random messages around the one-block limit, against two independent
 * implementations: `@noble/hashes` and the general path (`hash-wasm`). The Python cross-check on
 * random messages is `tests/interop/blake2b_python_test.ts`.
 */
import assert from "node:assert/strict";
import { blake2b } from "@noble/hashes/blake2.js";
import { test } from "../_harness.ts";
import { blake2b256, blake2b256Hex } from "../../protocol/keys.ts";
import { generalBlake2b256Hex, oneBlockActive } from "../../protocol/_blake2b.ts";
import { blockModuleBytes } from "../../protocol/_blake2b_block.ts";

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const nobleHex = (b: Uint8Array): string => hex(blake2b(b, { dkLen: 32 }));

/** A deterministic generator (xorshift32), so a failure names a reproducible message. */
function bytesOf(seed: number, n: number): Uint8Array {
  let x = seed | 1;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

test("blake2b one-block: the module is in use where WebAssembly is", () => {
  assert.equal(typeof WebAssembly, "object");
  assert.equal(oneBlockActive(), true);
  assert.ok(WebAssembly.validate(blockModuleBytes() as Uint8Array<ArrayBuffer>));
});

test("blake2b one-block: published digests (hashlib.blake2b, digest_size=32)", () => {
  const range = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
  const vectors: [Uint8Array, string][] = [
    [new Uint8Array(0), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"],
    [
      new TextEncoder().encode("abc"),
      "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319",
    ],
    [range(128), "c3582f71ebb2be66fa5dd750f80baae97554f3b015663c8be377cfcb2488c1d1"],
    [range(129), "f7f3c46ba2564ff4c4c162da1f5b605f9f1c4aa6a20652a9f9a337c1a2f5b9c9"], // general path
  ];
  for (const [m, want] of vectors) {
    assert.equal(blake2b256Hex(m), want, `${m.length} bytes`);
    assert.equal(hex(blake2b256(m)), want, `${m.length} bytes, binary`);
  }
});

test("blake2b one-block: random messages of 0..160 bytes agree with @noble/hashes and hash-wasm", () => {
  for (let seed = 1; seed <= 1500; seed++) {
    const n = seed % 161;
    const m = bytesOf(seed, n);
    const want = nobleHex(m);
    assert.equal(blake2b256Hex(m), want, `seed ${seed}, ${n} bytes`);
    assert.equal(hex(blake2b256(m)), want, `seed ${seed}, ${n} bytes, binary`);
    assert.equal(generalBlake2b256Hex(m), want, `seed ${seed}, ${n} bytes, hash-wasm`);
  }
});

test("blake2b one-block: a shorter message after a longer one (the block's tail is zeroed)", () => {
  const long = new Uint8Array(128).fill(0xff);
  for (let n = 127; n >= 0; n--) {
    blake2b256Hex(long);
    const m = long.subarray(0, n);
    assert.equal(blake2b256Hex(m), nobleHex(m), `${n} bytes after 128`);
  }
});

test("blake2b one-block: a view into a larger buffer hashes only its own bytes", () => {
  const buf = bytesOf(7, 300);
  for (const [from, to] of [[0, 10], [5, 133], [100, 228], [17, 17], [1, 129]]) {
    const view = buf.subarray(from, to);
    assert.equal(blake2b256Hex(view), nobleHex(view.slice()), `[${from}, ${to})`);
  }
});

test("blake2b one-block: the binary digest is a copy, not a view of the module's memory", () => {
  const a = blake2b256(new Uint8Array([1]));
  const before = hex(a);
  blake2b256(new Uint8Array([2]));
  assert.equal(hex(a), before);
  assert.equal(a.length, 32);
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, 32);
});
