/**
 * Value serializers: how cached values become bytes.
 *
 * - {@linkcode StdSerializer} / {@linkcode serialize} / {@linkcode deserialize}: the standard
 *   MessagePack serializer shared with the Python and Rust cachekit SDKs (the default), with
 *   {@linkcode CalendarDate} and {@linkcode TimeOfDay} for Python's `date` and `time`;
 * - {@linkcode JsonSerializer}: UTF-8 JSON (this library's own format);
 * - {@linkcode OrjsonSerializer}: cachekit-py 0.3.0's `orjson` JSON, shared with Python;
 * - {@linkcode ArrowSerializer}: Apache Arrow tables as IPC files, shared with cachekit-py 0.3.0's
 *   `serializer="arrow"`; `apache-arrow` is loaded on demand ({@linkcode loadArrow});
 * - {@linkcode AutoSerializer}: what cachekit-py 0.3.0's `serializer="auto"` writes, NumPy arrays
 *   read as a {@linkcode NumpyArray};
 * - {@linkcode Serializer}: the interface a custom serializer implements.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deserialize, serialize } from "@cachekit/core/serializers";
 *
 * const at = new Date(Date.UTC(2025, 10, 14));
 * const back = deserialize(serialize({ name: "Ada", tags: ["x"], at }));
 * assert.deepEqual(back, { name: "Ada", tags: ["x"], at: new Date("2025-11-14T00:00:00.000Z") });
 * ```
 *
 * @module
 */
export type { Serializer } from "./types.ts";
export { CalendarDate, deserialize, serialize, StdSerializer, TimeOfDay } from "./std.ts";
export { JsonSerializer } from "./json.ts";
export { OrjsonSerializer } from "./orjson.ts";
export { ArrowSerializer } from "./arrow.ts";
export { AutoSerializer } from "./auto.ts";
export { arrowLoaded, type ArrowModule, loadArrow } from "./arrow_module.ts";
export { decodeNumpyRaw, type NumpyArray, type NumpyData } from "./numpy_array.ts";
