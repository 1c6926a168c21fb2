/**
 * Cache keys: the public vectors, every normalization rule and rejection, the 250-character rule,
 * character replacement, and interop mode. Expectations come from the public vectors (the Python
 * SDK's `cache-keys.json` and the protocol repository's `interop-mode.json`), from the MessagePack
 * specification (bytes written out by hand), or from an independent Blake2b (`@noble/hashes`).
 * The Python cross-check lives in `protocol_keys_python_test.ts`.
 */
import assert from "node:assert/strict";
import { blake2b } from "@noble/hashes/blake2.js";
import { decode as msgpackDecode } from "@msgpack/msgpack";
import { test } from "../_harness.ts";
import {
  argsHash,
  blake2b256,
  blake2b256Hex,
  cacheKey,
  dateIsoformat,
  decodeInteropValue,
  encodeInteropValue,
  finalizeKey,
  Float64,
  float64,
  interopArgsHash,
  interopKey,
  serializerCode,
  validateInteropSegment,
} from "../../protocol/keys.ts";
import { CacheConfigError, CacheKeyError, SerializationError } from "../../errors.ts";
import { encodeValue, MAX_DEPTH, STD, withEncoder, written } from "../../protocol/_canonical.ts";

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array =>
  Uint8Array.from(s.match(/../g) ?? [], (x) => parseInt(x, 16));
const nobleHex = (b: Uint8Array): string => hex(blake2b(b, { dkLen: 32 }));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** The bytes the standard (Python-compatible) profile writes for one value. */
function stdBytes(v: unknown): string {
  return withEncoder(() => {
    encodeValue(v, STD);
    return hex(written());
  });
}

// ------------------------------------------------------------------------------------------------
// Public vectors: cachekit-py v0.5.0 `test-vectors/cache-keys.json` (version 1.0.0), copied as is.
// `multiple_args` passes Python's float 3.0, which JavaScript spells float64(3).

const CACHE_KEY_VECTORS: {
  name: string;
  namespace: string | null;
  func: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  expected: string;
}[] = [
  {
    name: "single_integer",
    namespace: "test",
    func: "__main__.get_user",
    args: [42],
    kwargs: {},
    expected:
      "ns:test:func:__main__.get_user:args:3870b2ea5735ae639ded9450ef117768db676f037bec636503796c5b81095153:1s",
  },
  {
    name: "single_string",
    namespace: "test",
    func: "__main__.get_user",
    args: ["hello"],
    kwargs: {},
    expected:
      "ns:test:func:__main__.get_user:args:07ed6e7b87ff98f70efe4f4a8f082fa79415b9f670be68f3ada1f42244b5b6de:1s",
  },
  {
    name: "multiple_args",
    namespace: "test",
    func: "__main__.process",
    args: [1, "two", float64(3)],
    kwargs: {},
    expected:
      "ns:test:func:__main__.process:args:465e6bc8edd493c64748a0c405106db14d2bb481989bf1849481f1343982e179:1s",
  },
  {
    name: "kwargs_only",
    namespace: "test",
    func: "__main__.get_user",
    args: [],
    kwargs: { user_id: 42, include_profile: true },
    expected:
      "ns:test:func:__main__.get_user:args:14570849f0d99524f4149319d37fa0c298278b8f1724c12d6cb7631efaf86f0e:1s",
  },
  {
    name: "mixed_args_kwargs",
    namespace: "test",
    func: "__main__.get_user",
    args: ["alice"],
    kwargs: { age: 30 },
    expected:
      "ns:test:func:__main__.get_user:args:573b0961d0bf4e7207c6628a3f9e42c97a0cd01e276d8904ec5af6c877cd599e:1s",
  },
  {
    name: "no_namespace",
    namespace: null,
    func: "__main__.get_user",
    args: [1],
    kwargs: {},
    expected:
      "func:__main__.get_user:args:386979f533ce537f0c42d385c8174948ebd58566ad81b32bebb830a187cb4387:1s",
  },
  {
    name: "empty_args",
    namespace: "test",
    func: "__main__.get_user",
    args: [],
    kwargs: {},
    expected:
      "ns:test:func:__main__.get_user:args:f9cf3864b6e929eb73f84cf6d69409e0bd7575f8cf6feafe3a543b0f7267b2b2:1s",
  },
  {
    name: "none_arg",
    namespace: "test",
    func: "__main__.get_user",
    args: [null],
    kwargs: {},
    expected:
      "ns:test:func:__main__.get_user:args:073b96f1817ee2b2a26b6cee56401999e4dc2d8836d596927d0aad3e338c2f0b:1s",
  },
  {
    name: "boolean_args",
    namespace: "test",
    func: "__main__.process",
    args: [true, false],
    kwargs: {},
    expected:
      "ns:test:func:__main__.process:args:982385ac5333a35e2d5d68638aafe47ba31d36c1f3cd60d0ed57396e3c638334:1s",
  },
  {
    name: "nested_dict",
    namespace: "test",
    func: "__main__.get_user",
    args: [{ user: { name: "alice", ids: [1, 2, 3] } }],
    kwargs: {},
    expected:
      "ns:test:func:__main__.get_user:args:14a3433f54d70b4cc452c3a140f8c3a0979acb3dc2baf7238dc4e6675265f3a8:1s",
  },
];

for (const v of CACHE_KEY_VECTORS) {
  test(`keys: public vector ${v.name}`, () => {
    const key = cacheKey({
      namespace: v.namespace,
      func: v.func,
      args: v.args,
      kwargs: v.kwargs,
      integrityChecking: true,
      serializer: "std",
    });
    assert.equal(key, v.expected);
    assert.equal(argsHash(v.args, v.kwargs), v.expected.split(":args:")[1].slice(0, 64));
  });
}

test("keys: multiple_args needs float64(3); a plain 3 is Python's int 3", () => {
  const v = CACHE_KEY_VECTORS[2];
  assert.notEqual(
    cacheKey({ namespace: "test", func: "__main__.process", args: [1, "two", 3] }),
    v.expected,
  );
});

test("keys: defaults are integrity checking on and serializer std", () => {
  const v = CACHE_KEY_VECTORS[0];
  assert.equal(cacheKey({ namespace: "test", func: "__main__.get_user", args: [42] }), v.expected);
});

// ------------------------------------------------------------------------------------------------
// Key assembly.

test("keys: the ic flag and serializer codes (s, a, o, w)", () => {
  const base = { namespace: "test", func: "__main__.get_user", args: [42] };
  const hash = "3870b2ea5735ae639ded9450ef117768db676f037bec636503796c5b81095153";
  const prefix = `ns:test:func:__main__.get_user:args:${hash}:`;
  assert.equal(cacheKey({ ...base, integrityChecking: false }), prefix + "0s");
  assert.equal(cacheKey({ ...base, serializer: "auto" }), prefix + "1a");
  assert.equal(cacheKey({ ...base, serializer: "orjson" }), prefix + "1o");
  assert.equal(cacheKey({ ...base, serializer: "arrow", integrityChecking: false }), prefix + "0w");
  assert.deepEqual(
    (["std", "auto", "orjson", "arrow"] as const).map(serializerCode),
    ["s", "a", "o", "w"],
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => cacheKey({ ...base, serializer: "pickle" as any }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "serializer",
  );
});

test("keys: an empty namespace leaves the ns: part out, as Python's `if namespace:` does", () => {
  const v = CACHE_KEY_VECTORS[5];
  assert.equal(cacheKey({ namespace: "", func: "__main__.get_user", args: [1] }), v.expected);
  assert.equal(cacheKey({ func: "__main__.get_user", args: [1] }), v.expected);
});

test("keys: spaces, \\n and \\r become _ after assembly", () => {
  const hash = argsHash([1]);
  assert.equal(
    cacheKey({ namespace: "my app\n", func: "mod.f\rg h", args: [1] }),
    `ns:my_app_:func:mod.f_g_h:args:${hash}:1s`,
  );
  // Only those three: tabs and other characters are kept.
  assert.equal(finalizeKey("a\tb c"), "a\tb_c");
  // The replacement happens after hashing: an argument with a space hashes as is.
  assert.notEqual(argsHash(["a b"]), argsHash(["a_b"]));
});

test("keys: a key of 250 characters is kept; 251 becomes 50 chars + ':' + 32 hex of Blake2b", () => {
  const k250 = "k".repeat(250);
  assert.equal(finalizeKey(k250), k250);
  const k251 = "ns:" + "x".repeat(248);
  assert.equal(k251.length, 251);
  const short = finalizeKey(k251);
  assert.equal(short, k251.slice(0, 50) + ":" + nobleHex(utf8(k251)).slice(0, 32));
  assert.equal(short.length, 83);
});

test("keys: the 250 rule hashes the key after character replacement", () => {
  const raw = "a b".repeat(100);
  const fixed = raw.replaceAll(" ", "_");
  assert.equal(finalizeKey(raw), fixed.slice(0, 50) + ":" + nobleHex(utf8(fixed)).slice(0, 32));
});

test("keys: the 250 rule counts code points, as Python's len() does", () => {
  // 200 astral characters: 400 UTF-16 units but 200 code points -> kept.
  const astral = "😀".repeat(200);
  assert.equal(finalizeKey(astral), astral);
  // 251 code points: the prefix is 50 code points (100 UTF-16 units), hash over the UTF-8 bytes.
  const long = "😀".repeat(251);
  assert.equal(finalizeKey(long), "😀".repeat(50) + ":" + nobleHex(utf8(long)).slice(0, 32));
});

test("keys: a long cacheKey is shortened through the same rule", () => {
  const func = "module." + "f".repeat(300);
  const full = `ns:n:func:${func}:args:${argsHash([1])}:1s`;
  assert.equal(
    cacheKey({ namespace: "n", func, args: [1] }),
    full.slice(0, 50) + ":" + nobleHex(utf8(full)).slice(0, 32),
  );
});

test("keys: namespace and func must be well-formed strings", () => {
  assert.throws(
    () => cacheKey({ namespace: "a\ud800", func: "f", args: [] }),
    (e: unknown) => e instanceof CacheKeyError && e.path === "namespace",
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => cacheKey({ func: 42 as any, args: [] }),
    (e: unknown) => e instanceof CacheKeyError && e.path === "func",
  );
});

// ------------------------------------------------------------------------------------------------
// Normalization: bytes written out from the MessagePack specification.

test("normalize: the hash covers msgpack [args, kwargs]", () => {
  // [[1], {"a": 2}] = 92 91 01 81 a1 61 02
  assert.equal(argsHash([1], { a: 2 }), nobleHex(unhex("92910181a16102")));
  assert.equal(argsHash([]), nobleHex(unhex("9290" + "80")));
  assert.equal(argsHash([], undefined), argsHash([], {}));
});

test("normalize: ints use the shortest form, uint formats when >= 0 (Python's choice)", () => {
  const cases: [number | bigint, string][] = [
    [0, "00"],
    [127, "7f"],
    [128, "cc80"],
    [255, "ccff"],
    [256, "cd0100"],
    [65535, "cdffff"],
    [65536, "ce00010000"],
    [4294967295, "ceffffffff"],
    [4294967296, "cf0000000100000000"],
    [Number.MAX_SAFE_INTEGER, "cf001fffffffffffff"],
    [2n ** 53n, "cf0020000000000000"],
    [2n ** 63n - 1n, "cf7fffffffffffffff"],
    [2n ** 63n, "cf8000000000000000"],
    [2n ** 64n - 1n, "cfffffffffffffffff"],
    [-1, "ff"],
    [-32, "e0"],
    [-33, "d0df"],
    [-128, "d080"],
    [-129, "d1ff7f"],
    [-32768, "d18000"],
    [-32769, "d2ffff7fff"],
    [-2147483648, "d280000000"],
    [-2147483649, "d3ffffffff7fffffff"],
    [Number.MIN_SAFE_INTEGER, "d3ffe0000000000001"],
    [-(2n ** 63n), "d38000000000000000"],
    [5n, "05"],
    [-200n, "d1ff38"],
  ];
  for (const [v, expected] of cases) assert.equal(stdBytes(v), expected, `${v}`);
});

test("normalize: -0 is int 0; float64(-0) is +0.0", () => {
  assert.equal(stdBytes(-0), "00");
  assert.equal(stdBytes(float64(-0)), "cb0000000000000000");
  assert.equal(float64(-0).value, 0);
  assert.ok(Object.is(float64(-0).value, 0));
});

test("normalize: other numbers are float64 (never float32), NaN and ±Infinity included", () => {
  assert.equal(stdBytes(1.5), "cb3ff8000000000000");
  assert.equal(stdBytes(0.1), "cb3fb999999999999a");
  assert.equal(stdBytes(2 ** 53), "cb4340000000000000"); // beyond the safe range: a float
  assert.equal(stdBytes(1e300), "cb7e37e43c8800759c");
  assert.equal(stdBytes(NaN), "cb7ff8000000000000");
  assert.equal(stdBytes(Infinity), "cb7ff0000000000000");
  assert.equal(stdBytes(-Infinity), "cbfff0000000000000");
  assert.equal(stdBytes(float64(3)), "cb4008000000000000");
  assert.equal(stdBytes(float64(NaN)), "cb7ff8000000000000");
  assert.ok(float64(2) instanceof Float64);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => float64("3" as any), TypeError);
});

test("normalize: strings as fixstr/str8/str16/str32 of UTF-8; booleans; null", () => {
  assert.equal(stdBytes(""), "a0");
  assert.equal(stdBytes("a".repeat(31)), "bf" + "61".repeat(31));
  assert.equal(stdBytes("a".repeat(32)), "d920" + "61".repeat(32));
  assert.equal(stdBytes("a".repeat(255)), "d9ff" + "61".repeat(255));
  assert.equal(stdBytes("a".repeat(256)), "da0100" + "61".repeat(256));
  assert.equal(stdBytes("a".repeat(65536)), "db00010000" + "61".repeat(65536));
  assert.equal(stdBytes("é"), "a2c3a9");
  assert.equal(stdBytes("€"), "a3e282ac");
  assert.equal(stdBytes("😀"), "a4f09f9880");
  // 11 × "é" is 22 bytes but 16 × "€" is 48 bytes: the header widens past the guess from length.
  assert.equal(stdBytes("€".repeat(16)), "d930" + "e282ac".repeat(16));
  assert.equal(stdBytes("€".repeat(100)), "da012c" + "e282ac".repeat(100));
  assert.equal(stdBytes("😀".repeat(70)), "da0118" + "f09f9880".repeat(70));
  assert.equal(stdBytes(true), "c3");
  assert.equal(stdBytes(false), "c2");
  assert.equal(stdBytes(null), "c0");
});

test("normalize: Uint8Array as bin8/bin16/bin32 (never str)", () => {
  assert.equal(stdBytes(new Uint8Array(0)), "c400");
  assert.equal(stdBytes(new Uint8Array([0xde, 0xad])), "c402dead");
  assert.equal(stdBytes(new Uint8Array(255)), "c4ff" + "00".repeat(255));
  assert.equal(stdBytes(new Uint8Array(256)), "c50100" + "00".repeat(256));
  assert.equal(stdBytes(new Uint8Array(65536)), "c600010000" + "00".repeat(65536));
  // A view encodes its own bytes only.
  assert.equal(stdBytes(new Uint8Array([1, 2, 3, 4]).subarray(1, 3)), "c4020203");
});

test("normalize: arrays in order; fixarray/array16/array32 headers", () => {
  assert.equal(stdBytes([]), "90");
  assert.equal(stdBytes([3, 1, 2]), "93030102");
  assert.equal(stdBytes(Array(15).fill(0)), "9f" + "00".repeat(15));
  assert.equal(stdBytes(Array(16).fill(0)), "dc0010" + "00".repeat(16));
  assert.equal(stdBytes(Array(65536).fill(1)), "dd00010000" + "01".repeat(65536));
  assert.equal(stdBytes([[1, [2]], []]), "929201910290");
});

test("normalize: plain objects and Maps are maps with keys sorted by code point", () => {
  assert.equal(stdBytes({ b: 2, a: 1, A: 3 }), "83a14103a16101a16202");
  assert.equal(stdBytes(new Map([["b", 2], ["a", 1], ["A", 3]])), "83a14103a16101a16202");
  assert.equal(stdBytes(Object.assign(Object.create(null), { b: 1 })), "81a16201");
  // Integer-like keys: JavaScript enumerates them first ("10" before "9"); code point order
  // puts "10" before "9" too, and "a" after both.
  assert.equal(stdBytes({ a: 0, 9: 1, 10: 2 }), "83a2313002a13901a16100");
  // U+FF61 (efbda1) sorts before U+10000 (f0908080); UTF-16 order would reverse them.
  assert.equal(stdBytes({ "\ud800\udc00": 1, "\uff61": 2 }), "82a3efbda102a4f090808001");
  // "\uffff" before "😀" (U+1F600); "\ud7ff" before "\ue000"; "" first.
  assert.equal(
    stdBytes({ "😀": 1, "\uffff": 2, "\ue000": 3, "\ud7ff": 4, "": 5 }),
    "85a005a3ed9fbf04a3ee808003a3efbfbf02a4f09f988001",
  );
  // Recursively, and insertion order never matters.
  assert.equal(stdBytes({ z: { b: 1, a: 2 }, a: [1] }), stdBytes({ a: [1], z: { a: 2, b: 1 } }));
  assert.equal(stdBytes({ z: { b: 1, a: 2 } }), "81a17a82a16102a16201");
  // 16 keys: map16.
  const o: Record<string, number> = {};
  for (let i = 15; i >= 0; i--) o[`k${String(i).padStart(2, "0")}`] = i;
  assert.ok(stdBytes(o).startsWith("de0010a36b303000"));
});

test("normalize: kwargs are sorted by name in code point order", () => {
  assert.equal(argsHash([], { b: 1, a: 2 }), argsHash([], { a: 2, b: 1 }));
  // [[], {"a": 2, "b": 1}] = 92 90 82 a1 61 02 a1 62 01
  assert.equal(argsHash([], { b: 1, a: 2 }), nobleHex(unhex("929082a16102a16201")));
  assert.equal(
    argsHash([], { "😀": 1, "\uffff": 2 }),
    nobleHex(unhex("929082a3efbfbf02a4f09f988001")),
  );
});

test("normalize: Date is Python's isoformat() of the aware UTC datetime", () => {
  const d = new Date(Date.UTC(2025, 10, 14, 10, 30, 0));
  assert.equal(dateIsoformat(d), "2025-11-14T10:30:00+00:00");
  assert.equal(argsHash([d]), argsHash(["2025-11-14T10:30:00+00:00"]));
  const ms = new Date(Date.UTC(2025, 10, 14, 10, 30, 0, 7));
  assert.equal(dateIsoformat(ms), "2025-11-14T10:30:00.007000+00:00");
  assert.equal(argsHash([{ at: ms }]), argsHash([{ at: "2025-11-14T10:30:00.007000+00:00" }]));
  assert.equal(dateIsoformat(new Date("0001-01-01T00:00:00Z")), "0001-01-01T00:00:00+00:00");
  assert.equal(dateIsoformat(new Date(-1)), "1969-12-31T23:59:59.999000+00:00");
  assert.equal(
    dateIsoformat(new Date(Date.UTC(9999, 11, 31, 23, 59, 59, 999))),
    "9999-12-31T23:59:59.999000+00:00",
  );
});

test("normalize: the Uint8Array/str, int/float, bigint/number distinctions Python makes", () => {
  assert.notEqual(argsHash([utf8("a")]), argsHash(["a"]));
  assert.notEqual(argsHash([3]), argsHash([float64(3)]));
  assert.equal(argsHash([3]), argsHash([3n]));
  assert.notEqual(argsHash([2 ** 53]), argsHash([2n ** 53n])); // float vs int
  assert.equal(argsHash([-0]), argsHash([0]));
  assert.equal(argsHash([float64(-0)]), argsHash([float64(0)]));
  assert.notEqual(argsHash([null]), argsHash([]));
  assert.notEqual(argsHash([1], {}), argsHash([], { "0": 1 }));
});

// ------------------------------------------------------------------------------------------------
// Rejections name the path.

class User {
  constructor(readonly id: number) {}
}

function rejects(fn: () => unknown, path: string, reason?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CacheKeyError, `expected CacheKeyError, got ${e}`);
    assert.equal(e.path, path);
    assert.ok(e.message.includes(path), e.message);
    if (reason) assert.match(e.message, reason);
    return true;
  });
}

test("reject: Set, class instance, function, symbol, with the argument path", () => {
  rejects(() => argsHash([1, { user: { tags: new Set(["a"]) } }]), "args[1].user.tags", /Set/);
  rejects(() => argsHash([new User(1)]), "args[0]", /User/);
  rejects(() => argsHash([], { user: new User(1) }), "kwargs.user", /User/);
  rejects(() => argsHash([() => 1]), "args[0]", /function/);
  rejects(() => argsHash([[Symbol("s")]]), "args[0][0]", /symbol/);
  rejects(() => argsHash([], { "a b": { "x-y": [0, new WeakMap()] } }), 'kwargs["a b"]["x-y"][1]');
  rejects(() => argsHash([new Int32Array(2)]), "args[0]", /Int32Array/);
  rejects(() => argsHash([new ArrayBuffer(2)]), "args[0]", /ArrayBuffer/);
  rejects(() => argsHash([/re/]), "args[0]", /RegExp/);
  rejects(() => argsHash([new Map([["a", new Set()]])]), "args[0].a", /Set/);
});

test("undefined: trailing arguments and object properties are left out (issue 13.4)", () => {
  // search("a", undefined) is search("a"); list({ limit: 10, cursor: undefined }) is list({ limit: 10 }).
  assert.equal(argsHash(["a", undefined]), argsHash(["a"]));
  assert.equal(argsHash(["a", undefined, undefined]), argsHash(["a"]));
  assert.equal(argsHash([undefined]), argsHash([]));
  assert.equal(argsHash([{ limit: 10, cursor: undefined }]), argsHash([{ limit: 10 }]));
  assert.equal(argsHash([{ a: { b: undefined } }]), argsHash([{ a: {} }]));
  assert.equal(argsHash([], { a: undefined, b: 1 }), argsHash([], { b: 1 }));
  assert.equal(argsHash([{ b: undefined }], { a: undefined }), argsHash([{}]));
  // The bytes, against an independent Blake2b: [["a"], {}] and [[{limit: 10}], {}].
  assert.equal(argsHash(["a", undefined]), nobleHex(unhex("9291a16180")));
  assert.equal(
    argsHash([{ limit: 10, cursor: undefined }]),
    nobleHex(unhex("929181a56c696d69740a80")),
  );
  // A 16-property object (map16 header) shrinking to 15 (fixmap) when one is undefined.
  const wide: Record<string, unknown> = {};
  for (let i = 0; i < 16; i++) wide[`k${i.toString(16)}`] = i === 7 ? undefined : i;
  const pairs = Object.keys(wide).filter((k) => wide[k] !== undefined).sort()
    .map((k) => "a2" + hex(utf8(k)) + hex(Uint8Array.of(wide[k] as number)));
  assert.equal(stdBytes(wide), "8f" + pairs.join(""));
  assert.equal(stdBytes({ a: 1, b: undefined, c: [2] }), "82a16101a1639102");
  // Interop arguments and values follow the same rules.
  assert.equal(interopArgsHash([1, undefined]), interopArgsHash([1]));
  assert.equal(interopArgsHash([{ a: 1, b: undefined }]), interopArgsHash([{ a: 1 }]));
  assert.equal(hex(encodeInteropValue({ a: 1, b: undefined })), "81a16101");
});

test("undefined: refused before a defined argument and inside arrays, Maps and holes", () => {
  rejects(() => argsHash([undefined, 1]), "args[0]", /before a defined argument.*pass null/);
  rejects(() => argsHash([[1, undefined]]), "args[0][1]", /in an array.*pass null/);
  // deno-lint-ignore no-sparse-arrays
  rejects(() => argsHash([[1, , 3]]), "args[0][1]", /undefined/);
  rejects(() => argsHash([{ a: [undefined] }]), "args[0].a[0]", /undefined/);
  rejects(() => argsHash([new Map([["k", undefined]])]), "args[0].k", /undefined/);
  rejects(() => interopArgsHash([undefined, 1]), "args[0]", /before a defined argument/);
});

test("cycles and deep nesting are CacheKeyErrors naming the path, not stack overflows (issue 11.4)", () => {
  const a: Record<string, unknown> = { id: 1 };
  a.self = a;
  rejects(() => argsHash([1, a]), "args[1].self", /it is args\[1\] again: a reference cycle/);
  rejects(() => argsHash([], { q: [a] }), "kwargs.q[0].self", /it is kwargs\.q\[0\] again/);
  const list: unknown[] = [1];
  const holder = { items: list };
  list.push(holder);
  rejects(() => argsHash([holder]), "args[0].items[1]", /it is args\[0\] again/);
  const m = new Map<string, unknown>();
  m.set("m", [m]);
  rejects(() => argsHash([m]), "args[0].m[0]", /it is args\[0\] again/);
  rejects(() => interopArgsHash([a]), "args[0].self", /reference cycle/);
  const s = new Set<unknown>();
  s.add([s]);
  rejects(() => interopArgsHash([s]), "args[0][0][0]", /it is args\[0\] again/);
  assert.throws(() => encodeInteropValue({ v: a }), (e: unknown) => {
    assert.ok(e instanceof SerializationError, String(e));
    assert.match(e.message, /value\.v\.self.*it is value\.v again/);
    return true;
  });
  // Shared (not cyclic) references are fine.
  const shared = { x: 1 };
  assert.equal(argsHash([[shared, shared]]), argsHash([[{ x: 1 }, { x: 1 }]]));

  const nest = (levels: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { v };
    return v;
  };
  assert.equal(MAX_DEPTH, 256);
  assert.equal(argsHash([nest(MAX_DEPTH)]).length, 64, "the limit itself is accepted");
  assert.equal(interopArgsHash([nest(MAX_DEPTH)]).length, 64);
  for (const levels of [MAX_DEPTH + 1, 10_000]) {
    assert.throws(() => argsHash(["x", nest(levels)]), (e: unknown) => {
      assert.ok(e instanceof CacheKeyError, String(e));
      assert.ok(e.path.startsWith("args[1]"), e.path);
      assert.match(e.message, /nest deeper than 256 levels/);
      return true;
    });
    assert.throws(() => interopArgsHash([nest(levels)]), CacheKeyError);
    assert.throws(() => encodeInteropValue(nest(levels)), SerializationError);
  }
  // The encoder is usable afterwards.
  assert.equal(argsHash([42]), CACHE_KEY_VECTORS[0].expected.split(":args:")[1].slice(0, 64));
});

test("reject: bigint beyond 64 bits, invalid or out-of-range Date, lone surrogates, non-string Map keys", () => {
  rejects(() => argsHash([2n ** 64n]), "args[0]", /64-bit/);
  rejects(() => argsHash([-(2n ** 63n) - 1n]), "args[0]", /64-bit/);
  rejects(() => argsHash([], { when: new Date(NaN) }), "kwargs.when", /invalid/);
  rejects(() => argsHash([new Date(Date.UTC(10000, 0, 1))]), "args[0]", /1\.\.9999/);
  rejects(() => argsHash([new Date("0000-12-31T23:59:59.999Z")]), "args[0]", /1\.\.9999/);
  rejects(() => argsHash(["ok", "a\ud800b"]), "args[1]", /surrogate/);
  rejects(() => argsHash(["x".repeat(100) + "\udc00"]), "args[0]", /surrogate/);
  rejects(() => argsHash([{ ["k\udfff"]: 1 }]), 'args[0]["k\\udfff"]', /surrogate/);
  rejects(() => argsHash([], { ["\ud800"]: 1 }), 'kwargs["\\ud800"]', /surrogate/);
  rejects(() => argsHash([new Map([[1, "a"]])]), 'args[0]["<key 0>"]', /Map keys must be strings/);
});

test("reject: args must be an array and kwargs a plain object", () => {
  // deno-lint-ignore no-explicit-any
  rejects(() => argsHash("abc" as any), "args");
  // deno-lint-ignore no-explicit-any
  rejects(() => argsHash([], new Map() as any), "kwargs");
});

test("keys: an error leaves the encoder usable, and re-entrant use is safe", () => {
  assert.throws(() => argsHash([{ a: new Set() }]));
  assert.equal(argsHash([42]), CACHE_KEY_VECTORS[0].expected.split(":args:")[1].slice(0, 64));
  let inner = "";
  const tricky = {
    get x() {
      inner = argsHash([42]);
      return 1;
    },
  };
  assert.equal(argsHash([tricky]), argsHash([{ x: 1 }]));
  assert.equal(inner, CACHE_KEY_VECTORS[0].expected.split(":args:")[1].slice(0, 64));
});

test("keys: large arguments grow the buffer and still hash like an independent implementation", () => {
  const big = "é".repeat(300_000);
  const bytes = utf8(big);
  const expected = "9291db" + bytes.length.toString(16).padStart(8, "0") + hex(bytes) + "80";
  assert.equal(argsHash([big]), nobleHex(unhex(expected)));
  // And a small key afterwards is still right.
  assert.equal(argsHash([42]), CACHE_KEY_VECTORS[0].expected.split(":args:")[1].slice(0, 64));
});

test("blake2b256: matches @noble/hashes and the interop empty-array vector", () => {
  for (const n of [0, 1, 127, 128, 129, 1000]) {
    const m = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
    assert.equal(hex(blake2b256(m)), nobleHex(m));
    assert.equal(blake2b256Hex(m), nobleHex(m));
  }
  assert.equal(
    blake2b256Hex(unhex("90")),
    "8064bf5f945dba521b017bb3f32b31a293a6e16944838d171ea9e77fab085e8e",
  );
});

// ------------------------------------------------------------------------------------------------
// Interop mode: vectors from the cachekit protocol repository, test-vectors/interop-mode.json
// (version 1.0.0), copied as literals.

const INTEROP_VECTORS: { name: string; ns: string; op: string; args: unknown[]; hash: string }[] = [
  {
    name: "empty_args",
    ns: "users",
    op: "get_all",
    args: [],
    hash: "8064bf5f945dba521b017bb3f32b31a293a6e16944838d171ea9e77fab085e8e",
  },
  {
    name: "single_int",
    ns: "users",
    op: "get_user",
    args: [42],
    hash: "61598716255080080f6456eb065c2e51badfaa4320b0efe97469c29cffee8875",
  },
  {
    name: "uint64_max",
    ns: "users",
    op: "get_user",
    args: [18446744073709551615n],
    hash: "0cc46c520dfb8f301e03756131351da58fb433d5258f5db3dde927a8c83b9430",
  },
  {
    name: "int64_min",
    ns: "t",
    op: "op",
    args: [-9223372036854775808n],
    hash: "2882730c0cc9df9bc2152c1833892075377b801a72a715434f103b694e4a5909",
  },
  {
    name: "uint_width_ladder",
    ns: "t",
    op: "op",
    args: [127, 128, 255, 256, 65535, 65536, 4294967295, 4294967296],
    hash: "ccf107ae1fc53bde440609a16dc30794916bd692f06309832621b9c49c89f9b7",
  },
  {
    name: "int_width_ladder",
    ns: "t",
    op: "op",
    args: [-32, -33, -128, -129, -32768, -32769, -2147483648, -2147483649],
    hash: "92fa9f5c0f336f282290472144b6a4cf86b2840a1cbd8366e42fdfa1d4faa98f",
  },
  {
    name: "unicode_string",
    ns: "t",
    op: "op",
    args: ["h\u00e9llo w\u00f6rld \u2713"],
    hash: "00fd1c3045fe23cfe4cac788a9e15773e1f9722ca84e28917f64be99dd7a5a3c",
  },
  {
    name: "str_width_ladder",
    ns: "t",
    op: "op",
    args: ["a".repeat(31), "b".repeat(32), "c".repeat(255), "d".repeat(256)],
    hash: "9b750ae4a2ed646a51472aebbcffffade0f4633edbc8152cafcd2d00375d865b",
  },
  {
    name: "bin_width_ladder",
    ns: "t",
    op: "op",
    args: [new Uint8Array(255).fill(0xab), new Uint8Array(256).fill(0xcd)],
    hash: "0a888f5ac66954cd56155853f2f2e964a65dd26783e9fc4249395ca1f99f28c0",
  },
  {
    name: "array_width_boundary",
    ns: "t",
    op: "op",
    args: [[...Array(15).keys()], [...Array(16).keys()]],
    hash: "d121a3c3f0427c5df363068940c15d966120be41ea11d4befe62e3408a676130",
  },
  {
    name: "map_width_boundary",
    ns: "t",
    op: "op",
    args: [
      Object.fromEntries([...Array(15).keys()].map((i) => [`k${String(i).padStart(2, "0")}`, i])),
      Object.fromEntries([...Array(16).keys()].map((i) => [`k${String(i).padStart(2, "0")}`, i])),
    ],
    hash: "fed444a7b22613e6ff38c05e96df352182f71c41e4db57b2b3e7f0389cabfe46",
  },
  {
    name: "root_array16",
    ns: "t",
    op: "op",
    args: [...Array(16).keys()],
    hash: "c55dd1f50e57b0dfbcd8827965516e2e33e7de2788f18d7d88d82575e34f2116",
  },
  {
    name: "bool_null",
    ns: "t",
    op: "op",
    args: [true, false, null],
    hash: "1e364f6582ca4dc93b8bed0ff4413162cddafd52407517bff6248286cb863ac1",
  },
  {
    name: "float_fractional",
    ns: "t",
    op: "op",
    args: [3.14],
    hash: "8a855804f9b7adf8f428c4f1c757c44262265a2d13be6b4242ab6556724011cd",
  },
  {
    name: "float_integral_collapse",
    ns: "t",
    op: "op",
    args: [float64(2)],
    hash: "6df5e966da1ba347f99784f56e50e2f570e775e54c9c9349dd8944cb7fe01ea7",
  },
  {
    name: "single_int_two",
    ns: "t",
    op: "op",
    args: [2],
    hash: "6df5e966da1ba347f99784f56e50e2f570e775e54c9c9349dd8944cb7fe01ea7",
  },
  {
    name: "negative_zero",
    ns: "t",
    op: "op",
    args: [-0],
    hash: "f3255c8870de95dd7cf82fab94f78110361b999beea857dac7607a4a67522bda",
  },
  {
    name: "float_large_integral_out_of_range",
    ns: "t",
    op: "op",
    args: [18446744073709551616],
    hash: "ab5d4f7d9ddd4a4daceb62a06b1765ab33e6db86aafd4e79ab6ad49f8a3960c8",
  },
  {
    name: "map_key_sort_ascii",
    ns: "t",
    op: "op",
    args: [{ b: 2, a: 1, A: 3 }],
    hash: "355030356fd2716354d3c0518604658891794f80f4838202ef931424b51f3f29",
  },
  {
    name: "map_key_sort_supplementary",
    ns: "t",
    op: "op",
    args: [{ "\ud800\udc00": 1, "\uff61": 2 }],
    hash: "f732e0e1342939877b9991ccc7177e4ed974f9f84de464d225fc742e467dbf3f",
  },
  {
    name: "nested_map_recursive_sort",
    ns: "t",
    op: "op",
    args: [{ z: { b: 1, a: 2 }, a: [1, 2] }],
    hash: "2be8ea89d36af856c225ff709cb4b892148cc336b47fcd9b255dc736f35780d4",
  },
  {
    name: "set_int_sorted",
    ns: "t",
    op: "op",
    args: [new Set([3, 1, 2])],
    hash: "458a244b5b00f4244d52c7f1c5cd231355beae391eaf1d2e4bfee04d495b58b5",
  },
  {
    name: "set_heterogeneous",
    ns: "t",
    op: "op",
    args: [new Set(["b", 10, "a"])],
    hash: "6e2c172b9a9e966d3febc66a2a28c05a6ffabbd3b798bf341ec1d55ed73d6e4f",
  },
  {
    name: "set_mixed_sign_order",
    ns: "t",
    op: "op",
    args: [new Set([-5, "a", 1.5])],
    hash: "1f1a8fdd7221fac0fd57e7e5cd1ceec1c43eadd35570f6de63eb59ffc014a1e9",
  },
  {
    name: "float_collapse_lower_bound",
    ns: "t",
    op: "op",
    args: [-9223372036854775808],
    hash: "2882730c0cc9df9bc2152c1833892075377b801a72a715434f103b694e4a5909",
  },
  {
    name: "set_dedupe_canonicalization",
    ns: "t",
    op: "op",
    args: [new Set([2, float64(2)])],
    hash: "0b32675997838bef03127b5e69d6c103d5f622676fd5006254fa36a36c9a828c",
  },
  // 2024-01-01T12:30:45.123456+00:00 has microseconds a JS Date cannot hold; the whole-second
  // and pre-epoch vectors below use values a Date can.
  {
    name: "datetime_whole_second",
    ns: "events",
    op: "get_by_time",
    args: [new Date("2024-01-01T00:00:00+00:00")],
    hash: "b3504b56c162854b07071c4577f3c73f3ec615c8a3152928bf5c6dba086461c2",
  },
  {
    name: "uuid_lowercased",
    ns: "users",
    op: "get_by_uuid",
    args: ["550e8400-e29b-41d4-a716-446655440000"],
    hash: "14821dfe8848465aa23db43cb83be508f51d9ac556479bcc78b8a522e268a62a",
  },
  {
    name: "bytes_bin",
    ns: "t",
    op: "op",
    args: [new Uint8Array([0xde, 0xad, 0xbe, 0xef])],
    hash: "2ed8716bf7f1438057a9e8082b456c8566f95ed0dda11b1e16e6a1a74ebebfc0",
  },
  {
    name: "issue_example_mixed",
    ns: "t",
    op: "op",
    args: [42, "hello", { b: 2, a: 1 }],
    hash: "03a0edbae0c1b5816c431652268d1527730175cdc0b45807cb07e1025ff971f6",
  },
];

for (const v of INTEROP_VECTORS) {
  test(`interop: public vector ${v.name}`, () => {
    assert.equal(interopKey(v.ns, v.op, v.args), `${v.ns}:${v.op}:${v.hash}`);
    assert.equal(interopArgsHash(v.args), v.hash);
  });
}

test("interop: a Date is float64 seconds since the epoch (integer µs / 10^6)", () => {
  // datetime_fractional's canonical bytes are float64 1704112245.123456; a Date has ms, so build
  // the expectation from the same rule: 1704112245123 ms -> 1704112245.123 s.
  const d = new Date("2024-01-01T12:30:45.123Z");
  const f = new DataView(new ArrayBuffer(8));
  f.setFloat64(0, 1704112245123 / 1000);
  assert.equal(interopArgsHash([d]), nobleHex(unhex("91cb" + hex(new Uint8Array(f.buffer)))));
  // Pre-epoch: 1969-12-31T23:59:59.123Z = -877 ms -> -0.877.
  f.setFloat64(0, -0.877);
  assert.equal(
    interopArgsHash([new Date("1969-12-31T23:59:59.123Z")]),
    nobleHex(unhex("91cb" + hex(new Uint8Array(f.buffer)))),
  );
  assert.throws(() => interopArgsHash([new Date(NaN)]), CacheKeyError);
});

test("interop: error vectors and rejections", () => {
  const bad = (args: unknown[], path: string, reason: RegExp) =>
    assert.throws(() => interopKey("t", "op", args), (e: unknown) => {
      assert.ok(e instanceof CacheKeyError, String(e));
      assert.equal(e.path, path);
      assert.match(e.message, reason);
      return true;
    });
  bad([NaN], "args[0]", /NaN/);
  bad([1e999], "args[0]", /Infinity/);
  bad([{ x: -Infinity }], "args[0].x", /Infinity/);
  bad([float64(NaN)], "args[0]", /NaN/);
  bad([18446744073709551616n], "args[0]", /64-bit/);
  bad([-9223372036854775809n], "args[0]", /64-bit/);
  bad([new Set([1, () => 1])], "args[0][1]", /function/);
  bad(["\ud800"], "args[0]", /surrogate/);
  bad([new User(1)], "args[0]", /User/);
  bad([undefined, 1], "args[0]", /undefined/);
  bad([new Map([[1, 2]])], 'args[0]["<key 0>"]', /strings/);
});

test("interop: segments must fully match the pattern; namespace is mandatory", () => {
  const badSeg = (ns: unknown, op: unknown, option: string) =>
    assert.throws(
      // deno-lint-ignore no-explicit-any
      () => interopKey(ns as any, op as any, []),
      (e: unknown) => e instanceof CacheConfigError && e.option === option,
    );
  badSeg("Users", "get_user", "interop.namespace");
  badSeg("users", "get:user", "interop.operation");
  badSeg("users\n", "get_user", "interop.namespace");
  badSeg("users", "get_user\n", "interop.operation");
  badSeg("", "get_user", "interop.namespace");
  badSeg(null, "get_user", "interop.namespace");
  badSeg(undefined, "get_user", "interop.namespace");
  badSeg("users", "", "interop.operation");
  badSeg("_users", "op", "interop.namespace");
  badSeg("a".repeat(65), "op", "interop.namespace");
  badSeg("users", "get user", "interop.operation");
  badSeg("users", "a..b", "interop.operation");
  badSeg("ns", "op", "interop.namespace");
  badSeg("nsapi", "op", "interop.namespace");
  assert.equal(validateInteropSegment("namespace", "a".repeat(64)), "a".repeat(64));
  assert.equal(validateInteropSegment("operation", "ns"), "ns");
  assert.equal(validateInteropSegment("operation", "0a.b_c-d"), "0a.b_c-d");
  // Keys are never truncated: the longest is 64 + 1 + 64 + 1 + 64 characters.
  assert.equal(interopKey("a".repeat(64), "b".repeat(64), []).length, 194);
});

// Interop value vectors (same file, value_vectors).
test("interop values: public value vectors", () => {
  assert.equal(
    hex(encodeInteropValue({ name: "alice", age: 30 })),
    "82a36167651ea46e616d65a5616c696365",
  );
  assert.equal(hex(encodeInteropValue(float64(2))), "cb4000000000000000");
  assert.equal(
    hex(encodeInteropValue([1, "two", 3.5, null, true])),
    "9501a374776fcb400c000000000000c0c3",
  );
  assert.equal(
    hex(encodeInteropValue({ __datetime__: true, value: "2024-01-01T12:30:45.123456+00:00" })),
    "82ac5f5f6461746574696d655f5fc3a576616c7565d920323032342d30312d30315431323a33303a34352e3132333435362b30303a3030",
  );
});

test("interop values: floats stay float64, integral numbers are ints, Dates are sentinel maps", () => {
  assert.equal(hex(encodeInteropValue(2)), "02");
  assert.equal(hex(encodeInteropValue(-0)), "00");
  assert.equal(hex(encodeInteropValue(float64(-0))), "cb0000000000000000");
  assert.equal(hex(encodeInteropValue(2 ** 60)), "cf1000000000000000");
  assert.equal(hex(encodeInteropValue(2 ** 64)), "cb43f0000000000000");
  assert.equal(hex(encodeInteropValue(new Set([1]).size)), "01");
  const d = new Date(Date.UTC(2024, 0, 1, 12, 30, 45, 123));
  assert.deepEqual(
    encodeInteropValue({ at: d }),
    encodeInteropValue({ at: { __datetime__: true, value: "2024-01-01T12:30:45.123000+00:00" } }),
  );
  // Unlike keys, an encoded value is an independent copy.
  const a = encodeInteropValue("first");
  encodeInteropValue("second");
  assert.equal(hex(a), "a56669727374");
});

test("interop values: rejections are SerializationErrors naming the path", () => {
  const bad = (v: unknown, path: string) =>
    assert.throws(() => encodeInteropValue(v), (e: unknown) => {
      assert.ok(e instanceof SerializationError, String(e));
      assert.ok(e.message.includes(path), e.message);
      return true;
    });
  bad(NaN, "value");
  bad({ a: [1, Infinity] }, "value.a[1]");
  bad({ s: new Set([1]) }, "value.s");
  bad([new User(1)], "value[0]");
  bad(undefined, "value");
  bad({ k: 2n ** 64n }, "value.k");
  bad("\udc00", "value");
});

test("interop values: decode plain msgpack, bigints beyond the safe range, sentinels to Date", () => {
  const v = decodeInteropValue(
    unhex("83a162cf0000000000000005a161cfffffffffffffffffa163d38000000000000000"),
  );
  assert.deepEqual(v, { b: 5, a: 18446744073709551615n, c: -9223372036854775808n });
  assert.deepEqual(decodeInteropValue(unhex("92c40201ffcb3ff8000000000000")), [
    new Uint8Array([1, 255]),
    1.5,
  ]);
  assert.deepEqual(decodeInteropValue(unhex("ca3fc00000")), 1.5); // a float32 written elsewhere
  const round = decodeInteropValue(
    encodeInteropValue({ at: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 5)) }),
  );
  assert.deepEqual(round, { at: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 5)) });
  // Python's isoformat with microseconds and a non-UTC offset.
  const py = encodeInteropValue({ __datetime__: true, value: "2024-01-01T18:00:45.123456+05:30" });
  assert.deepEqual(decodeInteropValue(py), new Date("2024-01-01T12:30:45.123Z"));
  // A date sentinel has no JavaScript type and stays a map.
  const date = { __date__: true, value: "2024-01-01" };
  assert.deepEqual(decodeInteropValue(encodeInteropValue(date)), date);
  // Round trip of a nested value, compared with an independent decoder.
  const value = { list: [1, -2, "x", null, false, { deep: new Uint8Array([7]) }], n: 1.25 };
  const bytes = encodeInteropValue(value);
  assert.deepEqual(msgpackDecode(bytes), value);
  assert.deepEqual(decodeInteropValue(bytes), value);
});

test("interop values: corrupt or foreign bytes are SerializationErrors", () => {
  const bad = (h: string) => assert.throws(() => decodeInteropValue(unhex(h)), SerializationError);
  bad(""); // empty
  bad("0101"); // trailing bytes
  bad("92"); // truncated
  bad("c1"); // never used
  bad("d40501"); // extension type
  bad("d6ff00000001"); // timestamp extension
  bad("81a95f5f70726f746f5f5f01"); // __proto__ key
  bad("434b0301"); // a Python CK frame
  bad("ddffffffff"); // array32 claiming 4 billion elements
  // deno-lint-ignore no-explicit-any
  assert.throws(() => decodeInteropValue("90" as any), SerializationError);
});
