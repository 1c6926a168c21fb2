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
 * together. Decoding uses `@msgpack/msgpack`. Blake2b-256 comes from `hash-wasm` (measured about 7×
 * faster than `@noble/hashes` on key-sized inputs, see `bench/keys_bench.ts`), instantiated once
 * when this module loads and used synchronously; `@noble/hashes` takes over where WebAssembly is
 * unavailable.
 *
 * @example A key shared with the Python SDK
 * ```ts
 * import { cacheKey, float64 } from "@cachekit/core/protocol";
 *
 * // Python: @cache(namespace="test") def process(a, b, c) in module __main__, called process(1, "two", 3.0)
 * const key = cacheKey({ namespace: "test", func: "__main__.process", args: [1, "two", float64(3)] });
 * console.log(key);
 * // ns:test:func:__main__.process:args:465e6bc8edd493c64748a0c405106db14d2bb481989bf1849481f1343982e179:1s
 * ```
 *
 * @module
 */
import { blake2b as nobleBlake2b } from "@noble/hashes/blake2.js";
import { createBLAKE2b, type IHasher } from "hash-wasm";
import { DecodeError, Decoder, ExtData, ExtensionCodec } from "@msgpack/msgpack";
import { CacheConfigError, CacheKeyError, SerializationError } from "../errors.ts";
import { toHex } from "./_hex.ts";
import { boundedByInput } from "../serializers/_msgpack_scan.ts";
import {
  ARGS,
  beginMap,
  compareCodePoints,
  definedLength,
  EncodeRefusal,
  encodeValue,
  endMap,
  Float64,
  isWellFormed,
  type Profile,
  pythonIsoformat,
  STD,
  VALUE,
  withEncoder,
  writeArrayHeader,
  writeByte,
  writeMapHeader,
  writeStr,
  written,
} from "./_canonical.ts";

export { Float64 };

// ---------------------------------------------------------------------------------------------
// Blake2b-256

let wasmHasher: IHasher | null = null;
try {
  wasmHasher = await createBLAKE2b(256);
} catch {
  wasmHasher = null; // no WebAssembly here: fall back to the pure-JS implementation
}

/**
 * Blake2b with a 32-byte digest, unkeyed (Python's `hashlib.blake2b(data, digest_size=32)`).
 * Synchronous.
 *
 * @param bytes The message.
 * @returns The 32-byte digest.
 *
 * @example
 * ```ts
 * import { blake2b256 } from "@cachekit/core/protocol";
 * console.log(blake2b256(new Uint8Array([0x90])).length); // 32
 * ```
 */
export function blake2b256(bytes: Uint8Array): Uint8Array {
  if (wasmHasher) {
    wasmHasher.init();
    wasmHasher.update(bytes);
    return wasmHasher.digest("binary");
  }
  return nobleBlake2b(bytes, { dkLen: 32 });
}

/**
 * Blake2b-256 of `bytes` as 64 lowercase hex characters.
 *
 * @param bytes The message.
 * @returns The hex digest.
 *
 * @example
 * ```ts
 * import { blake2b256Hex } from "@cachekit/core/protocol";
 * // The interop hash of zero arguments (canonical bytes 0x90).
 * console.log(blake2b256Hex(new Uint8Array([0x90])));
 * // 8064bf5f945dba521b017bb3f32b31a293a6e16944838d171ea9e77fab085e8e
 * ```
 */
export function blake2b256Hex(bytes: Uint8Array): string {
  if (wasmHasher) {
    wasmHasher.init();
    wasmHasher.update(bytes);
    return wasmHasher.digest("hex");
  }
  return toHex(nobleBlake2b(bytes, { dkLen: 32 }));
}

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
 * import { argsHash, float64 } from "@cachekit/core/protocol";
 * console.log(argsHash([3]) === argsHash([float64(3)])); // false: Python's 3 and 3.0 differ
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
 * import { argsHash } from "@cachekit/core/protocol";
 * console.log(argsHash(["alice"], { age: 30 }));
 * // 573b0961d0bf4e7207c6628a3f9e42c97a0cd01e276d8904ec5af6c877cd599e
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

function encodeUndefined(): never {
  throw new EncodeRefusal(
    "undefined before a defined argument has no cache-key form (a function may treat it unlike " +
      "null); pass null, or move the optional parameter last (trailing undefined arguments are " +
      "the same call as leaving them out)",
  );
}

function keyError(e: unknown, root: string): unknown {
  return e instanceof EncodeRefusal ? new CacheKeyError(e.pathFrom(root), e.reasonFrom(root)) : e;
}

/**
 * The serializer names of a standard key (see {@linkcode serializerCode} for their codes).
 *
 * @example
 * ```ts
 * import { type SerializerName, serializerCode } from "@cachekit/core/protocol";
 * const name: SerializerName = "arrow";
 * console.log(serializerCode(name)); // w
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
 * import { serializerCode } from "@cachekit/core/protocol";
 * console.log(serializerCode("orjson")); // o
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
 * import { finalizeKey, MAX_KEY_LENGTH } from "@cachekit/core/protocol";
 * console.log(finalizeKey("k".repeat(MAX_KEY_LENGTH)).length); // 250
 * ```
 */
export const MAX_KEY_LENGTH = 250;
/**
 * Characters of the original key kept in front of the hash when a key is shortened.
 *
 * @example
 * ```ts
 * import { finalizeKey, KEY_PREFIX_LENGTH } from "@cachekit/core/protocol";
 * const key = "ns:" + "x".repeat(300);
 * console.log(finalizeKey(key).startsWith(key.slice(0, KEY_PREFIX_LENGTH) + ":")); // true
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
 * import { finalizeKey } from "@cachekit/core/protocol";
 * console.log(finalizeKey("ns:my app:func:f:args:x:1s")); // ns:my_app:func:f:args:x:1s
 * console.log(finalizeKey("k".repeat(300)).length); // 83
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
 * import { cacheKey, type CacheKeyParams } from "@cachekit/core/protocol";
 * const p: CacheKeyParams = { namespace: "users", func: "app.get_user", args: [42], serializer: "orjson" };
 * console.log(cacheKey(p).endsWith(":1o")); // true
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
 * import { cacheKey } from "@cachekit/core/protocol";
 * const key = cacheKey({ namespace: "test", func: "__main__.get_user", args: [42] });
 * console.log(key);
 * // ns:test:func:__main__.get_user:args:3870b2ea5735ae639ded9450ef117768db676f037bec636503796c5b81095153:1s
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

// ---------------------------------------------------------------------------------------------
// Interop mode

const SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;
const RESERVED_NAMESPACES = new Set(["ns", "nsapi"]);

/**
 * Check an interop key segment: it must fully match `^[a-z0-9][a-z0-9._-]{0,63}$`, must not hold
 * `..` (the cachekit.io server refuses it), and a namespace must not be `ns` or `nsapi` (read as a
 * standard-key prefix by the server), as the Python reference implementation requires. Segments are
 * never changed to fit. Call it when a function is wrapped to fail early.
 *
 * @param kind Which segment it is (names it in the error).
 * @param value The segment.
 * @returns `value`, unchanged.
 * @throws {CacheConfigError} when the segment is missing or invalid.
 *
 * @example
 * ```ts
 * import { validateInteropSegment } from "@cachekit/core/protocol";
 * console.log(validateInteropSegment("namespace", "users")); // users
 * try { validateInteropSegment("operation", "get:user"); } catch (e) { console.log((e as Error).name); }
 * // CacheConfigError
 * ```
 */
export function validateInteropSegment(kind: "namespace" | "operation", value: string): string {
  const option = `interop.${kind}`;
  if (typeof value !== "string" || !SEGMENT.test(value) || value.endsWith("\n")) {
    throw new CacheConfigError(
      option,
      value,
      "a segment fully matching ^[a-z0-9][a-z0-9._-]{0,63}$ (lowercase ASCII letters, digits, " +
        "'.', '_', '-'; 1 to 64 characters; interop mode requires a namespace)",
    );
  }
  if (value.includes("..")) {
    throw new CacheConfigError(option, value, "a segment without '..'");
  }
  if (kind === "namespace" && RESERVED_NAMESPACES.has(value)) {
    throw new CacheConfigError(option, value, "a namespace other than the reserved ns and nsapi");
  }
  return value;
}

/**
 * The interop/v1 argument hash: Blake2b-256 (lowercase hex) of the canonical MessagePack of the
 * flat argument array (integral numbers as ints, NaN/Infinity refused, `Date` as float64 seconds
 * since the epoch, `Set` as an array sorted by canonical bytes without duplicates).
 *
 * @param args The call's arguments in declared order.
 * @returns 64 lowercase hex characters.
 * @throws {CacheKeyError} for an argument outside the interop data model (`path` names it).
 *
 * @example
 * ```ts
 * import { interopArgsHash } from "@cachekit/core/protocol";
 * console.log(interopArgsHash([42]));
 * // 61598716255080080f6456eb065c2e51badfaa4320b0efe97469c29cffee8875
 * ```
 */
export function interopArgsHash(args: unknown[]): string {
  if (!Array.isArray(args)) throw new CacheKeyError("args", "expected an array of arguments");
  return withEncoder(() => {
    const n = definedLength(args);
    writeArrayHeader(n);
    for (let i = 0; i < n; i++) encodeTop(args[i], ARGS, `args[${i}]`);
    return blake2b256Hex(written());
  });
}

function encodeTop(v: unknown, profile: Profile, root: string): void {
  try {
    if (v === undefined && profile !== VALUE) encodeUndefined();
    encodeValue(v, profile);
  } catch (e) {
    if (!(e instanceof EncodeRefusal)) throw e;
    const path = e.pathFrom(root);
    if (profile === VALUE) {
      throw new SerializationError(
        `Cannot encode ${path} as an interop value: ${e.reasonFrom(root)}`,
      );
    }
    throw new CacheKeyError(path, e.reasonFrom(root));
  }
}

let checkedInteropNs: string | undefined;
let checkedInteropOp: string | undefined;

/**
 * The interop/v1 cache key `{namespace}:{operation}:{hash}`, shared with every cachekit SDK that
 * uses interop mode. Never truncated (at most 194 characters).
 *
 * @param namespace The namespace segment (mandatory).
 * @param operation The operation segment.
 * @param args The call's arguments in declared order (flat; no separate kwargs map).
 * @returns The key.
 * @throws {CacheConfigError} for a missing or invalid segment.
 * @throws {CacheKeyError} for an argument outside the interop data model.
 *
 * @example
 * ```ts
 * import { interopKey } from "@cachekit/core/protocol";
 * console.log(interopKey("users", "get_user", [42]));
 * // users:get_user:61598716255080080f6456eb065c2e51badfaa4320b0efe97469c29cffee8875
 * ```
 */
export function interopKey(namespace: string, operation: string, args: unknown[]): string {
  if (namespace !== checkedInteropNs) {
    validateInteropSegment("namespace", namespace);
    checkedInteropNs = namespace;
  }
  if (operation !== checkedInteropOp) {
    validateInteropSegment("operation", operation);
    checkedInteropOp = operation;
  }
  return namespace + ":" + operation + ":" + interopArgsHash(args);
}

/**
 * Encode a value as one canonical plain MessagePack document (interop/v1 values: no envelope, no
 * compression, no checksum). Map keys are sorted by code point; integral numbers are ints, other
 * numbers and `float64(x)` float64; NaN and Infinity are refused; a `Date` becomes the sentinel
 * map `{"__datetime__": true, "value": "<isoformat>"}`; `Set`s and class instances are refused.
 *
 * @param value The value.
 * @returns A fresh byte array.
 * @throws {SerializationError} for a value outside the interop data model (the message names it).
 *
 * @example
 * ```ts
 * import { encodeInteropValue } from "@cachekit/core/protocol";
 * const bytes = encodeInteropValue({ name: "alice", age: 30 });
 * console.log(Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(""));
 * // 82a36167651ea46e616d65a5616c696365
 * ```
 */
export function encodeInteropValue(value: unknown): Uint8Array {
  return withEncoder(() => {
    encodeTop(value, VALUE, "value");
    return written().slice();
  });
}

const rejectExtensions = new ExtensionCodec();
rejectExtensions.register({
  type: -1,
  encode: () => null,
  decode: () => {
    throw new DecodeError("MessagePack extension types are not allowed in interop values");
  },
});

const decoder = new Decoder({ useBigInt64: true, extensionCodec: rejectExtensions });

/**
 * Decode one plain MessagePack document written by any cachekit SDK in interop mode. Integers
 * beyond the safe range come back as `bigint`, others as `number`; `bin` as `Uint8Array`; maps as
 * plain objects; `{"__datetime__": true, "value": "<ISO>"}` sentinel maps as `Date`s (the
 * `__date__` and `__time__` sentinels have no JavaScript type and stay maps).
 *
 * @param bytes The stored bytes.
 * @returns The value.
 * @throws {SerializationError} when the bytes are not exactly one well-formed document without
 * extension types (treat the entry as a miss).
 *
 * @example
 * ```ts
 * import { decodeInteropValue, encodeInteropValue } from "@cachekit/core/protocol";
 * console.log(decodeInteropValue(encodeInteropValue({ ids: [1, 2n ** 63n] })));
 * // { ids: [ 1, 9223372036854775808n ] }
 * ```
 */
export function decodeInteropValue(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new SerializationError("Cannot decode an interop value: expected a Uint8Array");
  }
  if (bytes.length >= 2 && bytes[0] === 0x43 && bytes[1] === 0x4b) {
    throw new SerializationError(
      "Stored value is a Python-SDK auto-mode entry (CK frame), not an interop value: check that " +
        "every writer of this key uses interop mode",
    );
  }
  // @msgpack/msgpack allocates an array by its declared length before reading the elements: a few
  // bytes declaring millions of them would cost that much memory.
  if (!boundedByInput(bytes)) {
    throw new SerializationError(
      "Stored value is not a single well-formed MessagePack document: a length declares more " +
        "than the input holds",
    );
  }
  let v: unknown;
  try {
    v = decoder.decode(bytes);
  } catch (e) {
    throw new SerializationError(
      `Stored value is not a single well-formed MessagePack document: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return revive(v);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

function revive(v: unknown): unknown {
  if (typeof v === "bigint") return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
  if (typeof v !== "object" || v === null || v instanceof Uint8Array) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if (typeof x === "object" || typeof x === "bigint") v[i] = revive(x);
    }
    return v;
  }
  if (v instanceof ExtData) {
    throw new SerializationError(
      `Stored value holds a MessagePack extension type (${v.type}); interop values have none`,
    );
  }
  if (typeof v === "object" && v !== null && !(v instanceof Date)) {
    const o = v as Record<string, unknown>;
    if (o.__datetime__ === true && typeof o.value === "string" && Object.keys(o).length === 2) {
      const d = new Date(o.value);
      if (!Number.isNaN(d.getTime()) && /(?:[+-]\d\d:\d\d|Z)$/i.test(o.value)) return d;
    }
    for (const k in o) {
      const x = o[k];
      if (typeof x === "object" || typeof x === "bigint") o[k] = revive(x);
    }
  }
  return v;
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
 * import { dateIsoformat } from "@cachekit/core/protocol";
 * console.log(dateIsoformat(new Date(Date.UTC(2025, 10, 14, 10, 30, 0, 250))));
 * // 2025-11-14T10:30:00.250000+00:00
 * ```
 */
export function dateIsoformat(date: Date): string {
  const s = pythonIsoformat(date);
  if (s === null) {
    throw new CacheKeyError("date", "an invalid Date or one outside the years 1..9999");
  }
  return s;
}
