/**
 * Blake2b-256 of a message of at most one block (128 bytes), the size of nearly every cache key's
 * MessagePack: a WebAssembly function assembled here, when this module loads, from the
 * algorithm of RFC 7693 (no build step, no binary blob, no third-party code). Internal.
 *
 * Why not `hash-wasm` alone: for a key-sized message its JavaScript side (`init`, `update` with
 * its view and copy, `digest` with its `apply` of 64 char codes) and its general code cost more
 * than the hash itself. A key needs one compression with the final-block flag, so this module is
 * one straight-line function over sixteen `i64` state locals, every round unrolled with the
 * message schedule resolved at assembly time (message words read from memory at constant
 * offsets), which also writes the hex digits (eight at a time, SWAR). Measured on a 4-byte key
 * message with its hex digest: 0.44× `hash-wasm`'s CPU (`bench/keys_paired_bench.ts`). Why not
 * JavaScript: Blake2b is 64-bit arithmetic, which JavaScript spells as pairs of 32-bit halves
 * with carries; a one-block JavaScript version written for this measured 1.3× `hash-wasm`'s CPU.
 *
 * The caller writes the message at offset 0 of the module's memory, zeroes the rest of the block
 * and calls `h(length)`; the 32-byte digest is at offset 128, the 64 lowercase hex digits of it
 * at offset 160; the constants sit at 224 (a data segment). Longer messages are hashed by
 * `_blake2b.ts`'s general path. Assembling the ~9 KB module is a few milliseconds once, at load
 * (cold code; ~0.3 ms when warm), compiling it under one.
 *
 * @module
 */

/**
 * The constants the function reads from memory (a data segment at {@linkcode CONST_AT}), as
 * `[high, low]` 32-bit halves of 64-bit words: Blake2b's initialization vector (the SHA-512 one),
 * then the hex step's masks. Kept out of the code so that assembling needs no `BigInt`.
 */
const CONSTANTS: readonly (readonly [number, number])[] = [
  [0x6a09e667, 0xf3bcc908],
  [0xbb67ae85, 0x84caa73b],
  [0x3c6ef372, 0xfe94f82b],
  [0xa54ff53a, 0x5f1d36f1],
  [0x510e527f, 0xade682d1],
  [0x9b05688c, 0x2b3e6c1f],
  [0x1f83d9ab, 0xfb41bd6b],
  [0x5be0cd19, 0x137e2179],
  [0x00000000, 0xffffffff], // 8: the low half of a word
  [0x0000ffff, 0x0000ffff], // 9..14: the hex step's lanes, nibbles and digits
  [0x00ff00ff, 0x00ff00ff],
  [0x000f000f, 0x000f000f],
  [0x30303030, 0x30303030],
  [0x06060606, 0x06060606],
  [0x01010101, 0x01010101],
];

/** The message schedule of the ten distinct rounds (rounds 10 and 11 repeat rounds 0 and 1). */
const SIGMA = [
  [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
  [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
  [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
  [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
  [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
  [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
  [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
  [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
  [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

/** The columns, then the diagonals, of the 4×4 state: the eight `G` calls of a round. */
const MIX = [
  [0, 4, 8, 12],
  [1, 5, 9, 13],
  [2, 6, 10, 14],
  [3, 7, 11, 15],
  [0, 5, 10, 15],
  [1, 6, 11, 12],
  [2, 7, 8, 13],
  [3, 4, 9, 14],
];

/** Offset of the 32-byte digest in the module's memory. */
export const DIGEST_AT = 128;
/** Offset of the digest's 64 lowercase hex digits in the module's memory. */
export const HEX_AT = 160;
/** Offset of the constants (the initialization vector, the hex masks) in the module's memory. */
export const CONST_AT = 224;
/** The longest message hashed here (one block). */
export const BLOCK = 128;

// WebAssembly opcodes used below.
const LOCAL_GET = 0x20;
const LOCAL_SET = 0x21;
const LOCAL_TEE = 0x22;
const I32_CONST = 0x41;
const I64_CONST = 0x42;
const I64_LOAD = 0x29;
const I64_STORE = 0x37;
const I64_ADD = 0x7c;
const I64_MUL = 0x7e;
const I64_AND = 0x83;
const I64_OR = 0x84;
const I64_XOR = 0x85;
const I64_SHL = 0x86;
const I64_SHR_U = 0x88;
const I64_ROTR = 0x8a;
const I64_EXTEND_I32_U = 0xad;
const END = 0x0b;

/** A byte writer (plain pushes: assembling runs once, cold, when the module loads). */
class Writer {
  bytes: Uint8Array = new Uint8Array(16384);
  at = 0;
  op(b: number): void {
    this.bytes[this.at++] = b;
  }
  /** Unsigned LEB128 (a count, an index, a memory offset). */
  uleb(n: number): void {
    do {
      const b = n & 0x7f;
      n >>>= 7;
      this.op(n !== 0 ? b | 0x80 : b);
    } while (n !== 0);
  }
  /** Signed LEB128 of a non-negative 32-bit value (an `i64.const` below 2^31). */
  sleb(n: number): void {
    for (;;) {
      const b = n & 0x7f;
      n >>>= 7;
      if (n === 0 && (b & 0x40) === 0) return this.op(b);
      this.op(b | 0x80);
    }
  }
  get(l: number): void {
    this.op(LOCAL_GET);
    this.op(l);
  }
  set(l: number): void {
    this.op(LOCAL_SET);
    this.op(l);
  }
  /** `i64.load` of memory at the constant offset `at`. */
  load(at: number): void {
    this.op(I32_CONST);
    this.op(0);
    this.op(I64_LOAD);
    this.op(3);
    this.uleb(at);
  }
  /** `i64.const n`, `0 <= n < 2^31`. */
  const(n: number): void {
    this.op(I64_CONST);
    this.sleb(n);
  }
}

/** The function's body: locals, then code (see {@linkcode blockModuleBytes}). */
function body(): Uint8Array {
  // Locals: 0 = the length (parameter); 1..16 = the state v0..v15; 17, 18, 19 = scratch (i64).
  const w = new Writer();
  const V = (i: number) => 1 + i;
  const D = 17, T = 18, X = 19;
  const C = (i: number) => CONST_AT + 8 * i;
  w.op(1); // one group of locals:
  w.op(19); // 19 × i64
  w.op(0x7e);
  // h = IV with the parameter block (digest length 32, no key, fanout and depth 1).
  const h = (i: number) => {
    w.load(C(i));
    if (i === 0) {
      w.const(0x01010020);
      w.op(I64_XOR);
    }
  };
  for (let i = 0; i < 8; i++) {
    h(i);
    w.set(V(i));
  }
  for (let i = 0; i < 8; i++) {
    // v12 ^= the byte count (< 2^64: its high word, for v13, is 0); v14 = ~v14 (the last block).
    w.load(C(i));
    if (i === 4) {
      w.get(0);
      w.op(I64_EXTEND_I32_U);
      w.op(I64_XOR);
    } else if (i === 6) {
      w.op(I64_CONST);
      w.op(0x7f); // -1
      w.op(I64_XOR);
    }
    w.set(V(8 + i));
  }
  // a += b (+ message word x, read from memory: fewer locals than state + message, as fast).
  const add = (a: number, b: number, x: number) => {
    w.get(V(a));
    w.get(V(b));
    w.op(I64_ADD);
    if (x >= 0) {
      w.load(8 * x);
      w.op(I64_ADD);
    }
    w.set(V(a));
  };
  // d = (d ^ a) >>> r (rotation).
  const xorRot = (d: number, a: number, r: number) => {
    w.get(V(d));
    w.get(V(a));
    w.op(I64_XOR);
    w.const(r);
    w.op(I64_ROTR);
    w.set(V(d));
  };
  for (let round = 0; round < 12; round++) {
    const s = SIGMA[round % 10];
    for (let g = 0; g < 8; g++) {
      const [a, b, c, d] = MIX[g];
      add(a, b, s[2 * g]);
      xorRot(d, a, 32);
      add(c, d, -1);
      xorRot(b, c, 24);
      add(a, b, s[2 * g + 1]);
      xorRot(d, a, 16);
      add(c, d, -1);
      xorRot(b, c, 63);
    }
  }
  for (let i = 0; i < 4; i++) {
    // Digest word i = h[i] ^ v[i] ^ v[i + 8], stored little-endian.
    w.op(I32_CONST);
    w.op(0);
    h(i);
    w.get(V(i));
    w.op(I64_XOR);
    w.get(V(8 + i));
    w.op(I64_XOR);
    w.op(LOCAL_TEE);
    w.op(D);
    w.op(I64_STORE);
    w.op(3);
    w.uleb(DIGEST_AT + 8 * i);
    for (let half = 0; half < 2; half++) {
      // Its 4 bytes b0..b3 (little-endian) to 8 hex digits, SWAR: one byte per 16-bit lane, then
      // the high nibble in the lane's first byte and the low one in its second; each nibble plus
      // '0', plus 39 more ('a' - '0' - 10) where it is above 9 (nibble + 6 carries into bit 4).
      w.op(I32_CONST);
      w.op(0); // the store's address
      w.get(D);
      if (half === 1) {
        w.const(32);
        w.op(I64_SHR_U);
      }
      w.load(C(8));
      w.op(I64_AND);
      for (const [shift, mask] of [[16, 9], [8, 10]]) {
        w.op(LOCAL_TEE);
        w.op(T);
        w.const(shift);
        w.op(I64_SHL);
        w.get(T);
        w.op(I64_OR);
        w.load(C(mask));
        w.op(I64_AND);
      }
      w.op(LOCAL_TEE);
      w.op(T);
      w.const(4);
      w.op(I64_SHR_U);
      w.load(C(11));
      w.op(I64_AND);
      w.get(T);
      w.load(C(11));
      w.op(I64_AND);
      w.const(8);
      w.op(I64_SHL);
      w.op(I64_OR);
      w.op(LOCAL_TEE);
      w.op(X);
      w.load(C(12));
      w.op(I64_ADD);
      w.get(X);
      w.load(C(13));
      w.op(I64_ADD);
      w.const(4);
      w.op(I64_SHR_U);
      w.load(C(14));
      w.op(I64_AND);
      w.const(39);
      w.op(I64_MUL);
      w.op(I64_ADD);
      w.op(I64_STORE);
      w.op(3);
      w.uleb(HEX_AT + 16 * i + 8 * half);
    }
  }
  w.op(END);
  return w.bytes.subarray(0, w.at);
}

/**
 * The module's bytes: memory `m` (one page, the constants at {@linkcode CONST_AT}) and
 * `h(length: i32)`, which hashes the block at offset 0 as the final block of a `length`-byte
 * message and writes the digest and its hex digits.
 */
export function blockModuleBytes(): Uint8Array {
  const code = new Writer();
  code.op(1); // one body
  const fn = body();
  code.uleb(fn.length);
  code.bytes.set(fn, code.at);
  code.at += fn.length;
  const data = new Writer();
  data.op(1); // one active segment in memory 0, at CONST_AT
  data.op(0);
  data.op(I32_CONST);
  data.sleb(CONST_AT);
  data.op(END);
  data.uleb(CONSTANTS.length * 8);
  for (const [hi, lo] of CONSTANTS) {
    for (let k = 0; k < 4; k++) data.op((lo >>> (8 * k)) & 0xff);
    for (let k = 0; k < 4; k++) data.op((hi >>> (8 * k)) & 0xff);
  }
  const w = new Writer();
  for (const b of [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]) w.op(b); // "\0asm", version 1
  for (const b of [1, 5, 1, 0x60, 1, 0x7f, 0]) w.op(b); // types: 0 = (i32) -> ()
  for (const b of [3, 2, 1, 0]) w.op(b); // functions: 0 of type 0
  for (const b of [5, 3, 1, 0, 1]) w.op(b); // memory 0: one page, no maximum
  for (const b of [7, 9, 2, 1, 0x6d, 0x02, 0, 1, 0x68, 0x00, 0]) w.op(b); // exports "m", "h"
  for (const [id, section] of [[10, code], [11, data]] as const) {
    w.op(id);
    w.uleb(section.at);
    w.bytes.set(section.bytes.subarray(0, section.at), w.at);
    w.at += section.at;
  }
  return w.bytes.slice(0, w.at);
}
