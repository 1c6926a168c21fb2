// The stored form of the arrow and auto serializers (protocol/_stored_framing.ts through the
// codec), byte for byte: cachekit-py 0.3.0's document (`serializer`, the exact metadata), the
// 8-byte big-endian xxHash3-64 prefix of the Arrow IPC file with integrity on (checked here against
// hash-wasm's xxh3 over the file, which is not the code under test's call), the file bare with it
// off; auto's plain values in the LZ4 + xxHash3 envelope with `compressed: false` as 0.3.0 writes
// them. And the strict reader: another serializer's document, a format not configured, a checksum
// that does not match, a flag 0.3.0 never writes: refused (a miss for the engine), never a value.
import assert from "node:assert/strict";
import * as arrow from "apache-arrow";
import { createXXHash3 } from "hash-wasm";
import { test } from "../_harness.ts";
import { ArrowSerializer, AutoSerializer, loadArrow } from "../../serializers/mod.ts";
import type { Serializer } from "../../serializers/mod.ts";
import {
  decodeStoredValue,
  encodeStoredValue,
  type StoredCodec,
} from "../../protocol/stored_value.ts";
import { decodeEnvelope, encodeEnvelope } from "../../protocol/envelope.ts";
import { storedFraming } from "../../protocol/internal.ts";
import { IntegrityError, SerializationError } from "../../errors.ts";

await loadArrow(arrow);
const hasher = await createXXHash3(0, 0);
const digest = (b: Uint8Array) => {
  hasher.init();
  hasher.update(b);
  return hasher.digest("binary");
};
const text = (b: Uint8Array) => new TextDecoder().decode(b);

function codec(s: Serializer, integrity: boolean, wire: "document" | "envelope" = "document") {
  return {
    identity: "t.f",
    serializer: s,
    policy: {
      serializer: s,
      acceptNames: new Set([s.name]),
      integrityChecking: integrity,
      limits: { maxSize: 64 << 20 },
      scratch: false,
      framing: storedFraming(s.name),
    },
    wire,
    envelopeProtocol: "1.0",
    secure: null,
  } satisfies StoredCodec;
}

const call = { tenant: "default", protoKey: "k", freshUntil: null };
const table = () =>
  arrow.tableFromArrays({ id: Int32Array.of(1, 2, 3), v: Float64Array.of(0.5, 1.5, 2.5) });
type Doc = { data: string; metadata: Record<string, unknown>; serializer: string; version: string };
const docOf = (stored: Uint8Array) => JSON.parse(text(stored)) as Doc;
const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const toB64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const stored = (d: Doc) => new TextEncoder().encode(JSON.stringify(d));

test("arrow stored, integrity on: 0.3.0's document, xxh3 prefix, then the IPC file", async () => {
  const t = table();
  const { stored: bytes, payload } = await encodeStoredValue(
    codec(new ArrowSerializer(), true),
    t,
    call,
  );
  const doc = docOf(bytes);
  assert.equal(doc.serializer, "arrow");
  assert.equal(doc.version, "2.0");
  const { ck_check, ...python } = doc.metadata;
  assert.deepEqual(python, {
    format: "arrow",
    encoding: "utf-8",
    compressed: false,
    original_type: "arrow",
  });
  const data = b64(doc.data);
  assert.match(String(ck_check), /^[0-9a-f]{16}$/, "our ck_check, which 0.3.0 ignores");
  const file = arrow.tableToIPC(t, "file");
  assert.deepEqual(payload, file);
  assert.equal(data.length, 8 + file.length);
  assert.deepEqual(data.subarray(0, 8), digest(file), "8-byte big-endian xxh3_64 digest");
  assert.equal(text(data.subarray(8, 14)), "ARROW1", "IPC file magic after the prefix");
  assert.deepEqual(data.subarray(14, 16), Uint8Array.of(0, 0), "magic padding");
  assert.equal(text(data.subarray(data.length - 6)), "ARROW1", "file trailer");
  assert.deepEqual(data.subarray(8), file);
  const back = decodeStoredValue(codec(new ArrowSerializer(), true), bytes, "default", "k");
  assert.ok(back instanceof arrow.Table);
  assert.deepEqual([...back.getChild("v")!], [0.5, 1.5, 2.5]);
});

test("arrow stored, integrity off: the bare IPC file", async () => {
  const t = table();
  const { stored: bytes } = await encodeStoredValue(codec(new ArrowSerializer(), false), t, call);
  const data = b64(docOf(bytes).data);
  assert.deepEqual(data, arrow.tableToIPC(t, "file"));
  const back = decodeStoredValue(codec(new ArrowSerializer(), false), bytes, "default", "k");
  assert.equal((back as arrow.Table).numRows, 3);
});

test("arrow and auto readers, integrity off: a corrupted IPC header is a SerializationError", () => {
  // Nothing vouches for the bare file: the structure checks stand between it and apache-arrow.
  // Byte 19 is the high byte of the first message's root offset: apache-arrow alone hung on it.
  const t = table();
  for (const s of [new ArrowSerializer(), new AutoSerializer()]) {
    const c = codec(s, false);
    const file = arrow.tableToIPC(t, "file").slice();
    file[19] = 75;
    const doc: Doc = {
      data: toB64(file),
      metadata: { format: "arrow", encoding: "utf-8", compressed: false, original_type: "arrow" },
      serializer: s.name,
      version: "2.0",
    };
    assert.throws(
      () => decodeStoredValue(c, stored(doc), "default", "k"),
      (e: unknown) => e instanceof SerializationError && /Arrow IPC file refused/.test(e.message),
      s.name,
    );
  }
});

test("arrow stored on the envelope wire: the same data in the framed form, read back", async () => {
  const c = codec(new ArrowSerializer(), true, "envelope");
  const { stored: bytes } = await encodeStoredValue(c, table(), call);
  const back = decodeStoredValue(c, bytes, "default", "k") as arrow.Table;
  assert.equal(back.numRows, 3);
});

test("arrow reader: a checksum mismatch is an IntegrityError, whichever byte flips", async () => {
  const c = codec(new ArrowSerializer(), true);
  const { stored: bytes } = await encodeStoredValue(c, table(), call);
  const doc = docOf(bytes);
  const data = b64(doc.data);
  for (const at of [0, 7, 8, 20, data.length - 1]) {
    const bad = data.slice();
    bad[at] ^= 1;
    assert.throws(
      () => decodeStoredValue(c, stored({ ...doc, data: toB64(bad) }), "default", "k"),
      IntegrityError,
      `byte ${at}`,
    );
  }
  assert.throws(
    () =>
      decodeStoredValue(c, stored({ ...doc, data: toB64(data.subarray(0, 30)) }), "default", "k"),
    IntegrityError,
  );
});

test("arrow reader: another serializer, another format, our envelope flags: refused", async () => {
  const c = codec(new ArrowSerializer(), true);
  const { stored: bytes } = await encodeStoredValue(c, table(), call);
  const doc = docOf(bytes);
  const refuse = (d: Doc, why: string) =>
    assert.throws(() => decodeStoredValue(c, stored(d), "default", "k"), why);
  refuse({ ...doc, serializer: "default" }, "serializer default");
  refuse({ ...doc, serializer: "auto" }, "serializer auto");
  refuse({ ...doc, metadata: { ...doc.metadata, format: "orjson" } }, "format orjson");
  refuse({ ...doc, metadata: { ...doc.metadata, format: "msgpack" } }, "format msgpack");
  refuse({ ...doc, metadata: { ...doc.metadata, compressed: true } }, "compressed");
  // Integrity off reads a prefixed file as no file at all.
  assert.throws(() =>
    decodeStoredValue(codec(new ArrowSerializer(), false), bytes, "default", "k")
  );
});

test("auto stored: plain values in the std envelope, compressed false, original_type msgpack", async () => {
  for (const integrity of [true, false]) {
    const c = codec(new AutoSerializer(), integrity);
    const value = { id: 7, at: new Date(Date.UTC(2025, 0, 2)), tags: ["a"] };
    const { stored: bytes, payload } = await encodeStoredValue(c, value, call);
    const doc = docOf(bytes);
    assert.equal(doc.serializer, "auto");
    assert.deepEqual(doc.metadata, {
      format: "msgpack",
      encoding: "utf-8",
      compressed: false,
      original_type: "msgpack",
    });
    const data = b64(doc.data);
    if (integrity) {
      const env = decodeEnvelope(data);
      assert.equal(env.format, "msgpack");
      assert.deepEqual(env.data, payload);
      assert.deepEqual(data, encodeEnvelope(payload, "msgpack", { protocol: "1.0" }));
    } else assert.deepEqual(data, payload);
    assert.deepEqual(decodeStoredValue(c, bytes, "default", "k"), value);
  }
});

test("auto reader: numpy and arrow entries of 0.3.0, and what it refuses", () => {
  const c = codec(new AutoSerializer(), true);
  const numpy = Uint8Array.from([
    ...new TextEncoder().encode("NUMPY_RAW\x05\x00int32\x04\x00\x02\x00\x00\x00"),
    ...new Uint8Array(Int32Array.of(-1, 5).buffer),
  ]);
  const md = (format: string, original_type: string) => ({
    format,
    encoding: "utf-8",
    compressed: false,
    original_type,
  });
  const d = (data: Uint8Array, metadata: Record<string, unknown>): Doc => ({
    data: toB64(data),
    metadata,
    serializer: "auto",
    version: "2.0",
  });
  const a = decodeStoredValue(c, stored(d(numpy, md("msgpack", "numpy"))), "default", "k") as {
    data: Int32Array;
    shape: number[];
    dtype: string;
  };
  assert.deepEqual([...a.data], [-1, 5]);
  assert.deepEqual(a.shape, [2]);
  assert.equal(a.dtype, "int32");
  const file = arrow.tableToIPC(table(), "file");
  const framed = Uint8Array.from([...digest(file), ...file]);
  const t = decodeStoredValue(c, stored(d(framed, md("arrow", "arrow"))), "default", "k");
  assert.ok(t instanceof arrow.Table);
  // Refused: numpy cut short, an arrow frame with a bad checksum, pandas' msgpack layouts,
  // a plain value without its envelope under integrity, another format.
  const refusals: Doc[] = [
    d(numpy.subarray(0, numpy.length - 1), md("msgpack", "numpy")),
    d(Uint8Array.from([framed[0] ^ 1, ...framed.subarray(1)]), md("arrow", "arrow")),
    d(Uint8Array.of(0x80), md("msgpack", "dataframe")),
    d(Uint8Array.of(0x80), md("msgpack", "series")),
    d(Uint8Array.of(0x80), md("msgpack", "msgpack")),
    d(Uint8Array.of(0x80), md("orjson", "orjson")),
  ];
  for (const doc of refusals) {
    assert.throws(() => decodeStoredValue(c, stored(doc), "default", "k"), JSON.stringify(doc));
  }
});

test("auto and arrow on the envelope wire, integrity on and off: written and read back", async () => {
  for (const integrity of [true, false]) {
    const auto = codec(new AutoSerializer(), integrity, "envelope");
    const value = { id: 1, tags: ["a"] };
    const a = await encodeStoredValue(auto, value, call);
    assert.deepEqual(decodeStoredValue(auto, a.stored, "default", "k"), value);
    // Bare MessagePack is no envelope for an integrity-checking reader. (The other way round, as in
    // 0.3.0, an integrity-off reader cannot tell an envelope from a list: the keys keep them apart,
    // `:1s` / `:0s`.)
    if (!integrity) {
      assert.throws(() =>
        decodeStoredValue(codec(new AutoSerializer(), true, "envelope"), a.stored, "default", "k")
      );
    }
    const arr = codec(new ArrowSerializer(), integrity, "envelope");
    const t = await encodeStoredValue(arr, table(), call);
    assert.equal((decodeStoredValue(arr, t.stored, "default", "k") as arrow.Table).numRows, 3);
  }
});
