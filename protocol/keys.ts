/**
 * Layer 1 of the cachekit protocol: cache keys, bit-exact with the Python SDK, plus the
 * cross-language interop mode (interop/v1) keys and values.
 *
 * **Standard keys** ({@linkcode cacheKey}) look like
 * `ns:{namespace}:func:{func}:args:{hash}:{ic}{code}`, where `hash` ({@linkcode argsHash}) is the
 * lowercase hex Blake2b-256 of the MessagePack encoding of `[normalized_args, normalized_kwargs]`,
 * byte for byte what Python's `msgpack.packb(..., use_bin_type=True)` writes for the same call:
 *
 * | JavaScript | encoded as |
 * |---|---|
 * | safe integer, `-0`, `bigint` in [-2^63, 2^64-1] | int, shortest form (uint formats when ≥ 0) |
 * | other `number` (fractions, NaN, ±Infinity, beyond 2^53) | float64 (`0xcb`, never float32) |
 * | `float64(x)` | float64 (`float64(-0)` is `+0.0`): Python's `3.0` is `float64(3)` |
 * | `string` (well-formed Unicode), `boolean`, `null` | str, bool, nil |
 * | `Uint8Array` | bin |
 * | `Array` | array, in order |
 * | plain object, `Map` with string keys | map, keys in Unicode code point order at every level |
 * | `Date` | Python's `isoformat()` of the aware UTC datetime: `2025-11-14T10:30:00+00:00` |
 *
 * `undefined` is an ordinary argument where JavaScript makes it one: trailing `undefined`
 * arguments are left out (`f("a", undefined)` is the call `f("a")`) and so are object properties
 * and named arguments holding `undefined` (`{ a: 1, b: undefined }` is `{ a: 1 }`), as
 * `JSON.stringify` does. Elsewhere — before a defined argument, in an array (or a hole), `Map` or
 * `Set` — it is refused: a function may treat it unlike `null`, so it cannot share `null`'s entry.
 *
 * Containers nest at most 256 levels deep (an array argument is level 1); deeper arguments and
 * cyclic ones (`a.self = a`) are refused rather than exhausting the call stack, a cycle with the
 * path it repeats (`args[0].self`: `it is args[0] again`).
 *
 * Anything else (`Set`, class instances, functions, symbols, bigints beyond 64 bits, invalid
 * `Date`s, lone surrogates) throws a {@linkcode CacheKeyError} naming the argument path, e.g.
 * `args[1].user.tags` or `kwargs.user`.
 *
 * **Interop keys** ({@linkcode interopKey}) are `{namespace}:{operation}:{hash}` over the canonical
 * MessagePack of the flat argument array, where integral numbers are ints, NaN/Infinity are refused,
 * `Date`s are float64 seconds since the epoch (collapsing to an int when whole), and `Set`s are
 * arrays sorted by their elements' canonical bytes. Interop values
 * ({@linkcode encodeInteropValue}) use the same canonical encoder with floats kept as float64.
 *
 * The canonical encoder is hand-written (`_canonical.ts`): no MessagePack library offers a per-value
 * float64 marker, code-point key ordering, Python's int format choices and path-naming rejection
 * together. Decoding uses `@msgpack/msgpack`. Blake2b-256 of a message up to one block (128 bytes,
 * nearly every key) runs in a one-block WebAssembly function assembled on the first hash
 * (0.43× the CPU of `hash-wasm` on key-sized input, hex included); longer messages go to
 * `hash-wasm` (measured about 7× faster than `@noble/hashes` on key-sized inputs, see
 * `bench/keys_bench.ts`), instantiated once when this module loads and used synchronously;
 * `@noble/hashes` takes over where WebAssembly is unavailable.
 *
 * This file builds standard keys and re-exports the rest from private parts: `_interop.ts`
 * (interop keys and values), `_blake2b.ts` (the hash), `_canonical*.ts` (the encoder).
 *
 * @example A key shared with the Python SDK
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheKey, float64 } from "@cachekit/core/protocol";
 *
 * // Python: @cache(namespace="test") def process(a, b, c) in module __main__, called process(1, "two", 3.0)
 * const key = cacheKey({ namespace: "test", func: "__main__.process", args: [1, "two", float64(3)] });
 * assert.equal(
 *   key,
 *   "ns:test:func:__main__.process:args:465e6bc8edd493c64748a0c405106db14d2bb481989bf1849481f1343982e179:1s",
 * );
 * ```
 *
 * @module
 */
import { CacheConfigError, CacheKeyError } from "../errors.ts";
import {
  beginMap,
  definedLength,
  encodeValue,
  endMap,
  STD,
  withEncoder,
  writeArrayHeader,
  writeByte,
  writeMapHeader,
  writeStr,
  written,
} from "./_canonical.ts";
import { EncodeRefusal, encodeUndefined, Float64 } from "./_canonical_model.ts";
import { blake2b256Hex } from "./_blake2b.ts";
import { compareCodePoints, isWellFormed, pythonIsoformat } from "./_canonical_python.ts";

export { Float64 };
export { blake2b256, blake2b256Hex } from "./_blake2b.ts";
export {
  decodeInteropValue,
  encodeInteropValue,
  interopArgsHash,
  interopKey,
  validateInteropSegment,
} from "./_interop.ts";

// ---------------------------------------------------------------------------------------------
// Standard keys

/**
 * Mark a number to encode as MessagePack float64, so a JavaScript caller can match a Python
 * `float` such as `3.0` (a plain `3` encodes as an int, as Python's `3` does). `float64(-0)` is
 * `+0.0`, as Python normalizes `-0.0`. In interop arguments an integral `float64()` still collapses
 * to an int (the interop rule); in interop values it stays float64.
 *
 * @param value The number.
 * @returns The marked number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argsHash, float64 } from "@cachekit/core/protocol";
 * assert.notEqual(argsHash([3]), argsHash([float64(3)])); // Python's 3 and 3.0 differ
 * ```
 */
export function float64(value: number): Float64 {
  return new Float64(value);
}

/**
 * The argument hash of a standard key: Blake2b-256 (lowercase hex) of the MessagePack encoding of
 * `[normalized_args, normalized_kwargs]`, kwargs sorted by name, exactly as the Python SDK computes
 * it (see the module documentation for the normalization table).
 *
 * @param args Positional arguments; trailing `undefined` ones are left out.
 * @param kwargs Named arguments (Python keyword arguments); a plain object, default `{}`; names
 * holding `undefined` are left out.
 * @returns 64 lowercase hex characters.
 * @throws {CacheKeyError} for a value outside the data model, a reference cycle or nesting deeper
 * than 256 containers; `path` names it (`args[1].tags`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { argsHash } from "@cachekit/core/protocol";
 * assert.equal(
 *   argsHash(["alice"], { age: 30 }),
 *   "573b0961d0bf4e7207c6628a3f9e42c97a0cd01e276d8904ec5af6c877cd599e",
 * );
 * ```
 */
export function argsHash(args: unknown[], kwargs?: Record<string, unknown>): string {
  return withEncoder(() => {
    encodeArgsKwargs(args, kwargs);
    return blake2b256Hex(written());
  });
}

/**
 * Write the MessagePack of `[args, kwargs]` into the shared encoder (internal building block of
 * {@linkcode argsHash}; exported for the benchmark through the module graph only).
 */
function encodeArgsKwargs(args: unknown[], kwargs: Record<string, unknown> | undefined): void {
  if (!Array.isArray(args)) throw new CacheKeyError("args", "expected an array of arguments");
  writeByte(0x92);
  const n = definedLength(args);
  writeArrayHeader(n);
  for (let i = 0; i < n; i++) {
    const v = args[i];
    try {
      if (v === undefined) encodeUndefined();
      encodeValue(v, STD);
    } catch (e) {
      if (e instanceof EncodeRefusal) e.segments.push(i);
      throw keyError(e, "args");
    }
  }
  if (kwargs === undefined || kwargs === null) {
    writeMapHeader(0);
    return;
  }
  const proto = typeof kwargs === "object" ? Object.getPrototypeOf(kwargs) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new CacheKeyError("kwargs", "expected a plain object of named arguments");
  }
  const names = Object.keys(kwargs);
  if (names.length > 1) names.sort(compareCodePoints);
  const start = beginMap(names.length);
  let count = 0;
  for (const name of names) {
    const v = kwargs[name];
    if (v === undefined) continue; // left out, as JSON.stringify does
    count++;
    try {
      if (!writeStr(name)) throw new EncodeRefusal("the name holds a lone surrogate");
      encodeValue(v, STD);
    } catch (e) {
      if (e instanceof EncodeRefusal) e.segments.push(name);
      throw keyError(e, "kwargs");
    }
  }
  endMap(start, names.length, count);
}

function keyError(e: unknown, root: string): unknown {
  return e instanceof EncodeRefusal ? new CacheKeyError(e.pathFrom(root), e.reasonFrom(root)) : e;
}

/**
 * The serializer names of a standard key (see {@linkcode serializerCode} for their codes).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type SerializerName, serializerCode } from "@cachekit/core/protocol";
 * const name: SerializerName = "arrow";
 * assert.equal(serializerCode(name), "w");
 * ```
 */
export type SerializerName = "std" | "auto" | "orjson" | "arrow";

const SERIALIZER_CODES: Record<SerializerName, string> = {
  std: "s",
  auto: "a",
  orjson: "o",
  arrow: "w",
};

/**
 * The one-character code of a serializer in a standard key: `std` → `s`, `auto` → `a`,
 * `orjson` → `o`, `arrow` → `w`.
 *
 * @param name The serializer name.
 * @returns Its code.
 * @throws {CacheConfigError} for an unknown name.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serializerCode } from "@cachekit/core/protocol";
 * assert.equal(serializerCode("orjson"), "o");
 * ```
 */
export function serializerCode(name: SerializerName): string {
  const code = Object.hasOwn(SERIALIZER_CODES, name) ? SERIALIZER_CODES[name] : undefined;
  if (code === undefined) {
    throw new CacheConfigError("serializer", name, `one of ${Object.keys(SERIALIZER_CODES)}`);
  }
  return code;
}

/**
 * Longest key (in code points) kept as is; longer keys are shortened by {@linkcode finalizeKey}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { finalizeKey, MAX_KEY_LENGTH } from "@cachekit/core/protocol";
 * assert.equal(finalizeKey("k".repeat(MAX_KEY_LENGTH)).length, 250);
 * ```
 */
export const MAX_KEY_LENGTH = 250;
/**
 * Characters of the original key kept in front of the hash when a key is shortened.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { finalizeKey, KEY_PREFIX_LENGTH } from "@cachekit/core/protocol";
 * const key = "ns:" + "x".repeat(300);
 * assert.ok(finalizeKey(key).startsWith(key.slice(0, KEY_PREFIX_LENGTH) + ":"));
 * ```
 */
export const KEY_PREFIX_LENGTH = 50;

const KEY_FIXES = /[ \n\r]/g;

/**
 * The last step of standard key assembly, as the Python SDK does it: spaces, `\n` and `\r` become
 * `_`; then a key longer than 250 characters (Unicode code points, as Python counts) becomes its
 * first 50 characters + `:` + the first 32 hex characters of Blake2b-256 over the whole key
 * (UTF-8). Use it when building keys from pre-computed parts.
 *
 * @param rawKey The assembled key.
 * @returns The key to store under.
 * @throws {CacheKeyError} when the key holds a lone surrogate (it has no UTF-8 form).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { finalizeKey } from "@cachekit/core/protocol";
 * assert.equal(finalizeKey("ns:my app:func:f:args:x:1s"), "ns:my_app:func:f:args:x:1s");
 * assert.equal(finalizeKey("k".repeat(300)).length, 83);
 * ```
 */
export function finalizeKey(rawKey: string): string {
  let key = rawKey;
  KEY_FIXES.lastIndex = 0;
  if (KEY_FIXES.test(key)) key = key.replace(KEY_FIXES, "_");
  if (key.length <= MAX_KEY_LENGTH) return key; // code points <= UTF-16 units
  const points = Array.from(key);
  if (points.length <= MAX_KEY_LENGTH) return key;
  if (!isWellFormed(key)) {
    throw new CacheKeyError("key", "the key holds a lone surrogate (not well-formed Unicode)");
  }
  const digest = blake2b256Hex(new TextEncoder().encode(key));
  return `${points.slice(0, KEY_PREFIX_LENGTH).join("")}:${digest.slice(0, 32)}`;
}

/**
 * Parameters of {@linkcode cacheKey}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheKey, type CacheKeyParams } from "@cachekit/core/protocol";
 * const p: CacheKeyParams = { namespace: "users", func: "app.get_user", args: [42], serializer: "orjson" };
 * assert.ok(cacheKey(p).endsWith(":1o"));
 * ```
 */
export interface CacheKeyParams {
  /** Namespace; `null`, `undefined` or `""` leave the `ns:` part out (as Python does). */
  namespace?: string | null;
  /** The function's name; to share entries with Python, its `module.qualname`. */
  func: string;
  /** Positional arguments. */
  args: unknown[];
  /** Named arguments (Python keyword arguments). */
  kwargs?: Record<string, unknown>;
  /** Whether values are stored in the ByteStorage envelope (`1`) or not (`0`); default `true`. */
  integrityChecking?: boolean;
  /** The serializer; default `"std"`. */
  serializer?: SerializerName;
}

let checkedNs: string | undefined;
let checkedFunc: string | undefined;

function checkPart(name: string, value: unknown): void {
  if (typeof value !== "string") throw new CacheKeyError(name, `expected a string`);
  if (!isWellFormed(value)) {
    throw new CacheKeyError(name, "the string holds a lone surrogate (not well-formed Unicode)");
  }
}

/**
 * The standard cache key, identical to the Python SDK's for the same namespace, function name and
 * arguments: `ns:{namespace}:func:{func}:args:{argsHash}:{ic}{code}`, finished by
 * {@linkcode finalizeKey}.
 *
 * @param p Namespace, function name, arguments and storage flags.
 * @returns The key.
 * @throws {CacheKeyError} for an argument outside the data model (`path` names it).
 * @throws {CacheConfigError} for an unknown serializer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheKey } from "@cachekit/core/protocol";
 * const key = cacheKey({ namespace: "test", func: "__main__.get_user", args: [42] });
 * assert.equal(
 *   key,
 *   "ns:test:func:__main__.get_user:args:3870b2ea5735ae639ded9450ef117768db676f037bec636503796c5b81095153:1s",
 * );
 * ```
 */
export function cacheKey(p: CacheKeyParams): string {
  const ns = p.namespace;
  const func = p.func;
  if (ns !== checkedNs) {
    if (ns !== null && ns !== undefined) checkPart("namespace", ns);
    checkedNs = ns ?? undefined;
  }
  if (func !== checkedFunc) {
    checkPart("func", func);
    checkedFunc = func;
  }
  const code = p.serializer === undefined ? "s" : serializerCode(p.serializer);
  const hash = argsHash(p.args, p.kwargs);
  const raw = (ns ? "ns:" + ns + ":func:" : "func:") + func + ":args:" + hash + ":" +
    (p.integrityChecking === false ? "0" : "1") + code;
  return finalizeKey(raw);
}

/**
 * Python's `datetime.isoformat()` of the aware UTC datetime a `Date` stands for, as standard keys
 * encode `Date` arguments: `2025-11-14T10:30:00+00:00`, with `.ffffff` only when the
 * sub-second part is non-zero.
 *
 * @param date The date.
 * @returns The ISO-8601 string.
 * @throws {CacheKeyError} for an invalid date or one outside the years 1..9999.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dateIsoformat } from "@cachekit/core/protocol";
 * assert.equal(
 *   dateIsoformat(new Date(Date.UTC(2025, 10, 14, 10, 30, 0, 250))),
 *   "2025-11-14T10:30:00.250000+00:00",
 * );
 * ```
 */
export function dateIsoformat(date: Date): string {
  const s = pythonIsoformat(date);
  if (s === null) {
    throw new CacheKeyError("date", "an invalid Date or one outside the years 1..9999");
  }
  return s;
}

const REPLACED = /[ \n\r]/;

/**
 * Throw a {@linkcode CacheConfigError} unless `value` can be the namespace or name (`func:`
 * segment) of a standard key without two functions sharing keys (see "Names that keys cannot tell
 * apart" in `engine/identity.ts`).
 *
 * @param kind Which key part it is (names the option in the error).
 * @param value The namespace or function identity.
 * @returns `value`, unchanged.
 * @throws {CacheConfigError} A separator sequence or a character the key replaces.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateKeyPart } from "@cachekit/core/protocol";
 *
 * assert.equal(validateKeyPart("namespace", "app:users"), "app:users");
 * assert.throws(() => validateKeyPart("namespace", "p:func:q"));
 * ```
 */
export function validateKeyPart(kind: "namespace" | "name", value: string): string {
  const sep = kind === "namespace" ? ":func" : ":args";
  if (value.includes(sep + ":") || value.endsWith(sep)) {
    throw new CacheConfigError(
      kind,
      value,
      `a ${kind} without "${sep}:" and not ending in "${sep}" (the key separates the ` +
        `${kind === "namespace" ? "namespace from the function name" : "name from the arguments"}` +
        ` with "${sep}:", so such a ${kind} could share keys with another function's); use ` +
        `"." or "-" there instead`,
    );
  }
  if (REPLACED.test(value)) {
    throw new CacheConfigError(
      kind,
      value,
      `a ${kind} without spaces or line breaks (keys turn them into "_", so it could share keys ` +
        `with another function's)${kind === "name" ? "; pass an explicit name option" : ""}`,
    );
  }
  return value;
}
