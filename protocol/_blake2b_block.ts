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
 * at offset 160. Longer messages are hashed by `_blake2b.ts`'s general path.
 *
 * @module
 */

/** Blake2b's initialization vector (the SHA-512 one), as 64-bit words. */
const IV = [
  0x6a09e667f3bcc908n,
  0xbb67ae8584caa73bn,
  0x3c6ef372fe94f82bn,
  0xa54ff53a5f1d36f1n,
  0x510e527fade682d1n,
  0x9b05688c2b3e6c1fn,
  0x1f83d9abfb41bd6bn,
  0x5be0cd19137e2179n,
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

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb64(v: bigint): number[] {
  let n = BigInt.asIntN(64, v);
  const out: number[] = [];
  for (;;) {
    const b = Number(n & 0x7fn);
    n >>= 7n;
    if ((n === 0n && (b & 0x40) === 0) || (n === -1n && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

/**
 * The module's bytes: memory `m` (one page) and `h(length: i32)`, which hashes the block at
 * offset 0 as the final block of a `length`-byte message and writes the digest and its hex digits.
 */
export function blockModuleBytes(): Uint8Array {
  // Locals: 0 = the length (parameter); 1..16 = the state v0..v15; 17, 18, 19 = scratch (i64).
  const V = (i: number) => 1 + i;
  const D = 17, T = 18, X = 19;
  const code: number[] = [];
  const get = (l: number) => code.push(LOCAL_GET, l);
  const set = (l: number) => code.push(LOCAL_SET, l);
  const i64 = (v: bigint) => code.push(I64_CONST, ...sleb64(v));
  // h = IV with the parameter block (digest length 32, no key, fanout and depth 1).
  const h = (i: number) => i === 0 ? IV[0] ^ 0x01010020n : IV[i];
  for (let i = 0; i < 8; i++) {
    i64(h(i));
    set(V(i));
  }
  for (let i = 0; i < 8; i++) {
    // v12 ^= the byte count (< 2^64: its high word, for v13, is 0); v14 = ~v14 (the last block).
    i64(i === 6 ? ~IV[6] : IV[i]);
    if (i === 4) {
      get(0);
      code.push(I64_EXTEND_I32_U, I64_XOR);
    }
    set(V(8 + i));
  }
  // a += b (+ message word x, read from memory: fewer locals than state + message, as fast).
  const add = (a: number, b: number, x: number | null) => {
    get(V(a));
    get(V(b));
    code.push(I64_ADD);
    if (x !== null) code.push(I32_CONST, 0, I64_LOAD, 3, ...uleb(8 * x), I64_ADD);
    set(V(a));
  };
  // d = (d ^ a) >>> r (rotation).
  const xorRot = (d: number, a: number, r: number) => {
    get(V(d));
    get(V(a));
    code.push(I64_XOR, I64_CONST, r, I64_ROTR);
    set(V(d));
  };
  for (let round = 0; round < 12; round++) {
    const s = SIGMA[round % 10];
    MIX.forEach(([a, b, c, d], g) => {
      add(a, b, s[2 * g]);
      xorRot(d, a, 32);
      add(c, d, null);
      xorRot(b, c, 24);
      add(a, b, s[2 * g + 1]);
      xorRot(d, a, 16);
      add(c, d, null);
      xorRot(b, c, 63);
    });
  }
  for (let i = 0; i < 4; i++) {
    // Digest word i = h[i] ^ v[i] ^ v[i + 8], stored little-endian.
    code.push(I32_CONST, 0);
    i64(h(i));
    get(V(i));
    code.push(I64_XOR);
    get(V(8 + i));
    code.push(I64_XOR, LOCAL_TEE, D, I64_STORE, 3, ...uleb(DIGEST_AT + 8 * i));
    for (let half = 0; half < 2; half++) {
      // Its 4 bytes b0..b3 (little-endian) to 8 hex digits, SWAR: one byte per 16-bit lane, then
      // the high nibble in the lane's first byte and the low one in its second; each nibble plus
      // '0', plus 39 more ('a' - '0' - 10) where it is above 9 (nibble + 6 carries into bit 4).
      get(D);
      if (half === 1) code.push(I64_CONST, 32, I64_SHR_U);
      i64(0xffffffffn);
      code.push(I64_AND, LOCAL_TEE, T, I64_CONST, 16, I64_SHL);
      get(T);
      code.push(I64_OR);
      i64(0x0000ffff0000ffffn);
      code.push(I64_AND, LOCAL_TEE, T, I64_CONST, 8, I64_SHL);
      get(T);
      code.push(I64_OR);
      i64(0x00ff00ff00ff00ffn);
      code.push(I64_AND, LOCAL_TEE, T, I64_CONST, 4, I64_SHR_U);
      i64(0x000f000f000f000fn);
      code.push(I64_AND);
      get(T);
      i64(0x000f000f000f000fn);
      code.push(I64_AND, I64_CONST, 8, I64_SHL, I64_OR, LOCAL_SET, X);
      code.push(I32_CONST, 0);
      get(X);
      i64(0x3030303030303030n);
      code.push(I64_ADD);
      get(X);
      i64(0x0606060606060606n);
      code.push(I64_ADD, I64_CONST, 4, I64_SHR_U);
      i64(0x0101010101010101n);
      code.push(I64_AND, I64_CONST, 39, I64_MUL, I64_ADD);
      code.push(I64_STORE, 3, ...uleb(HEX_AT + 16 * i + 8 * half));
    }
  }
  code.push(END);
  const fn = [1, 19, 0x7e, ...code]; // locals: 19 × i64
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00], // "\0asm", version 1
    ...section(1, [1, 0x60, 1, 0x7f, 0]), // type 0: (i32) -> ()
    ...section(3, [1, 0]), // function 0: type 0
    ...section(5, [1, 0, 1]), // memory 0: one page, no maximum
    ...section(7, [2, 1, 0x6d, 0x02, 0, 1, 0x68, 0x00, 0]), // exports "m" (memory 0), "h" (func 0)
    ...section(10, [1, ...uleb(fn.length), ...fn]),
  ];
  return new Uint8Array(bytes);
}
