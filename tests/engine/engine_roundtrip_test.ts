// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// A miss answers what every later hit returns: same values, same types, same prototypes, for each
// JavaScript type each serializer accepts (issue 13, point 11).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, MemoryBackend, SerializationError } from "../../mod.ts";
import { CalendarDate, JsonSerializer, serialize, TimeOfDay } from "../../serializers/mod.ts";
import type { Serializer } from "../../serializers/mod.ts";
import { isReshaped } from "../../serializers/_reshaped.ts";
import { Buffer } from "node:buffer";
import { float64 } from "../../protocol/mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
let seq = 0;

class Point {
  constructor(public x = 1, public y = 2) {}
  get len(): number {
    return Math.hypot(this.x, this.y);
  }
}

/** [name, value factory, what every answer must equal] */
type Case = [string, () => unknown, unknown];

const STD: Case[] = [
  ["plain object", () => ({ a: 1, b: "x", c: [true, null] }), { a: 1, b: "x", c: [true, null] }],
  ["array", () => [1, "a", null], [1, "a", null]],
  ["string", () => "héllo", "héllo"],
  ["number", () => 1.5, 1.5],
  ["-0", () => -0, 0],
  ["NaN", () => NaN, NaN],
  ["Infinity", () => -Infinity, -Infinity],
  ["integer beyond 32 bits", () => 2 ** 40, 2 ** 40],
  ["small bigint", () => 5n, 5],
  ["bigint beyond 2^53", () => 2n ** 60n, 2n ** 60n],
  ["boolean", () => false, false],
  ["null", () => null, null],
  ["top-level undefined", () => undefined, undefined],
  ["undefined in an object", () => ({ a: undefined, b: 1 }), { a: null, b: 1 }],
  ["undefined in an array", () => [undefined, 1], [null, 1]],
  ["sparse array", () => [1, , 3], [1, null, 3]],
  ["Date", () => new Date(1_700_000_000_123), new Date(1_700_000_000_123)],
  ["Uint8Array", () => new Uint8Array([1, 2, 3]).subarray(1), new Uint8Array([2, 3])],
  ["Node Buffer", () => Buffer.from([1, 2]), new Uint8Array([1, 2])],
  ["Map with string keys", () => new Map([["a", 1]]), { a: 1 }],
  ["empty Map", () => new Map(), {}],
  ["Map with number keys", () => new Map([[1, "one"]]), new Map([[1, "one"]])],
  [
    "string-keyed Map inside a number-keyed Map",
    () => new Map([[1, new Map([["x", 2]])]]),
    new Map([[1, { x: 2 }]]),
  ],
  ["null-prototype object", () => Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
  ["CalendarDate", () => new CalendarDate(2024, 2, 29), new CalendarDate(2024, 2, 29)],
  [
    "TimeOfDay",
    () => new TimeOfDay(10, 30, 0, 250_000, "+02:00"),
    TimeOfDay.parse("10:30:00.25+02:00"),
  ],
  [
    "TimeOfDay with offset Z",
    () => new TimeOfDay(1, 2, 3, 0, "Z"),
    new TimeOfDay(1, 2, 3, 0, "+00:00"),
  ],
  [
    "object shaped like a date marker",
    () => ({ __date__: true, value: "2024-01-31" }),
    new CalendarDate(2024, 1, 31),
  ],
];

const JSON_CASES: Case[] = [
  ["plain object", () => ({ a: 1, b: ["x"] }), { a: 1, b: ["x"] }],
  ["-0", () => [-0], [0]],
  ["undefined in an object", () => ({ a: undefined, b: 1 }), { b: 1 }],
  ["undefined in an array", () => [undefined, 1], [null, 1]],
  ["Date", () => ({ at: new Date(0) }), { at: "1970-01-01T00:00:00.000Z" }],
  ["CalendarDate", () => new CalendarDate(2024, 2, 29), "2024-02-29"],
  ["class instance", () => new Point(3, 4), { x: 3, y: 4 }],
  ["null-prototype object", () => Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
  ["object with toJSON", () => ({ toJSON: () => ({ t: 1 }) }), { t: 1 }],
];

const INTEROP_CASES: Case[] = [
  ["plain object", () => ({ a: 1, b: ["x"] }), { a: 1, b: ["x"] }],
  ["Map with string keys", () => new Map([["a", 1]]), { a: 1 }],
  ["small bigint", () => 7n, 7],
  ["Date", () => new Date(5), new Date(5)],
  ["top-level undefined", () => undefined, null],
  ["-0", () => [-0], [0]],
  ["integral number beyond 2^53", () => 2 ** 60, 2n ** 60n],
  ["float64() wrapper", () => ({ f: float64(2) }), { f: 2 }],
  ["null-prototype object", () => Object.assign(Object.create(null), { a: 1 }), { a: 1 }],
  ["Node Buffer", () => Buffer.from([1, 2]), new Uint8Array([1, 2])],
  [
    "object shaped like a datetime sentinel",
    () => ({ __datetime__: true, value: "2024-01-31T00:00:00+00:00" }),
    new Date("2024-01-31T00:00:00Z"),
  ],
];

type Mode = "L1 only (sync)" | "L1 hit" | "L2 hit (L1 off)";
const MODES: Mode[] = ["L1 only (sync)", "L1 hit", "L2 hit (L1 off)"];

/** The miss and two hits of one function returning `make()` in `mode`. */
async function answers(
  mode: Mode,
  make: () => unknown,
  opts: Record<string, unknown> = {},
): Promise<unknown[]> {
  const name = `roundtrip.${seq++}`;
  if (mode === "L1 only (sync)") {
    const f = cache((_k: number) => make(), { name, ttl: 60, backend: null, ...opts });
    const out = [f(1), f(1), f(1)];
    for (const v of out) assert.ok(!(v instanceof Promise), "a sync function stays sync");
    return out;
  }
  const f = cache(async (_k: number) => make(), {
    name,
    ttl: 60,
    backend: new MemoryBackend(),
    l1: { enabled: mode === "L1 hit" },
    ...bare,
    ...opts,
  });
  return [await f(1), await f(1), await f(1)];
}

function sameEverywhere(cases: Case[], opts: Record<string, unknown>, modes: Mode[]): void {
  for (const [name, make, expected] of cases) {
    for (const mode of modes) {
      const label = `${opts.interop ? "interop" : opts.serializer ?? "std"}: ${name}, ${mode}`;
      test(`a miss answers what a hit returns: ${label}`, async () => {
        const [miss, hit, again] = await answers(mode, make, opts);
        assert.deepStrictEqual(miss, expected);
        assert.deepStrictEqual(hit, expected);
        assert.deepStrictEqual(again, expected);
        if (miss !== null && typeof miss === "object") {
          assert.equal(Object.getPrototypeOf(miss), Object.getPrototypeOf(hit));
        }
      });
    }
  }
}

sameEverywhere(STD, {}, MODES);
sameEverywhere(JSON_CASES, { serializer: "json" }, MODES);
// Interop keys have no L1-only sync form worth testing apart (same code path as std).
sameEverywhere(INTEROP_CASES, { interop: { namespace: "rt", operation: "op" } }, [
  "L1 hit",
  "L2 hit (L1 off)",
]);

test("regression: a Map result is the same plain object on the miss and on the hit", async () => {
  const f = cache(async (id: number) => new Map([["id", id]]), {
    name: "roundtrip.map",
    ttl: 60,
    backend: new MemoryBackend(),
    ...bare,
  });
  const miss = await f(1);
  const hit = await f(1);
  assert.ok(!(miss instanceof Map), "the miss used to return the Map itself");
  assert.deepStrictEqual(miss, hit);
  assert.deepStrictEqual(hit, { id: 1 });
});

test("a value that round-trips unchanged is answered as is (no decoding on a miss)", async () => {
  const record = { id: 1, name: "a", at: new Date(0), tags: ["x"], n: 2 ** 40, big: 2n ** 60n };
  for (const backend of [null, new MemoryBackend()]) {
    const f = cache(async () => record, {
      name: `roundtrip.same.${seq++}`,
      ttl: 60,
      backend,
      ...bare,
    });
    assert.equal(await f(), record);
    const hit = await f();
    assert.notEqual(hit, record);
    assert.deepStrictEqual(hit, record);
  }
  const rec = { id: 1, tags: ["x"], at: new Date(0) };
  const interop = cache(async () => rec, {
    name: "roundtrip.same.interop",
    ttl: 60,
    backend: new MemoryBackend(),
    interop: { namespace: "rt", operation: "same" },
    ...bare,
  });
  assert.equal(await interop(), rec);
  assert.deepStrictEqual(await interop(), rec);
  assert.equal(isReshaped(serialize(record)), false);
  assert.equal(isReshaped(serialize(new Map([["a", 1]]))), true);
  assert.equal(isReshaped(serialize(new Map([[1, 1]]))), false);
  const json = new JsonSerializer();
  assert.equal(isReshaped(json.serialize({ a: [1, "x", null] })), false);
  assert.equal(isReshaped(json.serialize({ a: new Date(0) })), true);
});

test("a custom serializer's payload is decoded on the miss (nothing vouches for it)", async () => {
  const upper: Serializer = {
    name: "upper",
    code: "o",
    format: "json",
    serialize: (v) => new TextEncoder().encode(JSON.stringify(String(v).toUpperCase())),
    deserialize: (b) => JSON.parse(new TextDecoder().decode(b)),
  };
  const f = cache(async () => "abc", {
    name: "roundtrip.custom",
    ttl: 60,
    backend: new MemoryBackend(),
    serializer: upper,
    ...bare,
  });
  assert.equal(await f(), "ABC");
  assert.equal(await f(), "ABC");
});

test("l1.storeReferences keeps the very object, on the miss and on every hit", () => {
  const m = new Map([["a", 1]]);
  const f = cache(() => m, {
    name: "roundtrip.refs",
    ttl: 60,
    backend: null,
    l1: { storeReferences: true },
  });
  assert.equal(f(), m);
  assert.equal(f(), m);
});

test("json refuses built-ins it would silently write as {} (and Node Buffers, as {type, data})", async () => {
  for (const v of [/a/g, new Error("boom"), Promise.resolve(1), new WeakMap(), Buffer.from([1])]) {
    const f = cache(async () => ({ v }), {
      name: `roundtrip.json.${seq++}`,
      ttl: 60,
      backend: new MemoryBackend(),
      serializer: "json",
      ...bare,
    });
    await assert.rejects(f(), (e: unknown) => {
      assert.ok(e instanceof SerializationError);
      assert.match((e as Error).message, /would become \{\}|binary data has no JSON form/);
      return true;
    });
  }
});

test("std refuses, on the miss, a date marker no hit could read back", async () => {
  const f = cache(async () => ({ __date__: true, value: "not a date" }), {
    name: "roundtrip.badmarker",
    ttl: 60,
    backend: new MemoryBackend(),
    ...bare,
  });
  await assert.rejects(f(), SerializationError);
  // safeMode: answered uncached, as the function returned it.
  const g = cache(async () => ({ __date__: true, value: "not a date" }), {
    name: "roundtrip.badmarker.safe",
    ttl: 60,
    backend: new MemoryBackend(),
    safeMode: true,
    ...bare,
  });
  assert.deepStrictEqual(await g(), { __date__: true, value: "not a date" });
});
