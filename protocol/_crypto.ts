/**
 * Internals of the encryption layer: byte helpers, the HKDF salt layout and the nonce counter.
 * Not part of the public API.
 *
 * @module
 */
/**
 * WebCrypto, available on Deno, Bun, Node >= 19 and browsers. Its type, like
 * {@linkcode WebCryptoKey}, is named from the global `crypto` that both the DOM lib and
 * `@types/node` declare: the npm package's declarations need no DOM lib (`SubtleCrypto` and
 * `CryptoKey` are not globals of `@types/node` 20).
 */
export const subtle: typeof globalThis.crypto.subtle = globalThis.crypto.subtle;

/**
 * A WebCrypto key (the DOM lib's `CryptoKey`), named without the DOM lib (see {@linkcode subtle}).
 *
 * @example
 * ```ts
 * import { subtle, type WebCryptoKey } from "./_crypto.ts";
 *
 * const key: WebCryptoKey = await subtle.importKey("raw", new Uint8Array(32), "HKDF", false, [
 *   "deriveBits",
 * ]);
 * console.log(key.type); // "secret"
 * ```
 */
export type WebCryptoKey = Awaited<ReturnType<typeof globalThis.crypto.subtle.importKey>>;

const ENCODER = new TextEncoder();

/** HKDF salt prefix of protocol v1. */
export const SALT_PREFIX: Uint8Array = ENCODER.encode("cachekit_v1_");
/** Prefix hashed before a key to make its fingerprint. */
export const FINGERPRINT_PREFIX: Uint8Array = ENCODER.encode("key_fingerprint_v1");

/** Max domain length in bytes (it is prefixed by a u8). */
export const MAX_DOMAIN_BYTES = 255;
/** Max tenant salt length in bytes (prefixed by a u16; the protocol caps it at 1024). */
export const MAX_TENANT_SALT_BYTES = 1024;

/**
 * UTF-8 bytes of a well-formed string, or `null` when it holds a lone surrogate (TextEncoder would
 * silently turn it into U+FFFD, so two different strings could give the same bytes).
 */
export function utf8(s: string): Uint8Array | null {
  if (!s.isWellFormed()) return null;
  return ENCODER.encode(s);
}

/** `"cachekit_v1_" || u8(len(domain)) || domain || u16be(len(tenant)) || tenant` (lengths pre-checked). */
export function hkdfSalt(domain: Uint8Array, tenant: Uint8Array): Uint8Array {
  const out = new Uint8Array(SALT_PREFIX.length + 1 + domain.length + 2 + tenant.length);
  let o = 0;
  out.set(SALT_PREFIX, o);
  o += SALT_PREFIX.length;
  out[o++] = domain.length;
  out.set(domain, o);
  o += domain.length;
  out[o++] = tenant.length >>> 8;
  out[o++] = tenant.length & 0xff;
  out.set(tenant, o);
  return out;
}

/** `a || b`. */
export function concat2(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Constant-time equality for secret material of public length. */
export function secretEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i] ^ b[i];
  return d === 0;
}

/**
 * View as the `BufferSource` WebCrypto's typings want (no copy): a `Uint8Array<ArrayBuffer>`, which
 * every `BufferSource` accepts, so its declaration needs no DOM lib either.
 */
export function buf(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return bytes as Uint8Array<ArrayBuffer>;
}

// Instance ids: one process-wide 64-bit counter with a random start (all 64 bits random, so two
// processes collide only if their id ranges overlap: ~2^-64 per pair and generator), incremented
// per generator so ids within a process never repeat.
let nextInstance: bigint | undefined;

/** The next process-unique 64-bit instance id, big-endian. */
export function allocateInstanceId(): Uint8Array {
  if (nextInstance === undefined) {
    const seed = crypto.getRandomValues(new Uint8Array(8));
    nextInstance = new DataView(seed.buffer).getBigUint64(0);
  }
  const id = new Uint8Array(8);
  new DataView(id.buffer).setBigUint64(0, nextInstance);
  nextInstance = (nextInstance + 1n) & 0xffff_ffff_ffff_ffffn;
  return id;
}
