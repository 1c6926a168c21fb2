/**
 * The shapes every part of the stored-value codec shares: the decoded entry
 * ({@linkcode WireDocument}), its encryption fields, the choice of format ({@linkcode WireForm})
 * and the one error a malformed entry raises. Separate so that the JSON document codec, the framed
 * codec and base64 can all use them without importing each other or the public face.
 *
 * @module
 */
import { CacheKitError } from "../errors.ts";

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
  /**
   * Whether `data` is in the digest layout with its 8-byte xxHash3-64 prefix (`_digest_layout.ts`:
   * cachekit-py 0.3.0's orjson and arrow with integrity checking on). Written in the framed
   * header (flag `0x10`); a document does not say it (`undefined` when decoded: the reader's
   * configuration decides, as cachekit-py's does).
   */
  digest?: boolean;
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
