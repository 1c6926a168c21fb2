/**
 * AES-256-GCM on WebCrypto in the protocol's stored form, `nonce(12) || ciphertext || tag(16)`:
 * the one-shot {@linkcode encrypt}/{@linkcode decrypt} and the seal/open steps the key ring runs
 * with its cached keys. Apart because it is the only place that calls the cipher.
 *
 * @module
 */
import { CacheConfigError, DecryptionError } from "../errors.ts";
import { buf, subtle, type WebCryptoKey } from "./_crypto.ts";
import { AES_KEY_BYTES } from "./_hkdf.ts";
import { nextModuleNonce, NONCE_BYTES } from "./_nonce.ts";

/** AES-GCM authentication tag length in bytes. */
export const TAG_BYTES = 16;
/** Smallest valid stored ciphertext: a nonce and a tag around an empty plaintext. */
export const MIN_CIPHERTEXT_BYTES: number = NONCE_BYTES + TAG_BYTES;

/**
 * Encrypt with AES-256-GCM. Returns `nonce(12) || ciphertext || tag(16)`.
 *
 * Without `nonce`, a module-level {@linkcode NonceGenerator} supplies one (replaced by a fresh
 * generator when exhausted). Pass a nonce only if you guarantee it is never reused with this key.
 *
 * @param key 32-byte AES key (e.g. `deriveTenantKeys(...).encryptionKey`).
 * @param plaintext Bytes to encrypt.
 * @param aad Additional authenticated data ({@linkcode buildAad}).
 * @param nonce Optional 12-byte nonce.
 * @returns The stored form.
 * @throws {CacheConfigError} For a key that is not 32 bytes or a nonce that is not 12 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildAad, decrypt, encrypt } from "@cachekit/core/protocol";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const aad = buildAad("t", "k");
 * const ct = await encrypt(key, new Uint8Array([1, 2, 3]), aad);
 * assert.equal(ct.length, 31); // nonce 12 + ciphertext 3 + tag 16
 * assert.deepEqual(await decrypt(key, ct, aad), new Uint8Array([1, 2, 3]));
 * ```
 */
export async function encrypt(
  key: Uint8Array,
  plaintext: Uint8Array,
  aad: Uint8Array,
  nonce?: Uint8Array,
): Promise<Uint8Array> {
  if (nonce !== undefined && (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES)) {
    throw new CacheConfigError(
      "nonce",
      nonce instanceof Uint8Array ? `${nonce.length} bytes` : typeof nonce,
      `${NONCE_BYTES} bytes`,
    );
  }
  const k = await importAesKey(key);
  return await sealWith(k, plaintext, aad, nonce ?? nextModuleNonce());
}

/**
 * Decrypt `nonce(12) || ciphertext || tag(16)` with AES-256-GCM.
 *
 * @param key 32-byte AES key.
 * @param ciphertext The stored form.
 * @param aad The AAD the value was encrypted with.
 * @returns The plaintext.
 * @throws {DecryptionError} For input shorter than 28 bytes or failed authentication (wrong key,
 * wrong AAD, tampered bytes).
 * @throws {CacheConfigError} For a key that is not 32 bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DecryptionError } from "@cachekit/core";
 * import { decrypt, encrypt } from "@cachekit/core/protocol";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const ct = await encrypt(key, new Uint8Array([1]), new Uint8Array([3]));
 * await assert.rejects(decrypt(key, ct, new Uint8Array([4])), DecryptionError); // other AAD
 * ```
 */
export async function decrypt(
  key: Uint8Array,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  const k = await importAesKey(key);
  checkCiphertext(ciphertext);
  return await openWith(k, ciphertext, aad);
}

/** Import a 32-byte AES-256-GCM key (a rejected promise for any other). */
function importAesKey(key: Uint8Array): Promise<WebCryptoKey> {
  if (!(key instanceof Uint8Array) || key.length !== AES_KEY_BYTES) {
    return Promise.reject(
      new CacheConfigError("key", undefined, `a ${AES_KEY_BYTES}-byte AES-256 key`, {
        secret: true,
      }),
    );
  }
  return subtle.importKey("raw", buf(key), "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** Seal with an imported key: `nonce || ciphertext || tag`. */
export async function sealWith(
  key: WebCryptoKey,
  plaintext: Uint8Array,
  aad: Uint8Array,
  nonce: Uint8Array,
): Promise<Uint8Array> {
  const sealed = await subtle.encrypt(
    { name: "AES-GCM", iv: buf(nonce), additionalData: buf(aad), tagLength: TAG_BYTES * 8 },
    key,
    buf(plaintext),
  );
  const out = new Uint8Array(NONCE_BYTES + sealed.byteLength);
  out.set(nonce, 0);
  out.set(new Uint8Array(sealed), NONCE_BYTES);
  return out;
}

/** Refuse stored bytes too short to hold a nonce and a tag ({@linkcode DecryptionError}). */
export function checkCiphertext(ciphertext: Uint8Array): void {
  if (!(ciphertext instanceof Uint8Array)) {
    throw new DecryptionError("ciphertext must be a Uint8Array");
  }
  if (ciphertext.length < MIN_CIPHERTEXT_BYTES) {
    throw new DecryptionError(
      `ciphertext too short: ${ciphertext.length} bytes, at least ${MIN_CIPHERTEXT_BYTES} (nonce + tag)`,
    );
  }
}

/** Open `nonce || ciphertext || tag` with an imported key; a failed tag is a {@linkcode DecryptionError}. */
export async function openWith(
  key: WebCryptoKey,
  ciphertext: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  try {
    const plain = await subtle.decrypt(
      {
        name: "AES-GCM",
        iv: buf(ciphertext.subarray(0, NONCE_BYTES)),
        additionalData: buf(aad),
        tagLength: TAG_BYTES * 8,
      },
      key,
      buf(ciphertext.subarray(NONCE_BYTES)),
    );
    return new Uint8Array(plain);
  } catch (cause) {
    throw new DecryptionError(
      "authentication failed: wrong key, wrong tenant or cache key, or tampered data",
      { cause },
    );
  }
}
