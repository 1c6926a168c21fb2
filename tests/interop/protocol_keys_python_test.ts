/**
 * Cross-check of cache keys against Python: Debian's python3-msgpack (`msgpack.packb(...,
 * use_bin_type=True)`) and `hashlib.blake2b(digest_size=32)` hash a broad set of inputs after the
 * Python SDK's normalization, and must give the same hashes and keys as ours. Inputs travel as JSON
 * with type tags so Python rebuilds the exact values (ints, float bits, bytes, datetimes, sets).
 */
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import {
  argsHash,
  cacheKey,
  decodeInteropValue,
  encodeInteropValue,
  Float64,
  float64,
  interopArgsHash,
} from "../../protocol/keys.ts";

type Tagged =
  | null
  | boolean
  | number
  | string
  | Tagged[]
  | { $int: string }
  | { $float: string }
  | { $bytes: string }
  | { $dt_ms: number }
  | { $map: [string, Tagged][] }
  | { $set: Tagged[] };

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array =>
  Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));

function floatBits(x: number): string {
  const d = new DataView(new ArrayBuffer(8));
  d.setFloat64(0, x);
  return hex(new Uint8Array(d.buffer));
}

/**
 * How Python sees a JavaScript argument, per the protocol's JS normalization rules (the mapping
 * under test is the encoding, sorting and hashing, which Python does independently).
 * `interop`: integral numbers are ints (the interop number rule), else floats.
 */
function tag(v: unknown, interop = false): Tagged {
  if (v === null || typeof v === "boolean" || typeof v === "string") return v;
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return v === 0 ? 0 : v;
    if (interop && Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64) {
      return { $int: BigInt(v).toString() };
    }
    return { $float: floatBits(v) };
  }
  if (typeof v === "bigint") return { $int: v.toString() };
  if (v instanceof Float64) return { $float: floatBits(v.value) };
  if (v instanceof Uint8Array) return { $bytes: hex(v) };
  if (v instanceof Date) return { $dt_ms: v.getTime() };
  if (Array.isArray(v)) return v.map((x) => tag(x, interop));
  if (v instanceof Set) return { $set: [...v].map((x) => tag(x, interop)) };
  if (v instanceof Map) return { $map: [...v].map(([k, x]) => [k as string, tag(x, interop)]) };
  if (typeof v === "object") {
    return { $map: Object.entries(v as object).map(([k, x]) => [k, tag(x, interop)]) };
  }
  throw new Error(`cannot tag ${String(v)}`);
}

const PYTHON = String.raw`
import sys, json, hashlib, math, msgpack
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

def rebuild(t):
    if isinstance(t, list):
        return [rebuild(x) for x in t]
    if isinstance(t, dict):
        (k, v), = t.items()
        if k == "$int": return int(v)
        if k == "$float":
            import struct
            return struct.unpack(">d", bytes.fromhex(v))[0]
        if k == "$bytes": return bytes.fromhex(v)
        if k == "$dt_ms": return EPOCH + timedelta(milliseconds=v)
        if k == "$map": return {kk: rebuild(vv) for kk, vv in v}
        if k == "$set": return ("set", [rebuild(x) for x in v])
        raise ValueError(k)
    return t

# The Python SDK's standard normalization (cachekit key_generator._normalize).
def normalize(obj):
    if isinstance(obj, dict):
        return {k: normalize(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [normalize(x) for x in obj]
    if isinstance(obj, float):
        return 0.0 if obj == 0.0 else obj
    if isinstance(obj, datetime):
        assert obj.tzinfo is not None
        return obj.isoformat()
    assert isinstance(obj, (int, str, bytes, bool, type(None))), type(obj)
    return obj

def args_hash(args, kwargs):
    nargs = [normalize(a) for a in args]
    nkwargs = {k: normalize(v) for k, v in sorted(kwargs.items())}
    packed = msgpack.packb([nargs, nkwargs], use_bin_type=True, strict_types=True)
    return hashlib.blake2b(packed, digest_size=32).hexdigest()

def normalize_key(key):
    normalized = key.replace(" ", "_").replace("\n", "_").replace("\r", "_")
    if len(normalized) > 250:
        key_hash = hashlib.blake2b(normalized.encode("utf-8"), digest_size=32).hexdigest()
        normalized = f"{normalized[:50]}:{key_hash[:32]}"
    return normalized

def cache_key(c):
    parts = []
    if c["namespace"]:
        parts += ["ns:", c["namespace"], ":"]
    parts += ["func:", c["func"], ":"]
    parts += ["args:", args_hash(rebuild(c["args"]), rebuild(c["kwargs"])), ":"]
    codes = {"std": "s", "auto": "a", "orjson": "o", "arrow": "w"}
    parts += ["1" if c["ic"] else "0", codes[c["serializer"]]]
    return normalize_key("".join(parts))

# interop/v1 canonical encoding, built from msgpack-python's own scalar and header encodings.
def packer():
    return msgpack.Packer(use_bin_type=True)

def enc(v, collapse):
    if isinstance(v, tuple) and v and v[0] == "set":
        parts = sorted({enc(x, collapse) for x in v[1]})
        return packer().pack_array_header(len(parts)) + b"".join(parts)
    if isinstance(v, datetime):
        if collapse:
            d = v - EPOCH
            micros = (d.days * 86400 + d.seconds) * 10**6 + d.microseconds
            return enc(micros / 1_000_000, collapse)
        return enc({"__datetime__": True, "value": v.isoformat()}, collapse)
    if isinstance(v, list):
        return packer().pack_array_header(len(v)) + b"".join(enc(x, collapse) for x in v)
    if isinstance(v, dict):
        out = packer().pack_map_header(len(v))
        for k in sorted(v):
            out += msgpack.packb(k, use_bin_type=True) + enc(v[k], collapse)
        return out
    if isinstance(v, float):
        assert not (math.isnan(v) or math.isinf(v))
        if collapse and v.is_integer() and -(2**63) <= v < 2**64:
            return msgpack.packb(int(v))
        return msgpack.packb(v, use_bin_type=True, use_single_float=False)
    return msgpack.packb(v, use_bin_type=True)

req = json.load(sys.stdin)
out = {
    "hashes": [args_hash(rebuild(c["args"]), rebuild(c["kwargs"])) for c in req["hashes"]],
    "keys": [cache_key(c) for c in req["keys"]],
    "interop": [hashlib.blake2b(enc(rebuild(a), True), digest_size=32).hexdigest() for a in req["interop"]],
    "values": [enc(rebuild(v), False).hex() for v in req["values"]],
    "packed": [msgpack.packb(rebuild(v), use_bin_type=True).hex() for v in req["packed"]],
}
json.dump(out, sys.stdout)
`;

// ------------------------------------------------------------------------------------------------
// Inputs.

const INT_BOUNDARIES: (number | bigint)[] = [
  0,
  1,
  31,
  32,
  127,
  128,
  255,
  256,
  65535,
  65536,
  4294967295,
  4294967296,
  Number.MAX_SAFE_INTEGER,
  2n ** 53n,
  2n ** 63n - 1n,
  2n ** 63n,
  2n ** 64n - 2n,
  2n ** 64n - 1n,
  -1,
  -31,
  -32,
  -33,
  -127,
  -128,
  -129,
  -32767,
  -32768,
  -32769,
  -2147483647,
  -2147483648,
  -2147483649,
  Number.MIN_SAFE_INTEGER,
  -(2n ** 53n),
  -(2n ** 63n) + 1n,
  -(2n ** 63n),
  -0,
];

const FLOATS: unknown[] = [
  0.1,
  -1.5,
  1e308,
  1.7976931348623157e308,
  5e-324,
  -5e-324,
  2.5e-308,
  NaN,
  Infinity,
  -Infinity,
  2 ** 53,
  2 ** 64,
  -(2 ** 63),
  1e21,
  float64(3),
  float64(-0),
  float64(0),
  float64(1e16),
  float64(-(2 ** 63)),
  float64(2 ** 31),
];

const STRINGS: string[] = [
  "",
  "a",
  "a".repeat(31),
  "a".repeat(32),
  "a".repeat(255),
  "a".repeat(256),
  "a".repeat(65535),
  "a".repeat(65536),
  "é",
  "€".repeat(10),
  "€".repeat(11),
  "€".repeat(16),
  "€".repeat(86),
  "😀",
  "😀".repeat(8),
  "😀".repeat(70),
  "\uffff",
  "\u0000",
  "h\u00e9llo w\u00f6rld \u2713",
  "line\nbreak\r\t",
  "日本語テキスト".repeat(20),
  "\ud7ff\ue000\uff61\u{10ffff}",
];

const SORT_KEYS = [
  "\uffff",
  "😀",
  "a",
  "B",
  "",
  "é",
  "\ud7ff",
  "\ue000",
  "\uff61",
  "\ud800\udc00",
  "10",
  "9",
  "ab",
  "a\u0000",
  "A",
  "_",
  "~",
  "\u{10ffff}",
  "\u{1f600}x",
  "\u{1f600}",
];

function sortCase(): Record<string, number> {
  const o: Record<string, number> = {};
  SORT_KEYS.forEach((k, i) => (o[k] = i));
  return o;
}

const bytesOf = (n: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

const ms = (iso: string): Date => new Date(iso);
const DATES: Date[] = [
  ms("1970-01-01T00:00:00Z"),
  ms("2025-11-14T10:30:00Z"),
  ms("2025-11-14T10:30:00.123Z"),
  ms("2025-11-14T10:30:00.001Z"),
  ms("1969-12-31T23:59:59.999Z"),
  ms("0001-01-01T00:00:00Z"),
  ms("9999-12-31T23:59:59.999Z"),
  ms("2000-02-29T12:00:00.500Z"),
  ms("1900-06-15T01:02:03Z"),
];

function manyKeys(n: number): Record<string, number> {
  const o: Record<string, number> = {};
  for (let i = n - 1; i >= 0; i--) o[`key${i}`] = i;
  return o;
}

const HASH_CASES: { args: unknown[]; kwargs?: Record<string, unknown> }[] = [
  ...INT_BOUNDARIES.map((i) => ({ args: [i] })),
  { args: INT_BOUNDARIES, kwargs: { ints: INT_BOUNDARIES } },
  ...FLOATS.map((f) => ({ args: [f] })),
  { args: FLOATS, kwargs: { f: float64(0.5), g: -0.25 } },
  ...STRINGS.map((s) => ({ args: [s] })),
  { args: [], kwargs: { [STRINGS[15]]: STRINGS[14], "é": 1, e: 2, "😀": 3, "\uffff": 4 } },
  { args: [sortCase()] },
  { args: [new Map(Object.entries(sortCase()).reverse())] },
  { args: [], kwargs: sortCase() },
  {
    args: [{
      outer: { z: { "😀": [1, { "\uffff": true, a: null }] }, a: [] },
      b: new Map([["y", 1], ["x", 2]]),
    }],
  },
  ...[0, 1, 15, 16, 31, 255, 256, 65535, 65536].map((n) => ({ args: [bytesOf(n)] })),
  { args: [[bytesOf(3), "bytes vs str", new Uint8Array(0)]] },
  ...[0, 15, 16, 65535, 65536].map((n) => ({
    args: [Array.from({ length: n }, (_, i) => i % 300)],
  })),
  ...[15, 16, 300].map((n) => ({ args: [manyKeys(n)] })),
  ...DATES.map((d) => ({ args: [d] })),
  { args: [{ when: DATES[2] }], kwargs: { since: DATES[4], until: [DATES[6]] } },
  { args: [true, false, null, [null, [true]], {}, []] },
  { args: [1, "two", float64(3)], kwargs: { include_profile: true, user_id: 42 } },
  { args: Array.from({ length: 16 }, (_, i) => i) },
  { args: [], kwargs: manyKeys(20) },
];

const KEY_CASES: {
  namespace: string | null;
  func: string;
  args: unknown[];
  kwargs?: Record<string, unknown>;
  ic: boolean;
  serializer: "std" | "auto" | "orjson" | "arrow";
}[] = [
  { namespace: "users", func: "app.get_user", args: [42], ic: true, serializer: "std" },
  { namespace: null, func: "app.get_user", args: ["x"], ic: false, serializer: "auto" },
  { namespace: "", func: "app.get_user", args: [], ic: true, serializer: "orjson" },
  {
    namespace: "my app\r\n",
    func: "mod.Class.method name",
    args: [1.5],
    ic: false,
    serializer: "arrow",
  },
  { namespace: "n", func: "m." + "f".repeat(165), args: [1], ic: true, serializer: "std" },
  { namespace: "n", func: "m." + "f".repeat(166), args: [1], ic: true, serializer: "std" },
  {
    namespace: "n",
    func: "m." + "f".repeat(400),
    args: [1],
    kwargs: { a: 1 },
    ic: true,
    serializer: "std",
  },
  { namespace: "😀".repeat(60), func: "f", args: [], ic: true, serializer: "std" },
  {
    namespace: "😀".repeat(100),
    func: "é".repeat(50),
    args: [DATES[2]],
    ic: true,
    serializer: "std",
  },
  { namespace: "a b".repeat(90), func: "f", args: [], ic: false, serializer: "std" },
];

const INTEROP_CASES: unknown[][] = [
  [],
  [42, "hello", { b: 2, a: 1 }],
  INT_BOUNDARIES,
  [
    2 ** 53,
    2 ** 60,
    2 ** 64,
    -(2 ** 63),
    -(2 ** 63) - 4096,
    1e21,
    0.5,
    float64(2),
    float64(-0),
    -0,
  ],
  [new Set([3, 1, 2])],
  [new Set(["b", 10, "a", -5, 1.5, float64(10), 10n])],
  [new Set([new Set([2, 1]), new Set([1, 2]), [1], "x"])],
  [new Set(SORT_KEYS)],
  [sortCase(), { nested: [sortCase()] }],
  DATES,
  [ms("2024-01-01T12:30:45.123Z"), ms("1969-12-31T23:59:59.123Z"), ms("1969-12-31T23:59:59Z")],
  [bytesOf(255), bytesOf(256), STRINGS],
  [{ set: new Set([DATES[0], DATES[1], 0, 1763116200]) }],
  Array.from({ length: 16 }, (_, i) => i),
];

const VALUE_CASES: unknown[] = [
  { name: "alice", age: 30 },
  [1, "two", 3.5, null, true, float64(2), -0, 2 ** 60, 2 ** 64, 0.1],
  { at: DATES[2], list: DATES, nested: { "😀": { "\uffff": bytesOf(20) } } },
  sortCase(),
  INT_BOUNDARIES,
  STRINGS,
];

// Values Python packs and we decode: plain msgpack, any int format.
const PACKED_CASES: unknown[] = [
  INT_BOUNDARIES,
  { a: [1.5, -0.25, null, true], b: { c: "😀", d: bytesOf(300) } },
  STRINGS.slice(0, 12),
  Array.from({ length: 70000 }, (_, i) => i * 65599),
];

// ------------------------------------------------------------------------------------------------

interface PyOut {
  hashes: string[];
  keys: string[];
  interop: string[];
  values: string[];
  packed: string[];
}

let cached: PyOut | undefined;
function python(): PyOut {
  cached ??= runPythonJson<PyOut>(
    PYTHON,
    JSON.stringify({
      hashes: HASH_CASES.map((c) => ({ args: tag(c.args), kwargs: tag(c.kwargs ?? {}) })),
      keys: KEY_CASES.map((c) => ({
        namespace: c.namespace,
        func: c.func,
        args: tag(c.args),
        kwargs: tag(c.kwargs ?? {}),
        ic: c.ic,
        serializer: c.serializer,
      })),
      interop: INTEROP_CASES.map((a) => tag(a, true)),
      values: VALUE_CASES.map((v) => tag(v, true)),
      packed: PACKED_CASES.map((v) => tag(v)),
    }),
  );
  return cached;
}

function describe(v: unknown): string {
  const s = inspect(v, { depth: 4, maxArrayLength: 8, maxStringLength: 60 });
  return s.length > 300 ? s.slice(0, 300) + "…" : s;
}

test("python: argsHash equals msgpack.packb + hashlib.blake2b for every input", () => {
  const py = python().hashes;
  assert.equal(py.length, HASH_CASES.length);
  HASH_CASES.forEach((c, i) => {
    assert.equal(argsHash(c.args, c.kwargs), py[i], `case ${i}: ${describe(c)}`);
  });
}, pythonTestOptions);

test(
  "python: cacheKey equals the Python SDK's key assembly, 250 rule and replacements included",
  () => {
    const py = python().keys;
    KEY_CASES.forEach((c, i) => {
      const key = cacheKey({
        namespace: c.namespace,
        func: c.func,
        args: c.args,
        kwargs: c.kwargs,
        integrityChecking: c.ic,
        serializer: c.serializer,
      });
      assert.equal(key, py[i], `case ${i}`);
    });
    // The cases straddle the rule: the fifth key is exactly 250 characters, the sixth 251.
    assert.equal(py[4].length, 250);
    assert.equal(py[5].length, 83);
  },
  pythonTestOptions,
);

test("python: interop argument hashes equal an encoder built from msgpack-python", () => {
  const py = python().interop;
  INTEROP_CASES.forEach((a, i) => {
    assert.equal(interopArgsHash(a), py[i], `case ${i}: ${describe(a)}`);
  });
}, pythonTestOptions);

test("python: interop values equal an encoder built from msgpack-python", () => {
  const py = python().values;
  VALUE_CASES.forEach((v, i) => {
    assert.equal(hex(encodeInteropValue(v)), py[i], `case ${i}: ${describe(v)}`);
  });
}, pythonTestOptions);

test("python: decodeInteropValue reads what msgpack.packb writes", () => {
  const py = python().packed;
  PACKED_CASES.forEach((v, i) => {
    const expected = JSON.parse(JSON.stringify(tag(v)));
    const got = decodeInteropValue(unhex(py[i]));
    // Compare through the same tagging: ints beyond the safe range must come back as bigints.
    assert.deepEqual(tag(got), expected, `case ${i}`);
  });
}, pythonTestOptions);
