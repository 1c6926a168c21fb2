// The standard serializer's fast path (`serializers/_msgpack_scan.ts`): when every map in a document
// is keyed by strings other than "__proto__" and no extension but the timestamp occurs, msgpackr
// decodes maps straight to objects; otherwise the general path (maps as `Map`, then converted)
// runs. Oracle: the general path itself, forced by wrapping the same document in an array next to
// an integer-keyed map (`[doc, {1: 0}]`), which the scan refuses. For every document the scan
// vouches for, both decodes must be deep-equal (or both throw SerializationError); and the scan
// must refuse whatever the object mode would decode differently.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { objectSafe } from "../../serializers/_msgpack_scan.ts";
import { CalendarDate, deserialize, serialize, TimeOfDay } from "../../serializers/mod.ts";
import { SerializationError } from "../../errors.ts";

/** `[doc, {1: 0}]`: decoded by the general path, whose first element is `doc`'s value. */
function viaMaps(doc: Uint8Array): unknown {
  const out = new Uint8Array(doc.length + 4);
  out[0] = 0x92;
  out.set(doc, 1);
  out.set([0x81, 0x01, 0x00], doc.length + 1);
  assert.equal(objectSafe(out), false);
  return (deserialize(out) as unknown[])[0];
}

function outcome(f: () => unknown): { value?: unknown; error?: string } {
  try {
    return { value: f() };
  } catch (e) {
    assert.ok(e instanceof SerializationError, `not a SerializationError: ${e}`);
    return { error: "SerializationError" };
  }
}

const utf8 = new TextEncoder();
const str = (s: string) => {
  const b = utf8.encode(s);
  return [0xa0 | b.length, ...b];
};

test("scan: vouches for string-keyed documents and refuses what the object mode would change", () => {
  const yes: number[][] = [
    [0xc0],
    [0x80],
    [0x81, ...str("a"), 0x01],
    [0x92, 0x81, ...str("k"), 0xc3, 0xa0],
    [0xd9, 3, 0x61, 0x62, 0x63], // str 8
    [0xc4, 2, 1, 2], // bin 8
    [0xd6, 0xff, 0, 0, 0, 0], // timestamp 32
    [0xd7, 0xff, 0, 0, 0, 0, 0, 0, 0, 0], // timestamp 64
    [0xc7, 12, 0xff, ...new Array(12).fill(0)], // timestamp 96
    [0xde, 0, 1, 0xd9, 1, 0x78, 0x00], // map 16 with a str-8 key
    [0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
  ];
  for (const b of yes) assert.equal(objectSafe(Uint8Array.from(b)), true, b.join(","));
  const no: [string, number[]][] = [
    ["integer key", [0x81, 0x01, 0x02]],
    ["nil key", [0x81, 0xc0, 0x02]],
    ["bin key", [0x81, 0xc4, 1, 0x61, 0x02]],
    ["array key", [0x81, 0x90, 0x02]],
    ["__proto__ key", [0x81, ...str("__proto__"), 0x01]],
    ["nested integer key", [0x91, 0x81, ...str("a"), 0x81, 0x05, 0x06]],
    ["extension 1", [0xd4, 0x01, 0x00]],
    ["msgpackr record extension", [0xc7, 0x01, 0x72, 0x90]],
    ["trailing byte", [0x01, 0x02]],
    ["empty", []],
    ["truncated array", [0x92, 0x01]],
    ["truncated str", [0xa3, 0x61]],
    ["truncated map", [0x82, ...str("a"), 0x01]],
    ["reserved byte", [0xc1]],
    ["huge array count", [0xdd, 0xff, 0xff, 0xff, 0xff, 0x01]],
    ["too deep", new Array(600).fill(0x91).concat([0x01])],
  ];
  for (const [what, b] of no) assert.equal(objectSafe(Uint8Array.from(b)), false, what);
});

test("scan: the fast path decodes exactly what the general path does", () => {
  let seed = 11;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)];
  const leaf = (): unknown =>
    pick<() => unknown>([
      () => Math.floor(rnd() * 1000) - 500,
      () => rnd() * 1e6,
      () => 2n ** 60n + BigInt(Math.floor(rnd() * 1000)),
      () => "s" + Math.floor(rnd() * 100),
      () => "é😀".repeat(Math.floor(rnd() * 3)),
      () => "L".repeat(32 + Math.floor(rnd() * 240)), // str 8: stepped over in place
      () => null,
      () => rnd() < 0.5,
      () => new Uint8Array(Math.floor(rnd() * 5)).map(() => rnd() * 256),
      () => new Date(Math.floor(rnd() * 2e12)),
      () => new CalendarDate(2000 + Math.floor(rnd() * 30), 1 + Math.floor(rnd() * 12), 1),
      () => new TimeOfDay(Math.floor(rnd() * 24), 5, 6),
    ])();
  const value = (depth: number): unknown => {
    if (depth > 3 || rnd() < 0.35) return leaf();
    const n = Math.floor(rnd() * 4);
    switch (Math.floor(rnd() * 4)) {
      case 0:
        return Array.from({ length: n }, () => value(depth + 1));
      case 1: {
        const o: Record<string, unknown> = {};
        for (let i = 0; i < n; i++) {
          const k = pick(["a", "value", "__date__", "k" + i, "x".repeat(40), "__proto__"]);
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
      case 2: // a map with non-string keys: the general path, wherever it sits
        return new Map<unknown, unknown>([[Math.floor(rnd() * 9), value(depth + 1)]]);
      default: {
        const o: Record<string, unknown> = { value: "2024-01-31" };
        o[pick(["__datetime__", "__date__", "__time__", "other"])] = rnd() < 0.8;
        return o;
      }
    }
  };
  let fast = 0;
  for (let i = 0; i < 1500; i++) {
    let doc: Uint8Array;
    try {
      doc = serialize(value(0));
    } catch {
      continue; // e.g. a marker-shaped object whose text is not a valid date for its marker
    }
    const docs = [doc];
    // and mutated copies: a flipped byte anywhere
    for (let m = 0; m < 3; m++) {
      const bad = doc.slice();
      bad[Math.floor(rnd() * bad.length)] = Math.floor(rnd() * 256);
      docs.push(bad);
    }
    for (const d of docs) {
      if (!objectSafe(d)) continue;
      fast++;
      assert.deepEqual(outcome(() => deserialize(d)), outcome(() => viaMaps(d)), d.join(","));
    }
  }
  assert.ok(fast > 1000, `only ${fast} documents took the fast path`);
});

test("scan: a value stepped over in place (one-byte scalar, string, float 64) is bounds-checked", () => {
  // {"a": "xy"} / ["xy", 1] whole, then cut inside the string, and a nested map's marker path kept.
  const map = new Uint8Array([0x81, 0xa1, 0x61, 0xa2, 0x78, 0x79]);
  const arr = new Uint8Array([0x92, 0xa2, 0x78, 0x79, 0x01]);
  assert.equal(objectSafe(map), true);
  assert.equal(objectSafe(arr), true);
  for (let cut = 1; cut < map.length; cut++) assert.equal(objectSafe(map.subarray(0, cut)), false);
  for (let cut = 1; cut < arr.length; cut++) assert.equal(objectSafe(arr.subarray(0, cut)), false);
  // str 8 and float 64 values (most of a record's longer strings and fractions), cut anywhere.
  const long = "y".repeat(40);
  const docs = [{ a: long, f: 1.5 }, { f: 1.5, a: long }, [long, 1.5, 2], [2, 1.5, long]];
  for (const doc of docs.map((v) => serialize(v))) {
    assert.ok(doc.includes(0xd9) && doc.includes(0xcb));
    assert.equal(objectSafe(doc), true);
    for (let cut = 1; cut < doc.length; cut++) {
      assert.equal(objectSafe(doc.subarray(0, cut)), false, `cut at ${cut}`);
    }
  }
  // A date marker below scalars and short strings still reads back as a date.
  const v = { s: "ok", n: 1, list: ["x", true, { at: new CalendarDate(2024, 1, 31) }] };
  const back = deserialize(serialize(v)) as typeof v;
  assert.ok(back.list[2] instanceof Object);
  assert.equal(String((back.list[2] as { at: CalendarDate }).at), "2024-01-31");
});
