// The engine's L2 read leaves the envelope's data where the WebAssembly codec wrote it, in one view
// of the codec's memory reused by every read and longer than the data, and deserializes the view's
// first `n` bytes (`deserializePrefix`, `scan(b, n)`, `openCheckedPrefix`). Oracle: the same
// functions on the exact bytes. What follows the data must never be read as part of it, even when
// it would complete a truncated value.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { scan } from "../../serializers/_msgpack_scan.ts";
import { deserialize, deserializePrefix, serialize, StdSerializer } from "../../serializers/std.ts";
import { SerializationError } from "../../errors.ts";
import { wasmCodec } from "../../protocol/_wasm_codec.ts";
import { prefixDecoder } from "../../engine/_serializer.ts";
import { cache, MemoryBackend } from "../../mod.ts";

function outcome(f: () => unknown): { value?: unknown; error?: string } {
  try {
    return { value: f() };
  } catch (e) {
    assert.ok(e instanceof SerializationError, `not a SerializationError: ${e}`);
    return { error: "SerializationError" };
  }
}

const values: unknown[] = [
  { id: 7, name: "Ada", tags: ["a", "b"], bio: "x".repeat(600), geo: [1.5, -2], ok: true },
  { at: new Date(Date.UTC(2024, 0, 31, 12)), n: null },
  new Map<unknown, unknown>([[1, "one"], ["two", 2]]),
  { big: 2n ** 60n, small: -(2n ** 40n) },
  { bin: new Uint8Array([1, 2, 3]) },
  [1, "two", { three: [3] }],
  "a string of some length, long enough for str8 ..................................",
  42,
];

test("deserializePrefix: the first n bytes of a longer buffer decode as the exact bytes do", () => {
  for (const v of values) {
    const bytes = serialize(v);
    for (const tail of [[], [0], [0x90], [0xc0, 0xc0, 0xc0], [0xff, 0xa3, 0x61, 0x62, 0x63]]) {
      const buf = new Uint8Array(bytes.length + tail.length);
      buf.set(bytes);
      buf.set(tail, bytes.length);
      assert.deepEqual(deserializePrefix(buf, bytes.length), deserialize(bytes));
      assert.equal(scan(buf, bytes.length), scan(bytes));
    }
  }
});

test("deserializePrefix: a truncated value is refused even when the bytes after n complete it", () => {
  for (const v of values) {
    const bytes = serialize(v);
    for (let n = 0; n < bytes.length; n++) {
      const exact = bytes.slice(0, n);
      assert.deepEqual(
        outcome(() => deserializePrefix(bytes, n)),
        outcome(() => deserialize(exact)),
        `${JSON.stringify(String(v))} cut at ${n}`,
      );
      assert.equal(scan(bytes, n), -1, `scan cut at ${n}`);
    }
  }
});

test("openCheckedPrefix: the verified bytes in one reused view, renewed when memory grows", () => {
  const codec = wasmCodec;
  if (codec === null) return; // no WebAssembly here: the engine reads exact bytes
  // The block inside a larger input (as in an envelope: a header before, fields after), at `at`.
  const open = (data: Uint8Array, at = 3) => {
    const { block, checksum } = codec.seal(data);
    const n = block.length;
    const src = new Uint8Array(at + n + 20).fill(0xee);
    src.set(block, at);
    const c = checksum.slice();
    const hi = ((c[0] << 24) | (c[1] << 16) | (c[2] << 8) | c[3]) >>> 0;
    const lo = ((c[4] << 24) | (c[5] << 16) | (c[6] << 8) | c[7]) >>> 0;
    return {
      ok: () => codec.openCheckedPrefix(src, at, n, data.length, hi, lo),
      bad: () => codec.openCheckedPrefix(src, at, n, data.length, hi, lo ^ 1),
    };
  };
  const a = serialize({ text: "abc".repeat(300) });
  const b = serialize({ other: "xyz".repeat(100), n: [1, 2, 3] });
  const va = open(a).ok()!;
  assert.ok(va.length >= a.length);
  assert.deepEqual(va.subarray(0, a.length), a);
  const vb = open(b).ok()!;
  assert.equal(vb, va, "the same view object");
  assert.deepEqual(vb.subarray(0, b.length), b);
  assert.equal(open(b).bad(), null);
  // The block at the input's start, and further in than the output's room (a tiny value).
  assert.deepEqual(open(b, 0).ok()!.subarray(0, b.length), b);
  const tiny = serialize("abc");
  const t = open(tiny, 40).ok()!;
  assert.deepEqual(t.subarray(0, tiny.length), tiny);
  assert.deepEqual(open(a).ok()!.subarray(0, a.length), a, "nothing below the heap base was hit");
  // A larger value grows the memory: the old view is detached, a new one serves.
  const big = serialize({ text: "lorem ipsum ".repeat(60_000) });
  const vbig = open(big).ok()!;
  assert.notEqual(vbig, va);
  assert.deepEqual(vbig.subarray(0, big.length), big);
  assert.deepEqual(open(a).ok()!.subarray(0, a.length), a);
  // Too large for the shared memory: the caller takes the copying path.
  assert.equal(open(new Uint8Array(3 * 1024 * 1024).fill(7)).ok(), undefined);
});

test("prefixDecoder: only the built-in std serializer's own deserialize reads a prefix", () => {
  assert.equal(prefixDecoder(new StdSerializer()), deserializePrefix);
  class Mine extends StdSerializer {}
  assert.equal(prefixDecoder(new Mine()), null);
  const own = new StdSerializer();
  own.deserialize = (b) => deserialize(b);
  assert.equal(prefixDecoder(own), null);
});

test("an L2 hit of the std serializer answers the value; an override of deserialize is called", async () => {
  const backend = new MemoryBackend();
  const f = cache((i: number) => Promise.resolve({ id: i, bio: "b".repeat(200 + i) }), {
    name: "prefix.l2",
    backend,
    l1: false,
  });
  for (let i = 0; i < 3; i++) assert.deepEqual(await f(i), { id: i, bio: "b".repeat(200 + i) });
  const hits = f.cacheInfo().hits;
  for (let i = 0; i < 3; i++) assert.deepEqual(await f(i), { id: i, bio: "b".repeat(200 + i) });
  assert.equal(f.cacheInfo().hits, hits + 3);

  const seen: number[] = [];
  const s = new StdSerializer();
  s.deserialize = (b) => {
    seen.push(b.length);
    return deserialize(b);
  };
  const g = cache((i: number) => Promise.resolve({ id: i, bio: "c".repeat(300) }), {
    name: "prefix.own",
    backend,
    l1: false,
    serializer: s,
  });
  await g(1);
  assert.deepEqual(await g(1), { id: 1, bio: "c".repeat(300) });
  assert.equal(seen.length, 1, "the override read the hit");
  assert.equal(seen[0], serialize({ id: 1, bio: "c".repeat(300) }).length, "its exact bytes");
});

test("an L2 entry corrupted in its block or checksum is a miss on the prefix path, and removed", async () => {
  const backend = new MemoryBackend();
  let runs = 0;
  const f = cache((i: number) => Promise.resolve({ id: i, runs: ++runs, bio: "d".repeat(400) }), {
    name: "prefix.corrupt",
    backend,
    l1: false,
  });
  await f(1);
  const get = backend.get.bind(backend);
  const del = backend.delete.bind(backend);
  const deleted: string[] = [];
  backend.delete = (key, o) => {
    deleted.push(key);
    return del(key, o);
  };
  // Each mutation of the stored bytes: one byte of the block, of the checksum, of the size.
  for (
    const pick of [
      (_b: Uint8Array) => 10,
      (b: Uint8Array) => b.length - 12,
      (b: Uint8Array) => b.length - 10,
    ]
  ) {
    backend.get = async (key, o) => {
      const v = await get(key, o);
      if (v === null) return v;
      const c = v.slice();
      c[pick(c)] ^= 0x40;
      return c;
    };
    const before = runs;
    const got = await f(1) as { runs: number };
    assert.equal(runs, before + 1, "computed again");
    assert.equal(got.runs, runs);
  }
  assert.ok(deleted.length >= 3, "the unreadable entries were deleted");
  backend.get = get;
  assert.deepEqual(await f(1), { id: 1, runs, bio: "d".repeat(400) }, "the rewritten entry reads");
});
