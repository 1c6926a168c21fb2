/**
 * A frozen copy of the datetime text functions of `serializers/_time.ts` as they were before the
 * std serializer's fast paths (main 0f56f5d), for the reference serializer in this folder. The
 * date and time classes are not copied: the reference uses the current ones, so that values built
 * by a test are the same classes for both serializers. Test-only.
 *
 * @module
 */
import { SerializationError } from "../../../errors.ts";

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

/** `Date` → Python `datetime.isoformat()` of the aware UTC datetime. */
export function dateToIso(d: Date, where: string): string {
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
export function isoToDate(text: string): Date {
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
