/**
 * The tenant key ring ({@linkcode TenantCipher}): per-tenant keys derived from the current and
 * previous master keys, cached as non-extractable WebCrypto keys, the choice of key by stored
 * fingerprint, and the recent AADs. Apart from the primitives because it holds state (caches, its
 * own nonce generator) and the rotation rules; it only composes `_hkdf.ts`, `_aad.ts`,
 * `_nonce.ts` and `_aes_gcm.ts`.
 *
 * @module
 */
import { CacheConfigError, CacheKeyError, DecryptionError } from "../errors.ts";
import { buf, secretEqual, subtle, type WebCryptoKey } from "./_crypto.ts";
import { fromHex, toHex } from "./_hex.ts";
import { hkdf, keyFingerprint } from "./_hkdf.ts";
import { buildAad } from "./_aad.ts";
import { NonceGenerator } from "./_nonce.ts";
import { checkCiphertext, openWith, sealWith } from "./_aes_gcm.ts";
import { MIN_MASTER_KEY_BYTES, parseMasterKey } from "./_master_key.ts";

/** At most this many previous master keys are kept for reading (as in cachekit-py). */
export const MAX_PREVIOUS_KEYS = 3;

const MAX_CACHED_AADS = 256;

/** Options of {@linkcode TenantCipher}. */
export interface TenantCipherOptions {
  /** Current master key: bytes (at least 32) or hex (checked by {@linkcode parseMasterKey}). */
  masterKey: Uint8Array | string;
  /**
   * Previous master keys kept for reading during a rotation (at most 3, each at least 32 bytes,
   * all distinct from each other and from `masterKey`). New writes always use `masterKey`.
   */
  previousKeys?: readonly (Uint8Array | string)[];
  /** How many tenants' derived keys to keep (oldest dropped first). Default 1024. */
  maxCachedTenants?: number;
}

/** Result of {@linkcode TenantCipher.encryptFor}. */
export interface EncryptedValue {
  /** `nonce(12) || ciphertext || tag(16)`. */
  ciphertext: Uint8Array;
  /**
   * {@linkcode keyFingerprint} of the tenant's encryption key derived from the current master key,
   * as 32 lowercase hex characters (cachekit-py's metadata `key_fingerprint`).
   */
  fingerprint: string;
}

interface DerivedKey {
  key: WebCryptoKey;
  fingerprint: string;
}

/**
 * The protocol's encryption for many tenants with key rotation.
 *
 * Writes use the tenant's encryption key derived from the current master key; reads use the key
 * whose fingerprint matches the entry's stored fingerprint (current or previous master key). A
 * fingerprint match is binding (the matched key is the only one tried); an unknown fingerprint is
 * a {@linkcode DecryptionError} without any attempt; without a fingerprint every key is tried,
 * current first.
 *
 * Derived keys are cached per tenant (for every master key of this instance) as non-extractable
 * WebCrypto keys, so the hot path runs no HKDF and holds no raw key bytes; raw derived bytes are
 * zeroed after import. The master keys are imported once as non-extractable HKDF keys; this object
 * keeps no copy of their bytes. The AADs of the most recent 256 (tenant, cache key, format,
 * compressed, original type) tuples are kept too (public data), so a hot key's reads and writes
 * skip encoding it.
 * Each instance has its own {@linkcode NonceGenerator}.
 *
 * @example Rotation: an entry written under the old key stays readable
 * ```ts
 * import assert from "node:assert/strict";
 * import { TenantCipher } from "@cachekit/core/protocol";
 *
 * const oldKey = crypto.getRandomValues(new Uint8Array(32));
 * const newKey = crypto.getRandomValues(new Uint8Array(32));
 * const before = new TenantCipher({ masterKey: oldKey });
 * const entry = await before.encryptFor("acme", "k", new Uint8Array([42]));
 *
 * const after = new TenantCipher({ masterKey: newKey, previousKeys: [oldKey] });
 * const plain = await after.decryptFor("acme", "k", entry.ciphertext, "msgpack", false,
 *   entry.fingerprint);
 * assert.deepEqual(plain, new Uint8Array([42]));
 * ```
 */
export class TenantCipher {
  #masters: Promise<WebCryptoKey>[];
  #cache = new Map<string, DerivedKey[] | Promise<DerivedKey[]>>();
  #maxTenants: number;
  #nonces = new NonceGenerator();
  // AADs of recent (tenant, cache key, format, compressed, original type) tuples: an L2 hit of a
  // hot key decrypts with the AAD it used last time instead of encoding it again. AADs are public
  // data and WebCrypto copies them, so sharing one array between calls is safe.
  #aads = new Map<string, Uint8Array>();

  /**
   * Import the master keys (no derivation happens until a tenant is used).
   *
   * @param options Master keys and cache size.
   * @throws {CacheConfigError} For a short, malformed or weak (hex) key, more than 3 previous keys,
   * or a previous key equal to the current one or another previous one. Values are redacted.
   */
  constructor(options: TenantCipherOptions) {
    const current = toKeyBytes(options?.masterKey, "masterKey");
    const prev = options.previousKeys ?? [];
    if (!Array.isArray(prev) || prev.length > MAX_PREVIOUS_KEYS) {
      throw new CacheConfigError(
        "previousKeys",
        Array.isArray(prev) ? `${prev.length} keys` : typeof prev,
        `an array of at most ${MAX_PREVIOUS_KEYS} keys`,
      );
    }
    const all = [current];
    prev.forEach((k, i) => {
      const bytes = toKeyBytes(k, `previousKeys[${i}]`);
      if (all.some((other) => secretEqual(other, bytes))) {
        throw new CacheConfigError(
          `previousKeys[${i}]`,
          undefined,
          "a key different from masterKey and from the other previous keys",
          { secret: true },
        );
      }
      all.push(bytes);
    });
    const max = options.maxCachedTenants ?? 1024;
    if (!Number.isInteger(max) || max < 1) {
      throw new CacheConfigError("maxCachedTenants", max, "an integer >= 1");
    }
    this.#maxTenants = max;
    // importKey copies the bytes synchronously; keep only the non-extractable keys.
    this.#masters = all.map((k) => {
      const p = subtle.importKey("raw", buf(k), "HKDF", false, ["deriveBits"]);
      p.catch(() => {}); // surfaced on first use
      return p;
    });
    // Wipe our own copies (parsed hex, or the defensive copy of caller bytes).
    for (const k of all) k.fill(0);
  }

  /** Number of master keys (current + previous). */
  get keyCount(): number {
    return this.#masters.length;
  }

  /**
   * The fingerprint (32 lowercase hex) that {@linkcode encryptFor} stores for a tenant.
   *
   * @param tenantId Tenant id (1..1024 UTF-8 bytes).
   * @returns The current key's fingerprint.
   * @throws {CacheConfigError} For a tenant id out of range.
   */
  async fingerprintFor(tenantId: string): Promise<string> {
    return (await this.#keys(tenantId))[0].fingerprint;
  }

  /**
   * Encrypt `plaintext` for a tenant, bound by AAD v0x03 to the cache key, format, compressed flag
   * and (optionally) original type.
   *
   * @param tenantId Tenant id (1..1024 UTF-8 bytes).
   * @param cacheKey The full cache key the value is stored under (non-empty).
   * @param plaintext Bytes to encrypt.
   * @param format Format name for the AAD, default `"msgpack"`.
   * @param compressed Compressed flag for the AAD, default false.
   * @param originalType Optional original type for the AAD.
   * @param aadExtension Bytes appended after the AAD v0x03 (cachekit TypeScript's wire metadata
   *   beyond cachekit-py's fields; the reader must pass the same), default none.
   * @returns The stored bytes and the key fingerprint to store alongside.
   * @throws {CacheConfigError} For a tenant id out of range.
   * @throws {CacheKeyError} For an empty or malformed cache key.
   */
  async encryptFor(
    tenantId: string,
    cacheKey: string,
    plaintext: Uint8Array,
    format: string = "msgpack",
    compressed: boolean = false,
    originalType?: string,
    aadExtension?: Uint8Array,
  ): Promise<EncryptedValue> {
    requireCacheKey(cacheKey);
    const aad = this.#aad(tenantId, cacheKey, format, compressed, originalType, aadExtension);
    const keys = this.#cache.get(tenantId);
    const current =
      (keys === undefined || keys instanceof Promise ? await this.#keys(tenantId) : keys)[0];
    const ciphertext = await sealWith(current.key, plaintext, aad, this.#nextNonce());
    return { ciphertext, fingerprint: current.fingerprint };
  }

  /**
   * Decrypt a value written by {@linkcode encryptFor} (or any protocol-compliant SDK).
   *
   * @param tenantId Tenant id the value was written for.
   * @param cacheKey Cache key it was written under.
   * @param ciphertext `nonce || ciphertext || tag`.
   * @param format Format name used at write time, default `"msgpack"`.
   * @param compressed Compressed flag used at write time, default false.
   * @param fingerprint The stored key fingerprint (32 hex or 16 bytes); when absent, all keys are
   * tried, current first.
   * @param originalType Original type used at write time, if any.
   * @param aadExtension The AAD extension used at write time, if any (see {@linkcode encryptFor}).
   * @returns The plaintext.
   * @throws {DecryptionError} For short or tampered input, an unknown or malformed fingerprint, or
   * a value written for another key, tenant, cache key or format.
   * @throws {CacheConfigError} For a tenant id out of range.
   * @throws {CacheKeyError} For an empty or malformed cache key.
   */
  async decryptFor(
    tenantId: string,
    cacheKey: string,
    ciphertext: Uint8Array,
    format: string = "msgpack",
    compressed: boolean = false,
    fingerprint?: string | Uint8Array,
    originalType?: string,
    aadExtension?: Uint8Array,
  ): Promise<Uint8Array> {
    requireCacheKey(cacheKey);
    const aad = this.#aad(tenantId, cacheKey, format, compressed, originalType, aadExtension);
    checkCiphertext(ciphertext);
    const cached = this.#cache.get(tenantId);
    const keys = cached === undefined || cached instanceof Promise
      ? await this.#keys(tenantId)
      : cached;
    if (fingerprint === undefined || fingerprint === null) {
      let last: unknown;
      for (const k of keys) {
        try {
          return await openWith(k.key, ciphertext, aad);
        } catch (e) {
          last = e;
        }
      }
      throw last;
    }
    // Fast path: the fingerprint as this library and cachekit-py store it (32 lowercase hex) is
    // compared as is; any other form is checked and normalized first.
    let match: DerivedKey | undefined;
    for (const k of keys) if (k.fingerprint === fingerprint) match = k;
    if (match === undefined) {
      const wanted = normalizeFingerprint(fingerprint);
      match = keys.find((k) => k.fingerprint === wanted);
    }
    if (match === undefined) {
      throw new UnknownMasterKeyError(
        "no configured master key matches the entry's key fingerprint (rotated out, or another key)",
      );
    }
    return await openWith(match.key, ciphertext, aad);
  }

  /** Forget all cached derived keys (they are derived again on next use). */
  clearCache(): void {
    this.#cache.clear();
    this.#aads.clear();
  }

  /**
   * {@linkcode buildAad}, remembered for the most recent tuples (bounded, oldest dropped first),
   * followed by `extension` when there is one.
   */
  #aad(
    tenantId: string,
    cacheKey: string,
    format: string,
    compressed: boolean,
    originalType: string | undefined,
    extension?: Uint8Array,
  ): Uint8Array {
    const base = this.#baseAad(tenantId, cacheKey, format, compressed, originalType);
    if (extension === undefined || extension === null || extension.length === 0) return base;
    const out = new Uint8Array(base.length + extension.length);
    out.set(base);
    out.set(extension, base.length);
    return out;
  }

  #baseAad(
    tenantId: string,
    cacheKey: string,
    format: string,
    compressed: boolean,
    originalType: string | undefined,
  ): Uint8Array {
    const type = originalType ?? "";
    if (typeof tenantId !== "string" || typeof format !== "string" || typeof type !== "string") {
      return buildAad(tenantId, cacheKey, format, compressed, originalType);
    }
    // Length-prefixed fields, so no two tuples share an id.
    const id = `${tenantId.length}:${tenantId}${format.length}:${format}${type.length}:${type}${
      compressed ? "T" : "F"
    }${cacheKey}`;
    let aad = this.#aads.get(id);
    if (aad === undefined) {
      aad = buildAad(tenantId, cacheKey, format, compressed, type); // throws for malformed input
      if (this.#aads.size >= MAX_CACHED_AADS) {
        this.#aads.delete(this.#aads.keys().next().value!);
      }
      this.#aads.set(id, aad);
    }
    return aad;
  }

  #nextNonce(): Uint8Array {
    if (this.#nonces.remaining === 0) this.#nonces = new NonceGenerator();
    return this.#nonces.next();
  }

  #keys(tenantId: string): Promise<DerivedKey[]> {
    const hit = this.#cache.get(tenantId);
    if (hit !== undefined) return Promise.resolve(hit);
    const p = this.#derive(tenantId);
    if (this.#cache.size >= this.#maxTenants) {
      this.#cache.delete(this.#cache.keys().next().value!);
    }
    this.#cache.set(tenantId, p);
    p.then(
      (keys) => {
        if (this.#cache.get(tenantId) === p) this.#cache.set(tenantId, keys);
      },
      () => {
        if (this.#cache.get(tenantId) === p) this.#cache.delete(tenantId);
      },
    );
    return p;
  }

  async #derive(tenantId: string): Promise<DerivedKey[]> {
    const masters = await Promise.all(this.#masters);
    return await Promise.all(masters.map(async (m) => {
      const raw = new Uint8Array(await hkdf(m, "encryption", tenantId, "tenantId"));
      try {
        const fingerprint = toHex(await keyFingerprint(raw));
        const key = await subtle.importKey("raw", buf(raw), "AES-GCM", false, [
          "encrypt",
          "decrypt",
        ]);
        return { key, fingerprint };
      } finally {
        raw.fill(0);
      }
    }));
  }
}

/** A defensive copy of a master key given as bytes, or the bytes of one given as hex. */
function toKeyBytes(k: unknown, option: string): Uint8Array {
  if (typeof k === "string") return parseMasterKey(k, option);
  if (!(k instanceof Uint8Array) || k.length < MIN_MASTER_KEY_BYTES) {
    throw new CacheConfigError(
      option,
      undefined,
      `a key of at least ${MIN_MASTER_KEY_BYTES} bytes, or its hex`,
      { secret: true },
    );
  }
  return k.slice();
}

/** Refuse an empty or non-string cache key: AAD v0x03 must bind one. */
function requireCacheKey(cacheKey: string): void {
  if (typeof cacheKey !== "string" || cacheKey.length === 0) {
    throw new CacheKeyError(
      "cacheKey",
      "an encrypted value must be bound to a non-empty cache key (AAD v0x03)",
    );
  }
}

/**
 * A {@linkcode DecryptionError} for an entry whose key fingerprint matches no configured master
 * key: written by an instance with another master key (or one rotated out of `previousKeys`). The
 * engine tells the user once (a configuration mistake that otherwise shows only as misses).
 */
export class UnknownMasterKeyError extends DecryptionError {
  /**
   * Create the error.
   *
   * @param message What failed; never includes key material.
   */
  constructor(message: string) {
    super(message);
    this.name = "DecryptionError";
  }
}

/** A stored fingerprint (16 bytes or 32 hex) as 32 lowercase hex; {@linkcode DecryptionError} else. */
function normalizeFingerprint(fp: string | Uint8Array): string {
  if (fp instanceof Uint8Array) {
    if (fp.length === 16) return toHex(fp);
  } else if (typeof fp === "string" && fp.length === 32) {
    const bytes = fromHex(fp);
    if (bytes !== null) return toHex(bytes);
  }
  throw new DecryptionError("malformed key fingerprint: expected 16 bytes or 32 hex characters");
}
