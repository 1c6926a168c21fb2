/**
 * A structural scan of one MessagePack document, without decoding it. Internal.
 *
 * The standard serializer needs maps whose keys are all strings as plain objects and every other
 * map as a `Map`. msgpackr decodes maps either always as `Map`s (then every map is converted,
 * which made `deserialize` 1.4–2× slower than a plain `unpack`, from a small record to 10 KB) or
 * always as objects, turning a key `1` into `"1"` and
 * `"__proto__"` into `"__proto_"`, with no hook to see a key's type. (`@msgpack/msgpack` has a key
 * hook but decodes maps only to objects, see `std.ts`.) So this scan is hand-written: it walks the
 * bytes once (headers and lengths only, nothing allocated) and says whether the object mode
 * decodes exactly what the `Map` mode plus conversion would. Anything it does not vouch for (a
 * non-string or `"__proto__"` key, an extension other than the timestamp, nesting beyond the
 * limit, malformed or trailing bytes) goes the `Map` way, which also produces the errors.
 *
 * {@linkcode scan} is the same walk, also noting what the standard serializer's post-pass would
 * convert (64-bit ints, bins, maps shaped like date markers): when it meets none, `deserialize`
 * skips the post-pass (a second walk over the decoded value).
 *
 * {@linkcode boundedByInput} is the other scan, for the decoders that take every well-formed input
 * (the `Map` way here, the interop decoder): it refuses a header declaring more elements or bytes
 * than the input holds before the decoder preallocates for them.
 *
 * @module
 */

/** Deepest nesting the scan follows (deeper documents take the general path). */
const MAX_SCAN_DEPTH = 512;

/** `"__proto__"` as UTF-8 bytes. */
const PROTO = [0x5f, 0x5f, 0x70, 0x72, 0x6f, 0x74, 0x6f, 0x5f, 0x5f];

/**
 * Whether `b` is exactly one well-formed MessagePack value whose maps all have string keys other
 * than `"__proto__"` and whose only extension is the timestamp (type -1).
 */
export function objectSafe(b: Uint8Array): boolean {
  candidates.length = 0;
  limit = b.length;
  const safe = skip(b, 0, 0) === b.length;
  candidates.length = 0;
  return safe;
}

/** What {@linkcode scan} found that the standard serializer's post-pass converts: 64-bit ints. */
export const SCAN_INT64 = 1;
/** See {@linkcode scan}: bin values (msgpackr copies them with the input's class). */
export const SCAN_BIN = 2;
/** See {@linkcode scan}: a 2-entry map with a key such as `"__date__"` (maybe a date marker). */
export const SCAN_MARKER = 4;
/** Set by the walk: the `SCAN_*` bits of what it met. */
let found = 0;
/** Where the document being walked ends (`b.length`, or less for a prefix: {@linkcode scan}). */
let limit = 0;
/** The walk's path: per level, the key's byte offset or the array index (plain arrays: a typed
 * array's copy costs an `ArrayBuffer`)... */
const stackAt: number[] = new Array(MAX_SCAN_DEPTH).fill(0);
/** ...and the key's byte length, or -1 for an array index. */
const stackLen: number[] = new Array(MAX_SCAN_DEPTH).fill(0);
/** Paths of the maps that may be date markers, as `[offsets, lengths]` copies of the stack. */
const candidates: number[][] = [];

/**
 * {@linkcode objectSafe}, also saying what the post-pass of the standard serializer will have to
 * convert (one walk for both): -1 when `b` is not object-safe, else the `SCAN_*` bits found (0:
 * the object mode's output is already the final value). With `n`, the document is `b`'s first `n`
 * bytes (what follows is not looked at as part of it: a read at or past `n` makes the walk's
 * position pass `n`, which never comes back to it).
 */
export function scan(b: Uint8Array, n: number = b.length): number {
  found = 0;
  candidates.length = 0;
  limit = n;
  return skip(b, 0, 0) === n ? found : -1;
}

/**
 * Where the maps the last {@linkcode scan} (of `b`) flagged as maybe date markers sit: the path
 * (array indexes, map keys) of each, in document order; `undefined` when a key on such a path is
 * not ASCII (the caller then walks the whole decoded value instead).
 */
export function markerPaths(b: Uint8Array): (string | number)[][] | undefined {
  const paths: (string | number)[][] = [];
  for (let c = 0; c < candidates.length; c += 2) {
    const at = candidates[c], len = candidates[c + 1];
    const path: (string | number)[] = [];
    for (let d = 0; d < at.length; d++) {
      if (len[d] < 0) {
        path.push(at[d]);
        continue;
      }
      let key = "";
      for (let i = at[d]; i < at[d] + len[d]; i++) {
        if (b[i] >= 0x80) return undefined;
        key += String.fromCharCode(b[i]);
      }
      path.push(key);
    }
    paths.push(path);
  }
  return paths;
}

/** Position after the value at `p`, or -1 when the value is not one the object mode may decode. */
function skip(b: Uint8Array, p: number, depth: number): number {
  const n = limit;
  if (p >= n) return -1;
  const h = b[p];
  if (h < 0x80 || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) return p + 1;
  if (h < 0x90) return entries(b, p + 1, h & 0x0f, depth);
  if (h < 0xa0) return items(b, p + 1, h & 0x0f, depth);
  if (h < 0xc0) return end(n, p + 1 + (h & 0x1f));
  switch (h) {
    case 0xc4: // bin 8
      found |= SCAN_BIN;
      return p + 2 <= n ? end(n, p + 2 + b[p + 1]) : -1;
    case 0xd9: // str 8
      return p + 2 <= n ? end(n, p + 2 + b[p + 1]) : -1;
    case 0xc5:
      found |= SCAN_BIN;
      return p + 3 <= n ? end(n, p + 3 + u16(b, p + 1)) : -1;
    case 0xda:
      return p + 3 <= n ? end(n, p + 3 + u16(b, p + 1)) : -1;
    case 0xc6:
      found |= SCAN_BIN;
      return p + 5 <= n ? end(n, p + 5 + u32(b, p + 1)) : -1;
    case 0xdb:
      return p + 5 <= n ? end(n, p + 5 + u32(b, p + 1)) : -1;
    case 0xc7: // ext 8: length, type, data
      return p + 3 <= n && b[p + 2] === 0xff ? end(n, p + 3 + b[p + 1]) : -1;
    case 0xc8:
      return p + 4 <= n && b[p + 3] === 0xff ? end(n, p + 4 + u16(b, p + 1)) : -1;
    case 0xc9:
      return p + 6 <= n && b[p + 5] === 0xff ? end(n, p + 6 + u32(b, p + 1)) : -1;
    case 0xca: // float 32
      return end(n, p + 5);
    case 0xcb:
      return end(n, p + 9);
    case 0xcc: // uint 8..64, int 8..64
    case 0xd0:
      return end(n, p + 2);
    case 0xcd:
    case 0xd1:
      return end(n, p + 3);
    case 0xce:
    case 0xd2:
      return end(n, p + 5);
    case 0xcf:
    case 0xd3:
      found |= SCAN_INT64;
      return end(n, p + 9);
    case 0xd4: // fixext 1, 2, 4, 8, 16: type, data
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
      const size = 1 << (h - 0xd4);
      return p + 2 <= n && b[p + 1] === 0xff ? end(n, p + 2 + size) : -1;
    }
    case 0xdc:
      return p + 3 <= n ? items(b, p + 3, u16(b, p + 1), depth) : -1;
    case 0xdd:
      return p + 5 <= n ? items(b, p + 5, u32(b, p + 1), depth) : -1;
    case 0xde:
      return p + 3 <= n ? entries(b, p + 3, u16(b, p + 1), depth) : -1;
    case 0xdf:
      return p + 5 <= n ? entries(b, p + 5, u32(b, p + 1), depth) : -1;
    default: // 0xc1, never used
      return -1;
  }
}

function items(b: Uint8Array, p: number, count: number, depth: number): number {
  if (depth >= MAX_SCAN_DEPTH) return -1;
  stackLen[depth] = -1;
  const n = limit;
  for (let i = 0; i < count && p >= 0; i++) {
    // As in `entries`: one-byte scalars and short strings stepped over here.
    const v = b[p];
    if (v < 0x80 || v >= 0xe0 || v === 0xc0 || v === 0xc2 || v === 0xc3) p++;
    else if (v >= 0xa0 && v < 0xc0) p += 1 + (v & 0x1f);
    else if (v === 0xd9) p = p + 2 <= n ? p + 2 + b[p + 1] : n + 1;
    else if (v === 0xcb) p += 9;
    else {
      stackAt[depth] = i;
      p = skip(b, p, depth + 1);
      continue;
    }
    if (p > n) return -1;
  }
  return p;
}

function entries(b: Uint8Array, p: number, count: number, depth: number): number {
  if (depth >= MAX_SCAN_DEPTH) return -1;
  const n = limit;
  let candidate = false; // this map is recorded in `candidates`
  for (let i = 0; i < count; i++) {
    // The key: a string, and not "__proto__".
    if (p >= n) return -1;
    const h = b[p];
    let len: number;
    let at: number;
    if (h >= 0xa0 && h < 0xc0) {
      len = h & 0x1f;
      at = p + 1;
    } else if (h === 0xd9 && p + 2 <= n) {
      len = b[p + 1];
      at = p + 2;
    } else if (h === 0xda && p + 3 <= n) {
      len = u16(b, p + 1);
      at = p + 3;
    } else if (h === 0xdb && p + 5 <= n) {
      len = u32(b, p + 1);
      at = p + 5;
    } else return -1;
    if (at + len > n) return -1;
    if (len === 9 && isProto(b, at)) return -1;
    // "__date__", "__time__" (8 bytes), "__datetime__" (12) in a 2-entry map: maybe a marker.
    if (count === 2 && (len === 8 || len === 12) && b[at] === 0x5f && b[at + 1] === 0x5f) {
      if (!candidate) candidates.push(stackAt.slice(0, depth), stackLen.slice(0, depth));
      found |= SCAN_MARKER;
      candidate = true;
    }
    p = at + len;
    // The value: a scalar of one byte or a short string is stepped over here (most values of a
    // record), anything else through `skip`, with the key recorded for its path.
    const v = b[p];
    if (v < 0x80 || v >= 0xe0 || v === 0xc0 || v === 0xc2 || v === 0xc3) p++;
    else if (v >= 0xa0 && v < 0xc0) {
      p += 1 + (v & 0x1f);
      if (p > n) return -1;
    } else if (v === 0xd9) {
      if (p + 2 > n) return -1;
      p += 2 + b[p + 1];
      if (p > n) return -1;
    } else if (v === 0xcb) {
      p += 9;
      if (p > n) return -1;
    } else {
      stackAt[depth] = at;
      stackLen[depth] = len;
      p = skip(b, p, depth + 1);
      if (p < 0) return -1;
    }
  }
  return p;
}

function isProto(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 9; i++) if (b[at + i] !== PROTO[i]) return false;
  return true;
}

function end(n: number, p: number): number {
  return p <= n ? p : -1;
}

function u16(b: Uint8Array, p: number): number {
  return (b[p] << 8) | b[p + 1];
}

function u32(b: Uint8Array, p: number): number {
  return ((b[p] << 24) >>> 0) + ((b[p + 1] << 16) | (b[p + 2] << 8) | b[p + 3]);
}

/**
 * Whether no length in `b` claims more than the input could hold: every array, map, str, bin and
 * ext header declares at most as many elements or bytes as remain (an array element takes at least
 * one byte, a map entry two). Decoders allocate by the declared count (`new Array(n)`) before
 * reading the elements, so a few bytes declaring millions of them cost that much memory unless
 * refused first. Walks the headers once, iteratively (no recursion, nothing allocated); other
 * malformations (truncation inside a header, the reserved byte `0xc1`, trailing bytes) are left to
 * the decoder, which reports them.
 */
export function boundedByInput(b: Uint8Array): boolean {
  const n = b.length;
  let p = 0;
  let pending = 1; // values still to read; each takes at least one of the n - p bytes left
  while (pending > 0 && p < n) {
    pending--;
    const h = b[p++];
    let items = 0; // values the header opens
    let bytes = 0; // payload bytes after the header
    if (h < 0x80 || h >= 0xe0) {
      // positive or negative fixint
    } else if (h < 0x90) items = 2 * (h & 0x0f);
    else if (h < 0xa0) items = h & 0x0f;
    else if (h < 0xc0) bytes = h & 0x1f;
    else {
      const w = HEADER_WIDTH[h - 0xc0];
      if (p + w > n) return true; // truncated header: the decoder's error
      const len = w === 1 ? b[p] : w === 2 ? u16(b, p) : w === 4 ? u32(b, p) : 0;
      p += w;
      switch (h) {
        case 0xc4:
        case 0xc5:
        case 0xc6:
        case 0xd9:
        case 0xda:
        case 0xdb: // bin, str
          bytes = len;
          break;
        case 0xc7:
        case 0xc8:
        case 0xc9: // ext: type byte + data
          bytes = 1 + len;
          break;
        case 0xdc:
        case 0xdd:
          items = len;
          break;
        case 0xde:
        case 0xdf:
          items = 2 * len;
          break;
        default:
          bytes = FIXED_PAYLOAD[h - 0xc0];
      }
    }
    if (bytes > n - p) return false;
    p += bytes;
    pending += items;
    if (pending > n - p) return false;
  }
  return true;
}

/** Width of the length field after headers 0xc0..0xdf (0: none). */
// deno-fmt-ignore
const HEADER_WIDTH = [
  0, 0, 0, 0, 1, 2, 4, 1, 2, 4, 0, 0, 0, 0, 0, 0, // c0..cf
  0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 2, 4, 2, 4, // d0..df
];

/** Payload bytes of the fixed-size types 0xc0..0xdf (ints, floats, fixext with its type byte). */
// deno-fmt-ignore
const FIXED_PAYLOAD = [
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 8, 1, 2, 4, 8, // c0..cf
  1, 2, 4, 8, 2, 3, 5, 9, 17, 0, 0, 0, 0, 0, 0, 0, // d0..df
];
