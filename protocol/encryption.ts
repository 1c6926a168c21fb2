/**
 * Layer 4 of the cachekit protocol v1.0: optional encryption of stored values, byte-compatible with
 * the Python (`cachekit`) and Rust (`cachekit-core`) SDKs.
 *
 * - **Cipher**: AES-256-GCM, 12-byte nonce, 16-byte tag, stored as `nonce || ciphertext || tag`
 *   (at least 28 bytes).
 * - **Keys**: HKDF-SHA256 (RFC 5869) from a master key, `info` = the domain, 32-byte output and
 *   `salt = "cachekit_v1_" || u8(len(domain)) || domain || u16be(len(tenant)) || tenant`. Each tenant
 *   gets an `encryption`, an `authentication` and a `cache_keys` key ({@linkcode deriveTenantKeys}).
 * - **AAD v0x03** ({@linkcode buildAad}) binds tenant, cache key, format, the compressed flag and,
 *   when non-empty, the original type (cachekit-py 0.3.0 appends its metadata's `original_type`,
 *   `"msgpack"` for its StandardSerializer, and rebuilds it from the stored metadata to decrypt),
 *   so a ciphertext copied to another tenant or cache key fails authentication. A caller may
 *   append an extension after these fields ({@linkcode TenantCipher.encryptFor}'s `aadExtension`):
 *   cachekit TypeScript's wires bind their own metadata that way.
 * - **Nonces** are counter based ({@linkcode NonceGenerator}): 8 bytes of instance id + a 4-byte
 *   big-endian counter that never wraps.
 * - **Rotation** ({@linkcode TenantCipher}): writes use the current master key, reads pick the
 *   current or a previous master key by the entry's key fingerprint.
 *
 * **Which key the fingerprint names.** As in cachekit-py (metadata field `key_fingerprint`, 32 hex
 * characters) and cachekit-core (`TenantKeys::encryption_fingerprint`), the fingerprint stored with
 * an entry is {@linkcode keyFingerprint} of the *per-tenant encryption key* derived from the master
 * key, never of the master key itself. A reader derives that key for the tenant from each of its
 * master keys (current first, then previous ones) and uses the one whose fingerprint matches, so the
 * choice among master keys needs no trial decryption, and entries written by the Python SDK select
 * the same key here. A fingerprint reveals nothing usable about the master key (SHA-256 of an HKDF
 * output) and differs per tenant, so it does not link tenants.
 *
 * All primitives come from WebCrypto (`crypto.subtle`: HKDF, SHA-256, AES-GCM), on every runtime;
 * no npm library implements the cachekit framing (salt layout, AAD v0x03, nonce layout, key ring),
 * so only that framing is written here.
 *
 * This file is the layer's public face; the code is in private parts: `_hkdf.ts` (derivation and
 * fingerprints), `_aad.ts` (AAD v0x03), `_nonce.ts`, `_aes_gcm.ts` (the cipher in the stored form),
 * `_master_key.ts` (parsing and weak-key checks) and `_tenant_cipher.ts` (the key ring).
 *
 * Key material never appears in error messages: key errors are {@linkcode CacheConfigError}s with
 * the value redacted, and failed decryption is a {@linkcode DecryptionError} naming no key.
 *
 * @example Encrypt for a tenant and cache key, then read it back
 * ```ts
 * import assert from "node:assert/strict";
 * import { TenantCipher } from "@cachekit/core/protocol";
 *
 * const masterKey = crypto.getRandomValues(new Uint8Array(32));
 * const cipher = new TenantCipher({ masterKey });
 * const plaintext = new TextEncoder().encode("secret");
 * const { ciphertext, fingerprint } = await cipher.encryptFor("acme", "user:42", plaintext);
 * const back = await cipher.decryptFor("acme", "user:42", ciphertext, "msgpack", false, fingerprint);
 * assert.equal(new TextDecoder().decode(back), "secret");
 * ```
 *
 * @module
 */
export {
  deriveDomainKey,
  deriveTenantKeys,
  keyFingerprint,
  MIN_HKDF_MASTER_KEY_BYTES,
} from "./_hkdf.ts";
export { AAD_VERSION, buildAad } from "./_aad.ts";
export { NONCE_BYTES, NonceGenerator } from "./_nonce.ts";
export { decrypt, encrypt, MIN_CIPHERTEXT_BYTES, TAG_BYTES } from "./_aes_gcm.ts";
export { MIN_MASTER_KEY_BYTES, parseMasterKey } from "./_master_key.ts";
export {
  type EncryptedValue,
  MAX_PREVIOUS_KEYS,
  TenantCipher,
  type TenantCipherOptions,
} from "./_tenant_cipher.ts";
