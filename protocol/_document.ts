/**
 * The JSON document codec: cachekit-py 0.3.0's UTF-8 JSON document (`data` in base64, `metadata`,
 * `serializer`, `version: "2.0"`), and the `ck_check` that binds its metadata to the envelope it
 * carries. The document's fields are described in `stored_value.ts`'s module doc. Reading takes
 * the byte-level fast path (`_document_parse.ts`) first and the strict `JSON.parse` path for
 * anything outside it; both accept the same documents.
 *
 * @module
 */
import { DataSlot, parseFast } from "./_document_parse.ts";
import { base64Bytes, fromBase64, toBase64 } from "./_base64.ts";
import { xxh3Hex } from "./_xxh3.ts";
import { toHex } from "./_hex.ts";
import { parseEnvelope } from "./_envelope_msgpack.ts";
import { type WireDocument, type WireEncryption, WireFormatError } from "./_stored_types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** The UTF-8 JSON document for `doc` (see `encodeWire`). */
export function encodeDocument(doc: WireDocument): Uint8Array {
  const format = doc.format ?? "msgpack";
  const metadata: Record<string, unknown> = {
    format,
    encoding: "utf-8",
    compressed: doc.compressed,
    original_type: doc.originalType === undefined ? format : doc.originalType,
  };
  if (doc.encryption) {
    metadata.encrypted = true;
    metadata.tenant_id = doc.encryption.tenantId;
    metadata.encryption_algorithm = doc.encryption.algorithm ?? "AES-256-GCM";
    metadata.key_fingerprint = doc.encryption.keyFingerprint;
  }
  const sec = typeof doc.freshUntil === "number" ? doc.freshUntil / 1000 : null;
  if (doc.jsUndefined) metadata.js_undefined = true;
  if (sec !== null) metadata.fresh_until = sec;
  if (doc.compressed || doc.digest) {
    // The envelope's checksum, or the digest layout's 8-byte prefix (`_digest_layout.ts`).
    const sum = doc.envelopeChecksum ??
      (doc.encryption ? null : doc.compressed ? envelopeChecksum(doc.data) : toHex(doc.data, 0, 8));
    if (sum !== null) {
      metadata.ck_check = checkOf(
        checkFields(
          doc.serializer,
          format,
          doc.compressed,
          doc.jsUndefined === true,
          sec,
          doc.encryption,
        ),
        sum,
      );
    }
  }
  return enc.encode(JSON.stringify({
    data: toBase64(doc.data),
    metadata,
    serializer: doc.serializer,
    version: "2.0",
  }));
}

/** Read a JSON document (any first byte but a frame's or a bare envelope's). */
export function decodeDocument(bytes: Uint8Array): WireDocument {
  // The hot path: documents as cachekit writes them (ASCII, no escapes) are read straight from
  // the bytes. Anything else — and any document the fast path would refuse — goes through the
  // strict general path below, so both paths accept the same documents, decode them to the same
  // result and refuse the others with the same error.
  const fast = parseFast(bytes);
  if (fast !== null) {
    try {
      const doc = checkDocument(fast, bytes);
      if (doc !== null) return doc;
    } catch {
      // Refused: the general path gives the refusal its usual message.
    }
  }
  let doc: unknown;
  try {
    doc = JSON.parse(dec.decode(bytes));
  } catch {
    throw new WireFormatError("not a UTF-8 JSON document");
  }
  return checkDocument(doc, null)!;
}

/**
 * Check a parsed document and build the result. `bytes` is set when `doc` comes from
 * {@linkcode parseFast} (its `data` may then be a {@linkcode DataSlot} in `bytes`); returns
 * `null` when that range is not plain base64 (the general path decides).
 */
function checkDocument(doc: unknown, bytes: Uint8Array | null): WireDocument | null {
  if (!isObj(doc)) throw new WireFormatError("not a JSON object");
  const { data, metadata, serializer, version } = doc;
  if (version !== "2.0") {
    throw new WireFormatError(`unsupported version ${JSON.stringify(version)}`);
  }
  const range = bytes !== null && data instanceof DataSlot ? data : null;
  if (range === null && typeof data !== "string") {
    throw new WireFormatError("data is not a string");
  }
  if (typeof serializer !== "string") throw new WireFormatError("serializer is not a string");
  if (!isObj(metadata)) throw new WireFormatError("metadata is not an object");
  if (typeof metadata.compressed !== "boolean") {
    throw new WireFormatError("metadata.compressed is not a boolean");
  }
  const format = typeof metadata.format === "string" ? metadata.format : "msgpack";
  let encryption: WireEncryption | null = null;
  if (metadata.encrypted === true) {
    if (typeof metadata.tenant_id !== "string" || typeof metadata.key_fingerprint !== "string") {
      throw new WireFormatError("encrypted entry without tenant_id or key_fingerprint");
    }
    encryption = {
      tenantId: metadata.tenant_id,
      keyFingerprint: metadata.key_fingerprint,
      algorithm: typeof metadata.encryption_algorithm === "string"
        ? metadata.encryption_algorithm
        : "AES-256-GCM",
    };
  }
  const { js_undefined: undef, ck_check: check } = metadata;
  const sec = metadata.fresh_until ?? undefined; // null: none
  if (undef !== undefined && typeof undef !== "boolean") {
    throw new WireFormatError("metadata.js_undefined is not a boolean");
  }
  if (sec !== undefined && !(typeof sec === "number" && Number.isFinite(sec))) {
    throw new WireFormatError("metadata.fresh_until is not a finite number");
  }
  if (check !== undefined && typeof check !== "string") {
    throw new WireFormatError("metadata.ck_check is not a string");
  }
  // Part of an encrypted entry's AAD (as cachekit-py reads it): it must be text there.
  const originalType = typeof metadata.original_type === "string" ? metadata.original_type : null;
  if (encryption !== null && originalType === null && metadata.original_type != null) {
    throw new WireFormatError("metadata.original_type is not a string");
  }
  let raw: Uint8Array | null;
  if (range !== null) {
    raw = base64Bytes(bytes!, range.start, range.end);
    if (raw === null) return null;
  } else raw = fromBase64(data as string);
  const jsUndefined = undef === true;
  const out: WireDocument = {
    data: raw,
    compressed: metadata.compressed,
    serializer,
    format,
    originalType,
    encryption,
    jsUndefined,
    freshUntil: sec !== undefined ? sec * 1000 : null,
    check: check ?? null,
    aad: encryption !== null ? documentAad(jsUndefined, sec ?? null) : null,
  };
  if (check !== undefined) {
    (out as Checked)[CHECK_FIELDS] = checkFields(
      serializer,
      format,
      metadata.compressed,
      jsUndefined,
      sec ?? null,
      encryption,
    );
  }
  return out;
}

// ------------------------------------------------------------------ what binds the metadata

/** The canonical fields `ck_check` covers, kept on a decoded document (module-private key). */
const CHECK_FIELDS: unique symbol = Symbol("ck_check fields");
interface Checked {
  [CHECK_FIELDS]?: string;
}

/**
 * The canonical encoding of what a document's metadata says about its value: serializer, format,
 * `compressed`, `js_undefined`, `fresh_until` (the seconds as stored) and the encryption fields.
 */
function checkFields(
  serializer: string,
  format: string,
  compressed: boolean,
  jsUndefined: boolean,
  freshSec: number | null,
  encryption: WireEncryption | null | undefined,
): string {
  return JSON.stringify([
    "ck_check/1",
    serializer,
    format,
    compressed,
    jsUndefined,
    freshSec,
    encryption ? encryption.tenantId : null,
    encryption ? encryption.keyFingerprint : null,
    encryption ? encryption.algorithm ?? "AES-256-GCM" : null,
  ]);
}

/** `ck_check`: xxHash3-64 (16 hex) of the canonical fields and the envelope's checksum. */
function checkOf(fields: string, envelopeSum: string): string {
  return xxh3Hex(enc.encode(fields + "\n" + envelopeSum));
}

/** The checksum (16 hex) of a ByteStorage envelope, read from its bytes; `null` if not one. */
function envelopeChecksum(envelope: Uint8Array): string | null {
  try {
    return parseEnvelope(envelope).checksumHex;
  } catch {
    return null;
  }
}

/**
 * Whether a decoded document's `ck_check` matches its metadata and the checksum of the envelope it
 * carries (read when the envelope is opened, after decryption for an encrypted entry). `false`
 * when the document has no `ck_check`.
 *
 * @param doc A document returned by {@linkcode decodeWire}.
 * @param envelopeSum The opened envelope's checksum, 16 lowercase hex digits.
 * @returns Whether the metadata is the one written with that envelope.
 */
export function verifyDocumentCheck(doc: WireDocument, envelopeSum: string): boolean {
  const fields = (doc as Checked)[CHECK_FIELDS];
  return fields !== undefined && doc.check === checkOf(fields, envelopeSum);
}

/**
 * The AAD extension of an encrypted document: `null` (cachekit-py's exact AAD v0x03) unless it
 * carries `js_undefined` or `fresh_until`, which cachekit-py does not authenticate.
 */
export function documentAad(jsUndefined: boolean, freshSec: number | null): Uint8Array | null {
  if (!jsUndefined && freshSec === null) return null;
  return enc.encode("\u00c1ckd" + JSON.stringify([jsUndefined, freshSec]));
}
function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
