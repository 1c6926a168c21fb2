// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * The orjson serializer: its bytes against the Python side's (`_python_orjson.ts`, `json.dumps`
 * playing orjson for these values) on generated objects with keys whose code point order differs
 * from JavaScript's (integer-like keys, characters above U+FFFF against U+FF00), what it refuses,
 * and the integers it will not read.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_ORJSON_DUMPS } from "../_python_orjson.ts";
import { OrjsonSerializer } from "../../serializers/mod.ts";
import { isReshaped } from "../../serializers/internal.ts";
import { SerializationError } from "../../errors.ts";
import { cache, MemoryBackend } from "../../mod.ts";

const orjson = new OrjsonSerializer();
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const utf8 = (s: string) => new TextEncoder().encode(s);
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

const KEYS = ["a", "B", "b", "10", "2", "0", "", "é", "\uff00", "😀", "\ud7ff", "a b", "é2", "z"];

/** A deterministic generator of JSON values (a small LCG: the same values on every runtime). */
function values(count: number): unknown[] {
  let seed = 12345;
  const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2147483648) % n;
  const gen = (depth: number): unknown => {
    switch (rnd(depth > 2 ? 5 : 7)) {
      case 0:
        return rnd(2000) - 1000;
      case 1:
        return [null, true, false][rnd(3)];
      case 2:
        return KEYS[rnd(KEYS.length)] + "✓";
      case 3:
        return rnd(1000) / 8; // floats with a short repr and no exponent
      case 4:
        return "text";
      case 5:
        return Array.from({ length: rnd(4) }, () => gen(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = rnd(6); i > 0; i--) o[KEYS[rnd(KEYS.length)]] = gen(depth + 1);
        return o;
      }
    }
  };
  return Array.from({ length: count }, () => gen(0));
}

test(
  "orjson: the same bytes as the Python side on generated values (keys in code point order)",
  () => {
    const vals = values(300);
    const { json } = runPythonJson<{ json: string[] }>(
      PY_ORJSON_DUMPS,
      JSON.stringify({ values: vals }),
    );
    vals.forEach((v, i) => {
      const ours = orjson.serialize(v);
      assert.equal(text(ours), text(unb64(json[i])), `value ${i}: ${JSON.stringify(v)}`);
      assert.deepEqual(orjson.deserialize(ours), v);
    });
  },
  pythonTestOptions,
);

test("orjson: key order is code point order at every level, toJSON output included", () => {
  const v = {
    "😀": 1,
    "\uff00": 2,
    "10": 3,
    "2": 4,
    b: [{ y: 1, x: 2 }],
    a: { toJSON: () => ({ d: 1, c: 2 }) },
  };
  assert.equal(
    text(orjson.serialize(v)),
    '{"10":3,"2":4,"a":{"c":2,"d":1},"b":[{"x":2,"y":1}],"＀":2,"😀":1}',
  );
  // Already sorted: written by JSON.stringify as it is, not marked reshaped.
  const sorted = orjson.serialize({ a: 1, b: [1, 2], c: { d: null } });
  assert.equal(text(sorted), '{"a":1,"b":[1,2],"c":{"d":null}}');
  assert.equal(isReshaped(sorted), false);
  const dated = orjson.serialize({ at: new Date(0) });
  assert.equal(text(dated), '{"at":"1970-01-01T00:00:00.000Z"}');
  assert.equal(isReshaped(dated), true, "a Date comes back as its text");
  assert.equal(isReshaped(orjson.serialize({ b: 1, a: 2 })), true, "keys come back sorted");
});

test("orjson: what JSON cannot hold is refused with the reason", () => {
  const cases: [unknown, RegExp][] = [
    [NaN, /NaN has no JSON form/],
    [{ x: Infinity }, /property "x" as JSON: Infinity has no JSON form/],
    [{ n: 1n }, /a bigint has no JSON form/],
    [{ b: new Uint8Array(1) }, /binary data has no JSON form/],
    [new Map(), /a Map would become \{\}/],
    [{ s: new Set([1]) }, /a Set would become \{\}/],
    [{ t: "a\ud800b" }, /lone surrogate/],
    [{ t: ["\udc00"] }, /lone surrogate/],
    [{ f: () => 1 }, /property "f" as JSON: a function cannot be serialized/],
    [undefined, /undefined has no JSON form/],
    [() => 1, /function/],
  ];
  for (const [v, re] of cases) {
    assert.throws(
      () => orjson.serialize(v),
      (e) => e instanceof SerializationError && re.test(e.message),
    );
  }
  // A backslash before `ud…` in well-formed text is no surrogate.
  assert.equal(text(orjson.serialize("\\ud800")), '"\\\\ud800"');
  assert.equal(text(orjson.serialize("😀")), '"😀"');
});

test("orjson: reading refuses integers beyond 2^53 - 1, and bytes that are not UTF-8 JSON", () => {
  for (
    const s of ["9007199254740993", "[1,-9007199254740993]", '{"a":{"b":[12345678901234567890]}}']
  ) {
    assert.throws(() => orjson.deserialize(utf8(s)), /beyond 2\^53 - 1/, s);
  }
  assert.deepEqual(
    orjson.deserialize(
      utf8(
        '["12345678901234567890",9007199254740991,1.2345678901234567e19,1e16,"\\"123456789012345678"]',
      ),
    ),
    ["12345678901234567890", 9007199254740991, 1.2345678901234567e19, 1e16, '"123456789012345678'],
  );
  assert.throws(() => orjson.deserialize(new Uint8Array([0x22, 0xff, 0x22])), SerializationError);
  assert.throws(() => orjson.deserialize(utf8("{")), SerializationError);
});

test("orjson: sorting copies, never edits the value; a __proto__ key stays a key", () => {
  const v = JSON.parse('{"b":{"y":1,"x":[{"d":1,"c":2}]},"__proto__":{"z":1},"a":2}');
  const before = JSON.stringify(v);
  assert.equal(
    text(orjson.serialize(v)),
    '{"__proto__":{"z":1},"a":2,"b":{"x":[{"c":2,"d":1}],"y":1}}',
  );
  assert.equal(JSON.stringify(v), before, "the value is untouched");
  // Array-index keys with others (V8 enumerates them first): the hand-written path.
  assert.equal(
    text(orjson.serialize({ b: 1, "10": 2, "2": 3, "!": 4 })),
    '{"!":4,"10":2,"2":3,"b":1}',
  );
});

test("orjson: a miss answers the keys in the order every later hit has them", async () => {
  const f = cache(async (_n: number) => ({ b: 1, a: { d: 1, c: 2 } }), {
    name: `orjson.order.${crypto.randomUUID()}`,
    backend: new MemoryBackend(),
    serializer: "orjson",
    circuitBreaker: false,
    timeout: false,
    backpressure: false,
  });
  const miss = await f(1);
  const hit = await f(1);
  assert.equal(JSON.stringify(miss), '{"a":{"c":2,"d":1},"b":1}');
  assert.equal(JSON.stringify(hit), JSON.stringify(miss));
});
