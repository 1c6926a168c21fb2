/**
 * The canonical MessagePack encoder behind cache keys and interop values (internal).
 *
 * Hand-written on purpose: no MessagePack library offers all of what the cachekit protocol needs at
 * once: a per-value float64 marker (JS numbers cannot say `3` from `3.0`), map keys sorted by
 * Unicode code point at every level (not JavaScript's UTF-16 order), Python's choice between uint
 * and int formats, float64 only (never float32), rejection of anything outside the data model with
 * the argument path in the message, and no intermediate normalized copy of the arguments. Decoding
 * is left to `@msgpack/msgpack`.
 *
 * Three profiles share the encoder:
 * - `STD`: the Python SDK's `msgpack.packb(normalize(x), use_bin_type=True)` for `cacheKey`.
 * - `ARGS`: interop/v1 arguments (integral floats collapse to ints, NaN/Infinity refused, sets
 *   sorted by canonical bytes, dates as float seconds).
 * - `VALUE`: interop/v1 values (floats stay float64, dates as `__datetime__` sentinel maps).
 *
 * The encoder writes into one module-level growable buffer that is reused across calls; callers
 * must consume (hash or copy) the bytes before the next encode.
 *
 * Containers (arrays, plain objects, `Map`s, `Set`s) nest at most {@linkcode MAX_DEPTH} (256)
 * levels deep: deeper values, and cyclic ones (`a.self = a`), are refused with the path of the
 * offending value instead of exhausting the call stack. The check costs one counter on the way
 * down; the objects on the current path are only compared when the limit is hit, to tell a cycle
 * from a deep value.
 *
 * The data model and its refusals are in `_canonical_model.ts`, the Python orderings and date
 * form in `_canonical_python.ts`; this file holds the output buffer, the writers and the walk.
 *
 * @module
 */
import {
  ARGS,
  describe,
  EncodeRefusal,
  Float64,
  MAX_DEPTH,
  type Profile,
  refuse,
  refuseType,
  STD,
} from "./_canonical_model.ts";
import {
  compareBytes,
  compareCodePoints,
  isWellFormed,
  pythonIsoformat,
} from "./_canonical_python.ts";

// The profiles and limits callers pass to and expect from the encoder.
export { ARGS, definedLength, MAX_DEPTH, type Profile, STD, VALUE } from "./_canonical_model.ts";

// ---------------------------------------------------------------------------------------------
// The shared output buffer.

let buf = new Uint8Array(1024);
let view = new DataView(buf.buffer);
let pos = 0;
let busy = false;
/** Containers open on the current path, outermost first (`path[0..depth)`). */
let path: object[] = [];
let depth = 0;

function grow(need: number): void {
  let size = buf.length * 2;
  while (size < pos + need) size *= 2;
  const next = new Uint8Array(size);
  next.set(buf.subarray(0, pos));
  buf = next;
  view = new DataView(buf.buffer);
}

function ensure(n: number): void {
  if (pos + n > buf.length) grow(n);
}

/** The bytes written so far (a view into the shared buffer: consume before the next encode). */
export function written(): Uint8Array {
  return buf.subarray(0, pos);
}

/**
 * Run `fn` with a fresh encoder state. Re-entrant (a getter that builds a key while another key is
 * being encoded gets its own buffer). Returns what `fn` returns; the encoded bytes are available
 * through {@linkcode written} inside `fn` only.
 */
export function withEncoder<T>(fn: () => T): T {
  if (busy) {
    const saved = { buf, view, pos, path, depth };
    buf = new Uint8Array(256);
    view = new DataView(buf.buffer);
    pos = 0;
    path = [];
    depth = 0;
    try {
      return fn();
    } finally {
      ({ buf, view, pos, path, depth } = saved);
    }
  }
  busy = true;
  pos = 0;
  depth = 0;
  try {
    return fn();
  } finally {
    busy = false;
    path.length = 0; // do not keep the arguments alive
    if (buf.length > 1 << 20) {
      // Do not keep a huge buffer alive after one large key.
      buf = new Uint8Array(1024);
      view = new DataView(buf.buffer);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Primitive writers.

/** Write a one-byte header. */
export function writeByte(b: number): void {
  ensure(1);
  buf[pos++] = b;
}

/** Array header for `n` elements (fixarray / array16 / array32). */
export function writeArrayHeader(n: number): void {
  ensure(5);
  if (n < 16) buf[pos++] = 0x90 | n;
  else if (n < 0x10000) {
    buf[pos] = 0xdc;
    buf[pos + 1] = n >>> 8;
    buf[pos + 2] = n & 0xff;
    pos += 3;
  } else {
    buf[pos] = 0xdd;
    view.setUint32(pos + 1, n);
    pos += 5;
  }
}

/** Map header for `n` pairs (fixmap / map16 / map32). */
export function writeMapHeader(n: number): void {
  ensure(5);
  if (n < 16) buf[pos++] = 0x80 | n;
  else if (n < 0x10000) {
    buf[pos] = 0xde;
    buf[pos + 1] = n >>> 8;
    buf[pos + 2] = n & 0xff;
    pos += 3;
  } else {
    buf[pos] = 0xdf;
    view.setUint32(pos + 1, n);
    pos += 5;
  }
}

/**
 * Start a map of at most `n` pairs whose values may turn out to be left out (`undefined`); returns
 * the header's position for {@linkcode endMap}. Each value is read once, as getters may not return
 * the same thing twice.
 */
export function beginMap(n: number): number {
  const start = pos;
  writeMapHeader(n);
  return start;
}

/** Finish a map begun with {@linkcode beginMap}: `count` of its `n` pairs were written. */
export function endMap(start: number, n: number, count: number): void {
  if (count === n) return;
  const body = buf.slice(start + (n < 16 ? 1 : n < 0x10000 ? 3 : 5), pos);
  pos = start;
  writeMapHeader(count); // no wider than the header it replaces
  buf.set(body, pos);
  pos += body.length;
}

const TWO32 = 4294967296;

/**
 * An integral number in [-2^63, 2^64) in its shortest form, with msgpack-python's choice of
 * formats: non-negative values use positive fixint / uint8..uint64, negative ones negative fixint /
 * int8..int64. `-0` is written as `0`.
 */
export function writeInt(v: number): void {
  ensure(9);
  if (v >= 0) {
    if (v < 0x80) buf[pos++] = v;
    else if (v < 0x100) {
      buf[pos] = 0xcc;
      buf[pos + 1] = v;
      pos += 2;
    } else if (v < 0x10000) {
      buf[pos] = 0xcd;
      buf[pos + 1] = v >>> 8;
      buf[pos + 2] = v & 0xff;
      pos += 3;
    } else if (v < TWO32) {
      buf[pos] = 0xce;
      view.setUint32(pos + 1, v);
      pos += 5;
    } else {
      buf[pos] = 0xcf;
      if (v <= Number.MAX_SAFE_INTEGER) {
        view.setUint32(pos + 1, Math.floor(v / TWO32));
        view.setUint32(pos + 5, v >>> 0);
      } else view.setBigUint64(pos + 1, BigInt(v));
      pos += 9;
    }
  } else {
    if (v >= -32) buf[pos++] = v & 0xff;
    else if (v >= -0x80) {
      buf[pos] = 0xd0;
      buf[pos + 1] = v & 0xff;
      pos += 2;
    } else if (v >= -0x8000) {
      buf[pos] = 0xd1;
      view.setInt16(pos + 1, v);
      pos += 3;
    } else if (v >= -0x80000000) {
      buf[pos] = 0xd2;
      view.setInt32(pos + 1, v);
      pos += 5;
    } else {
      buf[pos] = 0xd3;
      if (v >= Number.MIN_SAFE_INTEGER) {
        const hi = Math.floor(v / TWO32);
        view.setInt32(pos + 1, hi);
        view.setUint32(pos + 5, v - hi * TWO32);
      } else view.setBigInt64(pos + 1, BigInt(v));
      pos += 9;
    }
  }
}

const U64_MAX = 0xffffffffffffffffn;
const I64_MIN = -0x8000000000000000n;

/** A bigint in [-2^63, 2^64-1], shortest form; `false` when out of range. */
export function writeBigInt(v: bigint): boolean {
  if (v > U64_MAX || v < I64_MIN) return false;
  if (v >= -0x80000000n && v < 0x100000000n) writeInt(Number(v));
  else {
    ensure(9);
    if (v > 0n) {
      buf[pos] = 0xcf;
      view.setBigUint64(pos + 1, v);
    } else {
      buf[pos] = 0xd3;
      view.setBigInt64(pos + 1, v);
    }
    pos += 9;
  }
  return true;
}

/** float64 (`0xcb`), NaN always as Python's quiet NaN `7ff8000000000000`. */
export function writeFloat64(v: number): void {
  ensure(9);
  buf[pos] = 0xcb;
  if (v !== v) {
    buf[pos + 1] = 0x7f;
    buf[pos + 2] = 0xf8;
    buf.fill(0, pos + 3, pos + 9);
  } else view.setFloat64(pos + 1, v);
  pos += 9;
}

/** `bin8` / `bin16` / `bin32` (never the str family). */
export function writeBin(b: Uint8Array): void {
  const n = b.length;
  ensure(5 + n);
  if (n < 0x100) {
    buf[pos] = 0xc4;
    buf[pos + 1] = n;
    pos += 2;
  } else if (n < 0x10000) {
    buf[pos] = 0xc5;
    buf[pos + 1] = n >>> 8;
    buf[pos + 2] = n & 0xff;
    pos += 3;
  } else {
    buf[pos] = 0xc6;
    view.setUint32(pos + 1, n);
    pos += 5;
  }
  buf.set(b, pos);
  pos += n;
}

function strHeaderSize(byteLen: number): number {
  return byteLen < 32 ? 1 : byteLen < 0x100 ? 2 : byteLen < 0x10000 ? 3 : 5;
}

const textEncoder = new TextEncoder();
const LONG_STRING = 64;

/**
 * A string as `fixstr` / `str8` / `str16` / `str32` of its UTF-8 bytes (msgpack-python with
 * `use_bin_type=True`). Returns `false` for a string that is not well-formed UTF-16 (a lone
 * surrogate), which Python cannot encode.
 */
export function writeStr(s: string): boolean {
  const n = s.length;
  // UTF-8 needs at least n bytes, so the header is at least strHeaderSize(n) long; guess that and
  // move the bytes in the rare case non-ASCII text needs a wider header.
  const guess = strHeaderSize(n);
  ensure(guess + n * 3 + 4);
  const start = pos + guess;
  let p = start;
  if (n <= LONG_STRING) {
    for (let i = 0; i < n; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) buf[p++] = c;
      else if (c < 0x800) {
        buf[p++] = 0xc0 | (c >> 6);
        buf[p++] = 0x80 | (c & 0x3f);
      } else if (c < 0xd800 || c > 0xdfff) {
        buf[p++] = 0xe0 | (c >> 12);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      } else {
        const d = i + 1 < n ? s.charCodeAt(i + 1) : 0;
        if (c > 0xdbff || d < 0xdc00 || d > 0xdfff) return false;
        i++;
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        buf[p++] = 0xf0 | (c >> 18);
        buf[p++] = 0x80 | ((c >> 12) & 0x3f);
        buf[p++] = 0x80 | ((c >> 6) & 0x3f);
        buf[p++] = 0x80 | (c & 0x3f);
      }
    }
  } else {
    if (!isWellFormed(s)) return false;
    p += textEncoder.encodeInto(s, buf.subarray(start)).written;
  }
  const len = p - start;
  const hs = strHeaderSize(len);
  if (hs !== guess) buf.copyWithin(pos + hs, start, p);
  if (hs === 1) buf[pos] = 0xa0 | len;
  else if (hs === 2) {
    buf[pos] = 0xd9;
    buf[pos + 1] = len;
  } else if (hs === 3) {
    buf[pos] = 0xda;
    buf[pos + 1] = len >>> 8;
    buf[pos + 2] = len & 0xff;
  } else {
    buf[pos] = 0xdb;
    view.setUint32(pos + 1, len);
  }
  pos += hs + len;
  return true;
}

// ---------------------------------------------------------------------------------------------
// The value encoder.

const OBJECT_PROTO = Object.prototype;
const F64_UPPER_EXCL = 18446744073709551616; // 2^64
const F64_LOWER_INCL = -9223372036854775808; // -2^63

/** Encode `v` with `profile`. Throws {@linkcode EncodeRefusal} for values outside the model. */
export function encodeValue(v: unknown, profile: Profile): void {
  switch (typeof v) {
    case "number":
      if (profile === STD) {
        if (Number.isSafeInteger(v)) writeInt(v);
        else writeFloat64(v);
      } else encodeInteropNumber(v);
      return;
    case "string":
      if (!writeStr(v)) refuse("the string holds a lone surrogate (not well-formed Unicode)");
      return;
    case "boolean":
      ensure(1);
      buf[pos++] = v ? 0xc3 : 0xc2;
      return;
    case "bigint":
      if (!writeBigInt(v)) refuse(`the bigint ${v} is outside the 64-bit range [-2^63, 2^64-1]`);
      return;
    case "object":
      if (v === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      encodeObject(v, profile);
      return;
    default:
      refuseType(v, profile);
  }
}

function encodeInteropNumber(v: number): void {
  if (v !== v) refuse("NaN is not allowed in interop mode");
  if (v === Infinity || v === -Infinity) refuse("Infinity is not allowed in interop mode");
  // A JS number without a fractional part is an int in both profiles (it cannot be told from one).
  if (Number.isInteger(v) && v >= F64_LOWER_INCL && v < F64_UPPER_EXCL) writeInt(v);
  else writeFloat64(v);
}

/** Open container `v` on the current path; refuses a cycle or nesting beyond {@linkcode MAX_DEPTH}. */
function enter(v: object): void {
  if (depth >= MAX_DEPTH) refuseDeep(v);
  path[depth++] = v;
}

function refuseDeep(v: object): never {
  path[depth] = v;
  // The shallowest repetition on the path is the cycle to report (its first lap).
  for (let k = 1; k <= depth; k++) {
    const j = path.lastIndexOf(path[k], k - 1);
    if (j >= 0) {
      const e = new EncodeRefusal(
        "a reference cycle has no cache-key form; break the cycle (or use the key option)",
      );
      // Unwinding adds the segments below path[k] too; drop them again (see `trim`).
      e.back = k - j;
      e.trim = depth - k;
      throw e;
    }
  }
  throw new EncodeRefusal(
    `containers nest deeper than ${MAX_DEPTH} levels (the limit); flatten the value (or use ` +
      "the key option)",
  );
}

function encodeObject(v: object, profile: Profile): void {
  if (Array.isArray(v)) {
    enter(v);
    const n = v.length;
    writeArrayHeader(n);
    for (let i = 0; i < n; i++) {
      const item = v[i];
      try {
        if (item === undefined) refuseType(undefined, profile);
        encodeValue(item, profile);
      } catch (e) {
        if (e instanceof EncodeRefusal) e.segments.push(i);
        throw e;
      }
    }
    depth--;
    return;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === OBJECT_PROTO || proto === null) {
    enter(v);
    encodeRecord(v as Record<string, unknown>, profile);
    depth--;
    return;
  }
  if (v instanceof Float64) {
    const f = v.value;
    if (profile === STD) writeFloat64(f);
    else if (profile === ARGS) encodeInteropNumber(f); // integral floats collapse to ints
    else {
      if (f !== f || f === Infinity || f === -Infinity) {
        refuse("NaN and Infinity are not allowed in interop mode");
      }
      writeFloat64(f);
    }
    return;
  }
  if (v instanceof Uint8Array) {
    writeBin(v);
    return;
  }
  if (v instanceof Date) {
    encodeDate(v, profile);
    return;
  }
  if (v instanceof Map) {
    enter(v);
    encodeMap(v, profile);
    depth--;
    return;
  }
  if (v instanceof Set && profile === ARGS) {
    enter(v);
    encodeSet(v);
    depth--;
    return;
  }
  refuseType(v, profile);
}

/**
 * A plain object as a map, keys in code-point order. Properties holding `undefined` are left out,
 * as `JSON.stringify` does: `{ a: 1, b: undefined }` encodes as `{ a: 1 }`.
 */
function encodeRecord(o: Record<string, unknown>, profile: Profile): void {
  const keys = Object.keys(o);
  const n = keys.length;
  if (n > 1) keys.sort(compareCodePoints);
  const start = beginMap(n);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    const item = o[k];
    if (item === undefined) continue;
    count++;
    try {
      if (!writeStr(k)) refuse("the map key holds a lone surrogate (not well-formed Unicode)");
      encodeValue(item, profile);
    } catch (e) {
      if (e instanceof EncodeRefusal) e.segments.push(k);
      throw e;
    }
  }
  endMap(start, n, count);
}

function encodeMap(m: Map<unknown, unknown>, profile: Profile): void {
  const keys: string[] = [];
  let i = 0;
  for (const k of m.keys()) {
    if (typeof k !== "string") {
      const e = new EncodeRefusal(
        `Map keys must be strings (found ${typeof k === "object" ? describe(k) : typeof k})`,
      );
      e.segments.push(`<key ${i}>`);
      throw e;
    }
    keys.push(k);
    i++;
  }
  if (keys.length > 1) keys.sort(compareCodePoints);
  writeMapHeader(keys.length);
  for (const k of keys) {
    try {
      if (!writeStr(k)) refuse("the map key holds a lone surrogate (not well-formed Unicode)");
      const item = m.get(k);
      if (item === undefined) refuseType(undefined, profile);
      encodeValue(item, profile);
    } catch (e) {
      if (e instanceof EncodeRefusal) e.segments.push(k);
      throw e;
    }
  }
}

function encodeSet(s: Set<unknown>): void {
  // Encode each element after the current position, copy the encodings out, sort them by bytes,
  // drop duplicates, then write them back after the array header.
  const start = pos;
  const parts: Uint8Array[] = [];
  let i = 0;
  for (const item of s) {
    const from = pos;
    try {
      if (item === undefined) refuseType(undefined, ARGS);
      encodeValue(item, ARGS);
    } catch (e) {
      if (e instanceof EncodeRefusal) e.segments.push(i);
      throw e;
    }
    parts.push(buf.slice(from, pos));
    pos = from;
    i++;
  }
  pos = start;
  parts.sort(compareBytes);
  let unique = 0;
  for (let j = 0; j < parts.length; j++) {
    if (j === 0 || compareBytes(parts[j], parts[unique - 1]) !== 0) parts[unique++] = parts[j];
  }
  writeArrayHeader(unique);
  for (let j = 0; j < unique; j++) {
    const p = parts[j];
    ensure(p.length);
    buf.set(p, pos);
    pos += p.length;
  }
}

function encodeDate(d: Date, profile: Profile): void {
  const t = d.getTime();
  if (t !== t) refuse("the Date is invalid");
  if (profile === ARGS) {
    // Integer microseconds / 10^6 in one correctly rounded division equals ms / 1000.
    encodeInteropNumber(t / 1000);
    return;
  }
  const iso = pythonIsoformat(d);
  if (iso === null) refuse("the Date is outside the years 1..9999 that Python's datetime can hold");
  if (profile === STD) writeStr(iso);
  else {
    // The wire-format sentinel map, keys in code-point order.
    writeMapHeader(2);
    writeStr("__datetime__");
    writeByte(0xc3);
    writeStr("value");
    writeStr(iso);
  }
}
