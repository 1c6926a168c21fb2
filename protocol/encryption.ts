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
 * Key material never appears in error messages: key errors are {@linkcode CacheConfigError}s with
 * the value redacted, and failed decryption is a {@linkcode DecryptionError} naming no key.
 *
 * @example Encrypt for a tenant and cache key, then read it back
 * ```ts
 * import { TenantCipher } from "@cachekit/core/protocol";
 *
 * const masterKey = crypto.getRandomValues(new Uint8Array(32));
 * const cipher = new TenantCipher({ masterKey });
 * const plaintext = new TextEncoder().encode("secret");
 * const { ciphertext, fingerprint } = await cipher.encryptFor("acme", "user:42", plaintext);
 * const back = await cipher.decryptFor("acme", "user:42", ciphertext, "msgpack", false, fingerprint);
 * console.log(new TextDecoder().decode(back)); // secret
 * ```
 *
 * @module
 */
import { CacheConfigError, CacheKeyError, CacheKitError, DecryptionError } from "../errors.ts";
import {
  allocateInstanceId,
  buf,
  concat2,
  FINGERPRINT_PREFIX,
  hkdfSalt,
  MAX_DOMAIN_BYTES,
  MAX_TENANT_SALT_BYTES,
  secretEqual,
  subtle,
  utf8,
} from "./_crypto.ts";
import { fromHex, toHex } from "./_hex.ts";

/** AES-GCM nonce length in bytes. */
export const NONCE_BYTES = 12;
/** AES-GCM authentication tag length in bytes. */
export const TAG_BYTES = 16;
/** Smallest valid stored ciphertext: a nonce and a tag around an empty plaintext. */
export const MIN_CIPHERTEXT_BYTES: number = NONCE_BYTES + TAG_BYTES;
/** Version byte that starts an AAD built by {@linkcode buildAad}. */
export const AAD_VERSION = 0x03;
/** Smallest master key the protocol's HKDF accepts (bytes). */
export const MIN_HKDF_MASTER_KEY_BYTES = 16;
/** Smallest master key accepted as configuration (bytes; 256 bits, as in cachekit-py). */
export const MIN_MASTER_KEY_BYTES = 32;
/** At most this many previous master keys are kept for reading (as in cachekit-py). */
export const MAX_PREVIOUS_KEYS = 3;

const AES_KEY_BYTES = 32;
const MAX_CACHED_AADS = 256;
const COUNTER_LIMIT = 0x1_0000_0000; // 2^32 counter values per instance id
const NONCE_EXHAUSTED = "CACHE_NONCE_EXHAUSTED";

// ---------------------------------------------------------------------------------------------
// Key derivation

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
 * import { deriveDomainKey } from "@cachekit/core/protocol";
 *
 * const master = new Uint8Array(32).fill(7);
 * const key = await deriveDomainKey(master, "encryption", "tenant-a");
 * console.log(key.length); // 32
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
 * import { deriveTenantKeys } from "@cachekit/core/protocol";
 *
 * const keys = await deriveTenantKeys(new Uint8Array(32).fill(7), "tenant-a");
 * console.log(keys.encryptionKey.length, keys.cacheKeySalt.length); // 32 32
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
 * import { keyFingerprint } from "@cachekit/core/protocol";
 *
 * const fp = await keyFingerprint(new Uint8Array(32));
 * console.log(fp.length); // 16
 * ```
 */
export async function keyFingerprint(key: Uint8Array): Promise<Uint8Array> {
  const digest = await subtle.digest("SHA-256", buf(concat2(FINGERPRINT_PREFIX, key)));
  return new Uint8Array(digest, 0, 16).slice();
}

async function importHkdfKey(
  masterKey: Uint8Array,
  option: string,
  minBytes: number,
): Promise<CryptoKey> {
  if (!(masterKey instanceof Uint8Array) || masterKey.length < minBytes) {
    throw new CacheConfigError(option, undefined, `a key of at least ${minBytes} bytes`, {
      secret: true,
    });
  }
  return await subtle.importKey("raw", buf(masterKey), "HKDF", false, ["deriveBits"]);
}

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

function hkdf(
  ikm: CryptoKey,
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

// ---------------------------------------------------------------------------------------------
// AAD

/**
 * Build AAD v0x03: byte `0x03`, then for each of tenant id, cache key, format, `"True"`/`"False"`
 * (compressed) and, when non-empty, the original type: a 4-byte big-endian length and the UTF-8
 * bytes. (An empty `originalType` is left out, as cachekit-py does.)
 *
 * @param tenantId Tenant id.
 * @param cacheKey Full cache key the value is stored under.
 * @param format Serialization format name, default `"msgpack"`.
 * @param compressed Whether the plaintext is compressed (the metadata's `compressed`), default false.
 * @param originalType Optional original-type string (cachekit-py metadata `original_type`).
 * @returns The AAD bytes.
 * @throws {CacheConfigError} For a tenant id or format that is not a well-formed string.
 * @throws {CacheKeyError} For a cache key that is not a well-formed string.
 *
 * @example
 * ```ts
 * import { buildAad } from "@cachekit/core/protocol";
 *
 * const aad = buildAad("t", "k");
 * console.log(aad[0], aad.length); // 3 31
 * ```
 */
export function buildAad(
  tenantId: string,
  cacheKey: string,
  format: string = "msgpack",
  compressed: boolean = false,
  originalType?: string,
): Uint8Array {
  const tLen = typeof tenantId === "string" ? utf8Length(tenantId) : -1;
  if (tLen < 0) {
    throw new CacheConfigError("tenantId", typeof tenantId, "a well-formed Unicode string");
  }
  const kLen = typeof cacheKey === "string" ? utf8Length(cacheKey) : -1;
  if (kLen < 0) throw new CacheKeyError("cacheKey", "it must be a well-formed Unicode string");
  const fLen = typeof format === "string" ? utf8Length(format) : -1;
  if (fLen < 0) throw new CacheConfigError("format", format, "a well-formed Unicode string");
  const withType = originalType !== undefined && originalType !== null && originalType !== "";
  const oLen = withType ? (typeof originalType === "string" ? utf8Length(originalType) : -1) : 0;
  if (oLen < 0) {
    throw new CacheConfigError("originalType", originalType, "a well-formed Unicode string");
  }
  const flag = compressed ? "True" : "False";
  const out = new Uint8Array(
    1 + 16 + tLen + kLen + fLen + flag.length + (withType ? 4 + oLen : 0),
  );
  out[0] = AAD_VERSION;
  let o = writeField(out, 1, tenantId, tLen);
  o = writeField(out, o, cacheKey, kLen);
  o = writeField(out, o, format, fLen);
  o = writeField(out, o, flag, flag.length);
  if (withType) writeField(out, o, originalType!, oLen);
  return out;
}

// AAD fields are encoded by hand (length pass, then one exact allocation) because this runs on
// every encrypted read and write and TextEncoder's per-call allocations cost more than the rest.

/** UTF-8 length of `s`, or -1 when it holds a lone surrogate. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1); // NaN past the end
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return -1;
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Write `u32be(len) || utf8(s)` at `o` (s well-formed, len its UTF-8 length); next offset. */
function writeField(out: Uint8Array, o: number, s: string, len: number): number {
  out[o] = len >>> 24;
  out[o + 1] = (len >>> 16) & 0xff;
  out[o + 2] = (len >>> 8) & 0xff;
  out[o + 3] = len & 0xff;
  o += 4;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[o++] = c;
    } else if (c < 0x800) {
      out[o++] = 0xc0 | (c >> 6);
      out[o++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[o++] = 0xf0 | (c >> 18);
      out[o++] = 0x80 | ((c >> 12) & 0x3f);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    } else {
      out[o++] = 0xe0 | (c >> 12);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    }
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// Nonces

/**
 * Counter-based AES-GCM nonces: `instanceId(8) || counter(4, big-endian)`.
 *
 * The instance id comes from a process-wide 64-bit counter whose start is random (all 64 bits;
 * cachekit-core randomizes only the upper 32), incremented for every generator, so generators in
 * one process never share an id and two processes collide only if their id ranges overlap. The
 * counter runs from `startCounter` (default 0) to 2^32 - 1; after that {@linkcode next} throws
 * a {@linkcode CacheKitError} with code
 * `"CACHE_NONCE_EXHAUSTED"` every time and never wraps ({@linkcode encrypt} and
 * {@linkcode TenantCipher} then switch to a new generator, which has a new instance id).
 *
 * @example
 * ```ts
 * import { NonceGenerator } from "@cachekit/core/protocol";
 *
 * const gen = new NonceGenerator();
 * const a = gen.next();
 * const b = gen.next();
 * console.log(a.length, a[11], b[11]); // 12 0 1
 * ```
 */
export class NonceGenerator {
  #id: Uint8Array;
  #counter: number;

  /**
   * Create a generator with a newly allocated instance id.
   *
   * @param options `startCounter`: first counter value, an integer in 0..2^32 (2^32 makes an
   * exhausted generator; useful in tests). The instance id is always allocated, never chosen.
   */
  constructor(options: { startCounter?: number } = {}) {
    const start = options.startCounter ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > COUNTER_LIMIT) {
      throw new CacheConfigError("startCounter", start, "an integer in 0..2^32");
    }
    this.#id = allocateInstanceId();
    this.#counter = start;
  }

  /** A copy of this generator's 8-byte instance id. */
  get instanceId(): Uint8Array {
    return this.#id.slice();
  }

  /** The counter value the next nonce will carry (2^32 once exhausted). */
  get counter(): number {
    return this.#counter;
  }

  /** How many nonces are left. */
  get remaining(): number {
    return COUNTER_LIMIT - this.#counter;
  }

  /**
   * The next nonce (12 bytes, a fresh array).
   *
   * @throws {CacheKitError} Code `"CACHE_NONCE_EXHAUSTED"` when all 2^32 counter values are used.
   */
  next(): Uint8Array {
    const c = this.#counter;
    if (c >= COUNTER_LIMIT) {
      throw new CacheKitError(
        "nonce counter exhausted (2^32 encryptions with one instance id); create a new NonceGenerator",
        NONCE_EXHAUSTED,
      );
    }
    this.#counter = c + 1;
    const n = new Uint8Array(NONCE_BYTES);
    n.set(this.#id, 0);
    n[8] = c >>> 24;
    n[9] = (c >>> 16) & 0xff;
    n[10] = (c >>> 8) & 0xff;
    n[11] = c & 0xff;
    return n;
  }
}

let moduleNonces: NonceGenerator | undefined;

function nextModuleNonce(): Uint8Array {
  if (moduleNonces === undefined || moduleNonces.remaining === 0) {
    moduleNonces = new NonceGenerator();
  }
  return moduleNonces.next();
}

// ---------------------------------------------------------------------------------------------
// AES-256-GCM

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
 * import { buildAad, decrypt, encrypt } from "@cachekit/core/protocol";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const aad = buildAad("t", "k");
 * const ct = await encrypt(key, new Uint8Array([1, 2, 3]), aad);
 * console.log(ct.length); // 31
 * console.log(await decrypt(key, ct, aad)); // Uint8Array(3) [ 1, 2, 3 ]
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
 * import { decrypt, encrypt } from "@cachekit/core/protocol";
 *
 * const key = crypto.getRandomValues(new Uint8Array(32));
 * const ct = await encrypt(key, new Uint8Array([1]), new Uint8Array([3]));
 * try {
 *   await decrypt(key, ct, new Uint8Array([4])); // other AAD
 * } catch (e) {
 *   console.log((e as Error).name); // DecryptionError
 * }
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

function importAesKey(key: Uint8Array): Promise<CryptoKey> {
  if (!(key instanceof Uint8Array) || key.length !== AES_KEY_BYTES) {
    return Promise.reject(
      new CacheConfigError("key", undefined, `a ${AES_KEY_BYTES}-byte AES-256 key`, {
        secret: true,
      }),
    );
  }
  return subtle.importKey("raw", buf(key), "AES-GCM", false, ["encrypt", "decrypt"]);
}

async function sealWith(
  key: CryptoKey,
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

function checkCiphertext(ciphertext: Uint8Array): void {
  if (!(ciphertext instanceof Uint8Array)) {
    throw new DecryptionError("ciphertext must be a Uint8Array");
  }
  if (ciphertext.length < MIN_CIPHERTEXT_BYTES) {
    throw new DecryptionError(
      `ciphertext too short: ${ciphertext.length} bytes, at least ${MIN_CIPHERTEXT_BYTES} (nonce + tag)`,
    );
  }
}

async function openWith(
  key: CryptoKey,
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

// ---------------------------------------------------------------------------------------------
// Master keys

/**
 * Parse a hex master key (as in `CACHEKIT_MASTER_KEY`): at least 32 bytes (64 hex characters);
 * surrounding whitespace is ignored. Refuses keys that are obviously weak: a short repeating
 * pattern (`"aa" * 32`, a 16-byte block twice), fewer than 16 distinct byte values, or an
 * arithmetic run (`00 01 02 …`). The key never appears in the error.
 *
 * @param hex The key as hex.
 * @param option Name reported in errors, default `"CACHEKIT_MASTER_KEY"`.
 * @returns The key bytes.
 * @throws {CacheConfigError} For malformed, short or weak keys (value redacted).
 *
 * @example
 * ```ts
 * import { parseMasterKey } from "@cachekit/core/protocol";
 *
 * const hex = Array.from(crypto.getRandomValues(new Uint8Array(32)),
 *   (b) => b.toString(16).padStart(2, "0")).join("");
 * console.log(parseMasterKey(hex).length); // 32
 * ```
 */
export function parseMasterKey(hex: string, option: string = "CACHEKIT_MASTER_KEY"): Uint8Array {
  const fail = (expected: string): never => {
    throw new CacheConfigError(option, undefined, expected, { secret: true });
  };
  if (typeof hex !== "string") return fail("a hex string");
  const bytes = fromHex(hex.trim());
  if (bytes === null) {
    return fail("a hex string (characters 0-9, a-f) of even length");
  }
  if (bytes.length < MIN_MASTER_KEY_BYTES) {
    return fail(
      `at least ${MIN_MASTER_KEY_BYTES} bytes (${
        MIN_MASTER_KEY_BYTES * 2
      } hex characters) of random data`,
    );
  }
  const why = weakness(bytes);
  if (why !== null) {
    bytes.fill(0);
    return fail(
      `random key material; this key is weak (${why}). Generate one with \`openssl rand -hex 32\``,
    );
  }
  return bytes;
}

function weakness(key: Uint8Array): string | null {
  for (let p = 1; p <= key.length / 2; p++) {
    let periodic = true;
    for (let i = p; i < key.length && periodic; i++) periodic = key[i] === key[i - p];
    if (periodic) return `it repeats a ${p}-byte pattern`;
  }
  const step = (key[1] - key[0]) & 0xff;
  let run = true;
  for (let i = 2; i < key.length && run; i++) run = ((key[i] - key[i - 1]) & 0xff) === step;
  if (run) return "it is an arithmetic sequence";
  if (new Set(key).size < 16) return "it has fewer than 16 distinct byte values";
  return null;
}

// ---------------------------------------------------------------------------------------------
// Key ring

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
  key: CryptoKey;
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
 * console.log(plain[0]); // 42
 * ```
 */
export class TenantCipher {
  #masters: Promise<CryptoKey>[];
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
      throw new DecryptionError(
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

function requireCacheKey(cacheKey: string): void {
  if (typeof cacheKey !== "string" || cacheKey.length === 0) {
    throw new CacheKeyError(
      "cacheKey",
      "an encrypted value must be bound to a non-empty cache key (AAD v0x03)",
    );
  }
}

function normalizeFingerprint(fp: string | Uint8Array): string {
  if (fp instanceof Uint8Array) {
    if (fp.length === 16) return toHex(fp);
  } else if (typeof fp === "string" && fp.length === 32) {
    const bytes = fromHex(fp);
    if (bytes !== null) return toHex(bytes);
  }
  throw new DecryptionError("malformed key fingerprint: expected 16 bytes or 32 hex characters");
}
