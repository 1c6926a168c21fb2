/**
 * The orjson serializer (`"orjson"`): the JSON that cachekit-py 0.3.0's `OrjsonSerializer` writes
 * and reads, so that a TypeScript function and a Python `@cache(serializer="orjson")` share
 * entries.
 *
 * 0.3.0 writes `orjson.dumps(obj, option=OPT_SORT_KEYS)`: compact (no white space), object keys
 * sorted (orjson compares them as Rust `&str`, byte by byte: UTF-8 order, which is Unicode code
 * point order), non-ASCII text as raw UTF-8. This serializer writes the same bytes for the values
 * both languages have: keys in code point order at every level (not JavaScript's UTF-16 order,
 * which differs for characters above U+FFFF), numbers as `JSON.stringify` writes them.
 *
 * The entry around these bytes (the 8-byte xxHash3-64 prefix with integrity checking on, the
 * document with `"serializer": "orjson"` and format `orjson`, no LZ4) is the stored-value codec's
 * (`protocol/_digest_layout.ts`): this class only turns values into JSON and back.
 *
 * What it refuses and how values come back follow the `json` serializer (`json.ts`), with what
 * orjson itself would do on the other side:
 *
 * - `NaN` and `±Infinity` are refused (orjson would write `null`, another value); a `bigint`,
 *   binary data (orjson refuses `bytes`), `Map`, `Set` and the other objects `JSON.stringify`
 *   turns into `{}` are refused with the reason, as the `json` serializer does; so is text holding
 *   a lone surrogate, which orjson refuses to write and Python could not read back as written.
 * - `Date` is written as its ISO text and comes back as a string; orjson writes a `datetime` as
 *   ISO text too (`2025-11-14T10:30:00+00:00`), and it reaches JavaScript as that string.
 * - An integer is a JSON number without a fraction, and Python reads it as an `int`; a Python
 *   `float` such as `1.0` reaches JavaScript as the number `1`. Reading, an integer literal beyond
 *   ±(2^53 − 1) is refused (a miss): JavaScript's number would round it, and Python's integers
 *   are exact up to 64 bits in orjson.
 * - Objects come back with their keys in the order written, code point order (JavaScript still
 *   lists array-index keys such as `"2"` first); the call that missed answers the same.
 * - Bytes that are not UTF-8 JSON are refused.
 *
 * Hand-written where it must differ from `JSON.stringify`: the key order. A value whose keys are
 * already in code point order (the pre-pass tells, `_json_check.ts`) goes through
 * `JSON.stringify` as it is; another is copied with sorted keys first (only the objects that need
 * it), and one with array-index keys (`"10"`, which V8 always enumerates first) is written by
 * hand.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrjsonSerializer } from "@cachekit/core/serializers";
 *
 * const orjson = new OrjsonSerializer();
 * const bytes = orjson.serialize({ name: "Ada", id: 1, tags: ["x"] });
 * assert.equal(new TextDecoder().decode(bytes), '{"id":1,"name":"Ada","tags":["x"]}');
 * assert.deepEqual(orjson.deserialize(bytes), { id: 1, name: "Ada", tags: ["x"] });
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import type { Serializer } from "./types.ts";
import { markReshaped } from "./_reshaped.ts";
import { checkJson, compareCodePoints, refuse, RESHAPED, UNSORTED } from "./_json_check.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A lone surrogate as `JSON.stringify` escapes it (pairs are written as they are). */
const LONE_SURROGATE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f][0-9a-f]{2}/;

/**
 * The JSON text of a value whose keys need sorting, written by hand (for objects with array-index
 * keys, see {@linkcode sortedCopy}): `JSON.stringify`'s rules (own enumerable
 * string keys, `toJSON`, boxed primitives, `undefined` and functions left out of objects and
 * `null` in arrays), keys in code point order.
 */
function sortedJson(v: unknown, key: string, depth: number): string | undefined {
  switch (typeof v) {
    case "string":
      return JSON.stringify(v);
    case "number":
      return String(v); // finite: the pre-pass refused the others; -0 is "0", as JSON.stringify
    case "boolean":
      return v ? "true" : "false";
    case "object":
      break;
    default:
      return undefined; // undefined, function, symbol (bigint was refused)
  }
  if (v === null) return "null";
  if (depth >= 512) refuse(key, "nested deeper than 512 levels (a circular reference?)");
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") {
    const j = (v as { toJSON(k: string): unknown }).toJSON(key);
    if (typeof j === "object" && j !== null) checkJson(j);
    else if (typeof j === "number" && !Number.isFinite(j)) refuse(key, `${j} has no JSON form`);
    else if (typeof j === "bigint") refuse(key, "a bigint has no JSON form");
    return sortedJson(j, key, depth + 1);
  }
  if (v instanceof Number || v instanceof String || v instanceof Boolean) {
    return JSON.stringify(v);
  }
  if (Array.isArray(v)) {
    let out = "[";
    for (let i = 0; i < v.length; i++) {
      if (i > 0) out += ",";
      out += sortedJson(v[i], String(i), depth + 1) ?? "null";
    }
    return out + "]";
  }
  const keys = Object.keys(v);
  if (keys.length > 1) keys.sort(compareCodePoints);
  let out = "{";
  let first = true;
  for (const k of keys) {
    const s = sortedJson((v as Record<string, unknown>)[k], k, depth + 1);
    if (s === undefined) continue;
    out += (first ? "" : ",") + JSON.stringify(k) + ":" + s;
    first = false;
  }
  return out + "}";
}

/** Thrown by {@linkcode sortedCopy} at a key V8 would enumerate first (an array index). */
const INDEX_KEY = Symbol("index key");

/**
 * `v` with every object's keys in code point order, for `JSON.stringify` (copy on write: what is
 * already sorted is shared). V8 enumerates array-index keys (`"2"`, `"10"`) first in numeric
 * order whatever the insertion order, so an object with a key starting with a digit throws
 * {@linkcode INDEX_KEY}: the value then takes {@linkcode sortedJson}.
 */
function sortedCopy(v: unknown, key: string, depth: number): unknown {
  if (typeof v !== "object" || v === null) return v;
  if (depth >= 512) refuse(key, "nested deeper than 512 levels (a circular reference?)");
  if (typeof (v as { toJSON?: unknown }).toJSON === "function") {
    const j = (v as { toJSON(k: string): unknown }).toJSON(key);
    if (typeof j !== "object" || j === null) {
      if (typeof j === "number" && !Number.isFinite(j)) refuse(key, `${j} has no JSON form`);
      if (typeof j === "bigint") refuse(key, "a bigint has no JSON form");
      return j;
    }
    checkJson(j);
    return sortedCopy(j, key, depth + 1);
  }
  if (Array.isArray(v)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x !== "object" || x === null) continue;
      const y = sortedCopy(x, String(i), depth + 1);
      if (y !== x) (out ??= v.slice())[i] = y;
    }
    return out ?? v;
  }
  if (v instanceof Number || v instanceof String || v instanceof Boolean) return v;
  const keys = Object.keys(v);
  let sorted = true;
  let changed: Map<string, unknown> | null = null;
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    const c = k.charCodeAt(0);
    if (c >= 0x30 && c <= 0x39) throw INDEX_KEY;
    if (sorted && i > 0 && compareCodePoints(keys[i - 1], k) > 0) sorted = false;
    const x = (v as Record<string, unknown>)[k];
    if (typeof x !== "object" || x === null) continue;
    const y = sortedCopy(x, k, depth + 1);
    if (y !== x) (changed ??= new Map()).set(k, y);
  }
  if (sorted && changed === null) return v;
  if (!sorted) keys.sort(compareCodePoints);
  // A literal, not a null-prototype object: V8 keeps the copies of like records in one fast
  // shape, which JSON.stringify walks much faster than dictionary-mode objects.
  const out: Record<string, unknown> = {};
  for (const k of keys) {
    const x = changed !== null && changed.has(k)
      ? changed.get(k)
      : (v as Record<string, unknown>)[k];
    if (k === "__proto__") {
      Object.defineProperty(out, k, {
        value: x,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    } else out[k] = x;
  }
  return out;
}

/** The JSON text of a value some of whose keys are out of code point order. */
function sortedText(value: unknown): string | undefined {
  let copy: unknown;
  try {
    copy = sortedCopy(value, "", 0);
  } catch (e) {
    if (e !== INDEX_KEY) throw e;
    return sortedJson(value, "", 0);
  }
  return JSON.stringify(copy);
}

/** Throw when the JSON text has an integer literal JavaScript's number would round. */
function checkIntegers(text: string): void {
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) { // a string: skip it, escapes included
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
      continue;
    }
    if (c !== 0x2d && (c < 0x30 || c > 0x39)) continue;
    let j = i + 1;
    let integral = true;
    for (; j < n; j++) {
      const d = text.charCodeAt(j);
      if (d >= 0x30 && d <= 0x39) continue;
      if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) integral = false;
      else break;
    }
    if (integral && !Number.isSafeInteger(Number(text.slice(i, j)))) {
      throw new SerializationError(
        `Cannot deserialize orjson: the integer ${
          text.slice(i, j)
        } is beyond 2^53 - 1, which a JavaScript number would round (cache it as a string, or use the std serializer, which reads it as a bigint)`,
      );
    }
    i = j - 1;
  }
}

/**
 * A {@linkcode Serializer} writing cachekit-py 0.3.0's orjson JSON (see the module doc). Its key
 * code is `"s"`, because 0.3.0 ends every key in `s` whatever the serializer, and its format is
 * `"orjson"`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { OrjsonSerializer } from "@cachekit/core/serializers";
 *
 * const orjson = new OrjsonSerializer();
 * assert.equal(orjson.name, "orjson");
 * assert.equal(orjson.code, "s");
 * assert.equal(orjson.format, "orjson");
 * assert.equal(new TextDecoder().decode(orjson.serialize({ b: [1.5, null], a: "é" })), '{"a":"é","b":[1.5,null]}');
 * assert.throws(() => orjson.serialize(NaN), /NaN has no JSON form/);
 * ```
 */
export class OrjsonSerializer implements Serializer {
  /** `"orjson"` (the document's `"serializer"`). */
  readonly name: string = "orjson";
  /** `"s"`: cachekit-py 0.3.0 never passes its serializer to the key generator. */
  readonly code: string = "s";
  /** `"orjson"`. */
  readonly format: string = "orjson";

  /**
   * Encode `value` as orjson's JSON (compact, keys in code point order).
   *
   * @throws {SerializationError} for values JSON would silently drop or change.
   */
  serialize(value: unknown): Uint8Array {
    let text: string | undefined;
    let flags = 0;
    try {
      flags = checkJson(value);
      text = (flags & UNSORTED) === 0 ? JSON.stringify(value) : sortedText(value);
    } catch (e) {
      if (e instanceof SerializationError) throw e;
      throw new SerializationError(
        `Cannot serialize value as JSON: ${(e as Error)?.message ?? e}`,
        { cause: e },
      );
    }
    if (text === undefined) {
      refuse("", `${value === undefined ? "undefined" : typeof value} has no JSON form`);
    }
    if (text.includes("\\ud") && LONE_SURROGATE.test(text)) {
      refuse("", "text holds a lone surrogate, which orjson refuses (not valid UTF-8)");
    }
    const bytes = encoder.encode(text);
    // Keys out of order come back sorted: the miss answers the decoded value too, so that it and
    // every later hit list the keys alike.
    if ((flags & (RESHAPED | UNSORTED)) !== 0) markReshaped(bytes);
    return bytes;
  }

  /**
   * Decode UTF-8 JSON.
   *
   * @throws {SerializationError} for bytes that are not UTF-8 JSON, and for an integer literal
   * beyond ±(2^53 − 1).
   */
  deserialize(bytes: Uint8Array): unknown {
    let text: string;
    let value: unknown;
    try {
      text = decoder.decode(bytes);
      value = JSON.parse(text);
    } catch (e) {
      throw new SerializationError(`Cannot deserialize orjson: ${(e as Error)?.message ?? e}`, {
        cause: e,
      });
    }
    if (/\d{16}/.test(text)) checkIntegers(text);
    return value;
  }
}
