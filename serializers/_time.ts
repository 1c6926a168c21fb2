/**
 * Date and time values of the standard serializer: {@linkcode CalendarDate} and
 * {@linkcode TimeOfDay} (Python's `date` and `time`, which JavaScript has no type for), and the
 * text forms of an aware `datetime` the markers carry. Apart because they are value types with
 * their own parsing and checks; the serializer only writes and reads their markers.
 *
 * @module
 */
import { SerializationError } from "../errors.ts";

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
 * assert.deepEqual([d.year, d.month, d.day], [2024, 2, 29]);
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
 * assert.deepEqual([t.hour, t.minute, t.second, t.microsecond], [10, 30, 0, 250000]);
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
export function dateToIso(d: Date, where: string): string {
  const t = d.getTime();
  if (Number.isNaN(t)) throw new SerializationError(`Cannot serialize ${where}: invalid Date`);
  // Years 1..9999: `toISOString` is `YYYY-MM-DDTHH:MM:SS.sssZ`, the same digits (faster than
  // formatting each field).
  if (t >= YEAR_1 && t < YEAR_10000) {
    const s = d.toISOString();
    return t % 1000 === 0 ? s.slice(0, 19) + "+00:00" : s.slice(0, 23) + "000+00:00";
  }
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

/** 0001-01-01T00:00:00Z and 10000-01-01T00:00:00Z in milliseconds. */
const YEAR_1 = -62135596800000;
const YEAR_10000 = 253402300800000;

/** Python `datetime.isoformat()` text → `Date`. No offset (naive) means UTC. */
export function isoToDate(text: string): Date {
  return isoUtcToDate(text) ?? isoToDateSlow(text);
}

/**
 * The form this library and Python write for UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`, read
 * without the regular expressions and the three `Date`s of the general reader (~4× faster), or
 * `undefined` for anything else (years before 100 included: `Date.UTC` reads them as 19xx).
 */
function isoUtcToDate(s: string): Date | undefined {
  const n = s.length;
  if (n !== 25 && n !== 32) return undefined;
  if (
    s.charCodeAt(4) !== 0x2d || s.charCodeAt(7) !== 0x2d || s.charCodeAt(10) !== 0x54 ||
    s.charCodeAt(13) !== 0x3a || s.charCodeAt(16) !== 0x3a || !s.endsWith("+00:00")
  ) return undefined;
  const year = digits(s, 0, 4), month = digits(s, 5, 2), day = digits(s, 8, 2);
  const hour = digits(s, 11, 2), minute = digits(s, 14, 2), second = digits(s, 17, 2);
  let ms = 0;
  if (n === 32) {
    if (s.charCodeAt(19) !== 0x2e || digits(s, 20, 6) < 0) return undefined;
    ms = digits(s, 20, 3);
  }
  if (
    year < 100 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour < 0 ||
    hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59
  ) return undefined;
  return new Date(Date.UTC(year, month - 1, day, hour, minute, second, ms));
}

/** The decimal number of `width` ASCII digits at `at`, or -1. */
function digits(s: string, at: number, width: number): number {
  let v = 0;
  for (let i = at; i < at + width; i++) {
    const c = s.charCodeAt(i) - 0x30;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

function isoToDateSlow(text: string): Date {
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
