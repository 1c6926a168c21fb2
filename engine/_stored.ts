/**
 * The stored form of a value: what L2 holds (wire document or frame around the envelope, sealed
 * when encryption is on) and what L1 keeps as bytes, encoded and decoded for one engine.
 *
 * Separate from the call flow so that the layers of a stored value are read in one place; the
 * checks themselves (format, serializer, size, checksum) live in `_stored_read.ts`.
 *
 * @module
 */
import { CacheKitError } from "../errors.ts";
import { decodeInteropValue, encodeInteropValue } from "../protocol/keys.ts";
import { encodeEnvelope } from "../protocol/envelope.ts";
import {
  acceptEntry,
  checkValueSize,
  decodeWire,
  encodeWire,
  openEntry,
  parseEnvelope,
  undefinedEnvelope,
  wireAadExtension,
  type WireDocument,
  WireFormatError,
  wireOriginalType,
} from "../protocol/stored_value.ts";
import type { L1Entry } from "./l1.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { errMessage } from "./_status.ts";

/** What a sealed (encrypted) L1 entry needs to be opened again. */
export type Sealed = { protoKey: string; tenant: string };

/** Read an L1 entry's value (plain value, serialized payload, or sealed document). */
export function l1EntryValue(eng: Engine, e: L1Entry): unknown {
  if (e.bytes === null) return e.value;
  const sealed = e.sealed as Sealed | null;
  if (sealed !== null) return decodeStored(eng, e.bytes, sealed.protoKey, sealed.tenant);
  return decodePayload(eng, e.bytes);
}

/** Decode a serialized payload (an L1 entry's bytes) with the engine's serializer. */
export function decodePayload(eng: Engine, bytes: Uint8Array): unknown {
  return eng.config.interop ? decodeInteropValue(bytes) : eng.serializer.deserialize(bytes);
}

/** Encode a value for L2 (and the plain payload for L1). */
export async function encodeStored(
  eng: Engine,
  value: unknown,
  ctx: KeyCtx,
): Promise<{ payload: Uint8Array; stored: Uint8Array }> {
  const c = eng.config;
  if (c.interop) {
    const payload = encodeInteropValue(value === undefined ? null : value);
    checkValueSize(payload, c.maxValueSize);
    return { payload, stored: payload };
  }
  const undef = value === undefined;
  const payload = checkValueSize(eng.serializer.serialize(undef ? null : value), c.maxValueSize);
  const format = eng.serializer.format;
  const data = !c.integrityChecking ? payload : undef // the checksum itself says `undefined` (see protocol/_undefined_envelope.ts)
    ? undefinedEnvelope(payload, format, c.envelopeProtocol)
    : encodeEnvelope(payload, format, { protocol: c.envelopeProtocol });
  const doc: WireDocument = {
    data,
    compressed: c.integrityChecking,
    serializer: eng.serializer.name === "std" ? "default" : eng.serializer.name,
    format: eng.serializer.format,
    encryption: null,
    jsUndefined: undef,
    freshUntil: eng.failsafe !== null && c.ttl !== null ? Date.now() + c.ttl * 1000 : null,
  };
  if (eng.cipher !== null) {
    const cipher = eng.cipher;
    const tenant = ctx.tenant ?? "default";
    // A failure here is the cache's (WebCrypto, nonce exhaustion), not the value's: a
    // CacheKitError, so `store` (`_call.ts`) degrades (logs, answers uncached) instead of failing the call.
    try {
      // The AAD: cachekit-py's v0x03, with the document's original_type as 0.3.0 seals it
      // (none on the envelope wire), then an extension covering the wire's metadata (framed
      // header, or the document's js_undefined / fresh_until), which names the key fingerprint:
      // known before sealing.
      doc.encryption = {
        tenantId: eng.secure!.label(tenant),
        keyFingerprint: await cipher.fingerprintFor(tenant),
      };
      const sealed = await cipher.encryptFor(
        tenant,
        ctx.protoKey,
        data,
        doc.format,
        doc.compressed,
        wireOriginalType(doc, c.wire),
        wireAadExtension(doc, c.wire) ?? undefined,
      );
      if (c.wire === "document" && doc.compressed) {
        doc.envelopeChecksum = parseEnvelope(data).checksumHex; // for ck_check
      }
      doc.data = sealed.ciphertext;
    } catch (e) {
      if (e instanceof CacheKitError) throw e;
      throw new CacheKitError(
        `${eng.identity}: encryption failed: ${errMessage(e)}`,
        "CACHE_ENCRYPTION",
        { cause: e },
      );
    }
  }
  return { payload, stored: encodeWire(doc, c.wire) };
}

/** Decode bytes read from L2. Throws on anything unreadable (the caller treats it as a miss). */
export function decodeStored(
  eng: Engine,
  bytes: Uint8Array,
  protoKey: string,
  tenant: string,
  meta?: { freshUntil: number | null },
  keep?: { payload: Uint8Array | null },
): unknown {
  const limit = eng.config.maxValueSize;
  if (eng.config.interop) return decodeInteropValue(checkValueSize(bytes, limit));
  const doc = decodeWire(bytes);
  if (meta !== undefined) meta.freshUntil = doc.freshUntil ?? null;
  const policy = eng.readPolicy;
  acceptEntry(doc, policy);
  const finish = (data: Uint8Array): unknown => openEntry(doc, data, policy, keep);
  if (eng.cipher !== null) {
    if (!doc.encryption) throw new WireFormatError("a plaintext entry under an encrypted config");
    if (!eng.secure!.accepts(tenant, doc.encryption.tenantId)) {
      throw new WireFormatError("entry of another tenant");
    }
    return eng.cipher.decryptFor(
      tenant,
      protoKey,
      doc.data,
      eng.serializer.format,
      doc.compressed,
      doc.encryption.keyFingerprint,
      doc.originalType || undefined,
      doc.aad ?? undefined,
    ).then(finish);
  }
  if (doc.encryption) throw new WireFormatError("an encrypted entry and no key configured");
  return finish(doc.data);
}

/** Whether `v` is a primitive (L1 keeps it as is: nothing to copy). */
export function isPrimitive(v: unknown): boolean {
  return v === null || (typeof v !== "object" && typeof v !== "function");
}
