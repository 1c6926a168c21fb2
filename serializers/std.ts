/**
 * The standard serializer: MessagePack, readable and writable by the Python and Rust cachekit SDKs.
 *
 * Value mapping (JavaScript ⇄ MessagePack ⇄ Python):
 * - `null` and `undefined` ⇄ nil ⇄ `None` (`undefined`, also an array hole, comes back as `null`;
 *   the cache keeps a function's top-level `undefined` apart and returns `undefined`);
 * - booleans, strings (well-formed Unicode only) ⇄ bool, str;
 * - numbers: safe integers ⇄ int (shortest form; `-0` is the int 0 and comes back as `0`); other
 *   numbers (`NaN`, `±Infinity` too) ⇄ float64. Decoded integers outside the safe range come back
 *   as `bigint`; `bigint` in the 64-bit range encodes as int (a safe one comes back as a number);
 * - `Uint8Array` ⇄ bin ⇄ `bytes` (a subclass such as Node's `Buffer` comes back as `Uint8Array`);
 * - arrays ⇄ array ⇄ `list` (tuples too);
 * - plain objects (null-prototype ones too) and `Map` ⇄ map ⇄ `dict`. A decoded map whose keys are
 *   all strings becomes a plain object (a `"__proto__"` key becomes an own property, never the
 *   prototype): a `Map` with string keys, or an empty one, comes back as a plain object; any other
 *   map becomes a `Map`. Only own enumerable string-keyed properties are written (symbol keys and
 *   an array's named properties are not data here);
 * - `Date` ⇄ `{"__datetime__": true, "value": "2025-11-14T10:30:00+00:00"}` ⇄ aware `datetime`
 *   (Python's `isoformat()`; a naive datetime from Python is read as UTC, never local time;
 *   microseconds are truncated to JavaScript's milliseconds);
 * - {@linkcode CalendarDate} ⇄ `{"__date__": true, "value": "YYYY-MM-DD"}` ⇄ `date`;
 * - {@linkcode TimeOfDay} ⇄ `{"__time__": true, "value": "HH:MM:SS[.ffffff][±HH:MM]"}` ⇄ `time`
 *   (an offset written `"Z"` comes back as `"+00:00"`). An object of that shape is read back as the
 *   date or time it spells, as Python reads it.
 *
 * Where decoding gives back something else than the value written (the cases above), `serialize`
 * notes it on the bytes it returns: the cache then answers a miss with the decoded value, what
 * every later hit returns, and answers any other miss with the function's own value.
 *
 * Anything else (functions, symbols, `Set`, class instances, typed arrays other than `Uint8Array`,
 * invalid dates, cycles or nesting deeper than 512, bigints beyond 64 bits) throws {@linkcode SerializationError} naming where it
 * sits (e.g. `value.user.tags`). Undecodable bytes also throw `SerializationError`.
 *
 * Built on `msgpackr` (chosen over `@msgpack/msgpack` by measurement and correctness, see
 * `bench/serializers_bench.ts`: `@msgpack/msgpack` 3.x encodes a JS `Map` as an empty map and cannot
 * decode a non-string-keyed map into a `Map`). `msgpackr` is used in its standard mode (no records,
 * no extensions); a light pre-pass turns dates into markers, integers beyond 32 bits into `bigint` so
 * they stay MessagePack ints (msgpackr would write them as float64) and refuses what Python could not
 * read; a post-pass turns maps into objects or `Map`s and markers into dates. When a scan of the
 * bytes finds only string keys (`_msgpack_scan.ts`), maps are decoded straight to objects instead,
 * which takes a fifth less time on a 10 KB document.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CalendarDate, deserialize, serialize } from "@cachekit/core/serializers";
 *
 * const bytes = serialize({ id: 42, born: new CalendarDate(1990, 5, 17), at: new Date(0) });
 * const back = deserialize(bytes) as { id: number; born: CalendarDate; at: Date };
 * assert.equal(back.id, 42);
 * assert.equal(back.born.toString(), "1990-05-17");
 * assert.equal(back.at.toISOString(), "1970-01-01T00:00:00.000Z");
 * ```
 *
 * @module
 */
import { Packr, Unpackr } from "msgpackr";
import { SerializationError } from "../errors.ts";
import type { Serializer } from "./types.ts";
import { boundedByInput, objectSafe } from "./_msgpack_scan.ts";
import { markReshaped } from "./_reshaped.ts";

// ---------------------------------------------------------------------------------------------
// Date-only and time-only values
// ---------------------------------------------------------------------------------------------

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function daysIn(year: number, month: number): number {
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}
function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}
function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${name} must be an integer in ${min}..${max}, got ${v}`);
  }
}

/**
 * A calendar date without a time or time zone (Python's `datetime.date`). Immutable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CalendarDate } from "@cachekit/core/serializers";
 *
 * const d = CalendarDate.parse("2024-02-29");
 * assert.equal(d.year, 2024);
 * assert.equal(d.month, 2);
 * assert.equal(d.day, 29);
 * assert.equal(d.toString(), "2024-02-29");
 * ```
 */
export class CalendarDate {
  /** Year, 1..9999 (Python's range). */
  readonly year: number;
  /** Month, 1..12. */
  readonly month: number;
  /** Day of the month, 1..31. */
  readonly day: number;

  /**
   * Create a date; throws for a day that does not exist (e.g. 2023-02-29).
   *
   * @param year 1..9999
   * @param month 1..12
   * @param day 1..(days in that month)
   * @throws {RangeError} for an invalid date.
   */
  constructor(year: number, month: number, day: number) {
    checkInt("year", year, 1, 9999);
    checkInt("month", month, 1, 12);
    checkInt("day", day, 1, daysIn(year, month));
    this.year = year;
    this.month = month;
    this.day = day;
    Object.freeze(this);
  }

  /**
   * Parse `YYYY-MM-DD` (Python's `date.isoformat()`).
   *
   * @throws {RangeError} for any other text or an invalid date.
   */
  static parse(text: string): CalendarDate {
    const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    if (!m) throw new RangeError(`not a YYYY-MM-DD date: ${JSON.stringify(text)}`);
    return new CalendarDate(+m[1], +m[2], +m[3]);
  }

  /** `YYYY-MM-DD`. */
  toString(): string {
    return `${pad(this.year, 4)}-${pad(this.month, 2)}-${pad(this.day, 2)}`;
  }

  /** Same as {@linkcode CalendarDate.toString}, so `JSON.stringify` writes the ISO text. */
  toJSON(): string {
    return this.toString();
  }

  /** Whether `other` is the same date. */
  equals(other: CalendarDate): boolean {
    return other instanceof CalendarDate && other.year === this.year &&
      other.month === this.month && other.day === this.day;
  }
}

/**
 * A wall-clock time of day (Python's `datetime.time`), with microseconds and an optional UTC
 * offset kept as written (`"+02:00"`). Immutable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TimeOfDay } from "@cachekit/core/serializers";
 *
 * const t = TimeOfDay.parse("10:30:00.250000");
 * assert.equal(t.hour, 10);
 * assert.equal(t.minute, 30);
 * assert.equal(t.second, 0);
 * assert.equal(t.microsecond, 250000);
 * assert.equal(t.toString(), "10:30:00.250000");
 * ```
 */
export class TimeOfDay {
  /** Hour, 0..23. */
  readonly hour: number;
  /** Minute, 0..59. */
  readonly minute: number;
  /** Second, 0..59. */
  readonly second: number;
  /** Microsecond, 0..999999. */
  readonly microsecond: number;
  /** UTC offset as `±HH:MM` (or `±HH:MM:SS[.ffffff]`), or `null` for a naive time. */
  readonly offset: string | null;

  /**
   * Create a time of day, optionally with a UTC offset.
   *
   * @param hour 0..23
   * @param minute 0..59
   * @param second 0..59
   * @param microsecond 0..999999
   * @param offset `±HH:MM[:SS[.ffffff]]` or `null`
   * @throws {RangeError} for an out-of-range field or a malformed offset.
   */
  constructor(
    hour: number,
    minute: number = 0,
    second: number = 0,
    microsecond: number = 0,
    offset: string | null = null,
  ) {
    checkInt("hour", hour, 0, 23);
    checkInt("minute", minute, 0, 59);
    checkInt("second", second, 0, 59);
    checkInt("microsecond", microsecond, 0, 999_999);
    if (offset !== null) parseOffset(offset);
    this.hour = hour;
    this.minute = minute;
    this.second = second;
    this.microsecond = microsecond;
    this.offset = offset;
    Object.freeze(this);
  }

  /**
   * Parse `HH:MM[:SS[.ffffff]][±HH:MM | Z]` (Python's `time.isoformat()`; `Z` is kept as `+00:00`).
   *
   * @throws {RangeError} for any other text.
   */
  static parse(text: string): TimeOfDay {
    const m =
      /^(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$/
        .exec(text);
    if (!m) throw new RangeError(`not an HH:MM:SS time: ${JSON.stringify(text)}`);
    const us = m[4] ? +m[4].padEnd(6, "0") : 0;
    const offset = m[5] === undefined ? null : m[5] === "Z" ? "+00:00" : m[5];
    return new TimeOfDay(+m[1], +m[2], m[3] ? +m[3] : 0, us, offset);
  }

  /** `HH:MM:SS`, then `.ffffff` when microseconds are non-zero, then the offset (as Python). */
  toString(): string {
    const base = `${pad(this.hour, 2)}:${pad(this.minute, 2)}:${pad(this.second, 2)}`;
    const frac = this.microsecond ? `.${pad(this.microsecond, 6)}` : "";
    return base + frac + (this.offset ?? "");
  }

  /** Same as {@linkcode TimeOfDay.toString}. */
  toJSON(): string {
    return this.toString();
  }

  /** Whether `other` is the same time with the same offset. */
  equals(other: TimeOfDay): boolean {
    return other instanceof TimeOfDay && other.toString() === this.toString();
  }
}

/** Offset text to milliseconds (sub-millisecond parts truncated). */
function parseOffset(text: string): number {
  if (text === "Z") return 0;
  const m = /^([+-])(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$/.exec(text);
  if (!m) throw new RangeError(`not a UTC offset: ${JSON.stringify(text)}`);
  const h = +m[2], min = +m[3], s = m[4] ? +m[4] : 0;
  const us = m[5] ? +m[5].padEnd(6, "0") : 0;
  if (min > 59 || s > 59) throw new RangeError(`not a UTC offset: ${JSON.stringify(text)}`);
  const ms = ((h * 60 + min) * 60 + s) * 1000 + Math.floor(us / 1000);
  if (ms >= 86_400_000) throw new RangeError(`UTC offset out of range: ${JSON.stringify(text)}`);
  return m[1] === "-" ? -ms : ms;
}

// ---------------------------------------------------------------------------------------------
// Datetime text
// ---------------------------------------------------------------------------------------------

/** `Date` → Python `datetime.isoformat()` of the aware UTC datetime. */
function dateToIso(d: Date, where: string): string {
  const t = d.getTime();
  if (Number.isNaN(t)) throw new SerializationError(`Cannot serialize ${where}: invalid Date`);
  const y = d.getUTCFullYear();
  if (y < 1 || y > 9999) {
    throw new SerializationError(
      `Cannot serialize ${where}: year ${y} is outside Python's datetime range 1..9999`,
    );
  }
  const ms = d.getUTCMilliseconds();
  return `${pad(y, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T` +
    `${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}` +
    (ms ? `.${pad(ms, 3)}000` : "") + "+00:00";
}

const DATETIME_RE =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?$/;

/** Python `datetime.isoformat()` text → `Date`. No offset (naive) means UTC. */
function isoToDate(text: string): Date {
  const m = DATETIME_RE.exec(text);
  if (!m) throw new RangeError(`not an ISO-8601 datetime: ${JSON.stringify(text)}`);
  const year = +m[1], month = +m[2], day = +m[3];
  const hour = +m[4], minute = +m[5], second = m[6] ? +m[6] : 0;
  const ms = m[7] ? Math.floor(+m[7].padEnd(6, "0") / 1000) : 0;
  checkInt("year", year, 1, 9999);
  checkInt("month", month, 1, 12);
  checkInt("day", day, 1, daysIn(year, month));
  checkInt("hour", hour, 0, 23);
  checkInt("minute", minute, 0, 59);
  checkInt("second", second, 0, 59);
  const offset = m[8] === undefined ? 0 : parseOffset(m[8]);
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day); // setUTCFullYear keeps years 1..99 as written
  d.setUTCHours(hour, minute, second, ms);
  return new Date(d.getTime() - offset);
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

const packr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  variableMapSize: true,
  useFloat32: 0,
});
const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false,
  // 64-bit ints as bigint; `finish` turns the safe ones into numbers (msgpackr's "auto" keeps ±2^53
  // as numbers, outside the safe range, which would then be written back as float64).
  int64AsType: "bigint",
  copyBuffers: true,
});
/** The same, with maps as plain objects: used when `objectSafe` vouches for the bytes. */
const objectUnpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: true,
  int64AsType: "bigint",
  copyBuffers: true,
});

/** Deepest nesting accepted (Python's msgpack refuses deeper structures too). */
const MAX_DEPTH = 512;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
// deno-lint-ignore no-explicit-any
const isWellFormed: (s: string) => boolean = typeof (String.prototype as any).isWellFormed ===
    "function"
  // deno-lint-ignore no-explicit-any
  ? (s) => (s as any).isWellFormed()
  : (s) => !/\p{Surrogate}/u.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""));

class Prep {
  readonly path: (string | number)[] = [];
  /** Set when decoding will not give back the value itself (see `_reshaped.ts`). */
  reshaped = false;

  where(): string {
    let s = "value";
    for (const k of this.path) {
      s += typeof k === "number"
        ? `[${k}]`
        : /^[A-Za-z_$][\w$]*$/.test(k)
        ? `.${k}`
        : `[${JSON.stringify(k)}]`;
    }
    return s;
  }

  fail(reason: string): never {
    throw new SerializationError(`Cannot serialize ${this.where()}: ${reason}`);
  }

  value(v: unknown): unknown {
    switch (typeof v) {
      case "string":
        if (v.length > 0 && !isWellFormed(v)) {
          this.fail("string contains a lone UTF-16 surrogate (not valid Unicode)");
        }
        return v;
      case "number":
        // msgpackr writes integers beyond 32 bits as float64; bigint keeps them MessagePack ints.
        if ((v > 0xffffffff || v < -0x80000000) && Number.isSafeInteger(v)) return BigInt(v);
        if (v === 0 && 1 / v < 0) this.reshaped = true; // -0 is written as the int 0
        return v;
      case "boolean":
        return v;
      case "undefined":
        this.reshaped = true;
        return null;
      case "bigint":
        if (v < INT64_MIN || v > UINT64_MAX) {
          this.fail(`bigint ${v} is outside the 64-bit integer range MessagePack can hold`);
        }
        // A safe integer comes back as a number.
        if (v <= MAX_SAFE && v >= MIN_SAFE) this.reshaped = true;
        return v;
      case "object":
        return v === null ? null : this.object(v);
      default:
        this.fail(`a ${typeof v} cannot be serialized`);
    }
  }

  object(v: object): unknown {
    if (Array.isArray(v)) return this.array(v);
    const proto = Object.getPrototypeOf(v);
    if (proto === Object.prototype) return this.plain(v as Record<string, unknown>);
    if (proto === null) {
      this.reshaped = true; // comes back with Object.prototype
      return this.plain(v as Record<string, unknown>);
    }
    // Subclasses (Node's Buffer, a Date subclass...) come back as the base class.
    if (v instanceof Uint8Array) {
      if (proto !== Uint8Array.prototype) this.reshaped = true;
      return v;
    }
    if (v instanceof Date) {
      if (proto !== Date.prototype) this.reshaped = true;
      return { __datetime__: true, value: dateToIso(v, this.where()) };
    }
    if (v instanceof CalendarDate) {
      if (proto !== CalendarDate.prototype) this.reshaped = true;
      return { __date__: true, value: v.toString() };
    }
    if (v instanceof TimeOfDay) {
      // An offset written "Z" is read back as "+00:00".
      if (proto !== TimeOfDay.prototype || v.offset === "Z") this.reshaped = true;
      return { __time__: true, value: v.toString() };
    }
    if (v instanceof Map) return this.map(v);
    const name = (proto && proto.constructor && proto.constructor.name) || "object";
    const hint = ArrayBuffer.isView(v)
      ? "; only Uint8Array is stored as bytes (wrap it: new Uint8Array(x.buffer, x.byteOffset, x.byteLength))"
      : v instanceof Set
      ? "; use an array"
      : "; supported: plain objects, arrays, Map, Uint8Array, Date, CalendarDate, TimeOfDay and primitives";
    this.fail(`a ${name} instance cannot be serialized${hint}`);
  }

  /** Called on entering a container: bounds nesting, which also catches cycles cheaply. */
  deeper(): void {
    if (this.path.length >= MAX_DEPTH) {
      this.fail(`nested deeper than ${MAX_DEPTH} levels (a circular reference?)`);
    }
  }

  array(a: unknown[]): unknown[] {
    this.deeper();
    let out: unknown[] | undefined;
    const path = this.path;
    path.push(0);
    for (let i = 0; i < a.length; i++) {
      path[path.length - 1] = i;
      const x = a[i];
      const y = this.value(x);
      if (y !== x && out === undefined) out = a.slice(0, i);
      if (out !== undefined) out[i] = y;
    }
    path.pop();
    return out ?? a;
  }

  plain(o: Record<string, unknown>): Record<string, unknown> {
    this.deeper();
    let out: Record<string, unknown> | undefined;
    const path = this.path;
    const keys = Object.keys(o);
    // Shaped like a date/time marker: read back as the date or time it spells.
    if (keys.length === 2 && typeof o.value === "string" && isMarkerShape(o)) this.reshaped = true;
    path.push("");
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      path[path.length - 1] = k;
      const x = o[k];
      const y = this.value(x);
      if (y !== x && out === undefined) {
        out = {};
        for (let j = 0; j < i; j++) define(out, keys[j], o[keys[j]]);
      }
      if (out !== undefined) define(out, k, y);
    }
    path.pop();
    return out ?? o;
  }

  map(m: Map<unknown, unknown>): Map<unknown, unknown> {
    this.deeper();
    const out = new Map<unknown, unknown>();
    let changed = false;
    // A map whose keys are all strings (or an empty one) is read back as a plain object.
    let allStrings = true;
    const path = this.path;
    path.push("");
    for (const [k, x] of m) {
      if (typeof k !== "string") allStrings = false;
      path[path.length - 1] = `<key ${typeof k === "string" ? JSON.stringify(k) : String(k)}>`;
      const k2 = this.value(k);
      path[path.length - 1] = typeof k === "string" ? k : String(k);
      const y = this.value(x);
      if (k2 !== k || y !== x) changed = true;
      out.set(k2, y);
    }
    path.pop();
    if (allStrings) this.reshaped = true;
    return changed ? out : m;
  }
}

function isMarkerShape(o: Record<string, unknown>): boolean {
  return o.__datetime__ === true || o.__date__ === true || o.__time__ === true;
}

function define(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[k] = v;
  }
}

/**
 * Serialize a value to standard MessagePack (see the module doc for the mapping).
 *
 * @throws {SerializationError} for values Python could not read back faithfully.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serialize } from "@cachekit/core/serializers";
 * assert.deepEqual(serialize([1, "a", null]), new Uint8Array([147, 1, 161, 97, 192]));
 * ```
 */
export function serialize(value: unknown): Uint8Array {
  const prep = new Prep();
  const prepared = prep.value(value);
  let out: Uint8Array;
  try {
    out = packr.pack(prepared);
  } catch (e) {
    throw new SerializationError(`Cannot serialize value: ${(e as Error)?.message ?? e}`, {
      cause: e,
    });
  }
  // msgpackr returns a Buffer view into a shared slab: copy small results so they own their memory.
  const view = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  const bytes = out.buffer.byteLength > 2 * out.byteLength ? view.slice() : view;
  if (prep.reshaped) markReshaped(bytes);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** A 64-bit int as a number when it is a safe integer, else the bigint. */
function int64(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

/**
 * After msgpackr: safe 64-bit ints become numbers, `Buffer`s `Uint8Array`s and date/time markers
 * values, in place. Maps come as `Map`s (general path), or as plain objects when `objects` is set
 * (the scan vouched for string keys only); any other object is an extension we refuse.
 */
function finish(v: unknown, objects: boolean): unknown {
  if (typeof v === "bigint") return int64(v);
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i];
      if ((typeof x === "object" && x !== null) || typeof x === "bigint") v[i] = finish(x, objects);
    }
    return v;
  }
  if (v instanceof Uint8Array) {
    return v.constructor === Uint8Array ? v : new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  }
  if (v instanceof Date) return v; // the standard MessagePack timestamp extension (-1)
  if (!objects) {
    if (v instanceof Map) return finishMap(v);
  } else if (Object.getPrototypeOf(v) === Object.prototype) {
    const o = v as Record<string, unknown>;
    if (typeof o.value === "string" && Object.keys(o).length === 2) {
      const marker = markerValue(o.__datetime__, o.__date__, o.__time__, o.value);
      if (marker !== undefined) return marker;
    }
    for (const k in o) {
      const x = o[k];
      if ((typeof x === "object" && x !== null) || typeof x === "bigint") o[k] = finish(x, true);
    }
    return o;
  }
  throw new SerializationError(
    `Cannot deserialize: unsupported MessagePack extension (${Object.prototype.toString.call(v)})`,
  );
}

/** The value of a `{"__datetime__"|"__date__"|"__time__": true, "value": text}` marker, if one. */
function markerValue(dt: unknown, d: unknown, t: unknown, text: string): unknown {
  try {
    if (dt === true) return isoToDate(text);
    if (d === true) return CalendarDate.parse(text);
    if (t === true) return TimeOfDay.parse(text);
  } catch (e) {
    throw new SerializationError(
      `Cannot deserialize a date/time marker: ${(e as Error).message}`,
      { cause: e },
    );
  }
  return undefined;
}

function finishMap(m: Map<unknown, unknown>): unknown {
  if (m.size === 2) {
    const text = m.get("value");
    if (typeof text === "string") {
      const marker = markerValue(m.get("__datetime__"), m.get("__date__"), m.get("__time__"), text);
      if (marker !== undefined) return marker;
    }
  }
  let allStrings = true;
  for (const k of m.keys()) {
    if (typeof k !== "string") {
      allStrings = false;
      break;
    }
  }
  if (allStrings) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of m) {
      const y = (typeof x === "object" && x !== null) || typeof x === "bigint"
        ? finish(x, false)
        : x;
      define(o, k as string, y);
    }
    return o;
  }
  const out = new Map<unknown, unknown>();
  for (const [k, x] of m) out.set(finish(k, false), finish(x, false));
  return out;
}

/**
 * Deserialize standard MessagePack (from this library or the Python/Rust SDKs).
 *
 * @throws {SerializationError} for bytes that are not one complete MessagePack value, or that hold
 * extensions other than the standard timestamp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deserialize } from "@cachekit/core/serializers";
 * // {"__date__": true, "value": "2024-01-31"} as Python's msgpack writes it
 * const bytes = new Uint8Array([
 *   0x82, 0xa8, ...new TextEncoder().encode("__date__"), 0xc3,
 *   0xa5, ...new TextEncoder().encode("value"), 0xaa, ...new TextEncoder().encode("2024-01-31"),
 * ]);
 * assert.equal(String(deserialize(bytes)), "2024-01-31");
 * ```
 */
export function deserialize(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new SerializationError("Cannot deserialize: expected a Uint8Array");
  }
  // Every map keyed by strings (the usual case): decode maps straight to objects, which is what
  // the general path would turn them into (see `_msgpack_scan.ts`).
  const plain = objectSafe(bytes);
  // What the scan vouched for is well formed, so only the general path can meet a header declaring
  // more than the input holds (and msgpackr preallocates by the declared count).
  if (!plain && !boundedByInput(bytes)) {
    throw new SerializationError(
      "Cannot deserialize: not valid MessagePack (a length declares more than the input holds)",
    );
  }
  let raw: unknown;
  try {
    raw = (plain ? objectUnpackr : unpackr).unpack(bytes);
  } catch (e) {
    throw new SerializationError(
      `Cannot deserialize: not valid MessagePack (${(e as Error)?.message ?? e})`,
      { cause: e },
    );
  }
  try {
    return finish(raw, plain);
  } catch (e) {
    if (e instanceof SerializationError) throw e;
    throw new SerializationError(`Cannot deserialize: ${(e as Error)?.message ?? e}`, { cause: e });
  }
}

/**
 * The standard serializer (`"std"`, key code `s`, format `msgpack`): the default, shared with the
 * Python and Rust SDKs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { StdSerializer } from "@cachekit/core/serializers";
 *
 * const std = new StdSerializer();
 * const back = std.deserialize(std.serialize(new Map([[1, "one"]])));
 * assert.deepEqual(back, new Map([[1, "one"]]));
 * ```
 */
export class StdSerializer implements Serializer {
  /** `"std"`. */
  readonly name: string = "std";
  /** `"s"`. */
  readonly code: string = "s";
  /** `"msgpack"`. */
  readonly format: string = "msgpack";

  /** See {@linkcode serialize}. */
  serialize(value: unknown): Uint8Array {
    return serialize(value);
  }

  /** See {@linkcode deserialize}. */
  deserialize(bytes: Uint8Array): unknown {
    return deserialize(bytes);
  }
}
