// The Arrow and auto serializers and the NUMPY_RAW reader, without a backend: round trips through
// apache-arrow's own writer and reader (our bytes are exactly `tableToIPC(table, "file")`, and
// apache-arrow's `RecordBatchFileReader` reads them), records converted, everything else refused
// with a SerializationError; NumPy arrays in cachekit-py 0.3.0's `_serialize_numpy` layout built
// here byte by byte from its source (dtype, shape, exact length, byte order).
import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import { test } from "../_harness.ts";
import {
  ArrowSerializer,
  AutoSerializer,
  decodeNumpyRaw,
  loadArrow,
  serialize as stdSerialize,
} from "../../serializers/mod.ts";
import { SerializationError } from "../../errors.ts";

await loadArrow(arrow);
const s = new ArrowSerializer();
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function sample(): arrow.Table {
  return arrow.tableFromArrays({
    id: Int32Array.of(1, 2, 3),
    score: Float64Array.of(0.5, -1, 1e300),
    name: ["ada", "bob", "ünï"],
  });
}

test("arrow: a Table is written as apache-arrow's IPC file, ARROW1 at both ends", () => {
  const t = sample();
  const bytes = s.serialize(t);
  assert.deepEqual(bytes, arrow.tableToIPC(t, "file"));
  assert.equal(text(bytes.subarray(0, 6)), "ARROW1");
  assert.equal(text(bytes.subarray(bytes.length - 6)), "ARROW1");
  // apache-arrow's own file reader, not tableFromIPC.
  const reader = arrow.RecordBatchFileReader.from(bytes).open();
  assert.ok(reader.isFile());
  assert.equal(reader.numRecordBatches, 1);
  const back = new arrow.Table(reader.readAll());
  assert.deepEqual(back.toArray().map((r) => r.toJSON()), t.toArray().map((r) => r.toJSON()));
});

test("arrow: a hit is a Table equal to what apache-arrow wrote, schema metadata kept", () => {
  const t = sample();
  const meta = new Map([["pandas", '{"index_columns": []}']]);
  const withMeta = new arrow.Table(new arrow.Schema(t.schema.fields, meta), t.batches);
  const back = s.deserialize(arrow.tableToIPC(withMeta, "file")) as arrow.Table;
  assert.ok(back instanceof arrow.Table);
  assert.equal(back.schema.metadata.get("pandas"), '{"index_columns": []}');
  assert.deepEqual([...back.getChild("name")!], ["ada", "bob", "ünï"]);
  assert.deepEqual([...back.getChild("score")!], [0.5, -1, 1e300]);
});

test("arrow: an array of flat records is converted to a Table of plain typed columns", () => {
  const rows = [{ id: 1, name: "a", ok: true, n: 5n }, { id: 2.5, name: "b", ok: false }];
  const back = s.deserialize(s.serialize(rows)) as arrow.Table;
  assert.equal(back.numRows, 2);
  assert.deepEqual(back.toArray().map((r) => r.toJSON()), [
    { id: 1, name: "a", ok: true, n: 5n },
    { id: 2.5, name: "b", ok: false, n: null },
  ]);
  assert.deepEqual(
    back.schema.fields.map((f) => `${f.name}:${f.type}`),
    ["id:Float64", "name:Utf8", "ok:Bool", "n:Int64"],
    "strings plain Utf8, not dictionary-encoded (pandas would read a category)",
  );
  assert.throws(() => s.serialize([{ a: 1 }, { a: "x" }]), /column a mixes number and string/);
  assert.throws(() => s.serialize([{ a: new Date(0) }]), SerializationError);
});

test("arrow: anything but a Table or flat records is refused with a SerializationError", () => {
  for (
    const v of [null, undefined, 42, "x", { a: 1 }, [], [1, 2], [{ a: { nested: 1 } }], new Map()]
  ) {
    assert.throws(() => s.serialize(v), SerializationError, String(v));
  }
  assert.throws(() => s.serialize(7), /serializer "arrow" caches Arrow Tables/);
});

test("arrow: bytes that are not an IPC file are refused, never read", () => {
  const file = s.serialize(sample());
  for (
    const bad of [
      new Uint8Array(0),
      file.subarray(0, file.length - 1),
      file.subarray(1),
      arrow.tableToIPC(sample(), "stream"),
      stdSerialize({ a: 1 }),
    ]
  ) assert.throws(() => s.deserialize(bad), SerializationError);
});

test("arrow: loadArrow refuses what is not the apache-arrow module", async () => {
  await assert.rejects(loadArrow({ tableFromIPC: 1 }), SerializationError);
  assert.equal(await loadArrow(arrow), arrow);
});

/** `_serialize_numpy` of cachekit-py 0.3.0, with `struct`-like packing. */
function numpyRaw(dtype: string, shape: number[], body: Uint8Array): Uint8Array {
  const dt = new TextEncoder().encode(dtype);
  const out = new Uint8Array(9 + 2 + dt.length + 2 + 4 * shape.length + body.length);
  const v = new DataView(out.buffer);
  out.set(new TextEncoder().encode("NUMPY_RAW"));
  let at = 9;
  v.setUint16(at, dt.length, true);
  out.set(dt, at + 2);
  at += 2 + dt.length;
  v.setUint16(at, 4 * shape.length, true);
  at += 2;
  for (const d of shape) {
    v.setUint32(at, d, true);
    at += 4;
  }
  out.set(body, at);
  return out;
}

test("numpy: NUMPY_RAW of every dtype read reads as its typed array, shape and dtype", () => {
  const cases: [string, ArrayBufferView & { length: number }, unknown[]][] = [
    ["float64", Float64Array.of(1.5, -2, 3, 4, 5, 6), [1.5, -2, 3, 4, 5, 6]],
    ["float32", Float32Array.of(0.5, 2, 3, 4, 5, 6), [0.5, 2, 3, 4, 5, 6]],
    ["int64", BigInt64Array.of(-1n, 2n ** 62n, 3n, 4n, 5n, 6n), [-1n, 2n ** 62n, 3n, 4n, 5n, 6n]],
    ["uint64", BigUint64Array.of(2n ** 64n - 1n, 0n, 1n, 2n, 3n, 4n), [
      2n ** 64n - 1n,
      0n,
      1n,
      2n,
      3n,
      4n,
    ]],
    ["int32", Int32Array.of(-7, 0, 1, 2, 3, 4), [-7, 0, 1, 2, 3, 4]],
    ["uint16", Uint16Array.of(65535, 0, 1, 2, 3, 4), [65535, 0, 1, 2, 3, 4]],
    ["int8", Int8Array.of(-128, 0, 1, 2, 3, 4), [-128, 0, 1, 2, 3, 4]],
    ["bool", Uint8Array.of(1, 0, 1, 1, 0, 0), [1, 0, 1, 1, 0, 0]],
  ];
  for (const [dtype, arr, values] of cases) {
    const body = new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength);
    const a = decodeNumpyRaw(numpyRaw(dtype, [2, 3], body));
    assert.equal(a.dtype, dtype);
    assert.deepEqual(a.shape, [2, 3]);
    assert.deepEqual([...a.data as Iterable<unknown>], values, dtype);
    assert.equal(a.data.constructor, arr.constructor, dtype);
  }
  // A 0-d array has one element; an empty one none.
  assert.deepEqual([...decodeNumpyRaw(numpyRaw("float64", [], new Uint8Array(8))).data], [0]);
  assert.equal(decodeNumpyRaw(numpyRaw("int32", [0, 5], new Uint8Array(0))).data.length, 0);
});

test("numpy: a wrong length, an unknown dtype or an explicit byte order is refused", () => {
  const body = new Uint8Array(Float64Array.of(1, 2).buffer);
  for (
    const bad of [
      numpyRaw("float64", [3], body), // too short
      numpyRaw("float64", [1], body), // too long
      numpyRaw(">f8", [2], body),
      numpyRaw("<U3", [2], new Uint8Array(24)),
      numpyRaw("object", [2], new Uint8Array(16)),
      numpyRaw("complex128", [1], new Uint8Array(16)),
      numpyRaw("float64", [2], body).subarray(0, 12), // header cut
    ]
  ) assert.throws(() => decodeNumpyRaw(bad), SerializationError);
  const odd = numpyRaw("float64", [2], body);
  odd[9 + 2 + 7] = 3; // shape length not a multiple of 4
  assert.throws(() => decodeNumpyRaw(odd), SerializationError);
});

test("auto: reads NUMPY_RAW, Arrow files and MessagePack by what the payload holds", () => {
  const auto = new AutoSerializer();
  const body = new Uint8Array(Float64Array.of(1, 2, 3, 4).buffer);
  const a = auto.deserialize(numpyRaw("float64", [2, 2], body)) as { shape: number[] };
  assert.deepEqual(a.shape, [2, 2]);
  const t = auto.deserialize(arrow.tableToIPC(sample(), "file"));
  assert.ok(t instanceof arrow.Table);
  const at = new Date(Date.UTC(2025, 0, 2));
  assert.deepEqual(auto.deserialize(auto.serialize({ x: [1, "a"], at })), { x: [1, "a"], at });
  // Exactly the standard serializer's bytes (0.3.0's auto and standard share the msgpack form).
  assert.deepEqual(auto.serialize({ x: [1, "a"], at }), stdSerialize({ x: [1, "a"], at }));
  assert.throws(() => auto.serialize(sample()), SerializationError);
  assert.throws(() => auto.deserialize(new Uint8Array(0)), SerializationError);
});

test("auto: 0.3.0's __uuid__ and __set__ markers read as a string and a Set, strictly", () => {
  const auto = new AutoSerializer();
  const u = "12345678-1234-5678-1234-567812345678";
  const bytes = stdSerialize({
    ids: [{ __uuid__: true, value: u }],
    tags: { __set__: true, value: ["a", { __uuid__: true, value: u }], frozen: true },
    notMarker: { __set__: 1, value: [] },
  });
  assert.deepEqual(auto.deserialize(bytes), {
    ids: [u],
    tags: new Set(["a", u]),
    notMarker: { __set__: 1, value: [] },
  });
  for (
    const bad of [
      { __uuid__: true },
      { __uuid__: true, value: 5 },
      { __set__: true, value: "ab" },
      { __set__: true },
    ]
  ) assert.throws(() => auto.deserialize(stdSerialize([bad])), SerializationError);
  // No marker key in the bytes: the value is returned as decoded, not walked.
  const plain = { a: [1, { b: "__set" }] };
  assert.deepEqual(auto.deserialize(stdSerialize(plain)), plain);
});

test("arrow and auto are refused with interop mode (not cross-checked yet)", async () => {
  const { cache } = await import("../../mod.ts");
  const { CacheConfigError } = await import("../../errors.ts");
  for (const serializer of ["arrow", "auto"] as const) {
    assert.throws(
      () =>
        cache((n: number) => n, {
          serializer,
          interop: { namespace: "ns", operation: "op" },
          backend: null,
        }),
      (e: unknown) => e instanceof CacheConfigError && /does not support it yet/.test(e.message),
      serializer,
    );
  }
});
