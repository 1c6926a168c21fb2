/**
 * Key derivation of the encryption layer: HKDF-SHA256 from a master key to a domain key, a
 * tenant's three keys, and the key fingerprint. The salt layout is in `_crypto.ts`. Apart from
 * the cipher and the key ring because it is the protocol's pure derivation: the key ring caches
 * its results, the cipher never sees a master key.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import {
  buf,
  concat2,
  FINGERPRINT_PREFIX,
  hkdfSalt,
  MAX_DOMAIN_BYTES,
  MAX_TENANT_SALT_BYTES,
  subtle,
  utf8,
  type WebCryptoKey,
} from "./_crypto.ts";

/** Smallest master key the protocol's HKDF accepts (bytes). */
export const MIN_HKDF_MASTER_KEY_BYTES = 16;
/** Length of every derived key (bytes): an AES-256 key. */
export const AES_KEY_BYTES = 32;

/**
 * Derive a 32-byte key for one domain and tenant salt with HKDF-SHA256: `ikm = masterKey`,
 * `info = domain`, `salt = "cachekit_v1_" || u8(len(domain)) || domain || u16be(len(tenantSalt))
 * || tenantSalt` (strings as UTF-8).
 *
 * @param masterKey Master key, at least 16 bytes (32 recommended).
 * @param domain Domain, 1..255 UTF-8 bytes (e.g. `"encryption"`).
 * @param tenantSalt Tenant salt, 1..1024 UTF-8 bytes (the tenant id).
 * @returns The derived key (32 bytes).
 * @throws {CacheConfigError} For a short master key, or a domain or salt out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveDomainKey } from "@cachekit/core/protocol";
 *
 * const master = new Uint8Array(32).fill(7);
 * const key = await deriveDomainKey(master, "encryption", "tenant-a");
 * assert.equal(key.length, 32);
 * assert.notDeepEqual(key, await deriveDomainKey(master, "encryption", "tenant-b"));
 * ```
 */
export async function deriveDomainKey(
  masterKey: Uint8Array,
  domain: string,
  tenantSalt: string,
): Promise<Uint8Array> {
  const ikm = await importHkdfKey(masterKey, "masterKey", MIN_HKDF_MASTER_KEY_BYTES);
  return new Uint8Array(await hkdf(ikm, domain, tenantSalt, "tenantSalt"));
}

/**
 * Derive a tenant's three keys: `encryption`, `authentication` and `cache_keys` domains, each with
 * the tenant id as salt (as cachekit-core's `derive_tenant_keys`).
 *
 * @param masterKey Master key, at least 16 bytes.
 * @param tenantId Tenant id, 1..1024 UTF-8 bytes.
 * @returns The three 32-byte keys.
 * @throws {CacheConfigError} For a short master key or a tenant id out of range.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveTenantKeys } from "@cachekit/core/protocol";
 *
 * const keys = await deriveTenantKeys(new Uint8Array(32).fill(7), "tenant-a");
 * assert.equal(keys.encryptionKey.length, 32);
 * assert.equal(keys.cacheKeySalt.length, 32);
 * ```
 */
export async function deriveTenantKeys(
  masterKey: Uint8Array,
  tenantId: string,
): Promise<{ encryptionKey: Uint8Array; authenticationKey: Uint8Array; cacheKeySalt: Uint8Array }> {
  const ikm = await importHkdfKey(masterKey, "masterKey", MIN_HKDF_MASTER_KEY_BYTES);
  const [e, a, c] = await Promise.all([
    hkdf(ikm, "encryption", tenantId, "tenantId"),
    hkdf(ikm, "authentication", tenantId, "tenantId"),
    hkdf(ikm, "cache_keys", tenantId, "tenantId"),
  ]);
  return {
    encryptionKey: new Uint8Array(e),
    authenticationKey: new Uint8Array(a),
    cacheKeySalt: new Uint8Array(c),
  };
}

/**
 * Fingerprint of a key: the first 16 bytes of SHA-256(`"key_fingerprint_v1"` || key). Safe to store
 * and log. The protocol stores (as 32 hex chars) the fingerprint of the per-tenant encryption key.
 *
 * @param key Any key material.
 * @returns 16 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { keyFingerprint } from "@cachekit/core/protocol";
 *
 * const fp = await keyFingerprint(new Uint8Array(32));
 * assert.equal(fp.length, 16);
 * ```
 */
export async function keyFingerprint(key: Uint8Array): Promise<Uint8Array> {
  const digest = await subtle.digest("SHA-256", buf(concat2(FINGERPRINT_PREFIX, key)));
  return new Uint8Array(digest, 0, 16).slice();
}

/** Import a master key for HKDF, refusing one shorter than `minBytes` (value redacted). */
export async function importHkdfKey(
  masterKey: Uint8Array,
  option: string,
  minBytes: number,
): Promise<WebCryptoKey> {
  if (!(masterKey instanceof Uint8Array) || masterKey.length < minBytes) {
    throw new CacheConfigError(option, undefined, `a key of at least ${minBytes} bytes`, {
      secret: true,
    });
  }
  return await subtle.importKey("raw", buf(masterKey), "HKDF", false, ["deriveBits"]);
}

/** The HKDF salt for `domain` and `tenant`, both checked (the tenant never appears in errors). */
function checkedSalt(domain: string, tenant: string, tenantOption: string): Uint8Array {
  const d = typeof domain === "string" ? utf8(domain) : null;
  if (d === null || d.length < 1 || d.length > MAX_DOMAIN_BYTES) {
    throw new CacheConfigError(
      "domain",
      typeof domain === "string" ? `${d?.length ?? "malformed"} bytes` : typeof domain,
      `a well-formed string of 1..${MAX_DOMAIN_BYTES} UTF-8 bytes`,
    );
  }
  const t = typeof tenant === "string" ? utf8(tenant) : null;
  if (t === null || t.length < 1 || t.length > MAX_TENANT_SALT_BYTES) {
    // The tenant id itself stays out of the message (only its size).
    throw new CacheConfigError(
      tenantOption,
      typeof tenant === "string"
        ? (t === null ? "a malformed string" : `${t.length} bytes`)
        : typeof tenant,
      `a well-formed string of 1..${MAX_TENANT_SALT_BYTES} UTF-8 bytes`,
    );
  }
  return hkdfSalt(d, t);
}

/** HKDF-SHA256 of `ikm` for `domain` and `tenant` (checked salt): the 32 derived bytes. */
export function hkdf(
  ikm: WebCryptoKey,
  domain: string,
  tenant: string,
  tenantOption: string,
): Promise<ArrayBuffer> {
  let salt: Uint8Array;
  try {
    salt = checkedSalt(domain, tenant, tenantOption);
  } catch (e) {
    return Promise.reject(e);
  }
  const info = utf8(domain)!;
  return subtle.deriveBits(
    { name: "HKDF", hash: "SHA-256", salt: buf(salt), info: buf(info) },
    ikm,
    AES_KEY_BYTES * 8,
  );
}
