/**
 * The copies L1 hands out (`l1.copy`): a structural cloner specialised to the serializers' value
 * space, the walk that vets a value for it (and estimates its heap size) when it is stored, and
 * the deep-frozen copy of `"freeze"` (where a `Date` or `Map` becomes a subclass whose mutators
 * throw, since `Object.freeze` cannot stop `setTime` or `Map.prototype.set`; a `Uint8Array`
 * cannot be frozen at all, so a value holding one is copied per hit instead).
 *
 * The space: primitives (bigint too), arrays (`Array.prototype`, no holes), plain objects
 * (`Object.prototype` or a null prototype; own enumerable string keys, no symbol keys), `Date`,
 * `Uint8Array` (exactly; not a subclass such as `Buffer`), `Map` (keys copied too), and the
 * standard serializer's {@linkcode CalendarDate} and {@linkcode TimeOfDay}, which are frozen value
 * types and are shared, not copied. That is everything the built-in serializers and the interop
 * codec decode to. Anything else (a class instance from a custom serializer, a cycle, nesting
 * deeper than {@linkcode MAX_DEPTH}) is refused by {@linkcode vet}; the engine then keeps the
 * payload bytes and deserializes on every hit, as before: never a shared or a wrong value.
 *
 * Hand-written because `structuredClone` is much slower on these values (a ~1 KB record: see
 * `bench/MEASUREMENTS.md`, "L1 copies"), copies class instances into plain objects without a word,
 * and does not exist as a fast path for the common case of a plain object: here a plain object is
 * copied with a spread (`{ ...o }`), which V8 compiles to a copy of the object's hidden class and
 * fields, and only its nested objects are walked. A spread defines an own `"__proto__"` key as an
 * own property (it never sets the prototype) and copies no inherited property, so a polluted
 * `Object.prototype` leaks nothing into the copy.
 *
 * @module
 */
import { CalendarDate, TimeOfDay } from "../serializers/mod.ts";

/** Deepest nesting {@linkcode vet} follows (the standard serializer refuses deeper than 512). */
export const MAX_DEPTH = 1024;

/**
 * The heap model of {@linkcode vet}'s estimate, in bytes (V8, 64-bit, no pointer compression; the
 * figures are rounded and only meant to be within a small factor of a measured heap delta).
 */
const HEAP = {
  /** A JS object's header (map, properties, elements). */
  object: 24,
  /** One property or element slot. */
  slot: 8,
  /** A string's header; its characters are counted at one byte each (rounded up to 8). */
  string: 16,
  /** A number that is not a small integer, or a bigint's header. */
  boxed: 16,
  /** A `Date`. */
  date: 48,
  /** A `Uint8Array` with its `ArrayBuffer` (objects and the backing store's bookkeeping). */
  bytes: 160,
  /** A `Map`'s objects, and each of its entries in the hash table. */
  map: 80,
  mapEntry: 24,
} as const;

/** What {@linkcode vet} found out about a value. */
export interface Vetted {
  /** Estimated heap bytes of the value (see the model in `HEAP`). */
  bytes: number;
  /** It holds a `Uint8Array`, whose contents cannot be frozen. */
  unfreezable: boolean;
}

let depthLeft = 0;
let unfreezable = false;
let refused = false;
let copying = false;
let bytes = 0;

/** What {@linkcode vetCopy} returns for a value outside the copy space. */
export const REFUSED: unique symbol = Symbol("refused");

/**
 * Whether `v` lies within the copy space; when it does, `out` receives its estimated heap size
 * and whether it can be frozen.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { vet, type Vetted } from "./_l1_copy.ts";
 *
 * const out: Vetted = { bytes: 0, unfreezable: false };
 * assert.equal(vet({ id: 1, bytes: new Uint8Array(2) }, out), true);
 * assert.equal(out.unfreezable, true);
 * assert.equal(vet(new (class A {})(), out), false);
 * ```
 */
export function vet(v: unknown, out: Vetted): boolean {
  return start(v, out, false) !== REFUSED;
}

/**
 * {@linkcode vet} and {@linkcode copyValue} in one walk: the copy of `v`, or {@linkcode REFUSED}
 * when `v` lies outside the copy space (then nothing is written to `out`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { REFUSED, vetCopy, type Vetted } from "./_l1_copy.ts";
 *
 * const out: Vetted = { bytes: 0, unfreezable: false };
 * const v = { tags: ["a"] };
 * const c = vetCopy(v, out) as typeof v;
 * assert.deepEqual(c, v);
 * assert.notEqual(c.tags, v.tags);
 * assert.equal(vetCopy(new Set(), out), REFUSED);
 * ```
 */
export function vetCopy(v: unknown, out: Vetted): unknown {
  return start(v, out, true);
}

function start(v: unknown, out: Vetted, copy: boolean): unknown {
  depthLeft = MAX_DEPTH;
  unfreezable = false;
  refused = false;
  copying = copy;
  bytes = 0;
  const c = walk(v);
  if (refused) return REFUSED;
  out.bytes = bytes;
  out.unfreezable = unfreezable;
  return c;
}

function stringBytes(s: string): number {
  return HEAP.string + ((s.length + 7) & ~7);
}

/** Count `v`, and copy it when `copying`; sets `refused` outside the space. */
function walk(v: unknown): unknown {
  switch (typeof v) {
    case "string":
      bytes += stringBytes(v);
      return v;
    case "number":
      if ((v | 0) !== v) bytes += HEAP.boxed;
      return v;
    case "bigint":
      bytes += HEAP.boxed + 8 * Math.ceil(v.toString(16).length / 16);
      return v;
    case "boolean":
    case "undefined":
      return v;
    case "object":
      break;
    default:
      refused = true; // symbol, function
      return v;
  }
  if (v === null) return v;
  if (--depthLeft < 0) {
    refused = true;
    return v;
  }
  const c = walkObject(v);
  depthLeft++;
  return c;
}

function walkObject(v: object): unknown {
  const proto = Object.getPrototypeOf(v);
  if (proto === Array.prototype) {
    const a = v as unknown[];
    const out = copying ? a.slice() : a;
    bytes += HEAP.object + HEAP.slot * a.length;
    for (let i = 0; i < a.length; i++) {
      const x = a[i];
      if (x === undefined && !(i in a)) refused = true; // a hole would come back as undefined
      const c = walk(x);
      if (refused) return v;
      if (c !== x) out[i] = c;
    }
    return out;
  }
  if (proto === Object.prototype || proto === null) {
    if (Object.getOwnPropertySymbols(v).length > 0) {
      refused = true;
      return v;
    }
    // A spread (or Object.assign onto a null-prototype object) defines a "__proto__" key as an own
    // property, and the writes below hit own data properties only: the prototype is never set.
    const out =
      (!copying ? v : proto === null ? Object.assign(Object.create(null), v) : { ...v }) as Record<
        string,
        unknown
      >;
    const keys = Object.keys(out);
    bytes += HEAP.object + HEAP.slot * keys.length;
    for (let i = 0; i < keys.length; i++) {
      const x = out[keys[i]];
      const c = walk(x);
      if (refused) return v;
      if (c !== x) out[keys[i]] = c;
    }
    return out;
  }
  if (proto === Date.prototype) {
    bytes += HEAP.date;
    return copying ? new Date((v as Date).getTime()) : v;
  }
  if (proto === Uint8Array.prototype) {
    unfreezable = true;
    bytes += HEAP.bytes + (v as Uint8Array).byteLength;
    return copying ? (v as Uint8Array).slice() : v;
  }
  if (proto === Map.prototype) {
    const out = copying ? new Map() : v as Map<unknown, unknown>;
    bytes += HEAP.map;
    for (const [k, x] of v as Map<unknown, unknown>) {
      bytes += HEAP.mapEntry;
      const ck = walk(k);
      const cx = walk(x);
      if (refused) return v;
      if (copying) out.set(ck, cx);
    }
    return out;
  }
  if (proto === CalendarDate.prototype || proto === TimeOfDay.prototype) {
    bytes += HEAP.object;
    return v; // frozen value types: shared
  }
  refused = true;
  return v;
}

/**
 * An independent deep copy of `v`, which {@linkcode vet} accepted: no mutable object is shared
 * between `v` and the copy (the frozen time types are).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { copyValue } from "./_l1_copy.ts";
 *
 * const v = { user: { tags: ["a"] }, at: new Date(0) };
 * const c = copyValue(v);
 * assert.deepEqual(c, v);
 * assert.notEqual(c.user.tags, v.user.tags);
 * assert.notEqual(c.at, v.at);
 * ```
 */
export function copyValue<T>(v: T): T {
  return (typeof v === "object" && v !== null ? copyObject(v) : v) as T;
}

function copyObject(v: object): unknown {
  if (Array.isArray(v)) {
    const out = v.slice();
    for (let i = 0; i < out.length; i++) {
      const x = out[i];
      if (typeof x === "object" && x !== null) out[i] = copyObject(x);
    }
    return out;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype) {
    // `for…in` rather than `Object.keys`: no array of keys per object (the copy of a 1 KB record
    // took 0.53 µs with it, 0.32 µs without). It also walks inherited enumerable keys (a polluted
    // `Object.prototype`), which `hasOwn` keeps out of the copy, as the spread did.
    const out: Record<string, unknown> = { ...v };
    for (const k in out) {
      const x = out[k];
      if (typeof x === "object" && x !== null && Object.hasOwn(out, k)) out[k] = copyObject(x);
    }
    return out;
  }
  if (proto === null) {
    // Object.assign onto a null-prototype object: a "__proto__" key is an own property there too.
    const out = Object.assign(Object.create(null), v) as Record<string, unknown>;
    for (const k in out) {
      const x = out[k];
      if (typeof x === "object" && x !== null) out[k] = copyObject(x);
    }
    return out;
  }
  if (proto === Date.prototype) return new Date((v as Date).getTime());
  if (proto === Uint8Array.prototype) return (v as Uint8Array).slice();
  if (proto === Map.prototype) {
    const out = new Map();
    for (const [k, x] of v as Map<unknown, unknown>) out.set(copyValue(k), copyValue(x));
    return out;
  }
  return v; // CalendarDate, TimeOfDay: frozen, shared
}

/** The error a mutation of a frozen cached value throws. */
function readOnly(what: string): never {
  throw new TypeError(
    `Cannot ${what} a frozen cached value (l1.copy: "freeze"): copy it first, e.g. structuredClone`,
  );
}

/**
 * A `Date` whose setters throw: what `"freeze"` puts where a `Date` was (`Object.freeze` does not
 * stop `setTime`, which changes the internal time value). `instanceof Date` holds; every getter,
 * `toISOString` and `toJSON` work as on a `Date`.
 */
export class FrozenDate extends Date {}
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  if (!name.startsWith("set")) continue;
  Object.defineProperty(FrozenDate.prototype, name, {
    value: function () {
      readOnly(name);
    },
  });
}
Object.freeze(FrozenDate.prototype);

/**
 * A `Map` whose `set`, `delete` and `clear` throw: what `"freeze"` puts where a `Map` was
 * (`Object.freeze` does not stop `Map.prototype.set`). `instanceof Map` holds; reading works as on
 * a `Map`.
 */
export class FrozenMap<K, V> extends Map<K, V> {
  /** Refused: the map is a frozen cached value. */
  override set(_k: K, _v: V): this {
    return readOnly("set in");
  }
  /** Refused: the map is a frozen cached value. */
  override delete(_k: K): boolean {
    return readOnly("delete from");
  }
  /** Refused: the map is a frozen cached value. */
  override clear(): void {
    readOnly("clear");
  }
}
Object.freeze(FrozenMap.prototype);
const mapSet = Map.prototype.set;

/**
 * A deep-frozen copy of `v`, which {@linkcode vet} accepted and found freezable (no
 * `Uint8Array`, whose contents cannot be frozen): objects and arrays frozen, a `Date` as a
 * {@linkcode FrozenDate}, a `Map` as a {@linkcode FrozenMap} (keys frozen too).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frozenCopy } from "./_l1_copy.ts";
 *
 * const v = frozenCopy({ a: { b: [1] }, at: new Date(0) });
 * assert.ok(Object.isFrozen(v.a.b));
 * assert.throws(() => v.at.setTime(1), TypeError);
 * ```
 */
export function frozenCopy<T>(v: T): T {
  if (typeof v !== "object" || v === null) return v;
  if (Array.isArray(v)) {
    const out = v.slice();
    for (let i = 0; i < out.length; i++) out[i] = frozenCopy(out[i]);
    return Object.freeze(out) as T;
  }
  const proto = Object.getPrototypeOf(v);
  if (proto === Object.prototype || proto === null) {
    const out = proto === null ? Object.assign(Object.create(null), v) : { ...v };
    for (const k of Object.keys(out)) out[k] = frozenCopy(out[k]);
    return Object.freeze(out);
  }
  if (proto === Date.prototype) {
    return Object.freeze(new FrozenDate((v as unknown as Date).getTime())) as T;
  }
  if (proto === Map.prototype) {
    const out = new FrozenMap();
    for (const [k, x] of v as unknown as Map<unknown, unknown>) {
      mapSet.call(out, frozenCopy(k), frozenCopy(x));
    }
    return Object.freeze(out) as T;
  }
  return v; // CalendarDate, TimeOfDay: frozen already
}
