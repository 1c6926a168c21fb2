/**
 * The standard serializer's fast path: one walk that checks a value and writes its MessagePack, for
 * the values people cache (plain objects, arrays, strings, numbers, booleans, `null`, dates and
 * the time types, `Uint8Array`, `Map`s with ordinary keys). Internal.
 *
 * Hand-written because the general path walks the value twice: the pre-pass (`_std_prepare.ts`,
 * with the path bookkeeping that names where a refusal sits, and a copy of every object holding a
 * date or a large integer) and then msgpackr. This walk writes exactly the bytes msgpackr writes
 * for the pre-pass's output (the same header for each length, integers beyond 32 bits as int 64,
 * every other non-integer as float 64; `tests/serializers/std_differential_test.ts` compares them
 * on random values against a copy of the previous serializer), and notes the same reshaped cases.
 * Anything it does not handle the same way, or anything that would be refused, makes it give up
 * ({@linkcode encodeFast} returns `undefined`) and the caller runs the general path from the start,
 * which builds the error with its path. Figures in `bench/MEASUREMENTS.md`.
 *
 * @module
 */
import { CalendarDate, dateToIso, TimeOfDay } from "./_time.ts";

/** Deepest nesting accepted, as `_std_prepare.ts`. */
const MAX_DEPTH = 512;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
/** Scratch kept between calls up to this size (a larger one is dropped after use). */
const KEEP = 4 << 20;
const INITIAL = 64 << 10;

/** Thrown inside the walk to give up; never escapes {@linkcode encodeFast}. */
const GIVE_UP: unique symbol = Symbol("give up");

let buf: Uint8Array<ArrayBuffer> = new Uint8Array(0); // allocated on first use
let view: DataView = new DataView(buf.buffer);
let pos = 0;
let reshaped = false;
let busy = false;
const utf8 = new TextEncoder();
// deno-lint-ignore no-explicit-any
const isWellFormed: (s: string) => boolean = typeof (String.prototype as any).isWellFormed ===
    "function"
  // deno-lint-ignore no-explicit-any
  ? (s) => (s as any).isWellFormed()
  : (s) => !/\p{Surrogate}/u.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""));

/** The marker keys, as MessagePack strings. */
const DATETIME = utf8Str("__datetime__");
const DATE = utf8Str("__date__");
const TIME = utf8Str("__time__");
const VALUE = utf8Str("value");

function utf8Str(s: string): Uint8Array {
  const b = utf8.encode(s);
  return Uint8Array.of(0xa0 | b.length, ...b);
}

/**
 * The value as the standard serializer writes it, in a buffer of its own, with `reshaped` telling
 * whether decoding gives back something else; `undefined` when the general path must run.
 */
export function encodeFast(
  value: unknown,
): { bytes: Uint8Array<ArrayBuffer>; reshaped: boolean } | undefined {
  if (busy) return undefined; // re-entered from a getter: the general path copes
  busy = true;
  pos = 0;
  reshaped = false;
  try {
    write(value, 0);
    return { bytes: buf.slice(0, pos), reshaped };
  } catch {
    // GIVE_UP, or an exception from a getter, a too-old date...: the general path starts over
    // and gives the same value or the error with its path.
    return undefined;
  } finally {
    busy = false;
    if (buf.length > KEEP) setBuffer(new Uint8Array(0));
  }
}

function setBuffer(b: Uint8Array<ArrayBuffer>): void {
  buf = b;
  view = new DataView(b.buffer);
}

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  const b = new Uint8Array(Math.max(buf.length * 2, pos + n + 1024, INITIAL));
  b.set(buf.subarray(0, pos));
  setBuffer(b);
}

function write(v: unknown, depth: number): void {
  switch (typeof v) {
    case "string":
      return str(v);
    case "number":
      return num(v);
    case "boolean":
      ensure(1);
      buf[pos++] = v ? 0xc3 : 0xc2;
      return;
    case "undefined":
      reshaped = true;
      ensure(1);
      buf[pos++] = 0xc0;
      return;
    case "bigint":
      return big(v);
    case "object":
      if (v === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      return object(v, depth);
    default:
      throw GIVE_UP;
  }
}

function object(v: object, depth: number): void {
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype) {
    // msgpackr takes another route for an object whose `constructor` is not `Object`.
    if ((v as { constructor: unknown }).constructor !== Object) throw GIVE_UP;
    return plain(v as Record<string, unknown>, depth);
  }
  if (proto === Array.prototype) {
    if (!Array.isArray(v) || v.constructor !== Array) throw GIVE_UP;
    return array(v, depth);
  }
  if (proto === null) {
    const o = v as Record<string, unknown>;
    if (o.constructor !== undefined || o.toJSON !== undefined) throw GIVE_UP;
    reshaped = true; // comes back with Object.prototype
    return plain(o, depth);
  }
  if (proto === Uint8Array.prototype) return bin(v as Uint8Array);
  if (proto === Date.prototype) return marker(DATETIME, dateToIso(v as Date, "value"));
  if (proto === CalendarDate.prototype) return marker(DATE, (v as CalendarDate).toString());
  if (proto === TimeOfDay.prototype) {
    if ((v as TimeOfDay).offset === "Z") reshaped = true; // read back as "+00:00"
    return marker(TIME, (v as TimeOfDay).toString());
  }
  if (proto === Map.prototype && (v as { constructor: unknown }).constructor === Map) {
    return map(v as Map<unknown, unknown>, depth);
  }
  throw GIVE_UP; // subclasses, class instances, refusals
}

function header(n: number, fix: number, h16: number, h32: number): void {
  ensure(5);
  if (n < 0x10) buf[pos++] = fix | n;
  else if (n < 0x10000) {
    buf[pos++] = h16;
    buf[pos++] = n >> 8;
    buf[pos++] = n & 0xff;
  } else {
    buf[pos++] = h32;
    view.setUint32(pos, n);
    pos += 4;
  }
}

function plain(o: Record<string, unknown>, depth: number): void {
  if (depth >= MAX_DEPTH) throw GIVE_UP;
  const keys = Object.keys(o);
  const n = keys.length;
  // Shaped like a date/time marker: read back as the date or time it spells.
  if (
    n === 2 && typeof o.value === "string" &&
    (o.__datetime__ === true || o.__date__ === true || o.__time__ === true)
  ) reshaped = true;
  header(n, 0x80, 0xde, 0xdf);
  for (let i = 0; i < n; i++) {
    const k = keys[i];
    str(k);
    write(o[k], depth + 1);
  }
}

function array(a: unknown[], depth: number): void {
  if (depth >= MAX_DEPTH) throw GIVE_UP;
  const n = a.length;
  header(n, 0x90, 0xdc, 0xdd);
  for (let i = 0; i < n; i++) write(a[i], depth + 1);
}

function map(m: Map<unknown, unknown>, depth: number): void {
  if (depth >= MAX_DEPTH) throw GIVE_UP;
  header(m.size, 0x80, 0xde, 0xdf);
  let allStrings = true;
  for (const [k, x] of m) {
    // Keys the pre-pass converts (undefined to null, large integers to bigint) may collide with
    // another key once converted: the general path handles them.
    if (typeof k !== "string") {
      allStrings = false;
      if (k === undefined || (typeof k === "number" && wide(k))) throw GIVE_UP;
    }
    write(k, depth + 1);
    write(x, depth + 1);
  }
  if (allStrings) reshaped = true; // read back as a plain object
}

function marker(key: Uint8Array, text: string): void {
  ensure(2 + key.length + VALUE.length);
  buf[pos++] = 0x82;
  buf.set(key, pos);
  pos += key.length;
  buf[pos++] = 0xc3;
  buf.set(VALUE, pos);
  pos += VALUE.length;
  str(text);
}

function bin(b: Uint8Array): void {
  const n = b.length;
  ensure(n + 5);
  if (n < 0x100) {
    buf[pos++] = 0xc4;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = 0xc5;
    buf[pos++] = n >> 8;
    buf[pos++] = n & 0xff;
  } else {
    buf[pos++] = 0xc6;
    view.setUint32(pos, n);
    pos += 4;
  }
  buf.set(b, pos);
  pos += n;
}

/** A safe integer the pre-pass turns into a bigint (beyond what msgpackr writes as an int). */
function wide(v: number): boolean {
  return (v > 0xffffffff || v < -0x80000000) && Number.isSafeInteger(v);
}

function num(v: number): void {
  ensure(9);
  if (v >>> 0 === v) {
    if (v === 0 && 1 / v < 0) reshaped = true; // -0 is written as the int 0
    if (v < 0x80) buf[pos++] = v;
    else if (v < 0x100) {
      buf[pos++] = 0xcc;
      buf[pos++] = v;
    } else if (v < 0x10000) {
      buf[pos++] = 0xcd;
      buf[pos++] = v >> 8;
      buf[pos++] = v & 0xff;
    } else {
      buf[pos++] = 0xce;
      view.setUint32(pos, v);
      pos += 4;
    }
  } else if (v >> 0 === v) {
    if (v >= -0x20) buf[pos++] = 0x100 + v;
    else if (v >= -0x80) {
      buf[pos++] = 0xd0;
      buf[pos++] = v + 0x100;
    } else if (v >= -0x8000) {
      buf[pos++] = 0xd1;
      view.setInt16(pos, v);
      pos += 2;
    } else {
      buf[pos++] = 0xd2;
      view.setInt32(pos, v);
      pos += 4;
    }
  } else if (wide(v)) {
    // int 64, as msgpackr writes the bigint the pre-pass makes of it
    const hi = Math.floor(v / 0x100000000);
    buf[pos++] = 0xd3;
    view.setInt32(pos, hi);
    view.setUint32(pos + 4, v - hi * 0x100000000);
    pos += 8;
  } else {
    buf[pos++] = 0xcb;
    view.setFloat64(pos, v);
    pos += 8;
  }
}

function big(v: bigint): void {
  if (v < INT64_MIN || v > UINT64_MAX) throw GIVE_UP;
  if (v <= MAX_SAFE && v >= MIN_SAFE) reshaped = true; // comes back as a number
  ensure(9);
  if (v <= INT64_MAX) {
    buf[pos++] = 0xd3;
    view.setBigInt64(pos, v);
  } else {
    buf[pos++] = 0xcf;
    view.setBigUint64(pos, v);
  }
  pos += 8;
}

/** A string as str 8/16/32 (the shortest header for its UTF-8 length); lone surrogates give up. */
function str(s: string): void {
  const len = s.length;
  if (len < 0x40) {
    ensure(len * 3 + 2);
    const head = len < 0x20 ? 1 : 2;
    let p = pos + head;
    for (let i = 0; i < len; i++) {
      let c = s.charCodeAt(i);
      if (c < 0x80) buf[p++] = c;
      else if (c < 0x800) {
        buf[p++] = (c >> 6) | 0xc0;
        buf[p++] = (c & 0x3f) | 0x80;
      } else if ((c & 0xf800) === 0xd800) {
        const c2 = s.charCodeAt(i + 1);
        if ((c & 0xfc00) !== 0xd800 || (c2 & 0xfc00) !== 0xdc00) throw GIVE_UP;
        c = 0x10000 + ((c & 0x03ff) << 10) + (c2 & 0x03ff);
        i++;
        buf[p++] = (c >> 18) | 0xf0;
        buf[p++] = ((c >> 12) & 0x3f) | 0x80;
        buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        buf[p++] = (c & 0x3f) | 0x80;
      } else {
        buf[p++] = (c >> 12) | 0xe0;
        buf[p++] = ((c >> 6) & 0x3f) | 0x80;
        buf[p++] = (c & 0x3f) | 0x80;
      }
    }
    const n = p - pos - head;
    if (n < 0x20) buf[pos] = 0xa0 | n; // only when head is 1: 32+ characters take 32+ bytes
    else {
      if (head === 1) buf.copyWithin(pos + 2, pos + 1, p);
      buf[pos] = 0xd9;
      buf[pos + 1] = n;
    }
    pos += 2 + n - (n < 0x20 ? 1 : 0);
    return;
  }
  if (!isWellFormed(s)) throw GIVE_UP;
  ensure(len * 3 + 5);
  const head = len < 0x100 ? 2 : len < 0x10000 ? 3 : 5;
  const n = utf8.encodeInto(s, buf.subarray(pos + head)).written;
  const need = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  if (need !== head) buf.copyWithin(pos + need, pos + head, pos + head + n);
  if (need === 2) {
    buf[pos] = 0xd9;
    buf[pos + 1] = n;
  } else if (need === 3) {
    buf[pos] = 0xda;
    buf[pos + 1] = n >> 8;
    buf[pos + 2] = n & 0xff;
  } else {
    buf[pos] = 0xdb;
    view.setUint32(pos + 1, n);
  }
  pos += need + n;
}
