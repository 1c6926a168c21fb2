/**
 * Deterministic mutations of stored bytes: a small seeded PRNG and the mutation operators of the
 * fuzzers. Every input is a pure function of `(seed, target, index)`, so a failure printed as
 * `--seed S --target T --index I` is reproduced exactly, on any runtime.
 *
 * An input is either *systematic* (the first indexes of a target: every single-bit flip, every
 * truncation and every same-offset splice of every corpus entry, in order) or *random* (one to
 * three stacked operators from {@linkcode MUTATORS}).
 *
 * @module
 */

/** A seeded 32-bit PRNG (mulberry32): fast, and the same sequence on every runtime. */
export class Rng {
  #s: number;

  /** Seed from any 32-bit integer. */
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }

  /** Next 32-bit unsigned integer. */
  u32(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Integer in `[0, n)` (`n` ≥ 1). */
  int(n: number): number {
    return n <= 1 ? 0 : this.u32() % n;
  }

  /** One element of `xs`. */
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }
}

/** FNV-1a of a string, for mixing target names into seeds. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The PRNG of one input: a mix of the run seed, the target and the input's index. */
export function inputRng(seed: number, target: string, index: number): Rng {
  let h = (seed ^ hashString(target)) >>> 0;
  h = Math.imul(h ^ (index >>> 0), 0x9e3779b1) ^ Math.imul((index / 0x1_0000_0000) | 0, 0x85ebca77);
  // Warm up so that neighbouring indexes do not share a prefix of their sequences.
  const r = new Rng(h);
  r.u32();
  r.u32();
  return r;
}

/** Single bytes worth trying in any position: boundaries, and MessagePack / wire markers. */
export const INTERESTING_BYTES: readonly number[] = [
  0x00,
  0xff,
  0x7f,
  0x80,
  0xc1,
  0xc0,
  0x01,
  0x94,
  0x84,
  0x90,
  0x80,
  0xa0,
  0xbf,
  0xc2,
  0xc3,
  0xc4,
  0xc5,
  0xc6,
  0xd9,
  0xda,
  0xdb,
  0xdc,
  0xdd,
  0xde,
  0xdf,
  0xd4,
  0xc7,
  0xc9,
  0xcb,
  0xcf,
  0xd3,
  0x22,
  0x5c,
  0x7b,
  0x7d,
  0x2c,
  0x30,
  0x39,
  0x2d,
  0x65,
  0x2e,
  0x43,
  0x4b,
];

/** MessagePack headers followed by a 32-bit length (bin32, str32, array32, map32, ext32). */
const LEN32_HEADERS = [0xc6, 0xdb, 0xdd, 0xdf, 0xc9] as const;
/** …and by a 16-bit length (bin16, str16, array16, map16, ext16). */
const LEN16_HEADERS = [0xc5, 0xda, 0xdc, 0xde, 0xc8] as const;
/** Large lengths: the maximum, sign boundaries, a few megabytes, just over a size limit. */
const LARGE_U32 = [
  0xffffffff,
  0x7fffffff,
  0x80000000,
  0x01a161c0,
  0x20000001,
  0x00100000,
  0x00010000,
  0x0000ffff,
] as const;

/** One described mutation: what it did, for the reproducer's report. */
export interface Mutated {
  /** The mutated bytes. */
  bytes: Uint8Array;
  /** Operators applied, e.g. `["bitflip@12.3", "truncate@40"]`. */
  ops: string[];
  /** Corpus indexes of the splice donors (empty without a splice). */
  donors: number[];
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function u32be(v: number): Uint8Array {
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

/** Context an operator may use: the corpus for splices. */
interface OpContext {
  rng: Rng;
  corpus: readonly Uint8Array[];
  self: number;
  donors: number[];
}

type Op = (b: Uint8Array, c: OpContext) => [Uint8Array, string];

const pos = (b: Uint8Array, r: Rng) => r.int(b.length);

/** The mutation operators of the random phase, with their relative weights. */
export const MUTATORS: readonly { name: string; weight: number; op: Op }[] = [
  {
    name: "bitflip",
    weight: 20,
    op: (b, { rng }) => {
      if (b.length === 0) return [b, "bitflip(empty)"];
      const out = b.slice();
      const i = pos(b, rng);
      const bit = rng.int(8);
      out[i] ^= 1 << bit;
      return [out, `bitflip@${i}.${bit}`];
    },
  },
  {
    name: "byte",
    weight: 14,
    op: (b, { rng }) => {
      if (b.length === 0) return [b, "byte(empty)"];
      const out = b.slice();
      const i = pos(b, rng);
      out[i] = rng.chance(0.8) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
      return [out, `byte@${i}=${out[i].toString(16)}`];
    },
  },
  {
    name: "truncate",
    weight: 8,
    op: (b, { rng }) => {
      const n = rng.int(b.length + 1);
      return [b.subarray(0, n), `truncate@${n}`];
    },
  },
  {
    name: "duplicate",
    weight: 6,
    op: (b, { rng }) => {
      if (b.length === 0) return [b, "duplicate(empty)"];
      const a = pos(b, rng);
      const e = Math.min(b.length, a + 1 + rng.int(32));
      const at = rng.int(b.length + 1);
      const times = rng.chance(0.9) ? 1 : 1 + rng.int(64);
      const chunk = b.subarray(a, e);
      const parts = [b.subarray(0, at)];
      for (let t = 0; t < times; t++) parts.push(chunk);
      parts.push(b.subarray(at));
      return [concat(...parts), `duplicate[${a},${e})x${times}@${at}`];
    },
  },
  {
    name: "splice",
    weight: 8,
    op: (b, c) => {
      const { rng, corpus } = c;
      let d = rng.int(corpus.length);
      if (d === c.self && corpus.length > 1) d = (d + 1) % corpus.length;
      const other = corpus[d];
      const i = rng.int(b.length + 1);
      // Mostly at the same offset (entries of the same shape line up), sometimes anywhere.
      const j = rng.chance(0.6) ? Math.min(i, other.length) : rng.int(other.length + 1);
      c.donors.push(d);
      return [concat(b.subarray(0, i), other.subarray(j)), `splice@${i}+donor${d}@${j}`];
    },
  },
  {
    name: "insert",
    weight: 6,
    op: (b, { rng }) => {
      const at = rng.int(b.length + 1);
      const n = 1 + rng.int(8);
      const ins = new Uint8Array(n);
      for (let k = 0; k < n; k++) {
        ins[k] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(256);
      }
      return [concat(b.subarray(0, at), ins, b.subarray(at)), `insert${n}@${at}`];
    },
  },
  {
    name: "delete",
    weight: 4,
    op: (b, { rng }) => {
      if (b.length === 0) return [b, "delete(empty)"];
      const a = pos(b, rng);
      const e = Math.min(b.length, a + 1 + rng.int(16));
      return [concat(b.subarray(0, a), b.subarray(e)), `delete[${a},${e})`];
    },
  },
  {
    name: "header",
    weight: 6,
    op: (b, { rng }) => {
      // A MessagePack container/blob header claiming a huge length, written over or inserted.
      const wide = rng.chance(0.7);
      const h = wide ? rng.pick(LEN32_HEADERS) : rng.pick(LEN16_HEADERS);
      const len = rng.chance(0.8) ? rng.pick(LARGE_U32) : rng.u32();
      const field = wide ? u32be(len) : u32be(len).subarray(2);
      const hdr = concat(new Uint8Array([h]), field);
      const at = rng.int(b.length + 1);
      if (rng.chance(0.5)) {
        return [
          concat(b.subarray(0, at), hdr, b.subarray(at)),
          `header+${h.toString(16)}:${len}@${at}`,
        ];
      }
      const out = b.slice();
      out.set(hdr.subarray(0, Math.max(0, out.length - at)), at);
      return [out, `header=${h.toString(16)}:${len}@${at}`];
    },
  },
  {
    name: "inflate",
    weight: 6,
    op: (b, { rng }) => {
      // Length-field inflation: grow a 1-, 2- or 4-byte big-endian integer at some position.
      if (b.length === 0) return [b, "inflate(empty)"];
      const w = rng.pick([1, 2, 4]);
      const at = rng.int(Math.max(1, b.length - w + 1));
      const out = b.slice();
      const n = Math.min(w, out.length - at);
      let v = 0;
      for (let k = 0; k < n; k++) v = v * 256 + out[at + k];
      const max = 2 ** (8 * n) - 1;
      const grown = rng.pick([
        max,
        Math.min(max, v + 1),
        Math.min(max, v * 2 + 1),
        Math.min(max, v + 1000),
      ]);
      for (let k = n - 1, x = grown; k >= 0; k--, x = Math.floor(x / 256)) out[at + k] = x % 256;
      return [out, `inflate${n}@${at}:${v}->${grown}`];
    },
  },
  {
    name: "inflate-le",
    weight: 3,
    op: (b, { rng }) => {
      // Length-field inflation, little-endian (Arrow's FlatBuffers and IPC lengths): a 4- or
      // 8-byte aligned integer made huge, negative, or a little larger.
      const w = rng.chance(0.5) ? 4 : 8;
      if (b.length < w) return [b, "inflate-le(short)"];
      const at = rng.int(Math.floor(b.length / w)) * w;
      const out = b.slice();
      const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
      const v = view.getUint32(at, true);
      const grown = rng.chance(0.5)
        ? rng.pick(LARGE_U32)
        : rng.pick([v + 1, v * 2 + 1, v + 1000, v + 8]) >>> 0;
      view.setUint32(at, grown, true);
      if (w === 8 && rng.chance(0.3)) {
        view.setUint32(at + 4, rng.pick([1, 0x7fffffff, 0xffffffff]), true);
      }
      return [out, `inflate-le${w}@${at}:${v}->${grown}`];
    },
  },
  {
    name: "run",
    weight: 1,
    op: (b, { rng }) => {
      // A long run of the byte found at a position (a digit inside a JSON number, a base64 char,
      // a MessagePack fixint): stresses number parsers and length checks.
      const at = rng.int(b.length + 1);
      const byte = b.length > 0 ? b[Math.min(at, b.length - 1)] : 0x31;
      const n = rng.pick([16, 255, 256, 4096, 65535, 65536, 140_000]);
      const run = new Uint8Array(n).fill(byte);
      return [concat(b.subarray(0, at), run, b.subarray(at)), `run${n}x${byte.toString(16)}@${at}`];
    },
  },
  {
    name: "number",
    weight: 2,
    op: (b, { rng }) => {
      // A long run of digits, inside a number when the input has one (JSON documents, fresh_until):
      // number parsers that go digit by digit, or through a string of all of them, meet their end.
      let at = rng.int(b.length + 1);
      for (let k = 0; k < b.length; k++) {
        const j = (at + k) % b.length;
        if (b[j] >= 0x30 && b[j] <= 0x39) {
          at = j;
          break;
        }
      }
      const n = rng.pick([20, 400, 5000, 70_000, 140_000]);
      const digits = new Uint8Array(n);
      for (let k = 0; k < n; k++) digits[k] = 0x30 + rng.int(10);
      return [concat(b.subarray(0, at), digits, b.subarray(at)), `number${n}@${at}`];
    },
  },
];

const TOTAL_WEIGHT = MUTATORS.reduce((s, m) => s + m.weight, 0);

function pickOp(rng: Rng): (typeof MUTATORS)[number] {
  let r = rng.int(TOTAL_WEIGHT);
  for (const m of MUTATORS) {
    if (r < m.weight) return m;
    r -= m.weight;
  }
  return MUTATORS[0];
}

/** Inputs of the systematic phase of one corpus entry: bit flips, truncations, splices. */
function systematicCount(len: number): number {
  return 8 * len + len + Math.max(0, len - 1);
}

/** Total systematic inputs of a corpus (the first indexes of a target). */
export function systematicTotal(corpus: readonly Uint8Array[]): number {
  let n = 0;
  for (const e of corpus) n += systematicCount(e.length);
  return n;
}

/**
 * The input number `index` of a target: systematic while `index` is below
 * {@linkcode systematicTotal}, random after.
 */
export function mutate(
  corpus: readonly Uint8Array[],
  seed: number,
  target: string,
  index: number,
): { base: number } & Mutated {
  let k = index;
  for (let e = 0; e < corpus.length; e++) {
    const b = corpus[e];
    const n = systematicCount(b.length);
    if (k >= n) {
      k -= n;
      continue;
    }
    if (k < 8 * b.length) {
      const out = b.slice();
      out[k >> 3] ^= 1 << (k & 7);
      return { base: e, bytes: out, ops: [`bitflip@${k >> 3}.${k & 7}`], donors: [] };
    }
    k -= 8 * b.length;
    if (k < b.length) {
      return { base: e, bytes: b.subarray(0, k), ops: [`truncate@${k}`], donors: [] };
    }
    k -= b.length;
    // Same-offset splice with the next entry: prefix [0, cut) of this one, suffix [cut, …) of it.
    const cut = k + 1;
    const d = (e + 1) % corpus.length;
    const out = concat(b.subarray(0, cut), corpus[d].subarray(Math.min(cut, corpus[d].length)));
    return { base: e, bytes: out, ops: [`splice@${cut}+donor${d}@${cut}`], donors: [d] };
  }
  const rng = inputRng(seed, target, index);
  const base = rng.int(corpus.length);
  const ctx: OpContext = { rng, corpus, self: base, donors: [] };
  let bytes = corpus[base];
  const ops: string[] = [];
  const count = rng.chance(0.7) ? 1 : rng.chance(0.67) ? 2 : 3;
  for (let i = 0; i < count; i++) {
    const [out, what] = pickOp(rng).op(bytes, ctx);
    bytes = out;
    ops.push(what);
  }
  return { base, bytes, ops, donors: ctx.donors };
}
