/**
 * The L1 cloner (`engine/_l1_copy.ts`): a differential property test against the standard
 * serializer (for random values of its value space, the copy of a decoded value equals decoding it
 * again: same structure, same prototypes, and shares no mutable object with its source), the
 * edge cases one by one (`"__proto__"` keys, null-prototype objects, a polluted
 * `Object.prototype`, `Map` with non-string keys, `Date`, `Uint8Array`, bigint, the time types),
 * what `vet` refuses (class instances, holes, symbol keys, too deep), and `frozenCopy`.
 */
import assert from "node:assert/strict";
import { deepEqual as looseDeepEqual } from "node:assert";
import { test } from "../_harness.ts";
import {
  copyValue,
  frozenCopy,
  FrozenDate,
  FrozenMap,
  MAX_DEPTH,
  REFUSED,
  vet,
  vetCopy,
  type Vetted,
} from "../../engine/_l1_copy.ts";
import { CalendarDate, deserialize, serialize, TimeOfDay } from "../../serializers/std.ts";
import { decodeInteropValue, encodeInteropValue } from "../../protocol/keys.ts";
import { prng } from "../_prng.ts";

const KEYS = ["a", "id", "__proto__", "constructor", "toString", "", "0", "é", "value", "x y"];
const NUMBERS = [0, -0, 1, -1, 2 ** 31, 2 ** 53 - 1, 1.5, -1e300, NaN, Infinity, -Infinity];

/** A random value of the standard serializer's space (what it writes and reads). */
function randomValue(seed: number): unknown {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const value = (depth: number): unknown => {
    switch (Math.floor(r() * (depth >= 4 ? 9 : 14))) {
      case 0:
        return pick(NUMBERS);
      case 1:
        return pick(KEYS) + "ü".repeat(Math.floor(r() * 3));
      case 2:
        return pick([true, false, null]);
      case 3:
        return pick([2n ** 63n - 1n, -(2n ** 63n), 2n ** 60n]);
      case 4:
        return new Date(Math.floor(r() * 4e12));
      case 5:
        return new Uint8Array(Array.from({ length: Math.floor(r() * 5) }, () => r() * 256));
      case 6:
        return new CalendarDate(1 + Math.floor(r() * 9999), 1 + Math.floor(r() * 12), 1);
      case 7:
        return new TimeOfDay(Math.floor(r() * 24), Math.floor(r() * 60), 0);
      case 8:
        return Math.floor(r() * 1e6);
      case 9:
      case 10: {
        const o: Record<string, unknown> = r() < 0.2 ? Object.create(null) : {};
        for (let n = Math.floor(r() * 5); n > 0; n--) {
          Object.defineProperty(o, pick(KEYS), {
            value: value(depth + 1),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return o;
      }
      case 11:
        return Array.from({ length: Math.floor(r() * 5) }, () => value(depth + 1));
      default: {
        // A Map with non-string keys stays a Map through the serializer. Array keys are kept
        // structurally distinct (Bun's deepStrictEqual pairs object keys by structure).
        const m = new Map<unknown, unknown>();
        for (let n = 1 + Math.floor(r() * 3); n > 0; n--) {
          m.set(r() < 0.5 ? Math.floor(r() * 100) : [n, Math.floor(r() * 9)], value(depth + 1));
        }
        return m;
      }
    }
  };
  return value(0);
}

/** Every object reachable from `v` (keys of maps too), frozen time values excluded. */
function mutableObjects(v: unknown, out = new Set<object>()): Set<object> {
  if (typeof v !== "object" || v === null) return out;
  if (v instanceof CalendarDate || v instanceof TimeOfDay) return out;
  out.add(v);
  if (v instanceof Map) {
    for (const [k, x] of v) {
      mutableObjects(k, out);
      mutableObjects(x, out);
    }
  } else if (!(v instanceof Date) && !(v instanceof Uint8Array)) {
    for (const k of Object.keys(v)) mutableObjects((v as Record<string, unknown>)[k], out);
  }
  return out;
}

function assertIndependent(a: unknown, b: unknown): void {
  const left = mutableObjects(a);
  for (const o of mutableObjects(b)) assert.ok(!left.has(o), "a mutable object is shared");
}

const vetted: Vetted = { bytes: 0, unfreezable: false };

test("L1 copy: on 2,000 random std values, copy(decoded) equals decode again, shares nothing", () => {
  for (let seed = 1; seed <= 2000; seed++) {
    const bytes = serialize(randomValue(seed));
    const decoded = deserialize(bytes);
    assert.ok(vet(decoded, vetted), `seed ${seed}: a decoded value is always copyable`);
    assert.ok(vetted.bytes >= 0);
    const copy = copyValue(decoded);
    // deepStrictEqual compares prototypes too (null-prototype objects, Map, Date, Uint8Array).
    assert.deepStrictEqual(copy, deserialize(bytes), `seed ${seed}`);
    assert.deepStrictEqual(copy, decoded, `seed ${seed}`);
    assertIndependent(copy, decoded);
    // The one-walk check-and-copy gives the same copy and the same estimate.
    const counted = vetted.bytes;
    const both = vetCopy(decoded, vetted);
    assert.deepStrictEqual(both, decoded, `seed ${seed}`);
    assertIndependent(both, decoded);
    assert.equal(vetted.bytes, counted);
  }
});

test("L1 copy: interop values (plain MessagePack) are copied too", () => {
  let n = 0;
  for (let seed = 1; seed <= 600; seed++) {
    const v = randomValue(seed);
    let decoded: unknown;
    try {
      decoded = decodeInteropValue(encodeInteropValue(v));
    } catch {
      continue; // dates, time types and "__proto__" keys are not interop values
    }
    assert.ok(vet(decoded, vetted), `seed ${seed}`);
    const copy = copyValue(decoded);
    assert.deepStrictEqual(copy, decoded);
    assertIndependent(copy, decoded);
    n++;
  }
  assert.ok(n > 100, `${n} values checked`);
});

test("L1 copy: an own __proto__ key stays an own property, never the prototype", () => {
  const v = JSON.parse('{"__proto__": {"polluted": true}, "a": {"__proto__": [1]}}');
  assert.ok(vet(v, vetted));
  const c = copyValue(v);
  const c2 = vetCopy(v, vetted) as typeof c;
  assert.equal(Object.getPrototypeOf(c2), Object.prototype);
  assert.ok(Object.hasOwn(c2, "__proto__") && Object.hasOwn(c2.a, "__proto__"));
  assertIndependent(c2, v);
  assert.equal(Object.getPrototypeOf(c), Object.prototype);
  assert.equal((c as { polluted?: boolean }).polluted, undefined);
  assert.ok(Object.hasOwn(c, "__proto__"));
  assert.deepStrictEqual(Object.getOwnPropertyDescriptor(c, "__proto__")?.value, {
    polluted: true,
  });
  assert.ok(Object.hasOwn(c.a, "__proto__"));
  assert.equal(Object.getPrototypeOf(c.a), Object.prototype);
  assertIndependent(c, v);
  // In a null-prototype object as well.
  const n = Object.create(null);
  Object.defineProperty(n, "__proto__", { value: { x: 1 }, enumerable: true, writable: true });
  const cn = copyValue(n);
  assert.equal(Object.getPrototypeOf(cn), null);
  assert.deepStrictEqual(Object.getOwnPropertyDescriptor(cn, "__proto__")?.value, { x: 1 });
});

test("L1 copy: a polluted Object.prototype leaks nothing into a copy", () => {
  const proto = Object.prototype as Record<string, unknown>;
  proto.pollutedKey = { evil: true };
  try {
    const v = { a: 1, nested: { b: 2 } };
    assert.ok(vet(v, vetted));
    const c = copyValue(v);
    assert.deepEqual(Object.keys(c), ["a", "nested"]);
    assert.ok(!Object.hasOwn(c, "pollutedKey"));
    assert.ok(!Object.hasOwn(c.nested, "pollutedKey"));
  } finally {
    delete proto.pollutedKey;
  }
});

test("L1 copy: Map (keys too), Date, Uint8Array, bigint, time types, undefined", () => {
  const key = [1, 2];
  const v = {
    m: new Map<unknown, unknown>([[key, { deep: [1] }], [3, "three"], [10n ** 20n, null]]),
    d: new Date(1_700_000_000_000),
    b: new Uint8Array([1, 2, 3]),
    big: -(2n ** 63n),
    day: new CalendarDate(2024, 2, 29),
    time: new TimeOfDay(10, 30, 0),
    u: undefined,
  };
  assert.ok(vet(v, vetted));
  assert.equal(vetted.unfreezable, true);
  const c = copyValue(v);
  assert.deepStrictEqual(c, v);
  const [ck] = c.m.keys();
  assert.notEqual(ck, key, "a Map key is copied");
  assert.notEqual(c.d, v.d);
  assert.notEqual(c.b, v.b);
  assert.equal(c.day, v.day, "frozen time values are shared");
  assert.equal(c.time, v.time);
  assert.ok(Object.hasOwn(c, "u"));
  assertIndependent(c, v);
  // Top-level values that are not objects come back as they are.
  for (const p of [undefined, null, 0, -0, "s", 5n, true]) assert.ok(Object.is(copyValue(p), p));
});

test("L1 copy: vet refuses what it cannot copy faithfully", () => {
  class User {
    id = 1;
  }
  const sparse = [1, , 3];
  const sym = { a: 1, [Symbol("s")]: 2 };
  let deep: unknown = 0;
  for (let i = 0; i <= MAX_DEPTH; i++) deep = [deep];
  const refused = [
    new User(),
    { nested: new User() },
    sparse,
    sym,
    deep,
    new Set([1]),
    () => 1,
    Buffer.from([1]),
    new Uint16Array(2),
    new Map([[new User(), 1]]),
  ];
  for (const v of refused) {
    assert.equal(vet(v, vetted), false, String(v));
    assert.equal(vetCopy(v, vetted), REFUSED, String(v));
  }
  let shallow: unknown = 0;
  for (let i = 0; i < 600; i++) shallow = [shallow];
  assert.equal(vet(shallow, vetted), true, "the std serializer's depth (512) is accepted");
});

test("L1 copy: vet's size estimate grows with the value", () => {
  vet({ s: "x".repeat(10) }, vetted);
  const small = vetted.bytes;
  vet({ s: "x".repeat(10_000) }, vetted);
  assert.ok(vetted.bytes >= small + 9_000);
  vet(new Uint8Array(5000), vetted);
  assert.ok(vetted.bytes >= 5000);
  vet({ a: 1 }, vetted);
  assert.equal(vetted.unfreezable, false);
});

test("L1 copy: frozenCopy freezes every level; a mutation throws in strict code", () => {
  const src = {
    a: { b: [1, { c: 2 }] },
    n: null,
    at: new Date(5),
    m: new Map<unknown, unknown>([[[1], { x: 1 }]]),
    day: new CalendarDate(2024, 1, 1),
  };
  const v = frozenCopy(src);
  looseDeepEqual(v, src); // loose: a frozen Date or Map has its own prototype
  assertIndependent(v, src);
  assert.ok(Object.isFrozen(v) && Object.isFrozen(v.a) && Object.isFrozen(v.a.b));
  assert.ok(Object.isFrozen(v.a.b[1]));
  assert.throws(() => {
    (v.a.b as unknown[]).push(3);
  }, TypeError);
  assert.throws(() => {
    (v.a as Record<string, unknown>).x = 1;
  }, TypeError);
  // Date and Map: read-only subclasses (Object.freeze cannot stop setTime or Map.set).
  assert.ok(v.at instanceof Date && v.at instanceof FrozenDate);
  assert.equal(v.at.getTime(), 5);
  assert.equal(v.at.toISOString(), src.at.toISOString());
  assert.equal(JSON.stringify(v.at), JSON.stringify(src.at));
  for (const set of ["setTime", "setFullYear", "setUTCHours", "setMonth"] as const) {
    assert.throws(() => (v.at[set] as (n: number) => number)(0), TypeError, set);
  }
  assert.equal(v.at.getTime(), 5);
  assert.ok(v.m instanceof Map && v.m instanceof FrozenMap);
  assert.throws(() => v.m.set(2, 2), TypeError);
  assert.throws(() => v.m.delete([1]), TypeError);
  assert.throws(() => v.m.clear(), TypeError);
  const [[key, val]] = v.m;
  assert.ok(Object.isFrozen(key) && Object.isFrozen(val));
  assert.equal(v.day, src.day);
});
