/**
 * Serializers: the std MessagePack mapping (checked against Debian's python3-msgpack in both
 * directions, date/time markers included), rejections, and the JSON serializer.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPython, runPythonJson } from "../_python.ts";
import {
  CalendarDate,
  deserialize,
  JsonSerializer,
  serialize,
  StdSerializer,
  TimeOfDay,
} from "../../serializers/mod.ts";
import { SerializationError } from "../../errors.ts";
import { decodeInteropValue } from "../../protocol/mod.ts";

const b64 = (b: Uint8Array) => btoa(Array.from(b, (x) => String.fromCharCode(x)).join(""));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const isSerErr = (e: unknown) => e instanceof SerializationError;

// --- Interop with Python msgpack ---------------------------------------------------------------

test("std x python: Python decodes our values with the expected Python types", () => {
  const value = {
    int: 42,
    neg: -7,
    big: 2 ** 40, // safe integer beyond 32 bits must stay an int
    bigint: 2n ** 63n,
    minint: -(2n ** 63n),
    float: 1.5,
    nan: NaN,
    str: "héllo ✓ 𝄞",
    bytes: new Uint8Array([0, 255, 1]),
    none: null,
    undef: undefined,
    list: [1, "a", [true, false]],
    nested: { a: { b: [1, 2, 3] } },
    intkeys: new Map<unknown, unknown>([[1, "one"], [2, "two"]]),
    dt: new Date(Date.UTC(2025, 10, 14, 10, 30, 0, 0)),
    dtms: new Date(Date.UTC(2025, 10, 14, 10, 30, 0, 123)),
    date: new CalendarDate(2024, 2, 29),
    time: new TimeOfDay(23, 59, 58, 123456),
  };
  const res = runPythonJson<Record<string, unknown>>(
    `import sys, json, msgpack, datetime
v = msgpack.unpackb(sys.stdin.buffer.read(), raw=False, strict_map_key=False)
out = {k: type(x).__name__ for k, x in v.items()}
out["big_value"] = v["big"]
out["bigint_value"] = str(v["bigint"]); out["minint_value"] = str(v["minint"])
out["str_value"] = v["str"]; out["bytes_value"] = list(v["bytes"])
out["intkeys_value"] = sorted(v["intkeys"].items())
for k in ("dt", "dtms", "date", "time"):
    m = v[k]
    assert len(m) == 2 and m["__%s__" % {"dt": "datetime", "dtms": "datetime"}.get(k, k)] is True, m
    out[k + "_value"] = m["value"]
out["dt_parsed"] = datetime.datetime.fromisoformat(v["dt"]["value"]).isoformat()
out["dt_aware"] = datetime.datetime.fromisoformat(v["dt"]["value"]).utcoffset() == datetime.timedelta(0)
out["date_parsed"] = datetime.date.fromisoformat(v["date"]["value"]).isoformat()
out["time_parsed"] = datetime.time.fromisoformat(v["time"]["value"]).isoformat()
print(json.dumps(out))`,
    serialize(value),
  );
  assert.equal(res.int, "int");
  assert.equal(res.neg, "int");
  assert.equal(res.big, "int");
  assert.equal(res.big_value, 2 ** 40);
  assert.equal(res.bigint_value, String(2n ** 63n));
  assert.equal(res.minint_value, String(-(2n ** 63n)));
  assert.equal(res.float, "float");
  assert.equal(res.nan, "float");
  assert.equal(res.str, "str");
  assert.equal(res.str_value, "héllo ✓ 𝄞");
  assert.equal(res.bytes, "bytes");
  assert.deepEqual(res.bytes_value, [0, 255, 1]);
  assert.equal(res.none, "NoneType");
  assert.equal(res.undef, "NoneType");
  assert.equal(res.list, "list");
  assert.equal(res.nested, "dict");
  assert.deepEqual(res.intkeys_value, [[1, "one"], [2, "two"]]);
  // Python's own isoformat() of the same aware UTC datetime
  assert.equal(res.dt_value, "2025-11-14T10:30:00+00:00");
  assert.equal(res.dt_parsed, "2025-11-14T10:30:00+00:00");
  assert.equal(res.dt_aware, true);
  assert.equal(res.dtms_value, "2025-11-14T10:30:00.123000+00:00");
  assert.equal(res.date_value, "2024-02-29");
  assert.equal(res.date_parsed, "2024-02-29");
  assert.equal(res.time_value, "23:59:58.123456");
  assert.equal(res.time_parsed, "23:59:58.123456");
}, pythonTestOptions);

test(
  "std x python: we decode what Python's msgpack writes (markers as cachekit writes them)",
  () => {
    const bytes = runPython(
      `import sys, msgpack, datetime
def enc(o):
    if isinstance(o, datetime.datetime): return {"__datetime__": True, "value": o.isoformat()}
    if isinstance(o, datetime.date): return {"__date__": True, "value": o.isoformat()}
    if isinstance(o, datetime.time): return {"__time__": True, "value": o.isoformat()}
    raise TypeError(o)
v = {
  "aware": datetime.datetime(2025, 11, 14, 10, 30, tzinfo=datetime.timezone.utc),
  "offset": datetime.datetime(2025, 11, 14, 12, 30, 0, 250000,
                              tzinfo=datetime.timezone(datetime.timedelta(hours=2))),
  "naive": datetime.datetime(2025, 11, 14, 10, 30, 0, 999999),
  "early": datetime.datetime(5, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc),
  "date": datetime.date(1999, 12, 31),
  "time": datetime.time(7, 8, 9),
  "time_us_tz": datetime.time(7, 8, 9, 10, tzinfo=datetime.timezone(datetime.timedelta(hours=-5))),
  "small": 5, "safe": 2**53 - 1, "unsafe": 2**53 + 1, "u64": 2**64 - 1, "i64": -2**63,
  "float": 3.0, "bytes": b"\\x00\\x01", "tuple": (1, 2), "none": None,
  "intkeys": {1: "a", 2: "b"}, "tuplekey": {(1, 2): "t"}, "mixed": {"a": 1, 2: "b"},
  "__proto__": {"polluted": True},
}
sys.stdout.buffer.write(msgpack.packb(v, default=enc, use_bin_type=True))`,
    );
    const v = deserialize(bytes) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(v, "__proto__")?.value, { polluted: true });
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((v.aware as Date).toISOString(), "2025-11-14T10:30:00.000Z");
    assert.equal((v.offset as Date).toISOString(), "2025-11-14T10:30:00.250Z");
    assert.equal((v.naive as Date).toISOString(), "2025-11-14T10:30:00.999Z"); // naive = UTC, µs truncated
    assert.equal((v.early as Date).toISOString(), "0005-01-02T03:04:05.000Z");
    assert.ok(v.date instanceof CalendarDate && v.date.equals(new CalendarDate(1999, 12, 31)));
    assert.ok(v.time instanceof TimeOfDay && v.time.toString() === "07:08:09");
    assert.equal(String(v.time_us_tz), "07:08:09.000010-05:00");
    assert.equal(v.small, 5);
    assert.equal(v.safe, 2 ** 53 - 1);
    assert.equal(v.unsafe, 2n ** 53n + 1n);
    assert.equal(v.u64, 2n ** 64n - 1n);
    assert.equal(v.i64, -(2n ** 63n));
    assert.equal(v.float, 3);
    assert.deepEqual(v.bytes, new Uint8Array([0, 1]));
    assert.equal((v.bytes as Uint8Array).constructor, Uint8Array);
    assert.deepEqual(v.tuple, [1, 2]);
    assert.equal(v.none, null);
    assert.deepEqual(v.intkeys, new Map([[1, "a"], [2, "b"]]));
    assert.deepEqual(v.tuplekey, new Map([[[1, 2], "t"]]));
    assert.deepEqual(v.mixed, new Map<unknown, unknown>([["a", 1], [2, "b"]]));
  },
  pythonTestOptions,
);

test("std x python: Python round-trips our bytes unchanged (re-encode and compare values)", () => {
  const values: unknown[] = [
    0,
    -1,
    127,
    128,
    -33,
    65535,
    2 ** 32,
    -(2 ** 31) - 1,
    Number.MAX_SAFE_INTEGER,
    0.1,
    -0.5,
    "",
    "a".repeat(40),
    "b".repeat(70000),
    new Uint8Array(300),
    [],
    {},
    Array.from({ length: 20 }, (_, i) => i),
    Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, i])),
    new Map<unknown, unknown>([[new Uint8Array([1]), 1], [true, 2], [null, 3]]),
    { d: new Date(Date.UTC(2000, 0, 1)), t: new TimeOfDay(0), c: new CalendarDate(1, 1, 1) },
  ];
  const res = runPythonJson<string[]>(
    `import sys, json, base64, msgpack
out = []
for s in json.load(sys.stdin):
    v = msgpack.unpackb(base64.b64decode(s), raw=False, strict_map_key=False)
    out.append(base64.b64encode(msgpack.packb(v, use_bin_type=True)).decode())
print(json.dumps(out))`,
    JSON.stringify(values.map((v) => b64(serialize(v)))),
  );
  res.forEach((s, i) => {
    assert.deepEqual(deserialize(unb64(s)), deserialize(serialize(values[i])), `value ${i}`);
  });
}, pythonTestOptions);

// --- Std round trips and rules -----------------------------------------------------------------

test("std: round trips JS values (objects, Map, bytes, dates, bigint, undefined → null)", () => {
  const v = {
    a: [1, 2.5, "x", true, null],
    m: new Map<unknown, unknown>([[1, "one"], ["two", 2]]),
    strMap: new Map([["k", "v"]]),
    b: new Uint8Array([9, 8]),
    d: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, 6)),
    c: new CalendarDate(2025, 1, 2),
    t: new TimeOfDay(3, 4, 5, 600000, "+01:00"),
    n: 12345678901234567890n,
    safeBig: 2 ** 52,
    u: undefined,
  };
  const back = deserialize(serialize(v)) as Record<string, unknown>;
  assert.deepEqual(back.a, v.a);
  assert.deepEqual(back.m, v.m);
  assert.deepEqual(back.strMap, { k: "v" }); // all-string keys come back as an object
  assert.deepEqual(back.b, v.b);
  assert.equal((back.d as Date).getTime(), v.d.getTime());
  assert.ok((back.c as CalendarDate).equals(v.c));
  assert.ok((back.t as TimeOfDay).equals(v.t));
  assert.equal(back.n, v.n);
  assert.equal(back.safeBig, 2 ** 52);
  assert.equal(typeof back.safeBig, "number");
  assert.equal(back.u, null);
  assert.deepEqual(new StdSerializer().deserialize(new StdSerializer().serialize(v)), back);
});

test("std: serialize does not mutate the input and returned bytes are independent", () => {
  const input = { d: new Date(0), list: [new Date(1), undefined], big: 2 ** 40 };
  const snapshot = { d: input.d, list: [...input.list], big: input.big };
  const a = serialize(input);
  const b = serialize({ other: "value" });
  assert.deepEqual(input, snapshot);
  assert.ok(input.d instanceof Date);
  const copy = a.slice();
  b.fill(0);
  assert.deepEqual(a, copy);
  // decoded bytes do not alias the input buffer
  const enc = serialize(new Uint8Array([1, 2, 3]));
  const dec = deserialize(enc) as Uint8Array;
  dec[0] = 99;
  assert.deepEqual(deserialize(enc), new Uint8Array([1, 2, 3]));
});

test("std: -0 is int 0, large safe integers are msgpack ints (not float64)", () => {
  assert.deepEqual(serialize(-0), new Uint8Array([0x00]));
  // 2^40 as uint64/int64 (0xcf/0xd3) — any int form, never float64 0xcb
  const bytes = serialize(2 ** 40);
  assert.ok(bytes[0] === 0xcf || bytes[0] === 0xd3, `got 0x${bytes[0].toString(16)}`);
  assert.deepEqual(serialize(1.5).subarray(0, 1), new Uint8Array([0xcb])); // float64, never float32
});

test("std: unsupported values throw SerializationError naming the path", () => {
  const cases: [unknown, RegExp][] = [
    [{ f: () => 1 }, /value\.f: a function/],
    [{ s: [Symbol("x")] }, /value\.s\[0\]: a symbol/],
    [{ set: new Set([1]) }, /value\.set: a Set instance/],
    [{ "odd key": new Float32Array(1) }, /value\["odd key"\]: a Float32Array/],
    [{ n: 2n ** 64n }, /64-bit/],
    [{ n: -(2n ** 63n) - 1n }, /64-bit/],
    [{ d: new Date(NaN) }, /invalid Date/],
    [{ d: new Date(Date.UTC(10000, 0, 1)) }, /outside Python's datetime range/],
    [{ s: "bad \ud800" }, /lone UTF-16 surrogate/],
    [new (class Point {})(), /a Point instance/],
    [{ r: /x/ }, /a RegExp instance/],
    [new Map([[1, () => 0]]), /a function/],
  ];
  for (const [v, re] of cases) {
    assert.throws(
      () => serialize(v),
      (e: unknown) => isSerErr(e) && re.test((e as Error).message),
      String(re),
    );
  }
  const cyc: Record<string, unknown> = { a: [] };
  (cyc.a as unknown[]).push(cyc);
  assert.throws(() => serialize(cyc), /circular reference/);
  // the same object twice (not a cycle) is fine
  const shared = { x: 1 };
  assert.deepEqual(deserialize(serialize([shared, shared])), [{ x: 1 }, { x: 1 }]);
});

test("std and interop: 64-bit ints are numbers exactly when safe (±2^53 are bigints)", () => {
  const u64 = (v: bigint) => {
    const b = new Uint8Array(9);
    b[0] = 0xcf;
    new DataView(b.buffer).setBigUint64(1, v);
    return b;
  };
  const i64 = (v: bigint) => {
    const b = new Uint8Array(9);
    b[0] = 0xd3;
    new DataView(b.buffer).setBigInt64(1, v);
    return b;
  };
  const cases: [Uint8Array, unknown][] = [
    [u64(5n), 5],
    [u64(2n ** 53n - 1n), 2 ** 53 - 1],
    [u64(2n ** 53n), 2n ** 53n],
    [u64(2n ** 64n - 1n), 2n ** 64n - 1n],
    [i64(-5n), -5],
    [i64(-(2n ** 53n) + 1n), -(2 ** 53) + 1],
    [i64(-(2n ** 53n)), -(2n ** 53n)],
    [i64(2n ** 53n), 2n ** 53n],
  ];
  for (const [bytes, want] of cases) {
    for (
      const doc of [
        bytes,
        Uint8Array.from([0x91, ...bytes]),
        Uint8Array.from([0x81, 0xa1, 0x6b, ...bytes]),
      ]
    ) {
      const got = [deserialize(doc), decodeInteropValue(doc)];
      for (const g of got) {
        const v = doc[0] === 0x91
          ? (g as unknown[])[0]
          : doc[0] === 0x81
          ? (g as { k: unknown }).k
          : g;
        assert.equal(typeof v, typeof want, `${Array.from(doc).join(",")} → ${String(v)}`);
        assert.equal(v, want);
      }
    }
  }
});

test("std: garbage bytes throw SerializationError, never another error", () => {
  const fixed = [
    new Uint8Array(0),
    new Uint8Array([0x92, 0x01]), // truncated array
    new Uint8Array([0x01, 0x02]), // trailing data
    new Uint8Array([0xc1]), // never-used byte
    new Uint8Array([0xd4, 0x05, 0x01]), // unknown extension
    new Uint8Array([0xc7, 0x01, 0x73, 0x90]), // a msgpackr-specific extension
    // a date marker with a bad value
    Uint8Array.from([
      0x82,
      0xac,
      ...new TextEncoder().encode("__datetime__"),
      0xc3,
      0xa5,
      ...new TextEncoder().encode("value"),
      0xa3,
      0x61,
      0x62,
      0x63,
    ]),
    new Uint8Array(200_000).fill(0x91), // deeply nested arrays
  ];
  for (const g of fixed) {
    assert.throws(() => deserialize(g), isSerErr, Array.from(g.subarray(0, 8)).join(","));
  }
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const valid = serialize({
    a: [1, "two", new Uint8Array(5)],
    d: new Date(0),
    m: new Map([[1, 2]]),
  });
  for (let i = 0; i < 3000; i++) {
    const g = i % 2
      ? valid.slice()
      : Uint8Array.from({ length: 1 + Math.floor(rnd() * 40) }, () => rnd() * 256);
    if (i % 2) g[Math.floor(rnd() * g.length)] = Math.floor(rnd() * 256);
    try {
      deserialize(g);
    } catch (e) {
      assert.ok(isSerErr(e), `${e}`);
    }
  }
  // deno-lint-ignore no-explicit-any
  assert.throws(() => deserialize("x" as any), isSerErr);
});

test("std: CalendarDate and TimeOfDay validate, are immutable, and print as Python does", () => {
  assert.throws(() => new CalendarDate(2023, 2, 29), RangeError);
  assert.throws(() => new CalendarDate(0, 1, 1), RangeError);
  assert.throws(() => CalendarDate.parse("2024-1-01"), RangeError);
  assert.throws(() => new TimeOfDay(24), RangeError);
  assert.throws(() => new TimeOfDay(1, 2, 3, 1_000_000), RangeError);
  assert.throws(() => TimeOfDay.parse("10:30:00+2:00"), RangeError);
  assert.equal(new CalendarDate(5, 3, 7).toString(), "0005-03-07");
  assert.equal(new TimeOfDay(1, 2, 3).toString(), "01:02:03");
  assert.equal(new TimeOfDay(1, 2, 3, 40).toString(), "01:02:03.000040");
  assert.equal(TimeOfDay.parse("01:02:03.4Z").toString(), "01:02:03.400000+00:00");
  const d = new CalendarDate(2024, 1, 1);
  assert.throws(() => {
    (d as { year: number }).year = 2000;
  }, TypeError);
  assert.equal(JSON.stringify({ d, t: new TimeOfDay(5) }), '{"d":"2024-01-01","t":"05:00:00"}');
});

test("std: serializer identity", () => {
  const s = new StdSerializer();
  assert.deepEqual([s.name, s.code, s.format], ["std", "s", "msgpack"]);
  const j = new JsonSerializer();
  assert.deepEqual([j.name, j.code, j.format], ["json", "o", "json"]);
});

// --- JSON ---------------------------------------------------------------------------------------

test("json: UTF-8 JSON round trip; dates become ISO strings", () => {
  const j = new JsonSerializer();
  const v = { a: [1, "é", null, true], n: { x: 1.25 }, d: new Date(Date.UTC(2025, 10, 14)) };
  const bytes = j.serialize(v);
  assert.equal(
    new TextDecoder().decode(bytes),
    '{"a":[1,"é",null,true],"n":{"x":1.25},"d":"2025-11-14T00:00:00.000Z"}',
  );
  assert.deepEqual(j.deserialize(bytes), { ...v, d: "2025-11-14T00:00:00.000Z" });
  // Python's json reads it
  const py = runPythonJson(
    `import sys, json; print(json.dumps(json.loads(sys.stdin.buffer.read().decode("utf-8"))))`,
    bytes,
  );
  assert.deepEqual(py, { ...v, d: "2025-11-14T00:00:00.000Z" });
}, pythonTestOptions);

test("json: values JSON would silently change throw SerializationError", () => {
  const j = new JsonSerializer();
  for (
    const v of [
      { m: new Map() },
      { s: new Set() },
      { b: new Uint8Array(1) },
      { n: 1n },
      { x: NaN },
      [Infinity],
      () => 1,
      undefined,
      Symbol("s"),
    ]
  ) {
    assert.throws(() => j.serialize(v), isSerErr, String(v));
  }
  const c: Record<string, unknown> = {};
  c.c = c;
  assert.throws(() => j.serialize(c), isSerErr);
  for (const g of [new Uint8Array([0xff]), new TextEncoder().encode("{bad"), new Uint8Array(0)]) {
    assert.throws(() => j.deserialize(g), isSerErr);
  }
  const p = j.deserialize(new TextEncoder().encode('{"__proto__":{"polluted":1}}')) as object;
  assert.equal(Object.getPrototypeOf(p), Object.prototype);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
