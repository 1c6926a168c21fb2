/**
 * The ByteStorage envelope (cachekit protocol v1.0, layer 3): what integrity checking wraps around a
 * serialized value.
 *
 * An envelope is the MessagePack array `[compressed_data, checksum, original_size, format]`:
 * `compressed_data` is the LZ4 *block* (no frame, no size prefix) of the data, `checksum` the
 * xxHash3-64 of the uncompressed data as an array of 8 integers (big-endian byte order),
 * `original_size` an unsigned integer and `format` a string (`"msgpack"` by default). Protocol 1.1
 * (the default here, cachekit-core ≥ 0.4) writes `compressed_data` as MessagePack `bin`; protocol 1.0
 * (cachekit-core ≤ 0.3, Python cachekit 0.3.0) as an array of integers, one per byte.
 *
 * The envelope is written and read by a small hand-written MessagePack writer and reader rather than
 * a MessagePack library: the bytes must be exactly what Rust's `rmp_serde::to_vec` writes (shortest
 * integer forms, a fixed 4-element array, `bin` vs an array of ints depending on the protocol), the
 * 1.0 form would otherwise decode into a JavaScript array of one number per byte (8+ bytes of memory
 * per byte of data), and the reader must check every declared size against the 512 MiB limit before
 * allocating anything. Reading accepts both array forms and the named-map form
 * (`{compressed_data, checksum, original_size, format}`).
 *
 * Every failure on the read side — truncated input, wrong field types, sizes over 512 MiB, a
 * decompression bomb, a bad checksum, a size mismatch — is an {@linkcode IntegrityError}; no other
 * exception type escapes and wrong data is never returned.
 *
 * @example Round trip
 * ```ts
 * import { decodeEnvelope, encodeEnvelope } from "@cachekit/core/protocol";
 *
 * const bytes = encodeEnvelope(new TextEncoder().encode("hello hello hello hello"));
 * const { data, format } = decodeEnvelope(bytes);
 * console.log(new TextDecoder().decode(data), format); // hello hello hello hello msgpack
 * ```
 *
 * @module
 */
import { IntegrityError, SerializationError } from "../errors.ts";
import { compressBlock, decompressBlock } from "./_lz4.ts";
import { xxh3 } from "./_xxh3.ts";

/** Largest envelope, compressed block and original size accepted (512 MiB). */
const MAX_ENVELOPE_BYTES = 512 * 1024 * 1024;
/** Largest accepted ratio of original size to compressed size (decompression-bomb guard). */
const MAX_COMPRESSION_RATIO = 1000;

/** Options of {@linkcode encodeEnvelope}. */
export interface EncodeEnvelopeOptions {
  /**
   * Envelope protocol version: `"1.1"` (default) writes the compressed block as MessagePack `bin`;
   * `"1.0"` writes it as an array of integers, the only form Python cachekit 0.3.0 can read.
   */
  protocol?: "1.0" | "1.1";
}

/** A decoded, verified envelope. */
export interface DecodedEnvelope {
  /** The original (decompressed, checksum-verified) bytes. */
  data: Uint8Array;
  /** The format tag stored with them, e.g. `"msgpack"`. */
  format: string;
}

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * Wrap `data` in a ByteStorage envelope: LZ4 block compression, xxHash3-64 checksum, original size
 * and format tag, serialized as rmp-serde does.
 *
 * Throws {@linkcode SerializationError} when `data` is not a `Uint8Array`, is larger than 512 MiB,
 * or `format` / `opts.protocol` are invalid.
 *
 * @param data The serialized value.
 * @param format Format tag stored in the envelope (default `"msgpack"`).
 * @param opts Protocol version (default `"1.1"`).
 * @returns The envelope bytes.
 *
 * @example Protocol 1.0 for Python cachekit 0.3.0
 * ```ts
 * import { encodeEnvelope } from "@cachekit/core/protocol";
 *
 * const env = encodeEnvelope(new Uint8Array([0xc0]), "msgpack", { protocol: "1.0" });
 * console.log(env[0] === 0x94, env[1] === 0x92); // true true (array of 4; block as array of 2 ints)
 * ```
 */
export function encodeEnvelope(
  data: Uint8Array,
  format: string = "msgpack",
  opts: EncodeEnvelopeOptions = {},
): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new SerializationError("encodeEnvelope: data must be a Uint8Array");
  }
  if (data.length > MAX_ENVELOPE_BYTES) {
    throw new SerializationError(
      `encodeEnvelope: ${data.length} bytes is over the 512 MiB envelope limit`,
    );
  }
  if (typeof format !== "string") {
    throw new SerializationError("encodeEnvelope: format must be a string");
  }
  const protocol = opts.protocol ?? "1.1";
  if (protocol !== "1.0" && protocol !== "1.1") {
    throw new SerializationError(
      `encodeEnvelope: unknown protocol ${JSON.stringify(protocol)}; use "1.0" or "1.1"`,
    );
  }
  const compressed = compressBlock(data);
  const checksum = xxh3(data);
  const fmt = utf8.encode(format);

  const cap = 1 + 5 + (protocol === "1.0" ? 2 * compressed.length : compressed.length) + 1 + 16 +
    5 + 5 + fmt.length;
  const out = new Uint8Array(cap);
  let p = 0;
  out[p++] = 0x94; // fixarray of 4
  const n = compressed.length;
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
    out.set(compressed, p);
    p += n;
  } else {
    p = writeArrayHeader(out, p, n);
    for (let i = 0; i < n; i++) {
      const b = compressed[i];
      if (b >= 0x80) out[p++] = 0xcc;
      out[p++] = b;
    }
  }
  out[p++] = 0x98; // fixarray of 8
  for (let i = 0; i < 8; i++) {
    const b = checksum[i];
    if (b >= 0x80) out[p++] = 0xcc;
    out[p++] = b;
  }
  p = writeUint(out, p, data.length);
  const f = fmt.length;
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
  return out.slice(0, p);
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

/**
 * Open and verify a ByteStorage envelope written by any cachekit SDK (protocol 1.0 or 1.1, array or
 * named-map form).
 *
 * Checks, in order: total size ≤ 512 MiB; MessagePack structure and field types; compressed size
 * ≤ 512 MiB; original size ≤ 512 MiB; a zero-length block with a non-zero size; original size over
 * 1000 × compressed size; decompression to exactly the original size; the xxHash3-64 checksum; the
 * length. Any failure throws {@linkcode IntegrityError}.
 *
 * @param bytes The stored envelope.
 * @returns The original bytes and their format tag.
 *
 * @example A corrupted envelope is refused
 * ```ts
 * import { decodeEnvelope, encodeEnvelope } from "@cachekit/core/protocol";
 * import { IntegrityError } from "@cachekit/core";
 *
 * const env = encodeEnvelope(new TextEncoder().encode("some cached value"));
 * env[5] ^= 0xff; // flip bits inside the compressed block
 * try {
 *   decodeEnvelope(env);
 * } catch (e) {
 *   console.log(e instanceof IntegrityError); // true
 * }
 * ```
 */
export function decodeEnvelope(bytes: Uint8Array): DecodedEnvelope {
  try {
    return decodeUnchecked(bytes);
  } catch (e) {
    if (e instanceof IntegrityError) throw e;
    throw new IntegrityError(`envelope rejected: ${(e as Error)?.message ?? String(e)}`, {
      cause: e,
    });
  }
}

function fail(msg: string): never {
  throw new IntegrityError(`envelope rejected: ${msg}`);
}

const FIELDS = ["compressed_data", "checksum", "original_size", "format"] as const;

function decodeUnchecked(bytes: Uint8Array): DecodedEnvelope {
  if (!(bytes instanceof Uint8Array)) fail("not a byte array");
  if (bytes.length > MAX_ENVELOPE_BYTES) fail(`${bytes.length} bytes is over 512 MiB`);
  const r = new Reader(bytes);

  let compressed: Uint8Array | undefined;
  let checksum: Uint8Array | undefined;
  let originalSize: number | undefined;
  let format: string | undefined;
  const readField = (name: (typeof FIELDS)[number]) => {
    switch (name) {
      case "compressed_data":
        compressed = r.bytesField("compressed_data");
        break;
      case "checksum":
        checksum = r.bytesField("checksum");
        if (checksum.length !== 8) fail(`checksum has ${checksum.length} bytes, expected 8`);
        break;
      case "original_size":
        originalSize = r.uint("original_size");
        break;
      case "format":
        format = r.str("format");
        break;
    }
  };

  const head = r.u8("envelope");
  if (head === 0x94 || head === 0xdc || head === 0xdd) {
    const n = head === 0x94 ? 4 : head === 0xdc ? r.u16("envelope") : r.u32("envelope");
    if (n !== 4) fail(`envelope array has ${n} elements, expected 4`);
    for (const name of FIELDS) readField(name);
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
      readField(key as (typeof FIELDS)[number]);
    }
  } else {
    fail(`expected a MessagePack array or map, found byte 0x${head.toString(16)}`);
  }
  if (r.pos !== bytes.length) fail(`${bytes.length - r.pos} trailing bytes after the envelope`);
  // All four are set: an array reads every field, a map has 4 distinct known keys.
  const block = compressed!;
  const size = originalSize!;

  if (size > MAX_ENVELOPE_BYTES) fail(`original size ${size} is over 512 MiB`);
  if (block.length === 0 && size !== 0) {
    fail(`empty compressed block claims ${size} original bytes`);
  }
  if (size > MAX_COMPRESSION_RATIO * block.length) {
    fail(`original size ${size} is over 1000 × the compressed size ${block.length}`);
  }
  let data: Uint8Array;
  try {
    data = decompressBlock(block, size);
  } catch (e) {
    fail(`LZ4 decompression failed (${(e as Error).message})`);
  }
  const actual = xxh3(data);
  for (let i = 0; i < 8; i++) {
    if (actual[i] !== checksum![i]) fail("checksum mismatch");
  }
  if (data.length !== size) fail(`decompressed ${data.length} bytes, expected ${size}`);
  return { data, format: format! };
}

/** A bounds-checked MessagePack reader for the few types an envelope holds. */
class Reader {
  pos = 0;
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

  str(what: string): string {
    const h = this.u8(what);
    let n: number;
    if ((h & 0xe0) === 0xa0) n = h & 0x1f;
    else if (h === 0xd9) n = this.u8(what);
    else if (h === 0xda) n = this.u16(what);
    else if (h === 0xdb) n = this.u32(what);
    else fail(`${what}: expected a string, found byte 0x${h.toString(16)}`);
    this.need(n, what);
    const s = utf8Strict.decode(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }
}
