/**
 * The L2 value format shared with cachekit-py 0.3.0: a UTF-8 JSON document around the stored bytes.
 *
 * ```json
 * {"data": "<base64>", "metadata": {"format": "msgpack", "encoding": "utf-8", "compressed": true,
 *  "original_type": "msgpack"}, "serializer": "default", "version": "2.0"}
 * ```
 *
 * `data` holds the ByteStorage envelope when integrity checking is on (`compressed: true`), else
 * the serializer's plain bytes (`compressed: false`). Encrypted entries add `encrypted: true`,
 * `tenant_id`, `encryption_algorithm: "AES-256-GCM"` and `key_fingerprint` (32 hex) to `metadata`.
 * A JavaScript `undefined` result is stored as `nil` with `js_undefined: true` in `metadata`
 * (Python reads `None` and ignores the field).
 *
 * Fail-safe (`staleTtl`): the entry lives `ttl + staleTtl` in L2 and `metadata.fresh_until` records
 * its logical expiry (Unix time in seconds, a float). A reader past that time knows the value is
 * stale: cachekit TypeScript treats it as a miss and keeps it only as a fallback for a failing
 * function. cachekit-py 0.3.0 ignores unknown metadata fields, so it still reads such an entry, as
 * a fresh value for the whole `ttl + staleTtl`.
 *
 * Anything that does not parse as such a document is a {@linkcode WireFormatError} (the engine
 * treats it as a miss).
 *
 * @example
 * ```ts
 * import { decodeWire, encodeWire } from "@cachekit/core";
 *
 * const doc = encodeWire({ data: new Uint8Array([0x2a]), compressed: false, serializer: "default" });
 * console.log(decodeWire(doc).data); // Uint8Array(1) [ 42 ]
 * ```
 *
 * @module
 */
import { CacheKitError } from "./errors.ts";
import { DataSlot, parseFast } from "./_wire_fast.ts";

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
  /** Payload format (`"msgpack"`, `"json"`). Default `"msgpack"`. */
  format?: string;
  /** Encryption metadata when the entry is encrypted. */
  encryption?: WireEncryption | null;
  /** The value was JavaScript `undefined` (stored as `nil`). */
  jsUndefined?: boolean;
  /** Fail-safe: logical expiry, ms since the epoch (`metadata.fresh_until`, in seconds). */
  freshUntil?: number | null;
}

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/**
 * Encode a wire document to UTF-8 JSON bytes.
 *
 * @param doc The document.
 * @returns The bytes stored in L2.
 *
 * @example
 * ```ts
 * import { encodeWire } from "@cachekit/core";
 * const bytes = encodeWire({ data: new Uint8Array([1]), compressed: true, serializer: "default" });
 * console.log(JSON.parse(new TextDecoder().decode(bytes)).version); // 2.0
 * ```
 */
export function encodeWire(doc: WireDocument): Uint8Array {
  const format = doc.format ?? "msgpack";
  const metadata: Record<string, unknown> = {
    format,
    encoding: "utf-8",
    compressed: doc.compressed,
    original_type: format,
  };
  if (doc.encryption) {
    metadata.encrypted = true;
    metadata.tenant_id = doc.encryption.tenantId;
    metadata.encryption_algorithm = doc.encryption.algorithm ?? "AES-256-GCM";
    metadata.key_fingerprint = doc.encryption.keyFingerprint;
  }
  if (doc.jsUndefined) metadata.js_undefined = true;
  if (typeof doc.freshUntil === "number") metadata.fresh_until = doc.freshUntil / 1000;
  return enc.encode(JSON.stringify({
    data: toBase64(doc.data),
    metadata,
    serializer: doc.serializer,
    version: "2.0",
  }));
}

/**
 * Decode wire bytes.
 *
 * @param bytes Bytes read from L2.
 * @returns The document.
 * @throws {WireFormatError} Not UTF-8, not JSON, wrong shape, bad base64, unknown version.
 *
 * @example
 * ```ts
 * import { decodeWire, WireFormatError } from "@cachekit/core";
 * try {
 *   decodeWire(new Uint8Array([0x93, 1, 2, 3]));
 * } catch (e) {
 *   console.log(e instanceof WireFormatError); // true
 * }
 * ```
 */
export function decodeWire(bytes: Uint8Array): WireDocument {
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
  let raw: Uint8Array | null;
  if (range !== null) {
    raw = base64Bytes(bytes!, range.start, range.end);
    if (raw === null) return null;
  } else raw = fromBase64(data as string);
  return {
    data: raw,
    compressed: metadata.compressed,
    serializer,
    format,
    encryption,
    jsUndefined: metadata.js_undefined === true,
    freshUntil: typeof metadata.fresh_until === "number" && Number.isFinite(metadata.fresh_until)
      ? metadata.fresh_until * 1000
      : null,
  };
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
 * cost more than the decode itself: ~40× on a 60 KB document, ~0.5 µs on a 1 KB one).
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
