// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Size limits and decompression bombs: `maxValueSize` on write and read, envelope bombs read through
// `cache()` (refused before allocation, deleted so their cost is paid once), MessagePack headers
// declaring more than the input holds, and the bounded scratch buffer.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "../_harness.ts";
import { captureLogs, render } from "../_log_capture.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";
import { bombBlock, bombEnvelope } from "../_fixtures/lz4_bomb.ts";
import {
  type Backend,
  cache,
  CacheConfigError,
  IntegrityError,
  MemoryBackend,
  SerializationError,
} from "../../mod.ts";
import { readEnvConfig } from "../../config/env.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { decodeEnvelope, decodeInteropValue, encodeEnvelope } from "../../protocol/mod.ts";
import { deserialize } from "../../serializers/mod.ts";
import {
  openEnvelope,
  openEnvelopeScratch,
  SCRATCH_MAX_BYTES,
  scratchCapacity,
} from "../../protocol/_envelope_read.ts";
import { decompressBlock, decompressedLength } from "../../protocol/_lz4.ts";
import { boundedByInput } from "../../serializers/_msgpack_scan.ts";

const MiB = 1024 * 1024;
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const rss = () => process.memoryUsage().rss;

/** A MemoryBackend pass-through that records written keys, deletes and reads of `watch`ed bytes. */
function watched() {
  const inner = new MemoryBackend();
  const w = {
    inner,
    keys: [] as string[],
    deletes: [] as string[],
    /** Reads that returned bytes of the watched length. */
    watchedReads: 0,
    watchLength: -1,
    backend: undefined as unknown as Backend,
  };
  w.backend = {
    type: inner.type,
    capabilities: inner.capabilities,
    get: async (k, o) => {
      const v = await inner.get(k, o);
      if (v !== null && v.length === w.watchLength) w.watchedReads++;
      return v;
    },
    set: (k, v, t, o) => {
      w.keys.push(k);
      return inner.set(k, v, t, o);
    },
    delete: (k, o) => {
      w.deletes.push(k);
      return inner.delete(k, o);
    },
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return w;
}

/** A cached function over `w` without L1 (every call reads L2) and a count of its runs. */
function counted(w: ReturnType<typeof watched>, name: string, maxValueSize?: number) {
  const c = { runs: 0, f: undefined as unknown as (id: number) => Promise<unknown> };
  c.f = cache(async (id: number) => ({ id, run: ++c.runs }), {
    name,
    ttl: 60,
    backend: w.backend,
    l1: false,
    ...(maxValueSize === undefined ? {} : { maxValueSize }),
    ...bare,
  });
  return c;
}

// ------------------------------------------------------------------ MessagePack headers

test("limits: a 6-byte array32 header declaring millions of elements is refused at once", () => {
  const six = new Uint8Array([0xdd, 0x01, 0xa1, 0x61, 0xc0, 0xc0]);
  // 200 nested array32 headers of 65,535 elements each: 1,000 bytes, gigabytes once preallocated.
  const nested = new Uint8Array(1000);
  for (let i = 0; i < 1000; i += 5) nested.set([0xdd, 0x00, 0x00, 0xff, 0xff], i);
  for (const bytes of [six, nested]) {
    assert.equal(boundedByInput(bytes), false);
    const before = rss();
    for (const decode of [decodeInteropValue, deserialize]) {
      assert.throws(() => decode(bytes), (e: unknown) => {
        assert.ok(e instanceof SerializationError, `a SerializationError, got ${e}`);
        assert.match(e.message, /declares more than the input holds/);
        return true;
      });
    }
    // Generous: without the check the interop decoder grew by 200 MB (six) and 1.4 GB (nested).
    assert.ok(rss() - before < 64 * MiB, `rss grew ${rss() - before} bytes`);
  }
});

test("limits: boundedByInput accepts every well-formed document and refuses each lying header", () => {
  const ok = [
    [0xc0],
    [0x92, 0x01, 0xa1, 0x61], // [1, "a"]
    [0x81, 0xa1, 0x6b, 0x90], // {k: []}
    [0xdc, 0x00, 0x02, 0xc3, 0xc2], // array16 of 2
    [0xde, 0x00, 0x01, 0x01, 0x02], // map16 of 1
    [0xc4, 0x02, 0x01, 0x02], // bin8 of 2
    [0xd9, 0x01, 0x61], // str8 of 1
    [0xd6, 0xff, 0, 0, 0, 1], // timestamp 32
    [0xc7, 0x01, 0x05, 0x00], // ext8 of 1
    [0xcb, 0, 0, 0, 0, 0, 0, 0, 0, 0x92, 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xc0], // float64, [u64, nil]
  ];
  for (const b of ok) assert.equal(boundedByInput(new Uint8Array(b)), true, JSON.stringify(b));
  const lying = [
    [0x93, 0x01, 0x02], // fixarray of 3, two present
    [0x82, 0x01, 0x02, 0x03], // fixmap of 2 needs 4 values
    [0xdd, 0x00, 0x00, 0x00, 0x02, 0xc0], // array32 of 2, one present
    [0xdf, 0x00, 0x00, 0x00, 0x01, 0xc0], // map32 of 1 needs 2 values
    [0xc6, 0x00, 0x00, 0x00, 0x03, 0x01, 0x02], // bin32 of 3, two present
    [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61], // str32 of 4 GiB
    [0xc9, 0x00, 0x00, 0x00, 0x02, 0x01, 0x00], // ext32 of 2 (+ type), two present
    [0x91, 0x91, 0x92, 0xc0], // the innermost array of 2 has one
  ];
  for (const b of lying) assert.equal(boundedByInput(new Uint8Array(b)), false, JSON.stringify(b));
  // A well-formed document that the std general path (non-string keys) decodes as before.
  const mapBytes = new Uint8Array([0x81, 0x01, 0x92, 0xa1, 0x61, 0xc0]);
  assert.deepEqual(deserialize(mapBytes), new Map([[1, ["a", null]]]));
});

// ------------------------------------------------------------------ envelope bombs

test("limits: the envelope reader refuses a declared size over maxSize before decompressing", () => {
  const bomb = bombEnvelope(8 * MiB);
  assert.throws(() => openEnvelope(bomb, { maxSize: 8 * MiB - 1 }), /over the limit of 8388607/);
  assert.throws(() => openEnvelopeScratch(bomb, { maxSize: 1024 }), /over the limit of 1024/);
  // At the limit it is decompressed, and then its checksum fails.
  assert.throws(() => openEnvelope(bomb, { maxSize: 8 * MiB }), /checksum mismatch/);
  // A good envelope under the limit is unaffected.
  const data = new TextEncoder().encode("a value under the limit");
  assert.deepEqual(openEnvelope(encodeEnvelope(data), { maxSize: data.length }).data, data);
  assert.throws(
    () => openEnvelope(encodeEnvelope(data), { maxSize: data.length - 1 }),
    IntegrityError,
  );
});

test("limits: a block that does not expand to its declared size is refused before allocation", () => {
  // The bomb: a 2 MiB block expanding to 511 MiB, declaring 512 MiB.
  const block = bombBlock(511 * MiB);
  assert.ok(block.length < 2.1 * MiB);
  assert.equal(decompressedLength(block), 511 * MiB);
  assert.equal(decompressedLength(bombBlock(1000)), 1000);
  assert.equal(decompressedLength(block.subarray(0, 10)), -1, "truncated");
  assert.equal(decompressedLength(new Uint8Array([0x10, 0x61, 0x02, 0x00])), -1, "offset > output");
  const before = rss();
  for (const open of [openEnvelope, openEnvelopeScratch, decodeEnvelope]) {
    assert.throws(
      () => open(bombEnvelope(511 * MiB, 512 * MiB)),
      /does not expand to the declared 536870912 bytes/,
    );
  }
  assert.ok(rss() - before < 128 * MiB, `rss grew ${rss() - before} bytes`);
  // Agreement with the decompressor on a real block.
  const real = bombBlock(3 * MiB + 7);
  assert.equal(decompressedLength(real), decompressBlock(real, 3 * MiB + 7).length);
});

test("limits: a bomb declaring 512 MiB read through cache() is a miss, refused unallocated, deleted", async () => {
  const w = watched();
  const c = counted(w, "limits.bomb512"); // default maxValueSize (100 MiB)
  await c.f(1);
  const key = w.keys[0];
  const bomb = bombEnvelope(511 * MiB, 512 * MiB);
  await w.inner.set(key, bomb, 60);
  w.watchLength = bomb.length;
  const logs = await captureLogs("warning");
  try {
    const before = rss();
    assert.deepEqual(await c.f(1), { id: 1, run: 2 }, "a miss: recomputed");
    assert.ok(rss() - before < 128 * MiB, `rss grew ${rss() - before} bytes`);
    const refused = logs.records.map(render).filter((m) => m.includes(key));
    assert.equal(refused.length, 1, refused.join("\n"));
    // The declared size was refused before the block was looked at.
    assert.match(refused[0], /original size 536870912 is over the limit of 104857600 bytes/);
    assert.deepEqual(w.deletes, [key], "the entry was deleted");
    assert.deepEqual(await c.f(1), { id: 1, run: 2 }, "then answered from the rewritten entry");
    assert.equal(w.watchedReads, 1, "the bomb was read once");
  } finally {
    await logs.stop();
  }
});

test("limits: a bomb under the limit is decompressed once, then deleted", async () => {
  for (
    const [expands, declares, why] of [
      [8 * MiB, 8 * MiB, /checksum mismatch/], // expands as declared: decompressed, checksum fails
      [8 * MiB - 1, 8 * MiB, /does not expand to the declared 8388608/], // lies: not even that
    ] as const
  ) {
    const w = watched();
    const c = counted(w, `limits.bomb8.${expands}`);
    await c.f(1);
    const key = w.keys[0];
    const bomb = bombEnvelope(expands, declares);
    await w.inner.set(key, bomb, 60);
    w.watchLength = bomb.length;
    const logs = await captureLogs("warning");
    try {
      for (let i = 0; i < 3; i++) assert.deepEqual(await c.f(1), { id: 1, run: 2 });
      assert.equal(w.watchedReads, 1, "read (and decompressed) once");
      assert.deepEqual(w.deletes, [key]);
      const refused = logs.records.map(render).filter((m) => m.includes(key));
      assert.equal(refused.length, 1);
      assert.match(refused[0], why);
    } finally {
      await logs.stop();
    }
  }
});

test("limits: entries over maxValueSize without an envelope (plain, interop) are misses, deleted", async () => {
  const big = "x".repeat(5000);
  for (const extra of [{ integrityChecking: false }, { interop: true, namespace: "limits" }]) {
    const w = watched();
    let runs = 0;
    const mk = (maxValueSize: number) =>
      cache(async (id: number) => ({ id, big, run: ++runs }), {
        name: "limits.plain",
        ttl: 60,
        backend: w.backend,
        l1: false,
        maxValueSize,
        ...extra,
        ...bare,
      });
    await mk(1 * MiB)(1); // written under a large limit
    assert.equal(w.keys.length, 1);
    const small = mk(1000);
    assert.equal(((await small(1)) as { run: number }).run, 2, "a miss under the small limit");
    assert.deepEqual(w.deletes, [w.keys[0]], JSON.stringify(extra));
  }
});

// ------------------------------------------------------------------ maxValueSize on write

test("limits: a value over maxValueSize is answered, not cached, and warned about once", async () => {
  const logs = await captureLogs("warning");
  try {
    const w = watched();
    let runs = 0;
    const f = cache(async (n: number) => ({ n, pad: "p".repeat(n), run: ++runs }), {
      name: "limits.write",
      ttl: 60,
      backend: w.backend,
      maxValueSize: 1024,
      ...bare,
    });
    for (let i = 1; i <= 3; i++) {
      assert.deepEqual(await f(5000), { n: 5000, pad: "p".repeat(5000), run: i }, "answered");
    }
    assert.deepEqual(w.keys, [], "nothing written to L2");
    assert.equal(f.cacheInfo().size, 0, "nothing kept in L1");
    assert.equal(logs.matching(/over maxValueSize \(1024\)/).length, 1, "warned once");
    // A small value of the same function is cached as usual.
    assert.deepEqual(await f(10), { n: 10, pad: "p".repeat(10), run: 4 });
    assert.deepEqual(await f(10), { n: 10, pad: "p".repeat(10), run: 4 });
    assert.equal(w.keys.length, 1);

    // L1 only, synchronous function: the same rule.
    let syncRuns = 0;
    const g = cache((n: number) => ({ n, pad: "p".repeat(n), run: ++syncRuns }), {
      name: "limits.write.l1",
      backend: null,
      maxValueSize: 1024,
    });
    assert.equal(g(5000).run, 1);
    assert.equal(g(5000).run, 2, "not cached in L1");
    assert.equal(g(10).run, 3);
    assert.equal(g(10).run, 3, "a small value is");
    assert.equal(logs.matching(/limits\.write\.l1.*over maxValueSize/).length, 1);
  } finally {
    await logs.stop();
  }
});

test("limits: maxValueSize is validated and defaults to CACHEKIT_MAX_VALUE_SIZE", () => {
  for (const bad of [0, -1, 1.5, "1024", Number.NaN, Infinity, null]) {
    assert.throws(
      () => resolveConfig({ maxValueSize: bad as unknown as number }),
      (e: unknown) => e instanceof CacheConfigError && e.option === "maxValueSize",
      String(bad),
    );
  }
  assert.equal(resolveConfig({ maxValueSize: 2048 }).maxValueSize, 2048);
  assert.equal(resolveConfig({}, undefined, readEnvConfig({})).maxValueSize, 100 * MiB);
  const env = readEnvConfig({ CACHEKIT_MAX_VALUE_SIZE: "4096" });
  assert.equal(resolveConfig({}, undefined, env).maxValueSize, 4096);
  assert.equal(resolveConfig({ maxValueSize: 10 }, undefined, env).maxValueSize, 10);
});

// ------------------------------------------------------------------ scratch buffer

test("limits: the scratch buffer stays bounded after large reads", async () => {
  const big = new Uint8Array(3 * MiB).fill(7);
  const opened = openEnvelopeScratch(encodeEnvelope(big));
  assert.equal(opened.data.length, big.length);
  assert.ok(scratchCapacity() <= SCRATCH_MAX_BYTES && SCRATCH_MAX_BYTES <= MiB);
  // Through the engine: a 3 MB value read back from L2.
  const w = watched();
  const c = cache(async (n: number) => "v".repeat(n), {
    name: "limits.scratch",
    ttl: 60,
    backend: w.backend,
    l1: false,
    ...bare,
  });
  await c(3 * MiB);
  assert.equal((await c(3 * MiB)).length, 3 * MiB);
  assert.ok(scratchCapacity() <= MiB, `scratch holds ${scratchCapacity()} bytes`);
});

// ------------------------------------------------------------------ process level

test("limits: ten reads of a 2 MiB bomb add less than 256 MiB of peak RSS (subprocess)", () => {
  const cmd = runtimeCommand(
    siblingModule(import.meta.url, "../_fixtures/limits_bomb_worker.ts"),
    ["10"],
    siblingModule(import.meta.url, "../../deno.json"),
  );
  const r = spawnSync(cmd.bin, cmd.args, { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
  assert.equal(out.misses, 10);
  // Without the limit each read allocated 512 MiB: the peak grew by about 2 GiB.
  assert.ok(out.peakGrowthBytes < 256 * MiB, `peak grew ${out.peakGrowthBytes} bytes`);
});
