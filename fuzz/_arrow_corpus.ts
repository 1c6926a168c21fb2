/**
 * Valid Arrow IPC files of every layout the checks of `serializers/_arrow_check.ts` know (fixed
 * widths, bits, offsets of 32 and 64 bits, lists, fixed-size lists, structs, maps, sparse and
 * dense unions, dictionaries, nulls, several batches, 64-bit offsets, views), written by apache-arrow: the corpus of the
 * `arrow` fuzz target and of the tests that mutate files.
 *
 * @module
 */
import * as arrow from "apache-arrow";

function file(table: arrow.Table): Uint8Array {
  return arrow.tableToIPC(table, "file");
}

function vec<T extends arrow.DataType>(type: T, values: unknown[]): arrow.Vector<T> {
  return arrow.vectorFromArray(values as never, type);
}

/** The tables of the corpus (small: a fuzz input runs in microseconds). */
export function arrowTables(): arrow.Table[] {
  const ints = arrow.tableFromArrays({
    i8: Int8Array.of(1, -2, 3),
    u16: Uint16Array.of(1, 2, 65535),
    i32: Int32Array.of(7, 8, 9),
    i64: BigInt64Array.of(1n, -1n, 1n << 40n),
    f32: Float32Array.of(0.5, 1.5, -2),
    f64: Float64Array.of(1e300, -0, 3),
  });
  const strings = new arrow.Table({
    s: vec(new arrow.Utf8(), ["ada", null, "ünï", ""]),
    ls: vec(new arrow.LargeUtf8(), ["x", "yy", null, "zzz"]),
    b: vec(new arrow.Binary(), [Uint8Array.of(1), null, Uint8Array.of(2, 3), Uint8Array.of()]),
    ok: vec(new arrow.Bool(), [true, false, null, true]),
    n: vec(new arrow.Null(), [null, null, null, null]),
  });
  const times = new arrow.Table({
    day: vec(new arrow.DateDay(), [new Date(0), new Date(86_400_000)]),
    ms: vec(new arrow.DateMillisecond(), [new Date(5), null]),
    ts: vec(new arrow.TimestampMicrosecond("UTC"), [1_000_000, 2_000_000]),
    t: vec(new arrow.TimeMillisecond(), [1000, 2000]),
    dur: vec(new arrow.Duration(arrow.TimeUnit.SECOND), [1n, 2n]),
    fsb: vec(new arrow.FixedSizeBinary(3), [Uint8Array.of(1, 2, 3), null]),
  });
  const nested = new arrow.Table({
    list: vec(new arrow.List(new arrow.Field("item", new arrow.Int32(), true)), [
      [1, 2],
      null,
      [],
      [3],
    ]),
    fixed: vec(new arrow.FixedSizeList(2, new arrow.Field("item", new arrow.Float64())), [
      [1, 2],
      [3, 4],
      null,
      [5, 6],
    ]),
    st: vec(
      new arrow.Struct([
        new arrow.Field("a", new arrow.Int16(), true),
        new arrow.Field("b", new arrow.Utf8(), true),
      ]),
      [{ a: 1, b: "x" }, null, { a: 3, b: null }, { a: 4, b: "yz" }],
    ),
    map: vec(
      new arrow.Map_(
        new arrow.Field(
          "entries",
          new arrow.Struct([
            new arrow.Field("key", new arrow.Utf8(), false),
            new arrow.Field("value", new arrow.Int32(), true),
          ] as never),
        ),
      ),
      [new Map([["k", 1]]), null, new Map(), new Map([["a", 2], ["b", 3]])],
    ),
  });
  const unionChildren = [
    new arrow.Field("i", new arrow.Int32(), true),
    new arrow.Field("s", new arrow.Utf8(), true),
  ];
  const union = (type: arrow.DenseUnion | arrow.SparseUnion, values: (number | string)[]) => {
    const b = arrow.makeBuilder({
      type,
      nullValues: [],
      valueToChildTypeId: (_b: unknown, v: unknown) => typeof v === "number" ? 0 : 1,
    } as never) as arrow.Builder;
    for (const v of values) b.append(v);
    return b.finish().toVector();
  };
  const unions = new arrow.Table({
    dense: union(new arrow.DenseUnion([0, 1], unionChildren), [1, "a", 2, "bc"]),
    sparse: union(new arrow.SparseUnion([0, 1], unionChildren), ["x", 5, "y", 6]),
  });
  const dict = new arrow.Table({
    cat: vec(new arrow.Dictionary(new arrow.Utf8(), new arrow.Int8()), ["a", "b", "a", null, "c"]),
    n: arrow.makeVector(Float64Array.of(1, 2, 3, 4, 5)),
  });
  const batches = new arrow.Table([
    ...arrow.tableFromArrays({ x: Int32Array.of(1, 2) }).batches,
    ...arrow.tableFromArrays({ x: Int32Array.of(3, 4, 5) }).batches,
  ]);
  const schemaMeta = new arrow.Table(
    new arrow.Schema(ints.schema.fields, new Map([["pandas", '{"index_columns": []}']])),
    ints.batches,
  );
  const more = new arrow.Table({
    lb: vec(new arrow.LargeBinary(), [Uint8Array.of(1, 2), null, Uint8Array.of(3)]),
    ll: vec(new arrow.LargeList(new arrow.Field("item", new arrow.Int32(), true)) as never, [
      [1],
      null,
      [2, 3],
    ]),
    t64: vec(new arrow.TimeNanosecond(), [1n, 2n, null]),
    iv: vec(new arrow.IntervalDayTime(), [Int32Array.of(1, 2), Int32Array.of(3, 4), null]),
    view: vec(new arrow.Utf8View(), ["short", "a string longer than twelve", null]),
    f16: vec(new arrow.Float16(), [1, 2.5, null]),
  });
  return [ints, strings, times, nested, unions, dict, batches, schemaMeta, more];
}

/** The corpus: each table of {@linkcode arrowTables} as an IPC file. */
export function arrowCorpus(): Uint8Array[] {
  return arrowTables().map(file);
}
