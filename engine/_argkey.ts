/**
 * Cheap L1 keys from call arguments (no hashing).
 *
 * The L1 key must separate at least what the protocol key separates (two calls with one L1 key
 * must have one protocol key), otherwise L1 could answer a call with another call's value. So the
 * encoding is injective over what it accepts — numbers, strings, booleans, `null`, bigints,
 * `Date`s, `Uint8Array`s, arrays and plain objects (keys sorted), and with an L2 also `Map`s,
 * `float64(x)` markers the key hash writes as a number, `Uint8Array` subclasses and (interop keys)
 * `Set`s — and it gives up (`undefined`) on anything else (class instances, …), in which case the
 * engine uses the full protocol key as the L1 key.
 *
 * `undefined` follows the protocol key: trailing `undefined` arguments are left out (`f("a")` and
 * `f("a", undefined)` are one call) and so are object properties holding `undefined`
 * (`{ a: 1, b: undefined }` is `{ a: 1 }`); `undefined` elsewhere (before a defined argument, in
 * an array) makes it give up, and the protocol key then refuses the call with its path.
 *
 * Values nested more than {@linkcode MAX_DEPTH} containers deep make it give up too, so a cyclic
 * (`a.self = a`) or very deep argument costs a few steps here, never the call stack; the protocol
 * key then refuses it with a `CacheKeyError` naming the path (one place decides the
 * limit and words the error).
 *
 * A single number argument is its own key (a `Map` number key: no string is built).
 *
 * `-0` and `0` share one cheap key (the protocol key does not tell them apart). For a function
 * with an L2, every other pair of arguments its key hash writes alike shares one cheap key too
 * ({@linkcode KeyForm}): two cheap keys for one protocol key would be two L1 entries of one L2
 * entry, and an invalidation (local, or a remote key event) reaches only the one its call names,
 * while the other kept answering the invalidated value. With the standard key hash
 * ({@linkcode STD_FORM}, the `STD` profile of `protocol/_canonical.ts`):
 *
 * - a bigint within the safe integers has the key of the number it equals (`f(1n)` is `f(1)`);
 * - a `Date` the key of its Python ISO text (`f(new Date(0))` is
 *   `f("1970-01-01T00:00:00+00:00")`);
 * - `float64(x)` the key of `x` when that is not a safe integer (a float either way);
 * - a `Map` with string keys the key of the plain object with its entries;
 * - a `Uint8Array` subclass (Node's `Buffer`) the key of the `Uint8Array` of its bytes.
 *
 * With the interop key hash ({@linkcode ARGS_FORM}, the `ARGS` profile), the same except that a
 * bigint has its number's key whenever it equals one exactly, a `Date` the key of its seconds
 * (`f(new Date(1500))` is `f(1.5)`), `float64(x)` always the key of `x`, and a `Set` the key of
 * the array of its distinct elements in the order of their encodings.
 *
 * An L1-only function keeps them apart ({@linkcode APART}: each computes its own value; no L2
 * entry joins them). A function with `pythonArgs` and an L2 takes the key of the Python call its
 * `pythonArgs` maps the arguments to (what is hashed, `engine/_keys.ts` `fastKey`), not of the
 * arguments: a mapping may read what this key leaves out (key order, `-0`, …).
 *
 * {@linkcode customKey} builds the protocol key of a function with a `key` option, keeping
 * different key strings apart where `finalizeKey` alone would not.
 *
 * @module
 */

import { CacheKeyError } from "../errors.ts";
import {
  argBytes,
  compareBytes,
  definedLength,
  Float64,
  isWellFormed,
  pythonIsoformat,
} from "../protocol/internal.ts";
import { blake2b256Hex, finalizeKey, KEY_PREFIX_LENGTH } from "../protocol/keys.ts";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;
const MIN_INT64 = -(2n ** 63n);
const TWO64 = 2n ** 64n;

/** L1 key: a number (single numeric argument) or a string. */
export type ArgKey = number | string;

/**
 * Which arguments share one cheap key beyond `-0` and `0` (see the module documentation):
 * {@linkcode APART} none; {@linkcode STD_FORM} those the standard key hash (`argsHash`, the
 * `STD` profile) writes alike; {@linkcode ARGS_FORM} those the interop key hash (the `ARGS`
 * profile) writes alike.
 */
export type KeyForm = 0 | 1 | 2;
/** Every type apart (an L1-only function: each computes its own value). */
export const APART: KeyForm = 0;
/** As the standard key hash: a safe bigint is its number, a `Date` its ISO text, … */
export const STD_FORM: KeyForm = 1;
/** As the interop key hash: an exact bigint is its number, a `Date` its seconds, … */
export const ARGS_FORM: KeyForm = 2;

/** Nesting beyond which the cheap key gives up (the protocol key takes over). */
export const MAX_DEPTH = 8;

/**
 * The L1 key of `args`, or `undefined` when the arguments need the protocol key. `form`: which
 * arguments hashed alike share one key (see {@linkcode KeyForm}).
 */
export function argKey(args: readonly unknown[], form: KeyForm = APART): ArgKey | undefined {
  const n = args[args.length - 1] === undefined ? definedLength(args) : args.length;
  if (n === 1) {
    const a = args[0];
    if (typeof a === "number") return a === 0 ? 0 : a; // -0 and 0 hash alike in the protocol
    if (typeof a === "string") return "s" + a;
    if (form !== APART) {
      // Hashed as that number or string: one protocol key, one L1 key.
      const x = alias(a, form);
      if (x !== undefined) return typeof x === "number" ? (x === 0 ? 0 : x) : "s" + x;
    }
  } else if (n === 0) return "";
  let out = "";
  for (let i = 0; i < n; i++) {
    const part = enc(args[i], 0, form);
    if (part === undefined) return undefined;
    out += part;
  }
  return "a" + out;
}

/**
 * The L1 key of the Python call `args`, `kwargs` (a function with `pythonArgs`: its result, which
 * the standard key hash writes as `[args, kwargs]`), or `undefined` when it needs the protocol
 * key. Without keyword arguments (none, or all `undefined`) it is `argKey(args, STD_FORM)`; with
 * some, `w`, their part, then the arguments' key (a number as its part), which no `argKey` key
 * starts with.
 */
export function callKey(
  args: readonly unknown[],
  kwargs: Readonly<Record<string, unknown>>,
): ArgKey | undefined {
  const k = argKey(args, STD_FORM);
  if (k === undefined) return undefined;
  let named = false;
  for (const name in kwargs) {
    if (Object.hasOwn(kwargs, name) && kwargs[name] !== undefined) {
      named = true;
      break;
    }
  }
  if (!named) return k;
  const kw = enc(kwargs, 0, STD_FORM);
  if (kw === undefined) return undefined;
  return "w" + kw + (typeof k === "number" ? num(k) : k);
}

/**
 * The number or string the key hash of `form` writes `v` as, when it writes it as one: a bigint
 * that equals a number (`STD_FORM`: a safe integer; `ARGS_FORM`: any exact one within the 64-bit
 * range), a valid `Date` (`STD_FORM`: its Python ISO text; `ARGS_FORM`: its seconds), and
 * `float64(x)` (`STD_FORM`: when `x` is not a safe integer, which it writes as an int; `ARGS_FORM`:
 * always); else `undefined`.
 */
function alias(v: unknown, form: KeyForm): number | string | undefined {
  if (typeof v === "bigint") {
    if (form === STD_FORM) return v >= MIN_SAFE && v <= MAX_SAFE ? Number(v) : undefined;
    if (v < MIN_INT64 || v >= TWO64) return undefined; // refused by the hash: kept apart
    const x = Number(v);
    return BigInt(x) === v ? x : undefined;
  }
  if (v instanceof Date) {
    const t = v.getTime();
    if (t !== t) return undefined;
    return form === STD_FORM ? pythonIsoformat(v) ?? undefined : t / 1000;
  }
  if (v instanceof Float64) {
    const x = v.value;
    // Not a number: a marker made without `float64()` or changed since (`value` is writable at
    // run time). The hash writes what it makes of it, no key of a number or string's.
    if (typeof x !== "number") return undefined;
    return form === ARGS_FORM || !Number.isSafeInteger(x) ? x : undefined;
  }
  return undefined;
}

function num(v: number): string {
  return "n" + (v === 0 ? "0" : String(v)) + ";";
}

function str(v: string): string {
  return "s" + v.length + ":" + v;
}

/** One argument's part of the key; `form` as in {@linkcode argKey}. */
function enc(v: unknown, depth: number, form: KeyForm): string | undefined {
  switch (typeof v) {
    case "number":
      return num(v);
    case "string":
      return str(v);
    case "boolean":
      return v ? "T" : "F";
    case "bigint": {
      const x = form === APART ? undefined : alias(v, form);
      return typeof x === "number" ? num(x) : "b" + v.toString() + ";";
    }
    case "object": {
      if (v === null) return "z";
      // The limit counts containers only: a leaf object (a `Date`, `float64(x)`, bytes) at the
      // limit keeps the key of the number or string it is hashed alike with.
      if (Array.isArray(v)) return depth >= MAX_DEPTH ? undefined : list(v, depth, form);
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) {
        if (depth >= MAX_DEPTH) return undefined;
        const keys = Object.keys(v).sort();
        let s = "";
        let count = 0;
        for (const k of keys) {
          const item = (v as Record<string, unknown>)[k];
          if (item === undefined) continue; // left out, as the protocol key does
          const p = enc(item, depth + 1, form);
          if (p === undefined) return undefined;
          s += k.length + ":" + k + p;
          count++;
        }
        return "{" + count + ":" + s;
      }
      if (proto === Uint8Array.prototype || (form !== APART && v instanceof Uint8Array)) {
        const u = v as Uint8Array;
        if (u.length > 4096) return undefined;
        let s = "x" + u.length + ":";
        for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
        return s;
      }
      if (v instanceof Date) {
        if (form !== APART) {
          const x = alias(v, form);
          if (x === undefined) return undefined;
          return typeof x === "number" ? num(x) : str(x);
        }
        const t = v.getTime();
        return Number.isNaN(t) ? undefined : "d" + t + ";";
      }
      if (form === APART) return undefined;
      if (v instanceof Float64) {
        const x = alias(v, form);
        return x === undefined ? undefined : num(x as number);
      }
      if (depth >= MAX_DEPTH) return undefined;
      if (v instanceof Map) return map(v, depth, form);
      if (v instanceof Set && form === ARGS_FORM) return set(v, depth);
      return undefined;
    }
    default:
      return undefined; // undefined (see the module documentation), functions, symbols
  }
}

function list(v: readonly unknown[], depth: number, form: KeyForm): string | undefined {
  let s = "[" + v.length + ":";
  for (let i = 0; i < v.length; i++) {
    const p = enc(v[i], depth + 1, form);
    if (p === undefined) return undefined;
    s += p;
  }
  return s;
}

/** A `Map` as the plain object with its entries (string keys, no `undefined`: else refused). */
function map(m: Map<unknown, unknown>, depth: number, form: KeyForm): string | undefined {
  const keys: string[] = [];
  for (const k of m.keys()) {
    if (typeof k !== "string") return undefined;
    keys.push(k);
  }
  keys.sort();
  let s = "{" + keys.length + ":";
  for (const k of keys) {
    const item = m.get(k);
    if (item === undefined) return undefined;
    const p = enc(item, depth + 1, form);
    if (p === undefined) return undefined;
    s += k.length + ":" + k + p;
  }
  return s;
}

/**
 * A `Set` (interop keys only: the standard hash refuses it) as the array the interop hash writes:
 * its distinct elements in the byte order of their encodings.
 */
function set(v: Set<unknown>, depth: number): string | undefined {
  const items: { bytes: Uint8Array; key: string }[] = [];
  for (const item of v) {
    const key = enc(item, depth + 1, ARGS_FORM);
    if (key === undefined) return undefined;
    const bytes = argBytes(item);
    if (bytes === undefined) return undefined;
    items.push({ bytes, key });
  }
  items.sort((a, b) => compareBytes(a.bytes, b.bytes));
  let s = "";
  let count = 0;
  for (let i = 0; i < items.length; i++) {
    if (i > 0 && compareBytes(items[i].bytes, items[i - 1].bytes) === 0) continue;
    s += items[i].key;
    count++;
  }
  return "[" + count + ":" + s;
}

const ESCAPED = /[% \n\r]/g;
const ESCAPES: Record<string, string> = { "%": "%25", " ": "%20", "\n": "%0A", "\r": "%0D" };
/** What `finalizeKey` makes of a key longer than 250 characters: 50 of them, `:`, 32 hex digits. */
const SHORTENED = /^.{50}:[0-9a-f]{32}$/su;
const SHORT_LENGTH = KEY_PREFIX_LENGTH + 33; // in code points; 1 or 2 UTF-16 units each

/**
 * The protocol key of a call of a function with a `key` option: `prefix` (`…:args:`) followed by
 * the key function's result `custom`, finished like a standard key, except that two different
 * results never share a key. `finalizeKey` alone would merge `"a b"` and `"a_b"` (spaces and line
 * breaks become `_`), so `%`, spaces, `\n` and `\r` are percent-encoded first (other results are
 * unchanged); a result ending in `:lock` (what would name another key's Redis stampede lock)
 * has that `:` encoded as `%3A`; a result holding a lone surrogate is refused (`CacheKeyError`);
 * and a short key shaped like a shortened one (50 characters, `:`, 32 hex digits) is
 * shortened itself, so a result cannot name another call's shortened key.
 */
export function customKey(prefix: string, custom: string): string {
  // A lone surrogate has no UTF-8 form: Redis and the file backend would store the key with
  // U+FFFD in its place, one entry for "a\uD800", "a\uDC00" and "a\uFFFD" (as arguments are,
  // such a key is refused).
  if (!isWellFormed(custom)) {
    throw new CacheKeyError("key", "the key holds a lone surrogate (not well-formed Unicode)");
  }
  ESCAPED.lastIndex = 0;
  let raw = prefix + (ESCAPED.test(custom) ? custom.replace(ESCAPED, (c) => ESCAPES[c]) : custom);
  // `<key>:lock` is the Redis stampede lock of `<key>` (cachekit-py's name too): a result ending
  // in ":lock" must not name another result's lock, so its last ":" is encoded ("%" never stands
  // for itself after the escaping above, so this stays injective).
  if (raw.endsWith(":lock")) raw = raw.slice(0, -5) + "%3Alock";
  if (
    raw.length < SHORT_LENGTH || raw.length > 2 * SHORT_LENGTH || !SHORTENED.test(raw)
  ) {
    return finalizeKey(raw);
  }
  const head = Array.from(raw).slice(0, KEY_PREFIX_LENGTH).join("");
  return `${head}:${blake2b256Hex(new TextEncoder().encode(raw)).slice(0, 32)}`;
}
