/**
 * The two markers cachekit-py 0.3.0's `AutoSerializer` adds to the standard serializer's
 * (`_auto_default` / `_auto_object_hook`): `{"__uuid__": true, "value": "<uuid>"}` for a `UUID`
 * and `{"__set__": true, "value": [...], "frozen": bool}` for a `set` / `frozenset`. Read back as
 * the UUID's string and a `Set`; as in Python, only a marker exactly `true` counts, and a marker
 * without its `value` (or a set whose value is not a list) is corrupt data: refused.
 *
 * A decoded value is walked only when its bytes hold one of the two keys (MessagePack writes keys
 * as raw UTF-8), so plain values pay one byte scan.
 *
 * @module
 */
import { SerializationError } from "../errors.ts";

// fixstr headers + key bytes: 0xa7 "__set__", 0xa8 "__uuid__".
const SET_KEY = Uint8Array.from(
  [0xa7, ..."__set__"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
);
const UUID_KEY = Uint8Array.from(
  [0xa8, ..."__uuid__"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
);

function contains(b: Uint8Array, key: Uint8Array): boolean {
  const first = key[0];
  let i = b.indexOf(first);
  outer: while (i >= 0 && i + key.length <= b.length) {
    for (let j = 1; j < key.length; j++) {
      if (b[i + j] !== key[j]) {
        i = b.indexOf(first, i + 1);
        continue outer;
      }
    }
    return true;
  }
  return false;
}

/** Whether `payload` may hold an auto marker (a cheap scan of its bytes). */
export function mayHoldAutoMarkers(payload: Uint8Array): boolean {
  return contains(payload, SET_KEY) || contains(payload, UUID_KEY);
}

function isPlain(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const p = Object.getPrototypeOf(v);
  return p === Object.prototype || p === null;
}

/**
 * `v` with every auto marker restored (containers rebuilt in place: `v` is a freshly decoded
 * value). Markers inside a `Map` (a map with non-string keys) are left as they are.
 *
 * @throws {SerializationError} A marker without its `value`, or a set whose value is not a list.
 */
export function reviveAutoMarkers(v: unknown): unknown {
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) v[i] = reviveAutoMarkers(v[i]);
    return v;
  }
  if (!isPlain(v)) return v;
  // Python's hook sees the innermost dicts first: revive the members, then this object.
  for (const k of Object.keys(v)) v[k] = reviveAutoMarkers(v[k]);
  if (v.__uuid__ === true) {
    if (typeof v.value !== "string") {
      throw new SerializationError("an auto __uuid__ marker without its string value");
    }
    return v.value;
  }
  if (v.__set__ === true) {
    if (!Array.isArray(v.value)) {
      throw new SerializationError("an auto __set__ marker whose value is not a list");
    }
    return new Set(v.value);
  }
  return v;
}
