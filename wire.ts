/**
 * The L2 value formats ("wires") around the protocol bytes. Two writers, one reader for both.
 *
 * ## `"document"`: cachekit-py 0.3.0's UTF-8 JSON document
 *
 * ```json
 * {"data": "<base64>", "metadata": {"format": "msgpack", "encoding": "utf-8", "compressed": true,
 *  "original_type": "msgpack"}, "serializer": "default", "version": "2.0"}
 * ```
 *
 * `data` holds the ByteStorage envelope when integrity checking is on (`compressed: true`), else
 * the serializer's plain bytes (`compressed: false`). Encrypted entries add `encrypted: true`,
 * `tenant_id`, `encryption_algorithm: "AES-256-GCM"` and `key_fingerprint` (32 hex) to `metadata`.
 * A JavaScript `undefined` result is stored as `nil` with `js_undefined: true` in `metadata`; with
 * integrity checking on its envelope carries a marker checksum instead of nil's own
 * (`protocol/_undefined_envelope.ts`), so cachekit-py, which has no `undefined`, reads it as a
 * checksum failure (a miss) and recomputes.
 *
 * Fail-safe (`staleTtl`): the entry lives `ttl + staleTtl` in L2 and `metadata.fresh_until` records
 * its logical expiry (Unix time in seconds, a float). A reader past that time knows the value is
 * stale: cachekit TypeScript treats it as a miss and keeps it only as a fallback for a failing
 * function. cachekit-py 0.3.0 ignores unknown metadata fields, so it still reads such an entry, as
 * a fresh value for the whole `ttl + staleTtl`.
 *
 * With integrity checking on, `metadata.ck_check` (16 hex) is the xxHash3-64 of a canonical
 * encoding of `serializer`, `format`, `compressed`, `js_undefined`, `fresh_until`, `tenant_id`,
 * `key_fingerprint`, `encryption_algorithm` and the checksum of the envelope in `data` (for an
 * encrypted entry, of the envelope inside the ciphertext), so that no metadata bit that changes the
 * answer goes unchecked; cachekit-py ignores the field.
 *
 * An encrypted document is sealed under exactly cachekit-py 0.3.0's AAD v0x03: tenant id, cache
 * key, format, `compressed` and, when non-empty, `original_type` (`"msgpack"` as written here and by
 * 0.3.0's StandardSerializer); the reader takes that fifth field from the stored document, as 0.3.0
 * does, so either side decrypts what the other wrote. A document that carries `js_undefined` or
 * `fresh_until` also appends them to its AAD (after cachekit-py's fields), so editing or stripping
 * them fails authentication; one without them keeps cachekit-py's exact AAD.
 *
 * ## `"envelope"`: the protocol bytes themselves
 *
 * No JSON, no base64: on a 1 KB value the document's encoding is a measurable part of an L2 hit.
 * Two shapes:
 *
 * - **Bare envelope**: integrity checking on, the standard serializer (`"default"`, MessagePack),
 *   no encryption, no `fresh_until`, not `undefined`: the value is exactly the ByteStorage envelope
 *   (protocol 1.1 or 1.0, as configured). Its first byte is `0x94` (MessagePack array of 4, what
 *   every cachekit SDK writes); `0x84` (the named-map form of the spec text) is read too. The
 *   serializer is `"default"` and the format is the envelope's own `format` field.
 * - **Framed**: everything else (integrity off, another serializer, encrypted, fail-safe,
 *   `undefined`): a small header, then the payload. All integers big-endian.
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 3 | magic `C1 63 6B` (`0xC1` then `"ck"`) |
 * | 3 | 1 | layout version, `0x02` (`0x01` entries, which had no header check, are refused: a miss) |
 * | 4 | 1 | flags: `0x01` payload is the ByteStorage envelope (`compressed`), `0x02` encrypted, `0x04` `fresh_until` present, `0x08` JavaScript `undefined`; other bits must be 0 |
 * | 5 | 1 + n | serializer name (cachekit-py's naming: `"default"` for MessagePack): u8 length n ≥ 1, UTF-8 |
 * | … | 1 + m | format (`"msgpack"`, `"json"`): u8 length m ≥ 1, UTF-8 |
 * | … | 8 | only with flag `0x04`: `fresh_until`, IEEE-754 float64, milliseconds since the Unix epoch, finite |
 * | … | 16 | only with flag `0x02`: key fingerprint (the protocol's 16 bytes; `key_fingerprint` in hex in the document) |
 * | … | 2 + k | only with flag `0x02`: tenant label (the document's `tenant_id`): u16 length k ≥ 1, UTF-8 |
 * | … | 4 | payload length p (u32), which must equal the bytes that remain after the header check |
 * | … | 8 | only with flag `0x01`: header check, xxHash3-64 (big-endian) of every byte before it |
 * | … | p | payload: envelope, plain serializer bytes, or `nonce(12) ‖ ciphertext ‖ tag(16)` |
 *
 * `0xC1` is the one byte MessagePack never uses and is never valid in UTF-8, so neither a JSON
 * document (`{`, or JSON white space), a bare envelope (`0x94`/`0x84`) nor plain MessagePack can
 * start like a framed entry; the reader tells the three apart by the first byte alone. Plain
 * serializer bytes (integrity off) are always framed: bare MessagePack may start with any byte
 * (`0x94` is a 4-element array, `0x7b` the integer 123), so without the header it could be
 * mistaken for an envelope or a document. The payload length catches truncation even there.
 * An encrypted entry is sealed with AES-256-GCM under AAD v0x03 (tenant id, cache key, format,
 * `compressed`; no original type, which this wire does not store) followed by the header from the
 * magic to the tenant label (flags, serializer, format, `fresh_until`, fingerprint, label):
 * altering any header byte fails authentication.
 *
 * ## What covers what
 *
 * - **Bare envelope**: its own checksum (xxHash3-64 of the decompressed bytes) and sizes; the
 *   serializer is implied and the format is the envelope's, checked against the reader's.
 * - **Framed, integrity on** (flag `0x01`): the header check covers every header byte (flags,
 *   serializer, format, `fresh_until`, fingerprint, label, payload length); the envelope's
 *   checksum covers the value.
 * - **Document, integrity on**: the envelope's checksum covers the value, `ck_check` the metadata.
 *   A document without `ck_check` (as cachekit-py writes it) is accepted only in cachekit-py's
 *   plain form: `compressed: true`, no `js_undefined`, no `fresh_until`.
 * - **Encrypted** (either wire): the AES-GCM tag covers the value and, through the AAD, tenant,
 *   cache key, format, `compressed` and the wire's own fields: for a document, cachekit-py's
 *   `original_type` (when non-empty) and then `js_undefined`/`fresh_until` (when present); for a
 *   framed entry, the header. Integrity checking is always on with encryption, so the checks above
 *   apply as well.
 * - **Integrity off, not encrypted**: nothing but the payload length; plain serializer bytes are
 *   trusted as they are (the configuration's choice).
 *
 * The reader decides what it accepts from its own configuration, never from the entry: with
 * integrity checking on, an entry without the envelope (`compressed` false, flag `0x01` clear) is
 * refused; with encryption, a plaintext entry is refused; an entry marked `undefined` is believed
 * only when its payload is the undefined envelope (marker checksum), and an unmarked entry must
 * verify against its own data, so neither a set nor a lost flag turns `undefined` into `null` or
 * back. The rules are in `_stored_read.ts`.
 *
 * Reading never copies: the payload (or the bare envelope) is a `subarray` of the stored bytes.
 *
 * ## Reading
 *
 * {@linkcode decodeWire} accepts both wires whatever the writer is configured to, by the first
 * byte: `0xC1` framed, `0x94`/`0x84` bare envelope, anything else the JSON document. Anything that
 * does not parse as one of them — a wrong magic or version, unknown flags, a short header, a header
 * check or length that disagrees, a non-JSON document — is a {@linkcode WireFormatError} (the
 * engine treats it as a miss), whatever fails underneath; a bare envelope is verified by the
 * envelope reader afterwards (checksum, sizes), and a document's `ck_check` once its envelope is
 * open ({@linkcode verifyDocumentCheck}).
 *
 * @example
 * ```ts
 * import { decodeWire, encodeWire } from "@cachekit/core/protocol";
 *
 * const doc = encodeWire({ data: new Uint8Array([0x2a]), compressed: false, serializer: "default" });
 * console.log(decodeWire(doc).data); // Uint8Array(1) [ 42 ]
 * ```
 *
 * @module
 */
import { CacheKitError } from "./errors.ts";
import { DataSlot, parseFast } from "./_wire_fast.ts";
import { fromHex, toHex } from "./protocol/_hex.ts";
import { xxh3Hex } from "./protocol/_xxh3.ts";
import { parseEnvelope } from "./protocol/_envelope_wire.ts";

/** The stored bytes could not be read as a cachekit wire document. */
export class WireFormatError extends CacheKitError {
  /**
   * Create the error.
   *
   * @param message What is wrong with the document.
   */
  constructor(message: string) {
    super(message, "CACHE_WIRE_FORMAT");
  }
}

/** Encryption fields of a wire document's metadata. */
export interface WireEncryption {
  /** Tenant id the entry was encrypted for. */
  tenantId: string;
  /** 32 lowercase hex chars: the key's fingerprint. */
  keyFingerprint: string;
  /** Always `"AES-256-GCM"`. */
  algorithm?: string;
}

/** A decoded (or to-be-encoded) wire document. */
export interface WireDocument {
  /** The stored bytes: envelope, plain serialized bytes, or ciphertext. */
  data: Uint8Array;
  /** Whether `data` is the compressed ByteStorage envelope. */
  compressed: boolean;
  /** Serializer name as cachekit-py names it (`"default"` for MessagePack). */
  serializer: string;
  /**
   * Payload format (`"msgpack"`, `"json"`). Default `"msgpack"` when encoding. Decoding a bare
   * envelope (envelope wire) leaves it `undefined`: the envelope's own `format` field names it.
   */
  format?: string;
  /**
   * The document's `metadata.original_type`, which cachekit-py 0.3.0 appends to an encrypted
   * entry's AAD v0x03 when non-empty (see {@linkcode wireOriginalType}). Encoding a document:
   * default the format (`"msgpack"` for the standard serializer, as cachekit-py's StandardSerializer
   * writes it); `null` writes JSON `null`. The envelope wire stores none (ignored when encoding).
   * Decoded entry: the original type its AAD uses, `null` when the document has none, `undefined`
   * for a framed entry; pass `originalType || undefined` to decrypt it.
   */
  originalType?: string | null;
  /** Encryption metadata when the entry is encrypted. */
  encryption?: WireEncryption | null;
  /** The value was JavaScript `undefined` (stored as `nil`). */
  jsUndefined?: boolean;
  /** Fail-safe: logical expiry, ms since the epoch (`metadata.fresh_until`, in seconds). */
  freshUntil?: number | null;
  /**
   * Encoding an encrypted document: the checksum (16 hex) of the envelope inside the ciphertext,
   * which `metadata.ck_check` binds (a plaintext envelope's own checksum is read from `data`).
   */
  envelopeChecksum?: string;
  /**
   * Decoded document: `metadata.ck_check` (16 hex), `null` when the document has none (as
   * cachekit-py writes it); check it with {@linkcode verifyDocumentCheck} once the envelope is
   * open. `undefined` for the envelope wire, whose framed header carries its own checksum.
   */
  check?: string | null;
  /**
   * Decoded encrypted entry: the bytes its AAD v0x03 is extended with (see
   * {@linkcode wireAadExtension}), `null` for none (cachekit-py's exact AAD).
   */
  aad?: Uint8Array | null;
}

/**
 * Which wire an entry is written in: `"document"` (cachekit-py 0.3.0's JSON document) or
 * `"envelope"` (the protocol bytes, framed only when they need metadata). See the module doc.
 */
export type WireForm = "document" | "envelope";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * Encode an entry in one of the wires: by default the UTF-8 JSON document; `"envelope"` writes the
 * bare envelope when it can, else the framed layout (see the module doc).
 *
 * @param doc The entry.
 * @param form The wire to write. Default `"document"`.
 * @returns The bytes stored in L2.
 * @throws {WireFormatError} Envelope wire: a name or label too long for its length field, a key
 *   fingerprint that is not 32 hex characters, or a non-finite `freshUntil`.
 *
 * @example
 * ```ts
 * import { encodeWire } from "@cachekit/core/protocol";
 * const bytes = encodeWire({ data: new Uint8Array([1]), compressed: true, serializer: "default" });
 * console.log(JSON.parse(new TextDecoder().decode(bytes)).version); // 2.0
 * const framed = encodeWire({ data: new Uint8Array([0x2a]), compressed: false, serializer: "default" }, "envelope");
 * console.log(framed[0].toString(16)); // c1
 * ```
 */
export function encodeWire(doc: WireDocument, form: WireForm = "document"): Uint8Array {
  if (form === "envelope") return encodeEnvelopeWire(doc);
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
  if (doc.compressed) {
    const sum = doc.envelopeChecksum ?? (doc.encryption ? null : envelopeChecksum(doc.data));
    if (sum !== null) {
      metadata.ck_check = checkOf(
        checkFields(doc.serializer, format, true, doc.jsUndefined === true, sec, doc.encryption),
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

/**
 * Decode wire bytes of either wire (told apart by the first byte; see the module doc).
 *
 * @param bytes Bytes read from L2.
 * @returns The entry; `data` is a view into `bytes` for the envelope wire (no copy).
 * @throws {WireFormatError} Not UTF-8, not JSON, wrong shape, bad base64, unknown version; or a
 *   framed entry with a bad magic, version, flags, header or length.
 *
 * @example
 * ```ts
 * import { decodeWire, WireFormatError } from "@cachekit/core/protocol";
 * try {
 *   decodeWire(new Uint8Array([0x93, 1, 2, 3]));
 * } catch (e) {
 *   console.log(e instanceof WireFormatError); // true
 * }
 * ```
 */
export function decodeWire(bytes: Uint8Array): WireDocument {
  try {
    return decodeAny(bytes);
  } catch (e) {
    // Whatever fails (a parser's own limit included) is a typed refusal: the engine's miss.
    if (e instanceof WireFormatError) throw e;
    throw new WireFormatError(`unreadable entry: ${(e as Error)?.message ?? String(e)}`);
  }
}

function decodeAny(bytes: Uint8Array): WireDocument {
  const first = bytes[0];
  if (first === MAGIC0) return decodeFramed(bytes);
  if (first === 0x94 || first === 0x84) {
    return { data: bytes, compressed: true, serializer: "default", format: undefined };
  }
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
function documentAad(jsUndefined: boolean, freshSec: number | null): Uint8Array | null {
  if (!jsUndefined && freshSec === null) return null;
  return enc.encode("\u00c1ckd" + JSON.stringify([jsUndefined, freshSec]));
}

/**
 * The bytes an encrypted entry's AAD v0x03 is extended with (appended after it), so that the
 * AES-GCM tag also authenticates what the wire says about the value beyond cachekit-py's fields.
 * Envelope wire (always framed when encrypted): the header from the magic to the tenant label
 * (flags, serializer, format, `fresh_until`, key fingerprint, tenant label). Document: `null` unless
 * `js_undefined` or `fresh_until` is present, so that cachekit-py still decrypts plain entries.
 * The reader gets the same bytes from {@linkcode decodeWire} (`aad`).
 *
 * @param doc The entry as it will be encoded (its `data` is ignored).
 * @param form The wire.
 * @returns The extension, or `null` for none.
 * @throws {WireFormatError} As {@linkcode encodeWire} for a field the framed header cannot hold.
 */
export function wireAadExtension(doc: WireDocument, form: WireForm): Uint8Array | null {
  if (!doc.encryption) return null;
  if (form === "envelope") return frameHeader(doc);
  const sec = typeof doc.freshUntil === "number" ? doc.freshUntil / 1000 : null;
  return documentAad(doc.jsUndefined === true, sec);
}

/**
 * The original type an encrypted entry's AAD v0x03 carries as its fifth field, as cachekit-py 0.3.0
 * builds it (`if metadata.original_type:`): the document's `original_type` when non-empty, else
 * none: the `original_type` {@linkcode encodeWire} writes (the format unless
 * {@linkcode WireDocument.originalType} says otherwise). The envelope wire stores no original type
 * and uses none: its framed header, which names serializer and format, is in the AAD extension
 * instead. (A reader takes the decoded entry's `originalType`, which is the stored one.)
 *
 * @param doc The entry as it will be encoded (its `data` is ignored).
 * @param form The wire it will be written in.
 * @returns The original type, or `undefined` for none.
 */
export function wireOriginalType(doc: WireDocument, form: WireForm): string | undefined {
  if (form === "envelope") return undefined;
  const type = doc.originalType === undefined ? doc.format ?? "msgpack" : doc.originalType;
  return type || undefined;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

interface Base64Native {
  toBase64?: (this: Uint8Array) => string;
}
interface Base64Ctor {
  fromBase64?: (s: string) => Uint8Array;
}

/** Standard base64 with padding (Python's `base64.b64encode`). */
function toBase64(bytes: Uint8Array): string {
  const native = (Uint8Array.prototype as Base64Native).toBase64;
  if (native) return native.call(bytes);
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64_VALUE = new Int16Array(128).fill(-1);
for (let i = 0; i < 64; i++) B64_VALUE[B64.charCodeAt(i)] = i;
/** Byte → sextet, or -1 for a byte outside the alphabet (any byte value indexes it). */
const B64_BYTE = new Int32Array(256).fill(-1);
for (let i = 0; i < 64; i++) B64_BYTE[B64.charCodeAt(i)] = i;

/**
 * Strict standard base64 decode (alphabet `A-Za-z0-9+/`, length a multiple of 4, `=` padding only
 * at the end, no whitespace); throws {@linkcode WireFormatError}.
 *
 * The runtime's `Uint8Array.fromBase64` when it has one, else a table decoder; both check the
 * input while decoding instead of running a validating regular expression over it first (which
 * cost more than the decode itself: ~40× on a 60 KB document).
 */
function fromBase64(s: string): Uint8Array {
  const n = s.length;
  if (n % 4 !== 0) throw new WireFormatError("data is not valid base64");
  const pad = n === 0 ? 0 : s.charCodeAt(n - 1) !== 61 ? 0 : s.charCodeAt(n - 2) !== 61 ? 1 : 2;
  const size = (n / 4) * 3 - pad;
  const native = (Uint8Array as unknown as Base64Ctor).fromBase64;
  if (native) {
    let out: Uint8Array;
    try {
      out = native(s);
    } catch {
      throw new WireFormatError("data is not valid base64");
    }
    // The native decoder skips ASCII whitespace: any would leave the output short.
    if (out.length !== size) throw new WireFormatError("data is not valid base64");
    return out;
  }
  const out = new Uint8Array(size);
  const full = pad === 0 ? n : n - 4;
  let o = 0;
  let bad = 0;
  for (let i = 0; i < full; i += 4) {
    const a = sextet(s, i), b = sextet(s, i + 1), c = sextet(s, i + 2), d = sextet(s, i + 3);
    bad |= a | b | c | d; // an invalid character is -1: bad turns negative
    const v = (a << 18) | (b << 12) | (c << 6) | d;
    out[o++] = v >> 16;
    out[o++] = (v >> 8) & 0xff;
    out[o++] = v & 0xff;
  }
  if (pad !== 0) {
    const a = sextet(s, full), b = sextet(s, full + 1), c = pad === 1 ? sextet(s, full + 2) : 0;
    bad |= a | b | c;
    const v = (a << 18) | (b << 12) | (c << 6);
    out[o++] = v >> 16;
    if (pad === 1) out[o] = (v >> 8) & 0xff;
  }
  if (bad < 0) throw new WireFormatError("data is not valid base64");
  return out;
}

/**
 * Strict standard base64 decode of the characters `b[start..end)` of a document (the same rules
 * as {@linkcode fromBase64}); `null` when they are not such base64, e.g. an escape sequence, which
 * the general path then reads.
 */
function base64Bytes(b: Uint8Array, start: number, end: number): Uint8Array | null {
  const n = end - start;
  if (n % 4 !== 0) return null;
  const pad = n === 0 ? 0 : b[end - 1] !== 61 ? 0 : b[end - 2] !== 61 ? 1 : 2;
  const out = new Uint8Array((n / 4) * 3 - pad);
  const full = pad === 0 ? end : end - 4;
  const t = B64_BYTE;
  let o = 0;
  let bad = 0;
  for (let i = start; i < full; i += 4) {
    const v = (t[b[i]] << 18) | (t[b[i + 1]] << 12) | (t[b[i + 2]] << 6) | t[b[i + 3]];
    bad |= v; // an invalid character is -1: v turns negative
    out[o++] = v >> 16;
    out[o++] = v >> 8;
    out[o++] = v;
  }
  if (pad !== 0) {
    const c = pad === 1 ? t[b[full + 2]] : 0;
    const v = (t[b[full]] << 18) | (t[b[full + 1]] << 12) | (c << 6);
    bad |= v;
    out[o++] = v >> 16;
    if (pad === 1) out[o] = v >> 8;
  }
  return bad < 0 ? null : out;
}

/** The 6-bit value of the base64 character at `i`, or -1 when it is not one. */
function sextet(s: string, i: number): number {
  const c = s.charCodeAt(i);
  return c < 128 ? B64_VALUE[c] : -1;
}

// ------------------------------------------------------------------ envelope wire

const MAGIC0 = 0xc1;
const MAGIC1 = 0x63; // "c"
const MAGIC2 = 0x6b; // "k"
const FRAME_VERSION = 2;
const F_ENVELOPE = 0x01;
const F_ENCRYPTED = 0x02;
const F_FRESH = 0x04;
const F_UNDEFINED = 0x08;
const F_KNOWN = F_ENVELOPE | F_ENCRYPTED | F_FRESH | F_UNDEFINED;
const FINGERPRINT_BYTES = 16;
const HEADER_CHECK_BYTES = 8;

/** The envelope wire's bytes for `doc`: the bare envelope when nothing else is needed. */
function encodeEnvelopeWire(doc: WireDocument): Uint8Array {
  const format = doc.format ?? "msgpack";
  if (
    doc.compressed && !doc.encryption && typeof doc.freshUntil !== "number" && !doc.jsUndefined &&
    doc.serializer === "default" && format === "msgpack" &&
    (doc.data[0] === 0x94 || doc.data[0] === 0x84)
  ) {
    return doc.data;
  }
  const head = frameHeader(doc);
  const h = head.length;
  const check = doc.compressed ? HEADER_CHECK_BYTES : 0;
  const out = new Uint8Array(h + 4 + check + doc.data.length);
  out.set(head);
  const n = doc.data.length;
  out[h] = n >>> 24;
  out[h + 1] = (n >>> 16) & 0xff;
  out[h + 2] = (n >>> 8) & 0xff;
  out[h + 3] = n & 0xff;
  if (check !== 0) out.set(fromHex(xxh3Hex(out.subarray(0, h + 4)))!, h + 4);
  out.set(doc.data, h + 4 + check);
  return out;
}

/** The framed header of `doc` from the magic to the tenant label (before the payload length). */
function frameHeader(doc: WireDocument): Uint8Array {
  const fresh = typeof doc.freshUntil === "number" ? doc.freshUntil : null;
  const name = enc.encode(doc.serializer);
  const fmt = enc.encode(doc.format ?? "msgpack");
  if (name.length < 1 || name.length > 0xff) {
    throw new WireFormatError("serializer name must be 1..255 UTF-8 bytes");
  }
  if (fmt.length < 1 || fmt.length > 0xff) throw new WireFormatError("format must be 1..255 bytes");
  let flags = doc.compressed ? F_ENVELOPE : 0;
  let size = 5 + 1 + name.length + 1 + fmt.length;
  if (fresh !== null) {
    if (!Number.isFinite(fresh)) throw new WireFormatError("freshUntil must be finite");
    flags |= F_FRESH;
    size += 8;
  }
  let label: Uint8Array | null = null;
  let fingerprint: Uint8Array | null = null;
  if (doc.encryption) {
    flags |= F_ENCRYPTED;
    label = enc.encode(doc.encryption.tenantId);
    if (label.length < 1 || label.length > 0xffff) {
      throw new WireFormatError("tenant label must be 1..65535 UTF-8 bytes");
    }
    fingerprint = hexToBytes(doc.encryption.keyFingerprint);
    size += FINGERPRINT_BYTES + 2 + label.length;
  }
  if (doc.jsUndefined) flags |= F_UNDEFINED;
  const out = new Uint8Array(size);
  out[0] = MAGIC0;
  out[1] = MAGIC1;
  out[2] = MAGIC2;
  out[3] = FRAME_VERSION;
  out[4] = flags;
  let o = 5;
  out[o++] = name.length;
  out.set(name, o);
  o += name.length;
  out[o++] = fmt.length;
  out.set(fmt, o);
  o += fmt.length;
  if (fresh !== null) {
    new DataView(out.buffer, out.byteOffset, out.byteLength).setFloat64(o, fresh);
    o += 8;
  }
  if (fingerprint !== null && label !== null) {
    out.set(fingerprint, o);
    o += FINGERPRINT_BYTES;
    out[o++] = label.length >> 8;
    out[o++] = label.length & 0xff;
    out.set(label, o);
  }
  return out;
}

/** Read a framed entry (first byte `0xC1`); the payload is a view into `b`. */
function decodeFramed(b: Uint8Array): WireDocument {
  const len = b.length;
  if (len < 5 || b[1] !== MAGIC1 || b[2] !== MAGIC2) throw new WireFormatError("bad frame magic");
  if (b[3] !== FRAME_VERSION) throw new WireFormatError(`unsupported frame version ${b[3]}`);
  const flags = b[4];
  if ((flags & ~F_KNOWN) !== 0) throw new WireFormatError("unknown frame flags");
  let o = 5;
  const n = b[o++];
  if (n === undefined || n === 0 || o + n > len) throw new WireFormatError("frame truncated");
  const serializer = text(b, o, o + n);
  o += n;
  const m = b[o++];
  if (m === undefined || m === 0 || o + m > len) throw new WireFormatError("frame truncated");
  const format = text(b, o, o + m);
  o += m;
  let freshUntil: number | null = null;
  if ((flags & F_FRESH) !== 0) {
    if (o + 8 > len) throw new WireFormatError("frame truncated");
    freshUntil = new DataView(b.buffer, b.byteOffset + o, 8).getFloat64(0);
    if (!Number.isFinite(freshUntil)) throw new WireFormatError("fresh_until is not finite");
    o += 8;
  }
  let encryption: WireEncryption | null = null;
  if ((flags & F_ENCRYPTED) !== 0) {
    if (o + FINGERPRINT_BYTES + 2 > len) throw new WireFormatError("frame truncated");
    const keyFingerprint = toHex(b, o, o + FINGERPRINT_BYTES);
    o += FINGERPRINT_BYTES;
    const k = (b[o] << 8) | b[o + 1];
    o += 2;
    if (k === 0 || o + k > len) throw new WireFormatError("frame truncated");
    encryption = { tenantId: text(b, o, o + k), keyFingerprint, algorithm: "AES-256-GCM" };
    o += k;
  }
  const headEnd = o;
  if (o + 4 > len) throw new WireFormatError("frame truncated");
  const p = ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;
  o += 4;
  if ((flags & F_ENVELOPE) !== 0) {
    if (o + HEADER_CHECK_BYTES > len) throw new WireFormatError("frame truncated");
    if (xxh3Hex(b.subarray(0, o)) !== toHex(b, o, o + HEADER_CHECK_BYTES)) {
      throw new WireFormatError("frame header checksum mismatch");
    }
    o += HEADER_CHECK_BYTES;
  }
  if (o + p !== len) throw new WireFormatError("frame payload length disagrees with its size");
  return {
    data: b.subarray(o),
    compressed: (flags & F_ENVELOPE) !== 0,
    serializer,
    format,
    encryption,
    jsUndefined: (flags & F_UNDEFINED) !== 0,
    freshUntil,
    aad: encryption !== null ? b.subarray(0, headEnd) : null,
  };
}

/** Names the engine writes, returned without building a new string. */
const FRAME_NAMES: [string, Uint8Array][] = ["default", "msgpack", "json", "std"].map((
  k,
) => [k, enc.encode(k)]);

/** The UTF-8 text `b[start..end)` (fatal on invalid UTF-8). */
function text(b: Uint8Array, start: number, end: number): string {
  const n = end - start;
  outer: for (const [s, codes] of FRAME_NAMES) {
    if (codes.length !== n) continue;
    for (let j = 0; j < n; j++) if (codes[j] !== b[start + j]) continue outer;
    return s;
  }
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (b[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
  try {
    return dec.decode(b.subarray(start, end));
  } catch {
    throw new WireFormatError("frame text is not UTF-8");
  }
}

function hexToBytes(hex: string): Uint8Array {
  const out = hex.length === 2 * FINGERPRINT_BYTES ? fromHex(hex) : null;
  if (out === null) throw new WireFormatError("key fingerprint must be 32 hex characters");
  return out;
}
