/**
 * The cross-language interop mode (interop/v1): key segments, the argument hash and key
 * `{namespace}:{operation}:{hash}`, and the plain canonical MessagePack value codec shared by every
 * cachekit SDK in that mode. Apart from the standard key builder (`keys.ts`, which re-exports all
 * of it) because the two share only the canonical encoder and the hash.
 *
 * @module
 */
import { DecodeError, Decoder, ExtData, ExtensionCodec } from "@msgpack/msgpack";
import { CacheConfigError, CacheKeyError, SerializationError } from "../errors.ts";
import { boundedByInput } from "../serializers/internal.ts";
import {
  ARGS,
  definedLength,
  encodeValue,
  type Profile,
  VALUE,
  withEncoder,
  writeArrayHeader,
  written,
} from "./_canonical.ts";
import { EncodeRefusal, encodeUndefined } from "./_canonical_model.ts";
import { blake2b256Hex } from "./_blake2b.ts";

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
 * import assert from "node:assert/strict";
 * import { CacheConfigError } from "@cachekit/core";
 * import { validateInteropSegment } from "@cachekit/core/protocol";
 * assert.equal(validateInteropSegment("namespace", "users"), "users");
 * assert.throws(() => validateInteropSegment("operation", "get:user"), CacheConfigError);
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
 * import assert from "node:assert/strict";
 * import { interopArgsHash } from "@cachekit/core/protocol";
 * assert.equal(
 *   interopArgsHash([42]),
 *   "61598716255080080f6456eb065c2e51badfaa4320b0efe97469c29cffee8875",
 * );
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

/**
 * Encode one top-level argument (or the value) at `root`, turning a refusal into the error the
 * caller sees: {@linkcode CacheKeyError} for a key, {@linkcode SerializationError} for a value.
 */
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
 * import assert from "node:assert/strict";
 * import { interopKey } from "@cachekit/core/protocol";
 * assert.equal(
 *   interopKey("users", "get_user", [42]),
 *   "users:get_user:61598716255080080f6456eb065c2e51badfaa4320b0efe97469c29cffee8875",
 * );
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
 * import assert from "node:assert/strict";
 * import { encodeInteropValue } from "@cachekit/core/protocol";
 * const bytes = encodeInteropValue({ name: "alice", age: 30 });
 * const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
 * assert.equal(hex, "82a36167651ea46e616d65a5616c696365");
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
 * import assert from "node:assert/strict";
 * import { decodeInteropValue, encodeInteropValue } from "@cachekit/core/protocol";
 * const back = decodeInteropValue(encodeInteropValue({ ids: [1, 2n ** 63n] }));
 * assert.deepEqual(back, { ids: [1, 9223372036854775808n] });
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
