/**
 * The standard serializer: MessagePack, readable and writable by the Python and Rust cachekit SDKs.
 *
 * Value mapping (JavaScript ⇄ MessagePack ⇄ Python):
 * - `null` and `undefined` ⇄ nil ⇄ `None` (`undefined`, also an array hole, comes back as `null`;
 *   the cache keeps a function's top-level `undefined` apart and returns `undefined`);
 * - booleans, strings (well-formed Unicode only, object keys too) ⇄ bool, str;
 * - numbers: safe integers ⇄ int (shortest form; `-0` is the int 0 and comes back as `0`); other
 *   numbers (`NaN`, `±Infinity` too) ⇄ float64. Decoded integers outside the safe range come back
 *   as `bigint`; `bigint` in the 64-bit range encodes as int (a safe one comes back as a number);
 * - `Uint8Array` ⇄ bin ⇄ `bytes` (a subclass such as Node's `Buffer` comes back as `Uint8Array`);
 * - arrays ⇄ array ⇄ `list` (tuples too);
 * - plain objects (null-prototype ones too) and `Map` ⇄ map ⇄ `dict`. A decoded map whose keys are
 *   all strings becomes a plain object (a `"__proto__"` key becomes an own property, never the
 *   prototype): a `Map` with string keys, or an empty one, comes back as a plain object; any other
 *   map becomes a `Map` (a `Map` subclass is written as a `Map` and read back as one). Only own enumerable string-keyed properties are written (symbol keys and
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
 * no extensions).
 *
 * Writing: a hand-written walk (`_std_encode.ts`) checks the value and writes its bytes in one
 * pass, the bytes msgpackr would write after the pre-pass, into a reused buffer, then copies them
 * out so that they own their memory. Anything it does not handle (a refusal, a subclass, an unusual
 * `Map` key) sends the value down the general path from the start: a pre-pass (`_std_prepare.ts`)
 * turns dates into markers, integers beyond 32 bits into `bigint` so they stay MessagePack ints
 * (msgpackr would write them as float64), refuses what Python could not read naming where it sits,
 * then msgpackr packs the result. Both give the same bytes, checked on random values in
 * `tests/serializers/std_differential_test.ts`.
 *
 * Reading: a scan of the bytes (`_msgpack_scan.ts`) says whether every map is keyed by strings;
 * then maps are decoded straight to objects, else as `Map`s. The same scan notes what the post-pass
 * (`_std_finish.ts`: maps to objects or `Map`s, markers to dates, safe 64-bit ints to numbers)
 * would change; when it finds nothing, msgpackr's output is returned as is. Figures, against a bare
 * msgpackr `pack`/`unpack`, in `bench/MEASUREMENTS.md`.
 *
 * The date and time types are in `_time.ts` (re-exported here).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CalendarDate, deserialize, serialize } from "@cachekit/core/serializers";
 *
 * const bytes = serialize({ id: 42, born: new CalendarDate(1990, 5, 17), at: new Date(0) });
 * const back = deserialize(bytes) as { id: number; born: CalendarDate; at: Date };
 * assert.equal(back.id, 42);
 * assert.ok(back.born instanceof CalendarDate);
 * assert.equal(back.born.toString(), "1990-05-17");
 * assert.equal(back.at.toISOString(), "1970-01-01T00:00:00.000Z");
 * ```
 *
 * @module
 */
import { Packr, Unpackr } from "msgpackr";
import { SerializationError } from "../errors.ts";
import type { Serializer } from "./types.ts";
import { boundedByInput, markerPaths, scan, SCAN_BIN, SCAN_MARKER } from "./_msgpack_scan.ts";
import { markReshaped } from "./_reshaped.ts";
import { Prep } from "./_std_prepare.ts";
import { encodeFast } from "./_std_encode.ts";
import { finish, finishMarkers } from "./_std_finish.ts";

export { CalendarDate, TimeOfDay } from "./_time.ts";

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

/**
 * Serialize a value to standard MessagePack (see the module doc for the mapping).
 *
 * @throws {SerializationError} for values Python could not read back faithfully.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { serialize } from "@cachekit/core/serializers";
 * assert.deepEqual(serialize([1, "a", null]), new Uint8Array([0x93, 0x01, 0xa1, 0x61, 0xc0]));
 * ```
 */
export function serialize(value: unknown): Uint8Array {
  const fast = encodeFast(value);
  if (fast !== undefined) {
    if (fast.reshaped) markReshaped(fast.bytes);
    return fast.bytes;
  }
  return serializeGeneral(value);
}

/** The pre-pass, then msgpackr: what {@linkcode encodeFast} gives up on, and every refusal. */
function serializeGeneral(value: unknown): Uint8Array {
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

/**
 * Deserialize standard MessagePack (from this library or the Python/Rust SDKs).
 *
 * @throws {SerializationError} for bytes that are not one complete MessagePack value, or that hold
 * extensions other than the standard timestamp.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CalendarDate, deserialize } from "@cachekit/core/serializers";
 * // {"__date__": true, "value": "2024-01-31"} as Python's msgpack writes it
 * const bytes = new Uint8Array([
 *   0x82, 0xa8, ...new TextEncoder().encode("__date__"), 0xc3,
 *   0xa5, ...new TextEncoder().encode("value"), 0xaa, ...new TextEncoder().encode("2024-01-31"),
 * ]);
 * const date = deserialize(bytes);
 * assert.ok(date instanceof CalendarDate);
 * assert.equal(String(date), "2024-01-31");
 * ```
 */
export function deserialize(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) {
    throw new SerializationError("Cannot deserialize: expected a Uint8Array");
  }
  // Every map keyed by strings (the usual case): decode maps straight to objects, which is what
  // the general path would turn them into (see `_msgpack_scan.ts`). The same walk says whether the
  // post-pass has anything to do: no 64-bit ints, no marker-like maps, and no bins, or bins that
  // msgpackr copies as plain `Uint8Array`s (the input is one).
  const found = scan(bytes);
  const plain = found >= 0;
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
  // Bins come back as plain `Uint8Array`s when the input is one (msgpackr copies with its class).
  const work = bytes.constructor === Uint8Array ? found & ~SCAN_BIN : found;
  if (work === 0) return raw;
  if (work === SCAN_MARKER) {
    // Only maps that may be date markers: visit them, not the whole value.
    const paths = markerPaths(bytes);
    const done = paths === undefined ? undefined : finishMarkers(raw, paths);
    if (done !== undefined) return done;
  }
  try {
    return finish(raw, plain);
  } catch (e) {
    if (e instanceof SerializationError) throw e;
    throw new SerializationError(`Cannot deserialize: ${(e as Error)?.message ?? e}`, { cause: e });
  }
}

/**
 * {@linkcode deserialize} of the first `n` bytes of `buf`, which may be longer (the engine's L2
 * read: a reused view of the WebAssembly codec's memory, `protocol/_envelope_read.ts`). Same
 * result and errors as `deserialize(buf.subarray(0, n))`; in the usual case (the scan finds
 * nothing for the post-pass) msgpackr reads the reused view itself, so no view and no `DataView`
 * (msgpackr keeps it on its input) are made per read. Internal.
 */
export function deserializePrefix(buf: Uint8Array, n: number): unknown {
  const found = scan(buf, n);
  // As in `deserialize`: bins come back as plain `Uint8Array`s when the input is one.
  const work = found < 0 ? -1 : buf.constructor === Uint8Array ? found & ~SCAN_BIN : found;
  if (work !== 0) return deserialize(buf.subarray(0, n));
  try {
    return objectUnpackr.unpack(buf, n);
  } catch (e) {
    throw new SerializationError(
      `Cannot deserialize: not valid MessagePack (${(e as Error)?.message ?? e})`,
      { cause: e },
    );
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
