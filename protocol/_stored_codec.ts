/**
 * The stored-value codec: one direction each way, every layer in one place.
 *
 * - {@linkcode encodeStoredValue}: serializer → envelope (or the undefined envelope) → cipher →
 *   wire (document or frame).
 * - {@linkcode decodeStoredValue}: wire → the reader's rules (`_stored_read.ts`) → cipher →
 *   envelope → serializer, returning the value, with the entry's `fresh_until` and, on request, a
 *   copy of the payload for L1.
 *
 * A {@linkcode StoredCodec} is built once per cached function from its configuration alone (the
 * reader decides what it accepts, never the entry). Interop mode stores plain MessagePack without
 * any of these layers and does not come here.
 *
 * @module
 */
import { CacheKitError } from "../errors.ts";
import type { Serializer } from "../serializers/types.ts";
import { encodeEnvelope } from "./envelope.ts";
import { parseEnvelope } from "./_envelope_msgpack.ts";
import { undefinedEnvelope } from "./_undefined_envelope.ts";
import { DIGEST_BYTES, usesDigestLayout, withDigest } from "./_digest_layout.ts";
import { toHex } from "./_hex.ts";
import type { TenantCipher } from "./_tenant_cipher.ts";
import type { WireDocument, WireForm } from "./_stored_types.ts";
import { WireFormatError } from "./_stored_types.ts";
import { acceptEntry, checkValueSize, openEntry, type ReadPolicy } from "./_stored_read.ts";
import { decodeWire, encodeWire, wireAadExtension, wireOriginalType } from "./stored_value.ts";

/** Encryption of a codec: the tenant cipher and how tenants are labelled in entries. */
export interface StoredCipher {
  /** The tenant key ring. */
  cipher: TenantCipher;
  /** The tenant label written in an entry (`tenant_id`) for a tenant. */
  label(tenant: string): string;
  /** Whether an entry labelled `label` may be read by `tenant`. */
  accepts(tenant: string, label: string): boolean;
}

/** One cached function's codec: its configuration, fixed when the function is wrapped. */
export interface StoredCodec {
  /** The function's identity (named in errors). */
  identity: string;
  /** The configured serializer. */
  serializer: Serializer;
  /** What the reader accepts (integrity, names, size limit, scratch buffer). */
  policy: ReadPolicy;
  /** The wire written. */
  wire: WireForm;
  /** Envelope protocol written. */
  envelopeProtocol: "1.0" | "1.1";
  /** Encryption, or `null`. */
  secure: StoredCipher | null;
}

/**
 * The serializer's name as entries carry it (cachekit-py's `"default"` for std MessagePack).
 *
 * @param s The serializer.
 * @returns The name written in entries.
 */
export function wireName(s: Serializer): string {
  return s.name === "std" ? "default" : s.name;
}

/**
 * Encode a value for L2, and the plain payload L1 keeps.
 *
 * @param codec The function's codec.
 * @param value The function's result (`undefined` allowed).
 * @param call The call's tenant (`"default"` without one), protocol key (bound into the AAD), and
 *   logical expiry for fail-safe (`null`: none).
 * @returns The serialized payload and the stored bytes.
 * @throws {CacheKitError} A value over `maxValueSize` (`ValueTooLargeError`), or an encryption
 *   failure; a serializer's own error as it threw it.
 */
export async function encodeStoredValue(
  codec: StoredCodec,
  value: unknown,
  call: { tenant: string; protoKey: string; freshUntil: number | null },
): Promise<{ payload: Uint8Array; stored: Uint8Array }> {
  return await encodeStoredNow(codec, value, call);
}

/**
 * {@linkcode encodeStoredValue}, synchronous unless the codec encrypts (WebCrypto is
 * asynchronous): a plaintext miss's store then costs no promise and no microtask turn.
 *
 * @param codec The function's codec.
 * @param value The function's result (`undefined` allowed).
 * @param call As {@linkcode encodeStoredValue}.
 * @returns The payload and stored bytes, or (encrypted) a promise of them.
 * @throws As {@linkcode encodeStoredValue}, synchronously for a plaintext codec.
 */
export function encodeStoredNow(
  codec: StoredCodec,
  value: unknown,
  call: { tenant: string; protoKey: string; freshUntil: number | null },
): StoredPair | Promise<StoredPair> {
  const { serializer, policy, wire, envelopeProtocol } = codec;
  const framing = policy.framing ?? null;
  // A serializer with its own layout (arrow, auto) writes what 0.3.0 writes: `undefined` as nil.
  const undef = value === undefined && framing === null;
  const payload = checkValueSize(
    serializer.serialize(value === undefined ? null : value),
    policy.limits.maxSize,
  );
  const format = serializer.format;
  const integrity = policy.integrityChecking;
  // cachekit-py 0.3.0's orjson and arrow: an 8-byte digest before the payload, no envelope.
  const digest = framing === null && integrity && usesDigestLayout(format);
  const compressed = framing === null && integrity && !digest;
  const data = framing !== null
    ? framing.seal(payload, integrity, envelopeProtocol)
    : digest
    ? withDigest(payload, undef)
    : !compressed
    ? payload
    : undef // the checksum itself says `undefined` (see _undefined_envelope.ts)
    ? undefinedEnvelope(payload, format, envelopeProtocol)
    : encodeEnvelope(payload, format, { protocol: envelopeProtocol });
  const doc: WireDocument = {
    data,
    compressed,
    digest,
    serializer: wireName(serializer),
    format,
    encryption: null,
    jsUndefined: undef,
    freshUntil: call.freshUntil,
  };
  if (framing !== null) doc.originalType = framing.originalType;
  if (codec.secure === null) return { payload, stored: encodeWire(doc, wire) };
  return sealStored(codec, call, doc, payload);
}

/** The pair {@linkcode encodeStoredNow} gives: the serialized payload and the stored bytes. */
export interface StoredPair {
  /** The serializer's bytes (what L1 keeps). */
  payload: Uint8Array;
  /** The bytes written to L2. */
  stored: Uint8Array;
}

/** The encrypted end of {@linkcode encodeStoredNow}: seal `doc.data`, then the wire. */
async function sealStored(
  codec: StoredCodec,
  call: { tenant: string; protoKey: string },
  doc: WireDocument,
  payload: Uint8Array,
): Promise<StoredPair> {
  const { wire, policy } = codec;
  const { data, format, compressed, digest } = doc;
  const integrity = policy.integrityChecking;
  const secure = codec.secure!;
  const cipher = secure.cipher;
  // A failure here is the cache's (WebCrypto, nonce exhaustion), not the value's: a
  // CacheKitError, so the caller degrades (logs, answers uncached) instead of failing the call.
  try {
    // The AAD: cachekit-py's v0x03, with the document's original_type as 0.3.0 seals it (none on
    // the envelope wire), then an extension covering the wire's metadata (framed header, or the
    // document's js_undefined / fresh_until), which names the key fingerprint: known before
    // sealing.
    doc.encryption = {
      tenantId: secure.label(call.tenant),
      keyFingerprint: await cipher.fingerprintFor(call.tenant),
    };
    const sealed = await cipher.encryptFor(
      call.tenant,
      call.protoKey,
      data,
      format,
      compressed,
      wireOriginalType(doc, wire),
      wireAadExtension(doc, wire) ?? undefined,
    );
    if (wire === "document" && integrity) { // for ck_check
      doc.envelopeChecksum = digest
        ? toHex(data, 0, DIGEST_BYTES)
        : parseEnvelope(data).checksumHex;
    }
    doc.data = sealed.ciphertext;
  } catch (e) {
    if (e instanceof CacheKitError) throw e;
    throw new CacheKitError(
      `${codec.identity}: encryption failed: ${(e as Error)?.message ?? String(e)}`,
      "CACHE_ENCRYPTION",
      { cause: e },
    );
  }
  return { payload, stored: encodeWire(doc, wire) };
}

/**
 * Decode bytes read from L2 into the value, or throw (the caller treats it as a miss).
 *
 * @param codec The function's codec.
 * @param bytes The stored bytes.
 * @param tenant The reading call's tenant (`"default"` without one; checked by the AAD).
 * @param protoKey The reading call's protocol key (checked by the AAD).
 * @param meta When given, receives the entry's `fresh_until` (ms), or `null`.
 * @returns The value, or a promise of it when the entry is decrypted.
 * @throws {CacheKitError} Anything that does not verify or decode.
 */
export function decodeStoredValue(
  codec: StoredCodec,
  bytes: Uint8Array,
  tenant: string,
  protoKey: string,
  meta?: { freshUntil: number | null },
): unknown {
  const doc = decodeWire(bytes);
  if (meta !== undefined) meta.freshUntil = doc.freshUntil ?? null;
  const policy = codec.policy;
  acceptEntry(doc, policy);
  const secure = codec.secure;
  if (secure !== null) {
    if (!doc.encryption) throw new WireFormatError("a plaintext entry under an encrypted config");
    if (!secure.accepts(tenant, doc.encryption.tenantId)) {
      throw new WireFormatError("entry of another tenant");
    }
    return secure.cipher.decryptFor(
      tenant,
      protoKey,
      doc.data,
      codec.serializer.format,
      doc.compressed,
      doc.encryption.keyFingerprint,
      doc.originalType || undefined,
      doc.aad ?? undefined,
    ).then((data) => openEntry(doc, data, policy));
  }
  if (doc.encryption) throw new WireFormatError("an encrypted entry and no key configured");
  return openEntry(doc, doc.data, policy);
}
