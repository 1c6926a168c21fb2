/**
 * The serializer contract: how a cached value becomes bytes and back.
 *
 * @example A custom serializer (UTF-8 strings only)
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Serializer } from "@cachekit/core/serializers";
 *
 * const text: Serializer = {
 *   name: "text",
 *   code: "o",
 *   format: "json",
 *   serialize: (v) => new TextEncoder().encode(JSON.stringify(String(v))),
 *   deserialize: (b) => JSON.parse(new TextDecoder().decode(b)),
 * };
 * assert.equal(text.deserialize(text.serialize("hi")), "hi");
 * ```
 *
 * @module
 */

/**
 * Turns values into bytes and back. Implementations throw `SerializationError` for values they
 * cannot represent and for bytes they cannot decode (never another error type). With a custom
 * serializer the cache answers a miss with `deserialize(serialize(value))`, so that the miss and
 * every later hit return the same thing.
 */
export interface Serializer {
  /** Serializer name as configured (`"std"`, `"json"`, `"orjson"`, or a custom name). */
  readonly name: string;
  /**
   * One-character serializer code written at the end of the cache key: `"s"` standard MessagePack
   * (and `orjson`, whose keys are cachekit-py 0.3.0's, which end in `s` whatever the serializer),
   * `"o"` this library's JSON (the protocol also defines `"a"` auto and `"w"` Arrow).
   */
  readonly code: string;
  /**
   * Format tag stored in the envelope and metadata, e.g. `"msgpack"` or `"json"`. Entries of
   * format `"orjson"` or `"arrow"` take cachekit-py 0.3.0's digest layout (an 8-byte xxHash3-64
   * before the payload, no envelope) instead of the envelope.
   */
  readonly format: string;
  /** Encode a value. */
  serialize(value: unknown): Uint8Array;
  /** Decode bytes produced by `serialize` (or by a compatible SDK). */
  deserialize(bytes: Uint8Array): unknown;
  /**
   * Optional asynchronous preparation (loading an optional dependency, as the Arrow serializer
   * loads `apache-arrow`): the cache awaits it before a call first reaches L2 or the function, and
   * again after a rejection. `serialize` and `deserialize` may rely on it having resolved.
   */
  prepare?(): Promise<void>;
}
