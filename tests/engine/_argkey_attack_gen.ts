/**
 * A richer seeded generator of argument lists for the cheap-key differential tests
 * (`engine_argkey_attack_test.ts`): edge numbers and their float64 markers, bigints at the 2^53,
 * 2^63 and 2^64 boundaries, strings built from the cheap key's own delimiters (and lone
 * surrogates, Python ISO texts of the generated dates), dates at and outside Python's years,
 * invalid dates, every typed array and `Buffer`, plain and null-prototype objects with `undefined`
 * and `__proto__` keys, `Map`s (non-string keys, `undefined` values, subclasses), `Set`s with
 * elements the hash writes alike, nesting around the cheap key's depth limit, and `undefined`
 * arguments anywhere. Each generated value comes with rewrites into the forms the hash writes
 * alike, so that the test meets collisions often.
 */
import { Buffer } from "node:buffer";
import { float64 } from "../../protocol/keys.ts";
import { pythonIsoformat } from "../../protocol/internal.ts";
import { prng } from "../_prng.ts";

export const NUMBERS = [
  0,
  -0,
  1,
  -1,
  1.5,
  -1.5,
  0.001,
  0.1,
  NaN,
  Infinity,
  -Infinity,
  2 ** 31,
  -(2 ** 31),
  2 ** 32,
  2 ** 53 - 1,
  -(2 ** 53 - 1),
  2 ** 53,
  -(2 ** 53),
  2 ** 53 + 2,
  2 ** 60,
  2 ** 63,
  -(2 ** 63),
  -(2 ** 63) - 2048,
  2 ** 64 - 2048,
  2 ** 64,
  1e21,
  1e-7,
  5e-324,
  Number.MAX_VALUE,
  1_700_000_000,
  1_700_000_000.5,
  0.0015,
  -0.001,
  8.64e12,
  -62135596800, // 0001-01-01 in seconds
  253402300800, // 10000-01-01 in seconds
];

export const BIGINTS = [
  0n,
  1n,
  -1n,
  2n ** 31n,
  2n ** 53n - 1n,
  -(2n ** 53n - 1n),
  2n ** 53n,
  2n ** 53n + 1n,
  2n ** 60n,
  2n ** 63n,
  2n ** 63n - 1n,
  -(2n ** 63n),
  -(2n ** 63n) - 1n,
  2n ** 64n - 2048n,
  2n ** 64n - 1n,
  2n ** 64n,
  1_700_000_000n,
];

/** ms since the epoch: Python's range edges, sub-second parts, out of range, invalid. */
export const TIMES = [
  0,
  1,
  1500,
  -1,
  -1500,
  1_700_000_000_000,
  1_700_000_000_500,
  1_700_000_000_001,
  -62135596800000, // 0001-01-01T00:00:00Z
  -62135596800001, // just before year 1
  253402300799999, // 9999-12-31T23:59:59.999Z
  253402300800000, // year 10000
  8.64e15,
  -8.64e15,
  NaN,
];

const ISO = TIMES.map((t) => pythonIsoformat(new Date(t))).filter((s): s is string => s !== null);

export const STRINGS = [
  "",
  "a",
  "b",
  "1",
  "0",
  "-0",
  "NaN",
  "n1;",
  "s1:a",
  "[1:n1;",
  "{1:1:an1;",
  "x1:\u0001",
  "T",
  "z",
  "p",
  "a",
  "__proto__",
  "constructor",
  "\u0000",
  "\ud800",
  "\udc00",
  "\ud800\udc00",
  "\uffff",
  "\ue000",
  "é",
  " ",
  "%",
  ...ISO,
];

const KEYS = ["", "a", "b", "__proto__", "1", "10", "2", "\ud800", "\ud83d\ude00", "\ue000", "x:y"];

export interface GenOptions {
  /** Deepest nesting to build (the cheap key gives up past 8). */
  maxDepth: number;
  /** Largest typed array. */
  maxBytes: number;
}

/** A generator of argument lists. */
export function generator(seed: number, opts: GenOptions = { maxDepth: 3, maxBytes: 4 }) {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const bytes = (): number[] => {
    const n = r() < 0.02 ? 4095 + Math.floor(r() * 3) : Math.floor(r() * (opts.maxBytes + 1));
    return Array.from({ length: n }, () => pick([0, 1, 58, 59, 255]));
  };
  const container = (depth: number): unknown => {
    const n = Math.floor(r() * 3);
    const items = () => Array.from({ length: n }, () => value(depth + 1));
    switch (Math.floor(r() * 8)) {
      case 0:
      case 1: {
        const a = items();
        if (r() < 0.05) a.push(undefined);
        return a;
      }
      case 2: {
        const s = new Set(items());
        if (r() < 0.3) s.add(pick(s.size ? [...s] : [1]) instanceof Object ? 1 : 1n);
        return s;
      }
      case 3: {
        const m = new (r() < 0.1 ? class M extends Map {} : Map)();
        for (let i = 0; i < n; i++) {
          const k = r() < 0.05 ? pick<unknown>([1, null, 1n]) : pick(KEYS);
          m.set(k, r() < 0.05 ? undefined : value(depth + 1));
        }
        return m;
      }
      default: {
        const o: Record<string, unknown> = r() < 0.2 ? Object.create(null) : {};
        for (let i = 0; i < n; i++) {
          const k = pick(KEYS);
          Object.defineProperty(o, k, {
            value: r() < 0.1 ? undefined : value(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return o;
      }
    }
  };
  const value = (depth: number): unknown => {
    if (depth < opts.maxDepth && r() < 0.3) return container(depth);
    switch (Math.floor(r() * 12)) {
      case 0:
        return pick(NUMBERS);
      case 1:
        return pick(STRINGS);
      case 2:
        return pick(BIGINTS);
      case 3:
        return new Date(pick(TIMES));
      case 4:
        return float64(pick(NUMBERS));
      case 5:
        return r() < 0.5;
      case 6:
        return null;
      case 7: {
        const b = bytes();
        const kind = Math.floor(r() * 6);
        if (kind === 0) return Uint8Array.from(b);
        if (kind === 1) return Buffer.from(b);
        if (kind === 2) return new (class U extends Uint8Array {})(b);
        if (kind === 3) return Int8Array.from(b);
        if (kind === 4) return Uint8ClampedArray.from(b);
        return new DataView(Uint8Array.from(b).buffer);
      }
      case 8:
        return undefined;
      case 9:
        return pick(TIMES.filter((t) => t === t)) / 1000;
      case 10:
        return pick(ISO);
      default:
        return deep(depth);
    }
  };
  /** Nesting around the cheap key's limit (8). */
  const deep = (depth: number): unknown => {
    let v: unknown = pick<unknown>([1, "a", 1n, new Date(0)]);
    for (let i = 6 + Math.floor(r() * 4) - depth; i > 0; i--) {
      v = pick([
        (x: unknown) => [x],
        (x: unknown) => ({ k: x }),
        (x: unknown) => new Map([["k", x]]),
        (x: unknown) => new Set([x]),
      ])(v);
    }
    return v;
  };
  return (): unknown[] => {
    const args = Array.from({ length: Math.floor(r() * 4) }, () => value(0));
    if (r() < 0.1) args.push(undefined);
    return args;
  };
}

/**
 * `v` rewritten into a value the key hash of the form writes alike (`std`: standard, else
 * interop), reversing key and element orders; `v` itself where there is none.
 */
export function rewrite(v: unknown, std: boolean, r: () => number): unknown {
  if (typeof v === "number") {
    if (r() < 0.2) return v;
    if (std && Number.isSafeInteger(v)) return r() < 0.5 ? BigInt(v) : v;
    if (std) return r() < 0.5 ? float64(v) : v;
    if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64 && r() < 0.5) return BigInt(v);
    const d = new Date(v * 1000);
    if (d.getTime() / 1000 === v && r() < 0.5) return d;
    return float64(v);
  }
  if (typeof v === "bigint") {
    const x = Number(v);
    if (std) return Number.isSafeInteger(x) && BigInt(x) === v ? x : v;
    return BigInt(x) === v && v >= -(2n ** 63n) && v < 2n ** 64n ? x : v;
  }
  if (typeof v === "string" && std) {
    const d = new Date(v);
    if (d.getTime() === d.getTime() && pythonIsoformat(d) === v && r() < 0.7) return d;
    return v;
  }
  if (v instanceof Date) {
    const t = v.getTime();
    if (t !== t) return v;
    if (std) return pythonIsoformat(v) ?? v;
    return t / 1000;
  }
  if (v instanceof Uint8Array) return r() < 0.5 ? Buffer.from(v) : Uint8Array.from(v);
  if (Array.isArray(v)) {
    const a = v.map((x) => rewrite(x, std, r));
    // An array sorted by the interop hash is its Set.
    return a;
  }
  if (v instanceof Set) return new Set([...v].map((x) => rewrite(x, std, r)).reverse());
  if (v instanceof Map) {
    if ([...v.keys()].some((k) => typeof k !== "string")) return v;
    const o: Record<string, unknown> = {};
    for (const [k, x] of [...v].reverse()) {
      Object.defineProperty(o, k as string, {
        value: rewrite(x, std, r),
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return o;
  }
  if (v !== null && typeof v === "object") {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) return v;
    const entries = Object.keys(v).reverse().map((k) =>
      [k, rewrite((v as Record<string, unknown>)[k], std, r)] as const
    );
    if (r() < 0.5 && entries.every(([, x]) => x !== undefined)) return new Map(entries);
    const o: Record<string, unknown> = r() < 0.5 ? Object.create(null) : {};
    for (const [k, x] of entries) {
      Object.defineProperty(o, k, {
        value: x,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return o;
  }
  return v;
}
