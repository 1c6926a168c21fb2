/**
 * The auto serializer (`serializer: "auto"`): reads what cachekit-py 0.3.0's `AutoSerializer`
 * writes for the types JavaScript has a twin for, and writes plain values as it does.
 *
 * What a payload holds decides how it is read, as in 0.3.0's `deserialize`:
 *
 * - `NUMPY_RAW…` (a NumPy array, `_serialize_numpy`) → a {@linkcode NumpyArray}
 *   (`{ data, shape, dtype }`, see `numpy_array.ts`);
 * - `ARROW1…` (a DataFrame 0.3.0 wrote through its Arrow serializer) → an Apache Arrow `Table`,
 *   once `apache-arrow` is loaded (`await loadArrow()`; auto never loads it itself, so that its
 *   users who never read tables pay nothing — until then such an entry is a miss);
 * - anything else → MessagePack, read and written exactly as the standard serializer does (0.3.0's
 *   auto and standard serializers share the format and the `__datetime__` / `__date__` /
 *   `__time__` markers); auto's own markers are read too: a `UUID` as its string, a `set` or
 *   `frozenset` as a `Set` (`_auto_markers.ts`). Writing a `Set` is refused, as with `std`.
 *
 * Values 0.3.0's auto writes in a layout of its own without pyarrow (`dataframe`, `series`) are
 * refused: a miss. A function's `undefined` is stored as nil, Python's `None`, as 0.3.0 would
 * store it: the call and every later hit answer `null` (as in interop mode). Writing, only plain values are accepted (the standard serializer's values); a
 * `Table` or a `NumpyArray` is refused — use `serializer: "arrow"` for tables.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AutoSerializer } from "@cachekit/core/serializers";
 *
 * const auto = new AutoSerializer();
 * assert.deepEqual(auto.deserialize(auto.serialize({ id: 7, tags: ["a"] })), { id: 7, tags: ["a"] });
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import { hasArrowMagic, readArrowFile } from "./arrow.ts";
import { mayHoldAutoMarkers, reviveAutoMarkers } from "./_auto_markers.ts";
import { decodeNumpyRaw, isNumpyRaw } from "./numpy_array.ts";
import { StdSerializer } from "./std.ts";
import type { Serializer } from "./types.ts";

const std = new StdSerializer();

/**
 * cachekit-py 0.3.0's `serializer="auto"`, for the values JavaScript has a twin for. Keys end in
 * `s` as 0.3.0's do; entries carry the serializer name `"auto"`. See the module doc.
 */
export class AutoSerializer implements Serializer {
  /** `"auto"`, as cachekit-py names it in its document. */
  readonly name = "auto";
  /** `"s"`: cachekit-py 0.3.0 writes every key with the standard serializer's code. */
  readonly code = "s";
  /** `"msgpack"`: the format of what it writes. */
  readonly format = "msgpack";

  /**
   * A plain value as MessagePack (as the standard serializer writes it).
   *
   * @throws {SerializationError} A value MessagePack cannot hold for Python.
   */
  serialize(value: unknown): Uint8Array {
    return std.serialize(value);
  }

  /**
   * A NumPy array, an Arrow table or a MessagePack value, by what the bytes hold.
   *
   * @throws {SerializationError} Bytes none of these readers accepts, or an Arrow file while
   *   apache-arrow is not loaded.
   */
  deserialize(bytes: Uint8Array): unknown {
    if (isNumpyRaw(bytes)) return decodeNumpyRaw(bytes);
    if (hasArrowMagic(bytes, 0)) return readArrowFile(bytes);
    if (bytes.length === 0) throw new SerializationError("empty payload");
    const value = std.deserialize(bytes);
    return mayHoldAutoMarkers(bytes) ? reviveAutoMarkers(value) : value;
  }
}
