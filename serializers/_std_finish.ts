/**
 * The standard serializer's post-pass: what `deserialize` runs over msgpackr's output (safe
 * 64-bit integers to numbers, maps to objects or `Map`s, date/time markers to values). Apart
 * because it is the decoder's half of the mapping, mirroring the pre-pass (`_std_prepare.ts`).
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import { CalendarDate, isoToDate, TimeOfDay } from "./_time.ts";
import { define, MAX_SAFE, MIN_SAFE } from "./_std_prepare.ts";

/** A 64-bit int as a number when it is a safe integer, else the bigint. */
function int64(v: bigint): number | bigint {
  return v <= MAX_SAFE && v >= MIN_SAFE ? Number(v) : v;
}

/**
 * After msgpackr: safe 64-bit ints become numbers, `Buffer`s `Uint8Array`s and date/time markers
 * values, in place. Maps come as `Map`s (general path), or as plain objects when `objects` is set
 * (the scan vouched for string keys only); any other object is an extension we refuse.
 */
export function finish(v: unknown, objects: boolean): unknown {
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

/** A decoded `Map`: a marker's value, a plain object when every key is a string, else a `Map`. */
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
 * {@linkcode finish} for a value whose only work is date markers, given where the maps that may be
 * markers sit (`markerPaths` in `_msgpack_scan.ts`): the same result without walking the rest, or
 * `undefined` when a path does not lead to a plain object or a marker does not parse, and the
 * caller runs `finish` (which then gives the same error as always, from an untouched value).
 */
export function finishMarkers(root: unknown, paths: (string | number)[][]): unknown {
  const found: [Record<string | number, unknown> | undefined, string | number, unknown][] = [];
  try {
    for (const path of paths) {
      let parent: Record<string | number, unknown> | undefined;
      let node: unknown = root;
      for (const seg of path) {
        const ok = typeof seg === "number"
          ? Array.isArray(node)
          : isPlain(node) && Object.hasOwn(node, seg);
        if (!ok) return undefined;
        parent = node as Record<string | number, unknown>;
        node = parent[seg];
      }
      if (!isPlain(node)) return undefined;
      const o = node as Record<string, unknown>;
      if (typeof o.value === "string" && Object.keys(o).length === 2) {
        const marker = markerValue(o.__datetime__, o.__date__, o.__time__, o.value);
        if (marker !== undefined) found.push([parent, path[path.length - 1], marker]);
      }
    }
  } catch {
    return undefined;
  }
  for (const [parent, key, marker] of found) {
    if (parent === undefined) return marker; // the whole value is a marker
    parent[key] = marker;
  }
  return root;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && Object.getPrototypeOf(v) === Object.prototype;
}
