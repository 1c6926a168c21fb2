/**
 * What the rest of the package (the engine, the protocol's interop codec) uses of the serializers'
 * private parts: the serializers' internal face. Not public: `deno.json` does not export it and
 * `serializers/mod.ts` does not re-export it.
 *
 * - {@linkcode isReshaped}: whether a built-in serializer marked a payload as decoding to another
 *   value than the one written (the engine then answers a miss with the decoded payload);
 * - {@linkcode boundedByInput}: whether no length header of a MessagePack payload claims more than
 *   the input holds (checked before decoding, which allocates by those lengths), shared by the
 *   interop decoder.
 *
 * Re-exports only: nothing is added on any path.
 *
 * @module
 */
export { isReshaped } from "./_reshaped.ts";
export { deserializePrefix } from "./std.ts";
export { boundedByInput } from "./_msgpack_scan.ts";
export { hasArrowMagic } from "./arrow.ts";
export { isNumpyRaw } from "./numpy_array.ts";
