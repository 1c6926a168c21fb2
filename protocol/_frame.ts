/**
 * The framed binary codec: the `"envelope"` form's header (magic, layout version, flags,
 * serializer, format, `fresh_until`, key fingerprint, tenant label, payload length, header check)
 * around the payload, and the bare envelope when no header is needed. The layout table is in
 * `stored_value.ts`'s module doc. Apart from the JSON document codec because the two share nothing
 * but the decoded shape: this one reads bytes at offsets, never text.
 *
 * @module
 */
import { fromHex, toHex } from "./_hex.ts";
import { xxh3Hex, xxh3Matches } from "./_xxh3.ts";
import { type WireDocument, type WireEncryption, WireFormatError } from "./_stored_types.ts";

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** First byte of every framed entry (`0xC1`, which MessagePack never uses and UTF-8 never has). */
export const MAGIC0 = 0xc1;
const MAGIC1 = 0x63; // "c"
const MAGIC2 = 0x6b; // "k"
const FRAME_VERSION = 2;
const F_ENVELOPE = 0x01;
const F_ENCRYPTED = 0x02;
const F_FRESH = 0x04;
const F_UNDEFINED = 0x08;
const F_DIGEST = 0x10;
const F_KNOWN = F_ENVELOPE | F_ENCRYPTED | F_FRESH | F_UNDEFINED | F_DIGEST;
const FINGERPRINT_BYTES = 16;
const HEADER_CHECK_BYTES = 8;

/** The envelope wire's bytes for `doc`: the bare envelope when nothing else is needed. */
export function encodeFrame(doc: WireDocument): Uint8Array {
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
  const check = doc.compressed || doc.digest ? HEADER_CHECK_BYTES : 0;
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
export function frameHeader(doc: WireDocument): Uint8Array {
  const fresh = typeof doc.freshUntil === "number" ? doc.freshUntil : null;
  const name = enc.encode(doc.serializer);
  const fmt = enc.encode(doc.format ?? "msgpack");
  if (name.length < 1 || name.length > 0xff) {
    throw new WireFormatError("serializer name must be 1..255 UTF-8 bytes");
  }
  if (fmt.length < 1 || fmt.length > 0xff) throw new WireFormatError("format must be 1..255 bytes");
  let flags = doc.compressed ? F_ENVELOPE : doc.digest ? F_DIGEST : 0;
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
export function decodeFrame(b: Uint8Array): WireDocument {
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
  if ((flags & (F_ENVELOPE | F_DIGEST)) === (F_ENVELOPE | F_DIGEST)) {
    throw new WireFormatError("frame flags name both the envelope and the digest layout");
  }
  if ((flags & (F_ENVELOPE | F_DIGEST)) !== 0) {
    if (o + HEADER_CHECK_BYTES > len) throw new WireFormatError("frame truncated");
    if (!xxh3Matches(b.subarray(0, o), b, o)) {
      throw new WireFormatError("frame header checksum mismatch");
    }
    o += HEADER_CHECK_BYTES;
  }
  if (o + p !== len) throw new WireFormatError("frame payload length disagrees with its size");
  return {
    data: b.subarray(o),
    compressed: (flags & F_ENVELOPE) !== 0,
    digest: (flags & F_DIGEST) !== 0,
    serializer,
    format,
    encryption,
    jsUndefined: (flags & F_UNDEFINED) !== 0,
    freshUntil,
    aad: encryption !== null ? b.subarray(0, headEnd) : null,
  };
}

/** Names the engine writes, returned without building a new string. */
const FRAME_NAMES: [string, Uint8Array][] = ["default", "msgpack", "json", "std", "orjson"].map((
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
