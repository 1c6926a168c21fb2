/**
 * The cachekit protocol v1.0 layers, bit-exact with the Python and Rust SDKs:
 *
 * - **keys**: {@linkcode cacheKey}, {@linkcode argsHash} (Blake2b-256 over canonical MessagePack),
 *   and the cross-language interop mode ({@linkcode interopKey}, {@linkcode encodeInteropValue});
 * - **the ByteStorage envelope**: {@linkcode encodeEnvelope} / {@linkcode decodeEnvelope}
 *   (LZ4 block + xxHash3-64, protocol 1.0 and 1.1 forms);
 * - **encryption**: AES-256-GCM with HKDF-SHA256 per-tenant keys and AAD v0x03 binding;
 * - **the stored value**: {@linkcode encodeWire} / {@linkcode decodeWire}, the L2 formats around
 *   those bytes (cachekit-py 0.3.0's JSON document, or the framed binary form).
 *
 * @example Build the key the Python SDK builds for `get_user(42)` in namespace `test`
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheKey } from "@cachekit/core/protocol";
 *
 * const key = cacheKey({ namespace: "test", func: "__main__.get_user", args: [42] });
 * assert.equal(
 *   key,
 *   "ns:test:func:__main__.get_user:args:3870b2ea5735ae639ded9450ef117768db676f037bec636503796c5b81095153:1s",
 * );
 * ```
 *
 * @module
 */
export { CacheKitError } from "../errors.ts";
export * from "./keys.ts";
export * from "./envelope.ts";
export * from "./encryption.ts";
export {
  decodeWire,
  encodeWire,
  type WireDocument,
  type WireEncryption,
  type WireForm,
  WireFormatError,
} from "./stored_value.ts";
