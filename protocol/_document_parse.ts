/**
 * The fast path of the JSON document codec (`_document.ts`): a parser for the JSON subset cachekit documents use (ASCII, no
 * escapes, objects of strings, numbers and literals), reading the bytes directly instead of
 * decoding them to text and running `JSON.parse`, and leaving the base64 `data` string in place.
 * On an L2 hit of a 1 KB value this saves the text decode, the parse of the long `data` string
 * and its copy; whatever lies outside the subset returns `null` and takes the general path.
 *
 * @module
 */

/**
 * The top-level `data` string of a fast-parsed document: its characters stay in the document
 * bytes (`start`..`end`) and are base64-decoded from there. A class: `JSON.parse` never makes one.
 */
export class DataSlot {
  constructor(readonly start: number, readonly end: number) {}
}

/** Strings of the document's shape, returned without building a new string. */
const KNOWN = [
  "data",
  "metadata",
  "format",
  "encoding",
  "compressed",
  "original_type",
  "msgpack",
  "json",
  "orjson",
  "utf-8",
  "serializer",
  "default",
  "std",
  "version",
  "2.0",
  "encrypted",
  "tenant_id",
  "encryption_algorithm",
  "AES-256-GCM",
  "key_fingerprint",
  "js_undefined",
  "fresh_until",
  "ck_check",
];
/** `KNOWN` by length: each string with its character codes. */
const KNOWN_BY_LENGTH: [string, Uint8Array][][] = [];
for (const k of KNOWN) {
  (KNOWN_BY_LENGTH[k.length] ??= []).push([k, Uint8Array.from(k, (c) => c.charCodeAt(0))]);
}
const MAX_FAST_STRING = 4096;
const MAX_FAST_DEPTH = 4;

/**
 * Parse `bytes` as a JSON object if it lies in a subset that needs no decoding: ASCII only,
 * strings without escapes, objects (nested at most {@linkcode MAX_FAST_DEPTH}), strings, numbers,
 * `true`, `false`, `null`; no arrays, no `__proto__` key. Returns what `JSON.parse` would return
 * for it, except that the top-level `data` string is a {@linkcode DataSlot} (its characters are
 * not checked here), or `null` when the input is outside the subset (or not JSON at all).
 */
export function parseFast(bytes: Uint8Array): Record<string, unknown> | null {
  const p = new FastParser(bytes);
  const pos = p.ws(0);
  if (bytes[pos] !== 0x7b) return null;
  const doc = p.object(pos, 0);
  if (doc === null || p.ws(p.pos) !== bytes.length) return null;
  return doc;
}

class FastParser {
  pos = 0;
  constructor(readonly b: Uint8Array) {}

  /** Skip JSON whitespace from `i`; returns the next position. */
  ws(i: number): number {
    const b = this.b;
    for (;;) {
      const c = b[i];
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return i;
    }
  }

  /** The object starting at `i` (`{`); sets `pos` after it. */
  object(i: number, depth: number): Record<string, unknown> | null {
    const b = this.b;
    const out: Record<string, unknown> = {};
    i = this.ws(i + 1);
    if (b[i] === 0x7d) {
      this.pos = i + 1;
      return out;
    }
    for (;;) {
      if (b[i] !== 0x22) return null;
      const key = this.string(i + 1);
      if (key === null || key === "__proto__") return null;
      i = this.ws(this.pos);
      if (b[i] !== 0x3a) return null;
      i = this.ws(i + 1);
      const c = b[i];
      let v: unknown;
      if (c === 0x22) {
        if (depth === 0 && key === "data") {
          const end = b.indexOf(0x22, i + 1);
          if (end < 0) return null;
          v = new DataSlot(i + 1, end);
          this.pos = end + 1;
        } else {
          v = this.string(i + 1);
          if (v === null) return null;
        }
      } else if (c === 0x7b) {
        if (depth + 1 >= MAX_FAST_DEPTH) return null;
        v = this.object(i, depth + 1);
        if (v === null) return null;
      } else if (!this.scalar(i)) return null;
      else v = this.value;
      out[key] = v;
      i = this.ws(this.pos);
      if (b[i] === 0x2c) i = this.ws(i + 1);
      else if (b[i] === 0x7d) {
        this.pos = i + 1;
        return out;
      } else return null;
    }
  }

  /** The string whose characters start at `i` (after `"`); ASCII without escapes, else `null`. */
  string(i: number): string | null {
    const b = this.b;
    const start = i;
    for (;;) {
      const c = b[i];
      if (c === 0x22) break;
      if (c === undefined || c < 0x20 || c === 0x5c || c > 0x7e) return null;
      i++;
    }
    this.pos = i + 1;
    const n = i - start;
    if (n > MAX_FAST_STRING) return null;
    const known = KNOWN_BY_LENGTH[n];
    if (known !== undefined) {
      outer: for (const [s, codes] of known) {
        for (let j = 0; j < n; j++) if (codes[j] !== b[start + j]) continue outer;
        return s;
      }
    }
    return latin1(b, start, i);
  }

  value: unknown = null;

  /** A number, `true`, `false` or `null` at `i` into `value`; sets `pos` after it. */
  scalar(i: number): boolean {
    const b = this.b;
    const c = b[i];
    if (c === 0x74) return this.word(i, "true", true);
    if (c === 0x66) return this.word(i, "false", false);
    if (c === 0x6e) return this.word(i, "null", null);
    // JSON number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    const start = i;
    if (b[i] === 0x2d) i++;
    if (b[i] === 0x30) i++;
    else if (b[i] >= 0x31 && b[i] <= 0x39) { while (b[i] >= 0x30 && b[i] <= 0x39) i++; }
    else return false;
    if (b[i] === 0x2e) {
      i++;
      if (!(b[i] >= 0x30 && b[i] <= 0x39)) return false;
      while (b[i] >= 0x30 && b[i] <= 0x39) i++;
    }
    if (b[i] === 0x65 || b[i] === 0x45) {
      i++;
      if (b[i] === 0x2b || b[i] === 0x2d) i++;
      if (!(b[i] >= 0x30 && b[i] <= 0x39)) return false;
      while (b[i] >= 0x30 && b[i] <= 0x39) i++;
    }
    // A longer number is left to the general path (and `apply` would overflow on ~100k digits).
    if (i - start > MAX_FAST_STRING) return false;
    this.value = Number(latin1(b, start, i));
    this.pos = i;
    return true;
  }

  /** The literal `w` at `i` into `value`. */
  word(i: number, w: string, v: unknown): boolean {
    const b = this.b;
    for (let j = 0; j < w.length; j++) if (b[i + j] !== w.charCodeAt(j)) return false;
    this.value = v;
    this.pos = i + w.length;
    return true;
  }
}

/** The characters `b[start..end)` (all below 0x80 here) as a string. */
function latin1(b: Uint8Array, start: number, end: number): string {
  return String.fromCharCode.apply(null, b.subarray(start, end) as unknown as number[]);
}
