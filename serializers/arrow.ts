/**
 * The Arrow serializer (`serializer: "arrow"`): an Apache Arrow `Table` as an Arrow IPC **file**
 * (magic `ARROW1` at both ends), as cachekit-py 0.3.0's `ArrowSerializer` writes it with
 * `pa.ipc.new_file`, on `apache-arrow` (loaded on demand: see `arrow_module.ts`).
 *
 * - A `Table` is written as it is; a hit returns a `Table` (zero-copy over the bytes read).
 * - An array of flat records (`[{ id: 1, name: "a" }, …]`) is accepted and converted, one column
 *   per key (in order of first appearance; a missing key is null): numbers become `Float64`,
 *   strings `Utf8` (plain, not dictionary-encoded, so pandas reads `object`, not `category`),
 *   booleans `Bool`, bigints `Int64`, a column of nulls only `Null`. A column mixing kinds, a nested
 *   value (object, array, `Date`) or an empty array is refused. A hit returns a `Table`, not the
 *   records (`table.toArray()` gives rows back).
 * - A table Python wrote from a pandas or polars DataFrame reads as a `Table` with the schema
 *   metadata Python stored (the `pandas` key, its index as a `__index_level_0__` column).
 * - Anything else (a scalar, a plain object, `null`, `undefined`) throws `SerializationError`: the
 *   call is answered and not cached. Use `std` or `auto` for plain values.
 *
 * The 8-byte xxHash3-64 prefix 0.3.0 adds with integrity checking on belongs to the stored form,
 * not to these bytes: `protocol/_stored_framing.ts` adds and checks it. With integrity checking
 * off (cachekit-py then writes the bare file) nothing vouches for the bytes, and apache-arrow
 * does not bound what it allocates by the size of its input (one flipped byte in a record batch
 * header's vector length made its decoder exhaust the heap). So every file is first checked
 * against its own bytes (`_arrow_check.ts`): the magic at both ends, the footer, every block and
 * message inside the file, and in each batch every field node, buffer, offset and view against
 * its type and the body, nesting and row counts bounded. A file that fails is a
 * `SerializationError`, which the cache treats as a miss (and deletes the entry). A file that
 * passes can still hold other values than were written (without the checksum, a flipped bit in
 * a number is another number): keep integrity checking on where that matters.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as arrow from "apache-arrow";
 * import { ArrowSerializer, loadArrow } from "@cachekit/core/serializers";
 *
 * await loadArrow(arrow);
 * const s = new ArrowSerializer();
 * const bytes = s.serialize(arrow.tableFromArrays({ id: Int32Array.of(1, 2) }));
 * assert.equal(new TextDecoder().decode(bytes.subarray(0, 6)), "ARROW1");
 * const back = s.deserialize(bytes) as arrow.Table;
 * assert.deepEqual([...back.getChild("id")!], [1, 2]);
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import { type ArrowModule, arrowModule, loadArrow } from "./arrow_module.ts";
import { checkArrowFile } from "./_arrow_check.ts";
import type { Serializer } from "./types.ts";

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"

/**
 * Whether `b` starts (at `at`) with the Arrow IPC file magic `ARROW1`.
 *
 * @param b Bytes.
 * @param at Offset.
 */
export function hasArrowMagic(b: Uint8Array, at = 0): boolean {
  if (b.length < at + 6) return false;
  for (let i = 0; i < 6; i++) if (b[at + i] !== MAGIC[i]) return false;
  return true;
}

/**
 * An Arrow IPC file's bytes as a `Table`.
 *
 * @throws {SerializationError} Not an IPC file (magic at both ends), a structure that does not
 *   hold in its bytes (see the module doc), or apache-arrow refuses it.
 */
export function readArrowFile(bytes: Uint8Array): unknown {
  if (bytes.length < 12 || !hasArrowMagic(bytes, 0) || !hasArrowMagic(bytes, bytes.length - 6)) {
    throw new SerializationError("not an Arrow IPC file (no ARROW1 magic at both ends)");
  }
  const arrow = arrowModule();
  checkArrowFile(bytes);
  try {
    return arrow.tableFromIPC(bytes);
  } catch (e) {
    throw new SerializationError(
      `Arrow IPC file unreadable: ${(e as Error)?.message ?? String(e)}`,
      { cause: e },
    );
  }
}

/** Whether `v` is an array of flat records (plain objects of scalars). */
function isRecords(v: unknown): v is Record<string, unknown>[] {
  if (!Array.isArray(v) || v.length === 0) return false;
  for (const r of v) {
    if (typeof r !== "object" || r === null || Array.isArray(r)) return false;
    const proto = Object.getPrototypeOf(r);
    if (proto !== Object.prototype && proto !== null) return false;
    for (const k in r) {
      const x = (r as Record<string, unknown>)[k];
      if (x !== null && typeof x === "object") return false;
      if (typeof x === "function" || typeof x === "symbol") return false;
    }
  }
  return true;
}

/** One typed column per key of `rows` (see the module doc). */
function recordsTable(arrow: ArrowModule, rows: Record<string, unknown>[]): object {
  const keys = new Set<string>();
  for (const r of rows) for (const k in r) keys.add(k);
  const columns: Record<string, object> = {};
  for (const k of keys) {
    const values = rows.map((r) => r[k] ?? null);
    let kind: string | null = null;
    for (const v of values) {
      if (v === null) continue;
      const t: string = typeof v;
      if (kind === null) kind = t;
      else if (t !== kind) {
        throw new SerializationError(`records: column ${k} mixes ${kind} and ${t} values`);
      }
    }
    const type = kind === null
      ? new arrow.Null()
      : kind === "number"
      ? new arrow.Float64()
      : kind === "string"
      ? new arrow.Utf8()
      : kind === "boolean"
      ? new arrow.Bool()
      : kind === "bigint"
      ? new arrow.Int64()
      : null;
    if (type === null) throw new SerializationError(`records: column ${k} holds ${kind} values`);
    columns[k] = arrow.vectorFromArray(values, type as never);
  }
  return new (arrow.Table as new (c: Record<string, object>) => object)(columns);
}

/**
 * Apache Arrow tables as IPC files, shared with cachekit-py 0.3.0's `serializer="arrow"`. The
 * cache key ends in `s` as 0.3.0's does (its decorator never hashes the serializer), and entries
 * carry the serializer name `"arrow"` and format `"arrow"`. See the module doc.
 */
export class ArrowSerializer implements Serializer {
  /** `"arrow"`, as cachekit-py names it in its document. */
  readonly name = "arrow";
  /** `"s"`: cachekit-py 0.3.0 writes every key with the standard serializer's code. */
  readonly code = "s";
  /** `"arrow"` (the document's `metadata.format`). */
  readonly format = "arrow";

  /**
   * Load apache-arrow (the engine awaits it before a call reaches the cache).
   *
   * @returns When the module is loaded.
   */
  async prepare(): Promise<void> {
    await loadArrow();
  }

  /**
   * A `Table` (or an array of flat records) as an Arrow IPC file.
   *
   * @throws {SerializationError} Any other value, or apache-arrow not loaded.
   */
  serialize(value: unknown): Uint8Array {
    const arrow = arrowModule();
    let table = value;
    if (isRecords(value)) {
      try {
        table = recordsTable(arrow, value);
      } catch (e) {
        if (e instanceof SerializationError) throw e;
        throw new SerializationError(
          `records not convertible to an Arrow table: ${(e as Error)?.message ?? String(e)}`,
          { cause: e },
        );
      }
    }
    if (!(table instanceof arrow.Table)) {
      const what = value === null
        ? "null"
        : Array.isArray(value)
        ? "an array that is not of flat records"
        : typeof value === "object"
        ? (value.constructor?.name ?? "object")
        : typeof value;
      throw new SerializationError(
        `serializer "arrow" caches Arrow Tables and arrays of flat records, not ${what}` +
          ' (a Table from another copy of apache-arrow? pass yours to loadArrow(); plain values: serializer "std" or "auto")',
      );
    }
    return arrow.tableToIPC(table as never, "file");
  }

  /**
   * An Arrow IPC file as a `Table`.
   *
   * @throws {SerializationError} Not an IPC file, or apache-arrow not loaded.
   */
  deserialize(bytes: Uint8Array): unknown {
    return readArrowFile(bytes);
  }
}
