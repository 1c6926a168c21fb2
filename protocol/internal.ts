/**
 * What the rest of the package (the engine, config) uses of the protocol's private parts: the
 * protocol's internal face. Not public: `deno.json` does not export it and `protocol/mod.ts` does
 * not re-export it, so none of it is `@cachekit/core/protocol` API (adding these to `keys.ts`,
 * `envelope.ts` or `encryption.ts` would make them public, as `mod.ts` re-exports those whole).
 *
 * The stored-value codec's parts the engine needs (the envelope fields, the undefined envelope,
 * the read checks) come through `stored_value.ts` instead, with the codec they belong to.
 * Re-exports only: nothing is added on any path.
 *
 * - {@linkcode toHex} / {@linkcode fromHex}: the package's one hex table (tenant segments, key
 *   fingerprints, master-key parsing in config);
 * - {@linkcode hkdfSalt}: protocol v1's HKDF salt layout, which the engine's tenant-segment key
 *   derivation shares;
 * - {@linkcode definedLength}: the argument count without trailing `undefined`s, which the cheap
 *   argument key must agree on with the canonical encoder;
 * - {@linkcode interopReshapes}: whether an interop value decodes back as something else;
 * - {@linkcode UnknownMasterKeyError}: an entry under a master key this process does not have,
 *   which the engine reports once on the console.
 *
 * @module
 */
export { fromHex, toHex } from "./_hex.ts";
export { hkdfSalt } from "./_crypto.ts";
export { definedLength } from "./_canonical_model.ts";
export { isWellFormed, pythonIsoformat } from "./_canonical_python.ts";
export { interopReshapes } from "./_interop_reshapes.ts";
export { storedFraming } from "./_stored_framing.ts";
export { UnknownMasterKeyError } from "./_tenant_cipher.ts";
export { argBytes, compareBytes } from "./_canonical_arg.ts";
export { Float64 } from "./_canonical_model.ts";
