/**
 * Python behaviours the canonical encoder reproduces: `str` ordering (by code point, not
 * JavaScript's UTF-16 units), byte-string ordering, and `datetime.isoformat()` of an aware UTC
 * datetime, and whether a string has a UTF-8 encoding at all (Python refuses a lone surrogate).
 * Apart because they are pure functions of their inputs, shared by the encoder and the
 * key builder.
 *
 * @module
 */

// Ordering.

/**
 * Compare two strings by Unicode code point (= UTF-8 byte order = Python's `str` order), not by
 * UTF-16 code unit as `Array.prototype.sort` does.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates (code points >= U+10000) sort after U+E000..U+FFFF.
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Compare two byte strings lexicographically (a shorter prefix first). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = a.length < b.length ? a.length : b.length;
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return a.length - b.length;
}

// ---------------------------------------------------------------------------------------------
// Dates.

function pad(n: number, w: number): string {
  return String(n).padStart(w, "0");
}

/**
 * Python's `datetime.isoformat()` of the aware UTC datetime at `d`:
 * `2025-11-14T10:30:00+00:00`, `.ffffff` only when the microseconds are non-zero. `null` when the
 * date is invalid or outside Python's years 1..9999.
 */
export function pythonIsoformat(d: Date): string | null {
  const t = d.getTime();
  if (t !== t) return null;
  const y = d.getUTCFullYear();
  if (y < 1 || y > 9999) return null;
  const ms = d.getUTCMilliseconds();
  return `${pad(y, 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${
    pad(d.getUTCHours(), 2)
  }:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}${
    ms === 0 ? "" : `.${pad(ms, 3)}000`
  }+00:00`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** Whether `s` holds no lone surrogate (so it has a UTF-8 encoding). */
export function isWellFormed(s: string): boolean {
  // deno-lint-ignore no-explicit-any
  const f = (s as any).isWellFormed as (() => boolean) | undefined;
  return f ? f.call(s) : !LONE_SURROGATE.test(s);
}
