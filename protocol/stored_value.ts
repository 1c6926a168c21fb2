/**
 * The L2 value formats ("wires") around the protocol bytes. Two writers, one reader for both.
 *
 * This file is the codec's public face; its parts are private: `_document.ts` (the JSON document
 * and its `ck_check`), `_document_parse.ts` (the document's byte-level fast path), `_base64.ts`,
 * `_frame.ts` (the framed binary codec), `_stored_types.ts` (the shared shapes and
 * {@linkcode WireFormatError}) and `_stored_read.ts` (what a reader accepts, re-exported here for
 * the engine, with the envelope reader and the undefined envelope the engine writes).
 *
 * ## `"document"`: cachekit-py 0.3.0's UTF-8 JSON document
 *
 * ```json
 * {"data": "<base64>", "metadata": {"format": "msgpack", "encoding": "utf-8", "compressed": true,
 *  "original_type": "msgpack"}, "serializer": "default", "version": "2.0"}
 * ```
 *
 * `data` holds the ByteStorage envelope when integrity checking is on (`compressed: true`), else
 * the serializer's plain bytes (`compressed: false`). Formats `orjson` and `arrow` (cachekit-py
 * 0.3.0's `OrjsonSerializer` and `ArrowSerializer`) have no envelope: `data` is the 8-byte
 * xxHash3-64 of the payload followed by the payload with integrity checking on, the payload alone
 * with it off, `compressed: false` either way (`_digest_layout.ts`); `ck_check` then covers the
 * metadata with that digest. Encrypted entries add `encrypted: true`,
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
 * No JSON, no base64: on a 1 KB value the document costs ~6 µs more per L2 hit than the bytes it
 * carries. Two shapes:
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
 * | 4 | 1 | flags: `0x01` payload is the ByteStorage envelope (`compressed`), `0x02` encrypted, `0x04` `fresh_until` present, `0x08` JavaScript `undefined`, `0x10` payload in the digest layout (8-byte xxHash3-64 first: `orjson`/`arrow` with integrity checking on; never with `0x01`); other bits must be 0 |
 * | 5 | 1 + n | serializer name (cachekit-py's naming: `"default"` for MessagePack): u8 length n ≥ 1, UTF-8 |
 * | … | 1 + m | format (`"msgpack"`, `"json"`, `"orjson"`): u8 length m ≥ 1, UTF-8 |
 * | … | 8 | only with flag `0x04`: `fresh_until`, IEEE-754 float64, milliseconds since the Unix epoch, finite |
 * | … | 16 | only with flag `0x02`: key fingerprint (the protocol's 16 bytes; `key_fingerprint` in hex in the document) |
 * | … | 2 + k | only with flag `0x02`: tenant label (the document's `tenant_id`): u16 length k ≥ 1, UTF-8 |
 * | … | 4 | payload length p (u32), which must equal the bytes that remain after the header check |
 * | … | 8 | only with flag `0x01` or `0x10`: header check, xxHash3-64 (big-endian) of every byte before it |
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
 * - **Digest layout** (`orjson`, `arrow`), integrity on: the 8-byte digest covers the value (an
 *   `undefined` result carries a marker digest), the framed header check (flag `0x10`) or the
 *   document's `ck_check` the metadata; a document without `ck_check` is accepted in cachekit-py's
 *   plain form only, as for the envelope.
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
 * import assert from "node:assert/strict";
 * import { decodeWire, encodeWire } from "@cachekit/core/protocol";
 *
 * const doc = encodeWire({ data: new Uint8Array([0x2a]), compressed: false, serializer: "default" });
 * assert.deepEqual(decodeWire(doc).data, new Uint8Array([42]));
 * ```
 *
 * @module
 */
import { decodeDocument, documentAad, encodeDocument } from "./_document.ts";
import { decodeFrame, encodeFrame, frameHeader, MAGIC0 } from "./_frame.ts";
import type { WireDocument, WireForm } from "./_stored_types.ts";
import { WireFormatError } from "./_stored_types.ts";

export type { WireDocument, WireEncryption, WireForm } from "./_stored_types.ts";
export { WireFormatError } from "./_stored_types.ts";
export { verifyDocumentCheck } from "./_document.ts";
export {
  acceptEntry,
  checkValueSize,
  openEntry,
  type ReadPolicy,
  ValueTooLargeError,
} from "./_stored_read.ts";
export { parseEnvelope } from "./_envelope_msgpack.ts";
export {
  decodeStoredValue,
  encodeStoredNow,
  encodeStoredValue,
  type StoredCipher,
  type StoredCodec,
  type StoredPair,
  wireName,
} from "./_stored_codec.ts";
export { undefinedEnvelope } from "./_undefined_envelope.ts";

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
 * import assert from "node:assert/strict";
 * import { encodeWire } from "@cachekit/core/protocol";
 * const bytes = encodeWire({ data: new Uint8Array([1]), compressed: true, serializer: "default" });
 * assert.equal(JSON.parse(new TextDecoder().decode(bytes)).version, "2.0");
 * const framed = encodeWire({ data: new Uint8Array([0x2a]), compressed: false, serializer: "default" }, "envelope");
 * assert.equal(framed[0], 0xc1);
 * ```
 */
export function encodeWire(doc: WireDocument, form: WireForm = "document"): Uint8Array {
  return form === "envelope" ? encodeFrame(doc) : encodeDocument(doc);
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
 * import assert from "node:assert/strict";
 * import { decodeWire, WireFormatError } from "@cachekit/core/protocol";
 * assert.throws(() => decodeWire(new Uint8Array([0x93, 1, 2, 3])), WireFormatError);
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
  if (first === MAGIC0) return decodeFrame(bytes);
  if (first === 0x94 || first === 0x84) {
    return { data: bytes, compressed: true, serializer: "default", format: undefined };
  }
  return decodeDocument(bytes);
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
