/**
 * The standard serializer's pre-pass: what `serialize` runs over a value before msgpackr packs it
 * (see `std.ts`'s module doc for the mapping) when the fast walk (`_std_encode.ts`) gives up. Apart
 * because it is the serializer's whole model of what it accepts, and the one that names where a
 * refusal sits; `std.ts` only packs its output, and the fast walk must write the same bytes.
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import { CalendarDate, dateToIso, TimeOfDay } from "./_time.ts";

/** Deepest nesting accepted (Python's msgpack refuses deeper structures too). */
const MAX_DEPTH = 512;
const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;
/** Largest safe integer as a bigint. */
export const MAX_SAFE: bigint = BigInt(Number.MAX_SAFE_INTEGER);
/** Smallest safe integer as a bigint. */
export const MIN_SAFE: bigint = BigInt(Number.MIN_SAFE_INTEGER);
// deno-lint-ignore no-explicit-any
const isWellFormed: (s: string) => boolean = typeof (String.prototype as any).isWellFormed ===
    "function"
  // deno-lint-ignore no-explicit-any
  ? (s) => (s as any).isWellFormed()
  : (s) => !/\p{Surrogate}/u.test(s.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ""));

/**
 * The pre-pass over one value: turns dates, `CalendarDate`s and `TimeOfDay`s into markers and
 * large integers into `bigint`, refuses what Python could not read (naming the path), and notes
 * whether decoding will give back something else ({@linkcode Prep.reshaped}).
 */
export class Prep {
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
      // A key is a str too: msgpackr would write a lone surrogate as U+FFFD (another key).
      if (!isWellFormed(k)) this.fail("key contains a lone UTF-16 surrogate (not valid Unicode)");
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
    // A subclass comes back as a plain `Map` (or object), and msgpackr would write one as an
    // empty map: the copy is written instead.
    const subclass = Object.getPrototypeOf(m) !== Map.prototype;
    if (allStrings || subclass) this.reshaped = true;
    return changed || subclass ? out : m;
  }
}

function isMarkerShape(o: Record<string, unknown>): boolean {
  return o.__datetime__ === true || o.__date__ === true || o.__time__ === true;
}

/** Set `o[k]` as an own data property, `"__proto__"` included (never the prototype). */
export function define(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === "__proto__") {
    Object.defineProperty(o, k, { value: v, writable: true, enumerable: true, configurable: true });
  } else {
    o[k] = v;
  }
}
