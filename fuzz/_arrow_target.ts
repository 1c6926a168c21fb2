/**
 * The `arrow` fuzz target: Arrow IPC files (and cachekit-py's `NUMPY_RAW` arrays) read as a
 * function with integrity checking off reads them — no checksum in front, so every mutated byte
 * reaches the structure checks (`serializers/_arrow_check.ts`) and, past them, apache-arrow.
 *
 * Read through the auto serializer, which hands `ARROW1…` to the Arrow serializer's reader and
 * `NUMPY_RAW…` to `decodeNumpyRaw` (a mutated magic lands in MessagePack: also checked). Oracle:
 * a `SerializationError`, or a value whose structure holds — a `Table` whose every column is as
 * long as the table and whose every cell reads (each row turned to JSON), or a `NumpyArray` whose
 * `data` holds exactly its shape's elements. Without a checksum a mutated file may hold other
 * values, names or types than were written; that is what integrity checking is for.
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { SerializationError } from "../errors.ts";
import { AutoSerializer, loadArrow, type NumpyArray } from "../serializers/mod.ts";
import { arrowCorpus } from "./_arrow_corpus.ts";
import { describe, OK, type Outcome, type Target, thrown } from "./_common.ts";

function numpyRaw(dtype: string, shape: number[], data: Uint8Array): Uint8Array {
  const enc = new TextEncoder();
  const dt = enc.encode(dtype);
  const head = new Uint8Array(9 + 2 + dt.length + 2 + 4 * shape.length);
  const v = new DataView(head.buffer);
  head.set(enc.encode("NUMPY_RAW"));
  v.setUint16(9, dt.length, true);
  head.set(dt, 11);
  v.setUint16(11 + dt.length, 4 * shape.length, true);
  shape.forEach((d, i) => v.setUint32(13 + dt.length + 4 * i, d, true));
  const out = new Uint8Array(head.length + data.length);
  out.set(head);
  out.set(data, head.length);
  return out;
}

/** A `Table`'s structure holds: every column as long as the table, every cell readable. */
function tableHolds(t: arrow.Table): Outcome {
  try {
    for (const field of t.schema.fields) {
      const c = t.getChild(field.name);
      if (c !== null && c.length !== t.numRows) {
        return { verdict: "wrong", detail: `column ${field.name}: ${c.length} of ${t.numRows}` };
      }
    }
    let n = 0;
    for (const row of t) {
      JSON.stringify(row?.toJSON(), (_k, x) => typeof x === "bigint" ? String(x) : x);
      n++;
    }
    if (n !== t.numRows) return { verdict: "wrong", detail: `${n} rows of ${t.numRows}` };
    return OK;
  } catch (e) {
    // apache-arrow's getters refuse a 64-bit value (a date, a timestamp) beyond 2^53 as a
    // number, as they would for a valid file holding it: a value, not the structure.
    if (e instanceof TypeError && /is not safe to convert to a number/.test(e.message)) return OK;
    return { verdict: "untyped", detail: `reading the table: ${describe(e)}` };
  }
}

/** The `arrow` target (loads apache-arrow). */
export async function arrowTarget(): Promise<Target> {
  await loadArrow(arrow);
  const auto = new AutoSerializer();
  const corpus = [
    ...arrowCorpus(),
    numpyRaw("float64", [2, 2], new Uint8Array(Float64Array.of(1, 2, 3, 4).buffer)),
    numpyRaw("int16", [3], new Uint8Array(Int16Array.of(1, -2, 3).buffer)),
  ];
  return {
    name: "arrow",
    description:
      "Arrow IPC files and NUMPY_RAW with integrity off (auto serializer): SerializationError, " +
      "or a Table / array whose structure holds",
    corpus,
    share: 3,
    run(bytes) {
      let v: unknown;
      try {
        v = auto.deserialize(bytes);
      } catch (e) {
        return thrown(e, [SerializationError]);
      }
      if (v instanceof arrow.Table) return tableHolds(v);
      const a = v as Partial<NumpyArray>;
      if (a?.shape !== undefined && a.data !== undefined) {
        const want = a.shape.reduce((p, d) => p * d, 1);
        if (a.data.length !== want) {
          return { verdict: "wrong", detail: `${a.data.length} elements, shape [${a.shape}]` };
        }
      }
      return OK;
    },
  };
}
