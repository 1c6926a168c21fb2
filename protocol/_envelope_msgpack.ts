/**
 * The MessagePack field encoding of the ByteStorage envelope: a writer that produces exactly the bytes
 * Rust's `rmp_serde::to_vec` writes for `[compressed_data, checksum, original_size, format]`, and a
 * strict, bounds-checked reader for the array forms (protocol 1.0 and 1.1) and the named-map form.
 *
 * Hand-written rather than built on a MessagePack library: the output must be rmp-serde's exact
 * bytes (shortest integer forms; the block as `bin` in 1.1 and as an array of one integer per byte in
 * 1.0), a library would decode the 1.0 form into a JavaScript array of one number per byte (8+ bytes
 * of memory per byte of data), and every declared size must be checked against the 512 MiB limit
 * before anything is allocated. The four fixed fields make this a hundred lines.
 *
 * @module
 */
import { IntegrityError } from "../errors.ts";
import { fromHex, HEX } from "./_hex.ts";

/** Largest envelope, compressed block and original size accepted (512 MiB). */
export const MAX_ENVELOPE_BYTES: number = 512 * 1024 * 1024;

/** The four fields of an envelope, as stored. */
export interface EnvelopeFields {
  /** LZ4 block of the data. */
  compressed: Uint8Array;
  /** xxHash3-64 of the data, 8 bytes big-endian. */
  checksum: Uint8Array;
  /** Length of the uncompressed data. */
  originalSize: number;
  /** Format tag, e.g. `"msgpack"`. */
  format: string;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

let lastFormat = "msgpack";
let lastFormatBytes = utf8.encode(lastFormat);

/** The UTF-8 bytes of a format tag (the last one is remembered: it is nearly always the same). */
function formatBytes(format: string): Uint8Array {
  if (format !== lastFormat) {
    lastFormatBytes = utf8.encode(format);
    lastFormat = format;
  }
  return lastFormatBytes;
}

/** Bytes of the elements of an array of integers 0..255 (under 0x80 one byte, others two). */
function intsLength(a: Uint8Array): number {
  let n = a.length;
  for (let i = 0; i < a.length; i++) if (a[i] >= 0x80) n++;
  return n;
}

function arrayHeaderLength(n: number): number {
  return n < 16 ? 1 : n < 0x10000 ? 3 : 5;
}

function writeInts(out: Uint8Array, p: number, a: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const b = a[i];
    if (b >= 0x80) out[p++] = 0xcc;
    out[p++] = b;
  }
  return p;
}

const NO_HEAD = new Uint8Array(0);

function uintLength(v: number): number {
  return v < 0x80 ? 1 : v < 0x100 ? 2 : v < 0x10000 ? 3 : 5;
}

/**
 * Serialize the fields as rmp-serde does (`protocol` "1.1": block as bin; "1.0": array of ints),
 * into an array of exactly the envelope's size (no second copy to trim it). With `head`, the
 * block is `head` followed by `fields.compressed` (a stored block written without building it).
 */
export function writeEnvelopeFields(
  fields: EnvelopeFields,
  protocol: "1.0" | "1.1",
  head: Uint8Array = NO_HEAD,
): Uint8Array {
  const { compressed, checksum } = fields;
  const fmt = formatBytes(fields.format);
  const n = head.length + compressed.length;
  const f = fmt.length;
  const size = 1 +
    (protocol === "1.1"
      ? (n < 0x100 ? 2 : n < 0x10000 ? 3 : 5) + n
      : arrayHeaderLength(n) + intsLength(head) + intsLength(compressed)) +
    arrayHeaderLength(checksum.length) + intsLength(checksum) + uintLength(fields.originalSize) +
    (f < 32 ? 1 : f < 0x100 ? 2 : f < 0x10000 ? 3 : 5) + f;
  const out = new Uint8Array(size);
  let p = 0;
  out[p++] = 0x94; // fixarray of 4
  if (protocol === "1.1") {
    if (n < 0x100) {
      out[p++] = 0xc4;
      out[p++] = n;
    } else if (n < 0x10000) {
      out[p++] = 0xc5;
      out[p++] = n >>> 8;
      out[p++] = n & 0xff;
    } else {
      out[p++] = 0xc6;
      p = writeU32(out, p, n);
    }
    out.set(head, p);
    out.set(compressed, p + head.length);
    p += n;
  } else {
    p = writeArrayHeader(out, p, n);
    p = writeInts(out, p, head);
    p = writeInts(out, p, compressed);
  }
  p = writeArrayHeader(out, p, checksum.length);
  p = writeInts(out, p, checksum);
  p = writeUint(out, p, fields.originalSize);
  if (f < 32) {
    out[p++] = 0xa0 | f;
  } else if (f < 0x100) {
    out[p++] = 0xd9;
    out[p++] = f;
  } else if (f < 0x10000) {
    out[p++] = 0xda;
    out[p++] = f >>> 8;
    out[p++] = f & 0xff;
  } else {
    out[p++] = 0xdb;
    p = writeU32(out, p, f);
  }
  out.set(fmt, p);
  p += f;
  if (p !== size) throw new RangeError(`envelope writer: wrote ${p} bytes, sized ${size}`);
  return out;
}

function writeU32(out: Uint8Array, p: number, v: number): number {
  out[p++] = v >>> 24;
  out[p++] = (v >>> 16) & 0xff;
  out[p++] = (v >>> 8) & 0xff;
  out[p++] = v & 0xff;
  return p;
}

function writeArrayHeader(out: Uint8Array, p: number, n: number): number {
  if (n < 16) {
    out[p++] = 0x90 | n;
  } else if (n < 0x10000) {
    out[p++] = 0xdc;
    out[p++] = n >>> 8;
    out[p++] = n & 0xff;
  } else {
    out[p++] = 0xdd;
    p = writeU32(out, p, n);
  }
  return p;
}

function writeUint(out: Uint8Array, p: number, v: number): number {
  if (v < 0x80) {
    out[p++] = v;
  } else if (v < 0x100) {
    out[p++] = 0xcc;
    out[p++] = v;
  } else if (v < 0x10000) {
    out[p++] = 0xcd;
    out[p++] = v >>> 8;
    out[p++] = v & 0xff;
  } else {
    out[p++] = 0xce;
    p = writeU32(out, p, v);
  }
  return p;
}

export function fail(msg: string): never {
  throw new IntegrityError(`envelope rejected: ${msg}`);
}

const FIELDS = ["compressed_data", "checksum", "original_size", "format"] as const;

/** The envelope's fields as the read side needs them: the checksum as 16 lowercase hex digits. */
export interface ParsedEnvelope {
  /** LZ4 block of the data (a view into the input). */
  compressed: Uint8Array;
  /** xxHash3-64 of the data, big-endian, as 16 lowercase hex digits. */
  checksumHex: string;
  /** Length of the uncompressed data. */
  originalSize: number;
  /** Format tag, e.g. `"msgpack"`. */
  format: string;
}

/**
 * The envelope's fields as the hot read path takes them: the checksum as two 32-bit numbers
 * (compared as numbers: no string, no byte array). One object, filled by each
 * {@linkcode readEnvelopeHead}.
 */
export interface EnvelopeHead {
  /**
   * LZ4 block of the data (a view into the input); not made by `readEnvelopeHead(…, false)` when
   * `blockAt` is set.
   */
  compressed: Uint8Array;
  /** Where the block starts in the input (the layout of `fastHead`), else -1. */
  blockAt: number;
  /** The block's length. */
  blockLength: number;
  /** The checksum's first 4 bytes, big-endian (xxHash3-64's high half). */
  hi: number;
  /** Its last 4 bytes (the low half). */
  lo: number;
  /** Length of the uncompressed data. */
  originalSize: number;
  /** Format tag, e.g. `"msgpack"`. */
  format: string;
}

/** The 16 lowercase hex digits of a checksum held as two 32-bit halves. */
export function digestHex(hi: number, lo: number): string {
  return HEX[hi >>> 24] + HEX[(hi >>> 16) & 0xff] + HEX[(hi >>> 8) & 0xff] + HEX[hi & 0xff] +
    HEX[lo >>> 24] + HEX[(lo >>> 16) & 0xff] + HEX[(lo >>> 8) & 0xff] + HEX[lo & 0xff];
}

/**
 * Parse the envelope structure (no decompression, no checksum): array of 4 or the named map, each
 * field of the right type, no trailing bytes, declared lengths ≤ 512 MiB. Throws IntegrityError.
 * Allocates no `ArrayBuffer` (`compressed` is a view; the checksum a string).
 */
export function parseEnvelope(bytes: Uint8Array): ParsedEnvelope {
  // The general reader only: the tests compare it with the fast one of `readEnvelopeHead`.
  const h = readHead(bytes, {
    compressed: bytes,
    blockAt: -1,
    blockLength: 0,
    hi: 0,
    lo: 0,
    originalSize: 0,
    format: "",
  });
  return {
    compressed: h.compressed,
    checksumHex: digestHex(h.hi, h.lo),
    originalSize: h.originalSize,
    format: h.format,
  };
}

/**
 * {@linkcode parseEnvelope} into `out` (returned), the checksum as numbers: the hot read path,
 * where each `ArrayBuffer` is costly under Deno (`_envelope_read.ts` says why) and a hex string
 * per read is work for nothing. Throws IntegrityError.
 */
export function readEnvelopeHead(
  bytes: Uint8Array,
  out: EnvelopeHead,
  view = true,
): EnvelopeHead {
  if (fastHead(bytes, out, view)) return out;
  readHead(bytes, out);
  out.blockAt = -1;
  out.blockLength = out.compressed.length;
  return out;
}

/** The general reader of {@linkcode readEnvelopeHead} (every form; {@linkcode parseEnvelope}'s). */
function readHead(bytes: Uint8Array, out: EnvelopeHead): EnvelopeHead {
  const r = new Reader(bytes);
  const head = r.u8("envelope");
  if (head === 0x94 || head === 0xdc || head === 0xdd) {
    const n = head === 0x94 ? 4 : head === 0xdc ? r.u16("envelope") : r.u32("envelope");
    if (n !== 4) fail(`envelope array has ${n} elements, expected 4`);
    for (let i = 0; i < 4; i++) readField(r, FIELDS[i], out);
  } else if ((head & 0xf0) === 0x80 || head === 0xde || head === 0xdf) {
    const n = (head & 0xf0) === 0x80 ? head & 0x0f : head === 0xde ? r.u16("envelope") : r.u32(
      "envelope",
    );
    if (n !== 4) fail(`envelope map has ${n} entries, expected 4`);
    const seen = new Set<string>();
    for (let i = 0; i < n; i++) {
      const key = r.str("map key");
      if (!(FIELDS as readonly string[]).includes(key)) {
        fail(`unknown field ${JSON.stringify(key)}`);
      }
      if (seen.has(key)) fail(`duplicate field ${JSON.stringify(key)}`);
      seen.add(key);
      readField(r, key as (typeof FIELDS)[number], out);
    }
  } else {
    fail(`expected a MessagePack array or map, found byte 0x${head.toString(16)}`);
  }
  if (r.pos !== bytes.length) fail(`${bytes.length - r.pos} trailing bytes after the envelope`);
  // All four are set: an array reads every field, a map has 4 distinct known keys.
  return out;
}

/** The format tags of the built-in serializers, as UTF-8, for {@linkcode fastHead}. */
const KNOWN_FORMATS: readonly [string, Uint8Array][] = ["msgpack", "json", "orjson"].map((f) => [
  f,
  utf8.encode(f),
]);

/**
 * {@linkcode readEnvelopeHead} for the layout this package writes with protocol 1.1 — an array of
 * 4: the block as `bin` 8/16, the checksum as an array of 8 integers, the size as an unsigned int
 * of up to 32 bits, a built-in serializer's format as a fixstr — read in one straight pass.
 * Anything else returns `false` and takes the general reader, which gives the same fields for
 * everything this accepts (and the errors for what it refuses). Without `view`, the block is only
 * located (`blockAt`, `blockLength`).
 */
function fastHead(b: Uint8Array, out: EnvelopeHead, view: boolean): boolean {
  const n = b.length;
  if (n < 16 || b[0] !== 0x94) return false;
  let p = 1;
  let len: number;
  if (b[1] === 0xc4) {
    len = b[2];
    p = 3;
  } else if (b[1] === 0xc5) {
    len = (b[2] << 8) | b[3];
    p = 4;
  } else return false;
  const at = p;
  p += len;
  if (p + 11 > n || b[p] !== 0x98) return false;
  p++;
  let hi = 0, lo = 0;
  for (let i = 0; i < 8; i++) {
    let v = b[p];
    if (v < 0x80) p++;
    else if (v === 0xcc && p + 1 < n) {
      v = b[p + 1];
      p += 2;
    } else return false;
    if (i < 4) hi = hi * 256 + v;
    else lo = lo * 256 + v;
  }
  if (p >= n) return false;
  const h = b[p];
  let size: number;
  if (h < 0x80) {
    size = h;
    p++;
  } else if (h === 0xcc && p + 2 <= n) {
    size = b[p + 1];
    p += 2;
  } else if (h === 0xcd && p + 3 <= n) {
    size = (b[p + 1] << 8) | b[p + 2];
    p += 3;
  } else if (h === 0xce && p + 5 <= n) {
    size = ((b[p + 1] << 24) >>> 0) + ((b[p + 2] << 16) | (b[p + 3] << 8) | b[p + 4]);
    p += 5;
  } else return false;
  if (p >= n || (b[p] & 0xe0) !== 0xa0) return false;
  const f = b[p] & 0x1f;
  p++;
  if (p + f !== n) return false;
  outer: for (let k = 0; k < KNOWN_FORMATS.length; k++) {
    const [name, code] = KNOWN_FORMATS[k];
    if (code.length !== f) continue;
    for (let j = 0; j < f; j++) if (code[j] !== b[p + j]) continue outer;
    if (view) out.compressed = b.subarray(at, at + len);
    out.blockAt = at;
    out.blockLength = len;
    out.hi = hi;
    out.lo = lo;
    out.originalSize = size;
    out.format = name;
    return true;
  }
  return false;
}

function readField(r: Reader, name: (typeof FIELDS)[number], out: EnvelopeHead): void {
  switch (name) {
    case "compressed_data":
      out.compressed = r.bytesField("compressed_data");
      break;
    case "checksum":
      r.digestField("checksum");
      out.hi = r.hi;
      out.lo = r.lo;
      break;
    case "original_size":
      out.originalSize = r.uint("original_size");
      break;
    case "format":
      out.format = r.str("format");
      break;
  }
}

/** {@linkcode parseEnvelope} with the checksum as its 8 bytes. Throws IntegrityError. */
export function readEnvelopeFields(bytes: Uint8Array): EnvelopeFields {
  const { compressed, checksumHex, originalSize, format } = parseEnvelope(bytes);
  return { compressed, checksum: fromHex(checksumHex)!, originalSize, format };
}

/** A bounds-checked MessagePack reader for the few types an envelope holds. */
class Reader {
  pos = 0;
  /** The first 4 bytes of the last {@linkcode Reader.digestField}, big-endian. */
  hi = 0;
  /** Its last 4 bytes. */
  lo = 0;
  constructor(readonly buf: Uint8Array) {}

  need(n: number, what: string): void {
    if (n > this.buf.length - this.pos) fail(`truncated in ${what}`);
  }
  u8(what: string): number {
    this.need(1, what);
    return this.buf[this.pos++];
  }
  u16(what: string): number {
    this.need(2, what);
    const b = this.buf, p = this.pos;
    this.pos += 2;
    return (b[p] << 8) | b[p + 1];
  }
  u32(what: string): number {
    this.need(4, what);
    const b = this.buf, p = this.pos;
    this.pos += 4;
    return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
  }

  /** Any MessagePack integer; returns a number (values beyond 2^53 come back as Infinity). */
  int(what: string): number {
    const h = this.u8(what);
    if (h < 0x80) return h;
    if (h >= 0xe0) return h - 0x100;
    switch (h) {
      case 0xcc:
        return this.u8(what);
      case 0xcd:
        return this.u16(what);
      case 0xce:
        return this.u32(what);
      case 0xcf: {
        const hi = this.u32(what), lo = this.u32(what);
        return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
      }
      case 0xd0: {
        const v = this.u8(what);
        return v >= 0x80 ? v - 0x100 : v;
      }
      case 0xd1: {
        const v = this.u16(what);
        return v >= 0x8000 ? v - 0x10000 : v;
      }
      case 0xd2:
        return this.u32(what) | 0;
      case 0xd3: {
        const hi = this.u32(what) | 0, lo = this.u32(what);
        if (hi < 0) return -Infinity;
        return hi >= 0x200000 ? Infinity : hi * 0x100000000 + lo;
      }
      default:
        fail(`${what}: expected an integer, found byte 0x${h.toString(16)}`);
    }
  }

  uint(what: string): number {
    const v = this.int(what);
    if (v < 0) fail(`${what} is negative`);
    return v;
  }

  /** `bin` or an array of integers 0..255 (rmp-serde's `Vec<u8>` / `[u8; 8]`). */
  bytesField(what: string): Uint8Array {
    const h = this.u8(what);
    let n: number;
    if (h === 0xc4 || h === 0xc5 || h === 0xc6) {
      n = h === 0xc4 ? this.u8(what) : h === 0xc5 ? this.u16(what) : this.u32(what);
      if (n > MAX_ENVELOPE_BYTES) fail(`${what} declares ${n} bytes, over 512 MiB`);
      this.need(n, what);
      const out = this.buf.subarray(this.pos, this.pos + n);
      this.pos += n;
      return out;
    }
    if ((h & 0xf0) === 0x90) n = h & 0x0f;
    else if (h === 0xdc) n = this.u16(what);
    else if (h === 0xdd) n = this.u32(what);
    else fail(`${what}: expected bin or an array of integers, found byte 0x${h.toString(16)}`);
    if (n > MAX_ENVELOPE_BYTES) fail(`${what} declares ${n} bytes, over 512 MiB`);
    this.need(n, what); // every element takes at least one byte
    const out = new Uint8Array(n);
    const b = this.buf;
    for (let i = 0; i < n; i++) {
      const x = b[this.pos];
      if (x < 0x80) {
        out[i] = x;
        this.pos++;
      } else if (x === 0xcc && this.pos + 1 < b.length) {
        out[i] = b[this.pos + 1];
        this.pos += 2;
      } else {
        const v = this.int(what);
        if (v < 0 || v > 255) fail(`${what}[${i}] = ${v} is not a byte`);
        out[i] = v;
      }
    }
    return out;
  }

  /**
   * The 8-byte checksum field (`bin` or an array of integers 0..255) as two 32-bit numbers,
   * big-endian, in {@linkcode Reader.hi} and {@linkcode Reader.lo}: compared as numbers, so the hot
   * read path builds neither a byte array nor a string.
   */
  digestField(what: string): void {
    const h = this.u8(what);
    let n: number;
    if (h === 0xc4) n = this.u8(what);
    else if ((h & 0xf0) === 0x90) n = h & 0x0f;
    else if (h === 0xc5 || h === 0xdc) n = this.u16(what);
    else if (h === 0xc6 || h === 0xdd) n = this.u32(what);
    else fail(`${what}: expected bin or an array of integers, found byte 0x${h.toString(16)}`);
    if (n !== 8) fail(`${what} has ${n} bytes, expected 8`);
    this.need(n, what); // every element takes at least one byte
    const b = this.buf;
    let hi = 0, lo = 0;
    for (let i = 0; i < 8; i++) {
      let v: number;
      if (h === 0xc4 || h === 0xc5 || h === 0xc6) v = b[this.pos++];
      else {
        const x = b[this.pos];
        if (x < 0x80) {
          v = x;
          this.pos++;
        } else if (x === 0xcc && this.pos + 1 < b.length) {
          v = b[this.pos + 1];
          this.pos += 2;
        } else {
          v = this.int(what);
          if (v < 0 || v > 255) fail(`${what}[${i}] = ${v} is not a byte`);
        }
      }
      if (i < 4) hi = hi * 256 + v;
      else lo = lo * 256 + v;
    }
    this.hi = hi;
    this.lo = lo;
  }

  str(what: string): string {
    const h = this.u8(what);
    let n: number;
    if ((h & 0xe0) === 0xa0) n = h & 0x1f;
    else if (h === 0xd9) n = this.u8(what);
    else if (h === 0xda) n = this.u16(what);
    else if (h === 0xdb) n = this.u32(what);
    else fail(`${what}: expected a string, found byte 0x${h.toString(16)}`);
    this.need(n, what);
    const s = asciiShort(this.buf, this.pos, n) ??
      utf8Strict.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}

/**
 * The string of a short all-ASCII run (the envelope's `format`, e.g. `msgpack`), without a
 * TextDecoder call (about 10x cheaper on the hot read path); `null` for anything else.
 */
function asciiShort(buf: Uint8Array, pos: number, n: number): string | null {
  if (n > 32) return null;
  let s = "";
  for (let i = pos; i < pos + n; i++) {
    const c = buf[i];
    if (c >= 0x80) return null;
    s += String.fromCharCode(c);
  }
  return s;
}
