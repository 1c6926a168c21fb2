/**
 * The pre-pass of the JSON serializers (`json`, `orjson`): refuse what `JSON.stringify` would
 * silently change, and say what the write will reshape and whether every object's keys are
 * already in code point order (so `orjson` can use `JSON.stringify` as it is).
 *
 * A plain walk: much cheaper than a `replacer` callback, which `JSON.stringify` calls through its
 * native boundary for every value.
 *
 * @module
 */
import { SerializationError } from "../errors.ts";

/** Flag of {@linkcode checkJson}: decoding will not give back the value itself. */
export const RESHAPED = 1;
/** Flag of {@linkcode checkJson}: some object's own keys are not in code point order. */
export const UNSORTED = 2;

/** Nesting limit (a circular reference is refused by it). */
export const MAX_DEPTH = 512;

/**
 * Throw the serializer's refusal.
 *
 * @param key The property holding the value (`""`: the value itself).
 * @param what Why it is refused, and what to do.
 */
export function refuse(key: string, what: string): never {
  const where = key === "" ? "value" : `property ${JSON.stringify(key)}`;
  throw new SerializationError(`Cannot serialize ${where} as JSON: ${what}`);
}

let flags = 0;

/** Built-ins whose state lives in internal slots: `JSON.stringify` writes them as `{}`. */
const OPAQUE: { name: string; of: (v: object) => boolean }[] = [
  { name: "RegExp", of: (v) => v instanceof RegExp },
  { name: "Error", of: (v) => v instanceof Error },
  { name: "Promise", of: (v) => v instanceof Promise },
  { name: "WeakMap", of: (v) => v instanceof WeakMap },
  { name: "WeakSet", of: (v) => v instanceof WeakSet },
];

/**
 * `a` before `b` in Unicode code point order (UTF-8 byte order, as Python and orjson sort keys).
 * JavaScript's `<` compares UTF-16 code units, which puts U+10000 and above (surrogates) before
 * U+E000..U+FFFF: the first differing unit is remapped so that surrogates sort last.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800) x = x < 0xe000 ? x + 0x2000 : x - 0x800;
    if (y >= 0xd800) y = y < 0xe000 ? y + 0x2000 : y - 0x800;
    return x - y;
  }
  return a.length - b.length;
}

/**
 * Walk `value`; throw {@linkcode SerializationError} for what JSON cannot hold.
 *
 * @returns {@linkcode RESHAPED} and/or {@linkcode UNSORTED}.
 */
export function checkJson(value: unknown): number {
  flags = 0;
  check(value, "", 0);
  return flags;
}

function check(v: unknown, key: string, depth: number): void {
  switch (typeof v) {
    case "number":
      if (!Number.isFinite(v)) refuse(key, `${v} has no JSON form`);
      if (v === 0 && 1 / v < 0) flags |= RESHAPED; // -0 is written as 0
      return;
    case "bigint":
      refuse(key, "a bigint has no JSON form (use the std serializer)");
    // falls through (unreachable)
    case "function":
    case "symbol":
      refuse(key, `a ${typeof v} cannot be serialized`);
    // falls through (unreachable)
    case "object": {
      if (v === null) return;
      if (depth >= MAX_DEPTH) {
        refuse(key, `nested deeper than ${MAX_DEPTH} levels (a circular reference?)`);
      }
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const x = v[i];
          if (
            typeof x === "object" ? x !== null : typeof x !== "string" && typeof x !== "boolean"
          ) {
            check(x, key, depth + 1);
          }
        }
        return;
      }
      const plain = Object.getPrototypeOf(v) === Object.prototype;
      // Before `toJSON`: Node's Buffer has one (writing `{type: "Buffer", data: [...]}`).
      if (!plain && (ArrayBuffer.isView(v) || v instanceof ArrayBuffer)) {
        refuse(key, "binary data has no JSON form (use the std serializer)");
      }
      if (typeof (v as { toJSON?: unknown }).toJSON === "function") {
        // Date & co: read back as their text. Another toJSON may return an object: its keys
        // are sorted (and it is checked) by the sorted writer.
        flags |= v instanceof Date ? RESHAPED : RESHAPED | UNSORTED;
        return;
      }
      if (!plain) {
        if (v instanceof Map || v instanceof Set) {
          refuse(key, `a ${v.constructor.name} would become {} (convert it to an object or array)`);
        }
        for (const o of OPAQUE) {
          if (o.of(v)) refuse(key, `a ${o.name} would become {} (convert it to an object)`);
        }
        // Class instances, null-prototype objects, boxed primitives: read back as plain data.
        flags |= RESHAPED;
      }
      let prev: string | undefined;
      for (const k in v) {
        if (!Object.hasOwn(v, k)) continue;
        if (prev !== undefined && (flags & UNSORTED) === 0 && compareCodePoints(prev, k) > 0) {
          flags |= UNSORTED;
        }
        prev = k;
        const x = (v as Record<string, unknown>)[k];
        if (typeof x === "object" ? x !== null : typeof x !== "string" && typeof x !== "boolean") {
          check(x, k, depth + 1);
        }
      }
      return;
    }
    case "undefined":
      if (depth === 0) refuse(key, "undefined has no JSON form");
      flags |= RESHAPED; // an omitted property, or null in an array
      return;
    default:
      return;
  }
}
