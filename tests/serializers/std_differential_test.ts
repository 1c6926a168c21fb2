/**
 * The std serializer against a frozen copy of itself from before its fast paths
 * (`tests/_fixtures/std_reference/`): on seeded random values covering every edge case the Python
 * cross-checks pin, `serialize` must give the same bytes, the same reshaped note and the same
 * errors (class and message, path included); on random, mutated and hand-made bytes `deserialize`
 * must give the same value (classes, `-0`, bigints included) or the same error.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { isDeepStrictEqual } from "node:util";
import { test } from "../_harness.ts";
import { CalendarDate, deserialize, serialize, TimeOfDay } from "../../serializers/mod.ts";
import { SerializationError } from "../../errors.ts";
import { isReshaped } from "../../serializers/_reshaped.ts";
import { encodeFast } from "../../serializers/_std_encode.ts";
import { markerPaths, scan, SCAN_MARKER } from "../../serializers/_msgpack_scan.ts";
import * as ref from "../_fixtures/std_reference/std.ts";
import { isReshaped as refIsReshaped } from "../_fixtures/std_reference/_reshaped.ts";
import { dateToIso, isoToDate } from "../../serializers/_time.ts";
import * as refTime from "../_fixtures/std_reference/_time_text.ts";
import { prng as rng } from "../_prng.ts";

type Outcome = { bytes: number[]; reshaped: boolean } | { error: string };

function outcomeNew(v: unknown): Outcome {
  try {
    const b = serialize(v);
    assert.equal(Object.getPrototypeOf(b), Uint8Array.prototype);
    assert.equal(b.buffer.byteLength, b.byteLength, "the bytes own their memory");
    return { bytes: Array.from(b), reshaped: isReshaped(b) };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

function outcomeRef(v: unknown): Outcome {
  try {
    const b = ref.serialize(v);
    return { bytes: Array.from(b), reshaped: refIsReshaped(b) };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

/**
 * Dates as their time value (Node 20's `deepStrictEqual` finds two invalid dates unequal); every
 * other value as is, with its prototype.
 */
function norm(v: unknown): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (v instanceof Date) return { date: String(v.getTime()), proto: Object.getPrototypeOf(v) };
  if (Array.isArray(v)) return v.map(norm);
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [norm(k), norm(x)]));
  if (v instanceof Uint8Array) return v;
  const o = Object.create(Object.getPrototypeOf(v));
  for (const k of Object.keys(v)) {
    const x = norm((v as Record<string, unknown>)[k]);
    Object.defineProperty(o, k, { value: x, enumerable: true, writable: true, configurable: true });
  }
  return o;
}

function decoded(f: () => unknown): { value: unknown } | { error: string } {
  try {
    return { value: norm(f()) };
  } catch (e) {
    return { error: `${(e as Error).constructor.name}: ${(e as Error).message}` };
  }
}

class Point {
  x = 1;
}
class MyDate extends Date {}
class MyMap extends Map<unknown, unknown> {}
class MyTime extends TimeOfDay {}

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  NaN,
  Infinity,
  -Infinity,
  0.5,
  -1.5,
  1e-300,
  1.7976931348623157e308,
  0x1f,
  0x20,
  0x7f,
  0x80,
  0xff,
  0x100,
  0xffff,
  0x10000,
  -0x20,
  -0x21,
  -0x80,
  -0x81,
  -0x8000,
  -0x8001,
  2 ** 31 - 1,
  2 ** 31,
  -(2 ** 31),
  -(2 ** 31) - 1,
  2 ** 32 - 1,
  2 ** 32,
  2 ** 32 + 1,
  -(2 ** 32),
  2 ** 40,
  -(2 ** 40) - 3,
  2 ** 53 - 1,
  2 ** 53,
  2 ** 53 + 2,
  -(2 ** 53 - 1),
  -(2 ** 53),
  2 ** 64,
  -(2 ** 63),
  2 ** 63,
];
const BIGINTS = [
  0n,
  1n,
  -1n,
  2n ** 31n,
  2n ** 53n - 1n,
  2n ** 53n,
  -(2n ** 53n) + 1n,
  -(2n ** 53n),
  2n ** 63n - 1n,
  2n ** 63n,
  -(2n ** 63n),
  -(2n ** 63n) - 1n,
  2n ** 64n - 1n,
  2n ** 64n,
];
const STRINGS = [
  "",
  "a",
  "value",
  "__proto__",
  "constructor",
  "toJSON",
  "héllo ✓ 𝄞",
  "€".repeat(11),
  "é".repeat(16),
  "x".repeat(31),
  "x".repeat(32),
  "é".repeat(31),
  "x".repeat(63),
  "x".repeat(64),
  "€".repeat(63),
  "€".repeat(64),
  "x".repeat(255),
  "x".repeat(256),
  "é".repeat(128),
  "😀".repeat(40),
  "\ud800",
  "\udc00",
  "a\ud800b",
  "\udc00\ud800",
  "😀".repeat(20) + "\ud83d",
  "x".repeat(100) + "\udfff",
  "\udc00\udc00",
  "2024-01-31",
  "2025-11-14T10:30:00+00:00",
  "10:30:00",
];

function gen(rnd: () => number) {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)];
  const leaf = (): unknown => {
    switch (Math.floor(rnd() * 14)) {
      case 0:
      case 1:
        return pick(NUMBERS);
      case 2:
        return Math.floor((rnd() - 0.5) * 2 ** Math.floor(rnd() * 60));
      case 3:
        return (rnd() - 0.5) * 10 ** Math.floor(rnd() * 20);
      case 4:
        return pick(BIGINTS);
      case 5:
      case 6:
        return pick(STRINGS);
      case 7:
        return pick([true, false, null, undefined]);
      case 8:
        return pick([
          new Date(Date.UTC(2025, 10, 14, 10, 30, 0, Math.floor(rnd() * 1000))),
          new Date(0),
          new Date(NaN),
          new Date(Date.UTC(10000, 0, 1)),
          new Date(-62198755200000), // year 0
          new MyDate(0),
        ]);
      case 9:
        return pick([
          new CalendarDate(2024, 2, 29),
          new TimeOfDay(23, 59, 58, 123456),
          new TimeOfDay(1, 2, 3, 0, "Z"),
          new TimeOfDay(1, 2, 3, 0, "+05:30"),
          new MyTime(4, 5, 6),
        ]);
      case 10:
        return pick([
          new Uint8Array(0),
          Uint8Array.of(0, 255, 1),
          new Uint8Array(255).fill(7),
          new Uint8Array(256).fill(9),
          Buffer.from([1, 2, 3]),
          new Uint16Array(2),
        ]);
      case 11:
        return pick([() => 1, Symbol("s"), new Set([1]), new Point(), new MyMap([["a", 1]])]);
      case 12:
        return { __date__: true, value: pick(["2024-01-31", "not a date"]) };
      default:
        return pick([{ __datetime__: true, value: "2025-11-14T10:30:00+00:00" }, {
          __time__: true,
          value: "10:30:00",
          extra: 1,
        }]);
    }
  };
  const value = (depth: number): unknown => {
    if (depth > 4 || rnd() < 0.35) return leaf();
    const n = pick([0, 1, 2, 3, 5, 15, 16, 17]);
    switch (Math.floor(rnd() * 6)) {
      case 0: {
        const a: unknown[] = new Array(n);
        for (let i = 0; i < n; i++) if (rnd() < 0.9) a[i] = value(depth + 1); // holes
        return a;
      }
      case 1:
      case 2: {
        const o: Record<string, unknown> = rnd() < 0.15 ? Object.create(null) : {};
        for (let i = 0; i < n; i++) {
          const k = rnd() < 0.2 ? pick(STRINGS) : `k${i}`;
          // an own "__proto__" property (an assignment would set the prototype)
          Object.defineProperty(o, k, {
            value: value(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return o;
      }
      case 3: {
        const m = new Map<unknown, unknown>();
        for (let i = 0; i < n; i++) {
          const k = rnd() < 0.5 ? `k${i}` : rnd() < 0.8 ? leaf() : value(depth + 1);
          m.set(k, value(depth + 1));
        }
        return m;
      }
      default:
        return leaf();
    }
  };
  return value;
}

function nested(depth: number, leaf: unknown, kind: "array" | "object" | "map"): unknown {
  let v = leaf;
  for (let i = 0; i < depth; i++) {
    v = kind === "array" ? [v] : kind === "object" ? { a: v } : new Map([[1, v]]);
  }
  return v;
}

/** Values too big or too odd for the generator. */
function fixedValues(): unknown[] {
  const cycleA: unknown[] = [];
  cycleA.push(cycleA);
  const cycleO: Record<string, unknown> = { a: 1 };
  cycleO.self = cycleO;
  const cycleM = new Map<unknown, unknown>();
  cycleM.set("m", cycleM);
  const big = Object.fromEntries(Array.from({ length: 70000 }, (_, i) => [`k${i}`, i]));
  const out: unknown[] = [
    cycleA,
    cycleO,
    cycleM,
    big,
    new Array(70000).fill(1),
    "x".repeat(70000),
    "é".repeat(40000), // 80,000 bytes from 40,000 characters
    "€".repeat(30000), // str 16 by length, str 32 by bytes
    new Uint8Array(70000),
    { constructor: 1, toJSON: 2 },
    Object.assign(Object.create(null), { toJSON: 1 }),
    Object.create(Array.prototype),
    Object.create({}),
    new Map(),
    new Map<unknown, unknown>([[undefined, 1], [null, 2]]),
    new Map<unknown, unknown>([[2 ** 40, 1], [2n ** 40n, 2]]),
    new Map<unknown, unknown>([[-0, "z"], [1, new Date(0)], [new Date(0), 1], [[1], 2]]),
    new Map<unknown, unknown>([["__date__", true], ["value", "2024-01-31"]]),
    new Map<unknown, unknown>([["a\ud800", 1]]),
    { "a\ud800": 1 }, // a lone surrogate in a key: written as U+FFFD by msgpackr (as before)
    [undefined, , 3], // eslint-disable-line no-sparse-arrays
    undefined,
  ];
  for (const kind of ["array", "object", "map"] as const) {
    for (const d of [511, 512, 513]) {
      out.push(nested(d, 1, kind), nested(d, new Date(0), kind), nested(d, "\ud800", kind));
    }
  }
  return out;
}

test("std differential: serialize gives the bytes, notes and errors of the previous serializer", () => {
  const rnd = rng(0x5eed);
  const value = gen(rnd);
  let fast = 0;
  let fixed = 0;
  const check = (v: unknown, what: string) => {
    if (encodeFast(v) !== undefined) fast++;
    // Two bugs of the previous serializer, fixed on purpose (pinned in the next test): a Map
    // subclass was written as an empty map, and a lone surrogate in a key became U+FFFD.
    const now = outcomeNew(v);
    if (hasFixedBug(v) && !isDeepStrictEqual(now, outcomeRef(v))) {
      fixed++;
      return;
    }
    assert.deepEqual(now, outcomeRef(v), what);
  };
  for (let i = 0; i < 4000; i++) check(value(0), `random value #${i}`);
  for (const [i, v] of fixedValues().entries()) check(v, `fixed value #${i}`);
  for (const x of [...NUMBERS, ...BIGINTS, ...STRINGS]) check(x, `leaf ${String(x)}`);
  // The fast path must be the usual one, or this test compares the reference with itself.
  assert.ok(fast > 1500, `only ${fast} values took the fast path`);
  assert.ok(fixed < 1500, `${fixed} values differ only by the fixed bugs`);
});

/** Whether `v` holds a Map subclass or an object key with a lone surrogate (cycles: skipped). */
function hasFixedBug(v: unknown, seen: Set<unknown> = new Set()): boolean {
  if (v === null || typeof v !== "object" || seen.has(v)) return false;
  seen.add(v);
  if (v instanceof Map) {
    if (Object.getPrototypeOf(v) !== Map.prototype) return true;
    for (const [k, x] of v) if (hasFixedBug(k, seen) || hasFixedBug(x, seen)) return true;
    return false;
  }
  if (Array.isArray(v)) return v.some((x) => hasFixedBug(x, seen));
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  for (const k of Object.keys(v)) {
    if (!(k as string & { isWellFormed(): boolean }).isWellFormed()) return true;
    if (hasFixedBug((v as Record<string, unknown>)[k], seen)) return true;
  }
  return false;
}

test("std: a Map subclass is written with its entries; a lone surrogate in a key is refused", () => {
  class Sub extends Map<unknown, unknown> {}
  const bytes = serialize(new Sub([["a", 1], [2, "x"]]));
  assert.deepEqual(deserialize(bytes), new Map<unknown, unknown>([["a", 1], [2, "x"]]));
  assert.ok(isReshaped(bytes), "read back as a Map, not the subclass: a miss answers the decoded");
  assert.deepEqual(deserialize(serialize({ m: new Sub([["k", [1]]]) })), { m: { k: [1] } });
  // The previous serializer lost the entries.
  assert.deepEqual(ref.deserialize(ref.serialize(new Sub([["a", 1]]))), {});
  assert.throws(
    () => serialize({ ok: { "a\ud800": 1 } }),
    (e: unknown) =>
      e instanceof SerializationError &&
      /value\.ok\["a\\ud800"\]: key contains a lone/.test(e.message),
  );
  assert.throws(() => serialize(new Map([["\udc00", 1]])), SerializationError);
});

test("std differential: getters that serialize or throw; a getter is read once", () => {
  const values: unknown[] = [
    {
      get a() {
        return serialize({ inner: [1, new Date(0)] }); // re-entered while the outer walk runs
      },
    },
    {
      get a() {
        throw new TypeError("getter failed");
      },
    },
  ];
  for (const [i, v] of values.entries()) assert.deepEqual(outcomeNew(v), outcomeRef(v), `#${i}`);
  // The one difference: the previous serializer read each property twice (its pre-pass, then
  // msgpackr), so a getter could pass the check and then write something else (here a lone
  // surrogate, written as U+FFFD). The fast walk reads once and writes what it checked.
  let n = 0;
  const v = {
    x: 1,
    get a() {
      return n++ % 2 ? "\ud800" : "ok";
    },
  };
  assert.deepEqual(deserialize(serialize(v)), { x: 1, a: "ok" });
  assert.equal(n, 1);
  n = 0;
  assert.deepEqual(ref.deserialize(ref.serialize(v)), { x: 1, a: "\ufffd" });
  assert.equal(n, 2);
});

test("std differential: deserialize gives the values and errors of the previous serializer", () => {
  const rnd = rng(0xdec0de);
  const value = gen(rnd);
  const docs: Uint8Array[] = [];
  for (let i = 0; i < 1500; i++) {
    let doc: Uint8Array;
    try {
      doc = ref.serialize(value(0));
    } catch {
      continue;
    }
    docs.push(doc, Buffer.from(doc)); // node-redis hands out Buffers
    for (let m = 0; m < 2; m++) {
      const bad = doc.slice();
      bad[Math.floor(rnd() * bad.length)] = Math.floor(rnd() * 256);
      docs.push(bad);
    }
    docs.push(doc.subarray(0, Math.floor(rnd() * doc.length)));
  }
  for (let i = 0; i < 500; i++) {
    const b = new Uint8Array(Math.floor(rnd() * 24));
    for (let j = 0; j < b.length; j++) b[j] = Math.floor(rnd() * 256);
    docs.push(b);
  }
  const s = (t: string) => [0xa0 | t.length, ...new TextEncoder().encode(t)];
  const marker = (date: string) => [0x82, ...s("__date__"), 0xc3, ...s("value"), ...s(date)];
  docs.push(
    ...[
      [0x82, ...s("__date__"), 0xc3, ...s("value"), ...s("2024-01-31")],
      [0x82, ...s("__datetime__"), 0xc3, ...s("value"), ...s("2025-11-14T10:30:00")],
      [0x82, ...s("__time__"), 0xc3, ...s("value"), ...s("10:30:00Z")],
      [0x82, ...s("__time__"), 0xc2, ...s("value"), ...s("10:30:00")],
      [0x82, ...s("__date__"), 0xc3, ...s("value"), ...s("2024-02-30")],
      [0x82, ...s("__zz__zz"), 0xc3, ...s("value"), ...s("2024-01-31")],
      [0x81, ...s("b"), 0xc4, 2, 1, 2],
      [0x92, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
      [0xd3, 0, 0x20, 0, 0, 0, 0, 0, 0],
      [0xd6, 0xff, 0, 0, 0, 1], // timestamp 32
      [0xd4, 0xff, 0], // a timestamp of the wrong length
      [0x81, 0x01, 0xa1, 0x61], // an int key
      [0x81, ...s("__proto__"), 0x81, ...s("x"), 1],
      // date markers the post-pass finds by path (duplicate keys, integer-like keys, non-ASCII)
      [0x82, ...s("a"), ...marker("2024-01-31"), ...s("a"), 1],
      [0x82, ...s("a"), 1, ...s("a"), ...marker("2024-01-31")],
      [0x82, ...s("a"), 0x81, ...s("x"), ...marker("1999-12-31"), ...s("a"), 0x81, ...s("y"), 2],
      [0x82, ...s("b"), ...marker("2024-02-30"), ...s("1"), ...marker("2024-13-01")],
      [0x82, ...s("b"), ...marker("2024-01-31"), ...s("1"), ...marker("2024-13-01")],
      [0x82, ...s("a"), ...marker("2024-01-31"), ...s("b"), ...marker("2024-13-01")],
      [0x81, 0xa2, 0xc3, 0xa9, ...marker("2024-01-31")],
      [0x81, 0xa1, 0xff, ...marker("2024-01-31")],
      [0x92, ...marker("2024-01-31"), 0x91, ...marker("0001-01-01")],
      [0x81, ...s("constructor"), ...marker("2024-01-31")],
      [0x82, ...s("__date__"), ...marker("2024-01-31"), ...s("value"), ...s("x")],
      [0x82, ...s("__abcdefgh__"), 0xc3, ...s("value"), ...s("2024-01-31")],
      [0x82, ...s("__datetime__"), 0xc3, ...s("value"), ...s("2025-11-14T10:30:00.123456+00:00")],
    ].map((b) => Uint8Array.from(b)),
  );
  let skipped = 0;
  let byPath = 0;
  for (const [i, d] of docs.entries()) {
    const found = scan(d);
    if (found === 0) skipped++;
    if (found === SCAN_MARKER && markerPaths(d) !== undefined) byPath++;
    const got = decoded(() => deserialize(d));
    const want = decoded(() => ref.deserialize(d));
    assert.deepEqual(got, want, `document #${i}: ${Array.from(d.subarray(0, 64)).join(",")}`);
  }
  assert.ok(skipped > 1000, `only ${skipped} documents skipped the post-pass`);
  assert.ok(byPath > 300, `only ${byPath} documents had their markers found by path`);
});

test("std differential: datetime text both ways, as the previous reader and writer", () => {
  const rnd = rng(0x7173);
  const YEAR_1 = -62135596800000, YEAR_10000 = 253402300800000;
  const times = [YEAR_1, YEAR_1 - 1, YEAR_10000, YEAR_10000 - 1, 0, -1, -1000, 999, NaN];
  for (let i = 0; i < 3000; i++) {
    const t = Math.floor(YEAR_1 * 1.1 + rnd() * (YEAR_10000 - YEAR_1) * 1.2);
    times.push(rnd() < 0.3 ? t - (t % 1000) : t);
  }
  const texts: string[] = [];
  for (const t of times) {
    const d = new Date(t);
    const got = decoded(() => dateToIso(d, "value.at"));
    assert.deepEqual(got, decoded(() => refTime.dateToIso(d, "value.at")), String(t));
    if ("value" in got) texts.push(got.value as string);
  }
  const chars = "0123456789-:T.+Z ";
  for (const text of texts.slice()) {
    const t = text.split("");
    t[Math.floor(rnd() * t.length)] = chars[Math.floor(rnd() * chars.length)];
    texts.push(t.join(""), text.replace("+00:00", ""), text.replace("+00:00", "-01:30"));
  }
  texts.push(
    "0099-12-31T23:59:59+00:00",
    "0100-01-01T00:00:00+00:00",
    "2024-02-29T00:00:00+00:00",
    "2023-02-29T00:00:00+00:00",
    "2024-13-01T00:00:00+00:00",
    "2024-00-01T00:00:00+00:00",
    "2024-01-01T24:00:00+00:00",
    "2024-01-01T00:60:00+00:00",
    "2024-01-01T00:00:60+00:00",
    "2024-01-01T00:00:00.999999+00:00",
    "2024-01-01T00:00:00.5+00:00",
    "2024-01-01 00:00:00+00:00",
    "2024-01-01T00:00:00.12345x+00:00",
  );
  for (const text of texts) {
    const got = decoded(() => isoToDate(text));
    const want = decoded(() => refTime.isoToDate(text));
    assert.deepEqual(got, want, text);
  }
});
