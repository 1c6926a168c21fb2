/**
 * Cheap L1 keys from call arguments (no hashing).
 *
 * The L1 key must separate at least what the protocol key separates (two calls with one L1 key
 * must have one protocol key), otherwise L1 could answer a call with another call's value. So the
 * encoding is injective over what it accepts — numbers, strings, booleans, `null`, bigints,
 * `Date`s, `Uint8Array`s, arrays and plain objects (keys sorted) — and it gives up (`undefined`) on
 * anything else (class instances, protocol markers such as `float64(3)`), in which case the engine
 * uses the full protocol key as the L1 key.
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
 * Arguments the protocol key does not tell apart share one cheap key where that is cheap to see:
 * `-0` and `0`, and, for a function with an L2 (`shared`), a bigint within the safe integers and
 * the number it equals (`f(1n)` is `f(1)`). Two cheap keys for one protocol key would be two L1
 * entries of one L2 entry, and an invalidation (local, or a remote key event) reaches only the
 * one its call names: the other kept answering the invalidated value. An L1-only function keeps
 * them apart (each computes its own value; no L2 entry joins them).
 *
 * {@linkcode customKey} builds the protocol key of a function with a `key` option, keeping
 * different key strings apart where `finalizeKey` alone would not.
 *
 * @module
 */

import { CacheKeyError } from "../errors.ts";
import { definedLength, isWellFormed } from "../protocol/internal.ts";
import { blake2b256Hex, finalizeKey, KEY_PREFIX_LENGTH } from "../protocol/keys.ts";

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = -MAX_SAFE;
/** `shared` of the {@linkcode argKey} call under way (read by `enc`). */
let bigAsNumber = false;

/** L1 key: a number (single numeric argument) or a string. */
export type ArgKey = number | string;

/** Nesting beyond which the cheap key gives up (the protocol key takes over). */
export const MAX_DEPTH = 8;

/**
 * The L1 key of `args`, or `undefined` when the arguments need the protocol key. `shared`: the
 * function has an L2, whose one entry per protocol key its L1 entries copy; a bigint within the
 * safe integers then has the key of the number it equals (see the module documentation).
 */
export function argKey(args: readonly unknown[], shared = false): ArgKey | undefined {
  const n = args[args.length - 1] === undefined ? definedLength(args) : args.length;
  if (n === 1) {
    const a = args[0];
    if (typeof a === "number") return a === 0 ? 0 : a; // -0 and 0 hash alike in the protocol
    if (typeof a === "string") return "s" + a;
    if (shared && typeof a === "bigint" && a >= MIN_SAFE && a <= MAX_SAFE) {
      return a === 0n ? 0 : Number(a); // hashed as that number: one protocol key, one L1 key
    }
  } else if (n === 0) return "";
  bigAsNumber = shared;
  let out = "";
  for (let i = 0; i < n; i++) {
    const part = enc(args[i], 0);
    if (part === undefined) return undefined;
    out += part;
  }
  return "a" + out;
}

function enc(v: unknown, depth: number): string | undefined {
  switch (typeof v) {
    case "number":
      return "n" + (v === 0 ? "0" : String(v)) + ";";
    case "string":
      return "s" + v.length + ":" + v;
    case "boolean":
      return v ? "T" : "F";
    case "bigint":
      // Within the safe integers (`shared`), the number's key: the protocol key is the same.
      return (bigAsNumber && v >= MIN_SAFE && v <= MAX_SAFE ? "n" : "b") + v.toString() + ";";
    case "object": {
      if (v === null) return "z";
      if (depth >= MAX_DEPTH) return undefined;
      if (Array.isArray(v)) {
        let s = "[" + v.length + ":";
        for (let i = 0; i < v.length; i++) {
          const p = enc(v[i], depth + 1);
          if (p === undefined) return undefined;
          s += p;
        }
        return s;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype || proto === null) {
        const keys = Object.keys(v).sort();
        let s = "";
        let count = 0;
        for (const k of keys) {
          const item = (v as Record<string, unknown>)[k];
          if (item === undefined) continue; // left out, as the protocol key does
          const p = enc(item, depth + 1);
          if (p === undefined) return undefined;
          s += k.length + ":" + k + p;
          count++;
        }
        return "{" + count + ":" + s;
      }
      if (v instanceof Date) {
        const t = v.getTime();
        return Number.isNaN(t) ? undefined : "d" + t + ";";
      }
      if (proto === Uint8Array.prototype) {
        const u = v as Uint8Array;
        if (u.length > 4096) return undefined;
        let s = "x" + u.length + ":";
        for (let i = 0; i < u.length; i++) s += String.fromCharCode(u[i]);
        return s;
      }
      return undefined;
    }
    default:
      return undefined; // undefined (see the module documentation), functions, symbols
  }
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
