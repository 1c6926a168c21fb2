// The structure checks of Arrow IPC files (serializers/_arrow_check.ts), on the path a function
// with integrity checking off takes (no checksum in front: every byte reaches the reader): files
// apache-arrow writes pass and read back; the mutation that hung apache-arrow's reader (found by
// the `arrow` fuzz target before the checks) and inflated lengths are SerializationErrors; 2,500
// mutated files through the reader stay typed and within a heap bound.
import assert from "node:assert/strict";
import process from "node:process";
import * as arrow from "apache-arrow";
import { test } from "../_harness.ts";
import {
  ArrowSerializer,
  AutoSerializer,
  decodeNumpyRaw,
  loadArrow,
} from "../../serializers/mod.ts";
import { SerializationError } from "../../errors.ts";
import { checkArrowFile } from "../../serializers/_arrow_check.ts";
import { Fb } from "../../serializers/_flatbuffer.ts";
import { arrowCorpus, arrowTables } from "../../fuzz/_arrow_corpus.ts";
import { inputFor } from "../../fuzz/fuzz.ts";
import { createTargets } from "../../fuzz/_targets.ts";

await loadArrow(arrow);
const s = new ArrowSerializer();
const auto = new AutoSerializer();
const json = (t: arrow.Table) =>
  JSON.stringify(
    t.toArray().map((r) => r?.toJSON()),
    (_k, v) => typeof v === "bigint" ? `${v}n` : v,
  );

test("arrow check: every layout apache-arrow writes passes and reads back the same", () => {
  const tables = arrowTables();
  arrowCorpus().forEach((file, i) => {
    checkArrowFile(file);
    assert.equal(json(s.deserialize(file) as arrow.Table), json(tables[i]));
  });
});

/** The record batch message of a one-batch file: its metadata as a FlatBuffers reader. */
function firstBatch(file: Uint8Array) {
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  assert.equal(view.getInt32(8, true), -1); // continuation marker, then the length
  const start = 16;
  const fb = new Fb(file.subarray(start, start + view.getInt32(12, true)));
  const header = fb.table(fb.root(), 2);
  return { view, start, fb, header };
}

const refused = (bytes: Uint8Array, what: RegExp) => {
  for (
    const read of [(b: Uint8Array) => s.deserialize(b), (b: Uint8Array) => auto.deserialize(b)]
  ) {
    assert.throws(
      () => read(bytes),
      (e: unknown) => e instanceof SerializationError && what.test(e.message),
    );
  }
};

test("arrow check: the input that hung apache-arrow's reader is a SerializationError", () => {
  // Fuzz seed 1, target arrow, input 9: byte 19 of a two-batch file set to 75 (the high byte of
  // the message's root offset). apache-arrow 21 alone ran past 30 s and its heap limit on it.
  const file = arrowCorpus()[6].slice();
  file[19] = 75;
  refused(file, /Arrow IPC file refused/);
});

test("arrow check: inflated lengths (field nodes, buffers, body, footer, block) are refused", () => {
  const base = arrow.tableToIPC(arrow.tableFromArrays({ x: Int32Array.of(1, 2, 3) }), "file");
  const { view, start, fb, header } = firstBatch(base);
  const nodes = fb.vector(header, 1, 16);
  const buffers = fb.vector(header, 2, 16);
  const cases: [string, (b: DataView) => void, RegExp][] = [
    // The mutation that exhausted apache-arrow's heap: a vector's length.
    ["node count", (b) => b.setInt32(start + nodes.at - 4, 0x7fffffff, true), /vector of/],
    ["buffer count", (b) => b.setInt32(start + buffers.at - 4, 0x10000000, true), /vector of/],
    ["node length", (b) => b.setInt32(start + nodes.at, 1 << 30, true), /buffer of|column not/],
    ["null count", (b) => b.setInt32(start + nodes.at + 8, 4, true), /nulls in a node/],
    ["node length > 2^31", (b) => b.setInt32(start + nodes.at + 4, 1, true), /node of length/],
    ["buffer length", (b) => b.setInt32(start + buffers.at + 24, 1 << 30, true), /outside a body/],
    ["buffer offset", (b) => b.setInt32(start + buffers.at + 16, -8, true), /outside a body/],
    ["footer length", (b) => b.setInt32(b.byteLength - 10, 1 << 30, true), /footer of/],
    ["metadata length", (b) => b.setInt32(12, 1 << 30, true), /message metadata/],
  ];
  assert.equal(view.getInt32(start + nodes.at, true), 3);
  for (const [what, mutate, message] of cases) {
    const file = base.slice();
    mutate(new DataView(file.buffer));
    assert.throws(
      () => checkArrowFile(file),
      (e: unknown) => e instanceof SerializationError && message.test(e.message),
      what,
    );
    refused(file, /Arrow IPC file refused/);
  }
  // Offsets of a string column that go backwards or past the data.
  const utf8 = arrow.vectorFromArray(["ab", "cd"], new arrow.Utf8());
  const strings = arrow.tableToIPC(new arrow.Table({ s: utf8 }), "file").slice();
  const sb = firstBatch(strings);
  const offs = sb.fb.vector(sb.header, 2, 16);
  const bodyAt = sb.start + sb.view.getInt32(12, true);
  const offAt = bodyAt +
    Number(new DataView(strings.buffer).getBigInt64(sb.start + offs.at + 16, true));
  for (const [i, v, message] of [[1, 5, /offset/], [2, 1 << 20, /data buffer/]] as const) {
    const file = strings.slice();
    new DataView(file.buffer).setInt32(offAt + 4 * i, v, true);
    assert.throws(
      () => checkArrowFile(file),
      (e: unknown) => e instanceof SerializationError && message.test(e.message),
    );
  }
});

test("arrow check: 2,500 mutated files through the integrity-off reader, typed and heap-bounded", async () => {
  const [target] = await createTargets(["arrow"]);
  const heap0 = process.memoryUsage().heapUsed;
  let peak = heap0;
  const counts = { table: 0, refused: 0 };
  // Half the systematic phase's first inputs (bit flips of the first files), half random ones.
  const indexes = [...Array(1250).keys(), ...Array.from({ length: 1250 }, (_, i) => 200_000 + i)];
  for (const i of indexes) {
    const { bytes } = inputFor(target, 20_261_204, i);
    try {
      const v = s.deserialize(bytes);
      assert.ok(v instanceof arrow.Table);
      counts.table++;
    } catch (e) {
      assert.ok(e instanceof SerializationError, `input ${i}: ${e}`);
      counts.refused++;
    }
    if ((i & 63) === 0) peak = Math.max(peak, process.memoryUsage().heapUsed);
  }
  assert.equal(counts.table + counts.refused, 2500);
  assert.ok(counts.refused > 500 && counts.table > 100, JSON.stringify(counts));
  // A corrupted header used to make apache-arrow allocate until the process died; 256 MiB is
  // far above what reading 2,500 files of ~1 kB needs and far below that.
  assert.ok(peak - heap0 < 256 * 1024 * 1024, `heap grew ${(peak - heap0) >> 20} MiB`);
});

test("numpy: more than 64 dimensions, or a shape whose product overflows, is refused", () => {
  const head = (dims: number[]) => {
    const dt = new TextEncoder().encode("uint8");
    const out = new Uint8Array(9 + 2 + dt.length + 2 + 4 * dims.length);
    const v = new DataView(out.buffer);
    out.set(new TextEncoder().encode("NUMPY_RAW"));
    v.setUint16(9, dt.length, true);
    out.set(dt, 11);
    v.setUint16(11 + dt.length, 4 * dims.length, true);
    dims.forEach((d, i) => v.setUint32(13 + dt.length + 4 * i, d, true));
    return out;
  };
  assert.throws(() => decodeNumpyRaw(head(Array(65).fill(1))), /65 dimensions/);
  assert.equal(
    decodeNumpyRaw(new Uint8Array([...head(Array(64).fill(1)), 7])).shape.length,
    64,
  );
  // 2^32-1 squared, four times: far past 2^53, never equal to the 0 bytes that follow.
  assert.throws(
    () => decodeNumpyRaw(head([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff])),
    SerializationError,
  );
  assert.deepEqual(decodeNumpyRaw(head([0, 0xffffffff])).shape, [0, 0xffffffff]);
});
