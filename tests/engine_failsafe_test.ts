// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Fail-safe (`staleTtl`, `softTimeout`): expired values kept in L1 and L2 and served when the
// function fails or is slower than the soft timeout; the late refresh lands unless invalidated
// meanwhile; stale serving is logged (LogTape, correlation id) and counted (cacheInfo, Prometheus).
// The L2 stale marker (metadata.fresh_until) is decoded by an independent Python reader.
import assert from "node:assert/strict";
import { test } from "./_harness.ts";
import { recording } from "./_recording_backend.ts";
import { captureLogs, render } from "./_log_capture.ts";
import { pythonTestOptions, runPythonJson } from "./_python.ts";
import { cache, getDefaultMetrics, MemoryBackend } from "../mod.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test("fail-safe: the function throws after the value expired → the stale value is served and the error logged with a correlation id", async () => {
  const logs = await captureLogs();
  try {
    let fail = false;
    let calls = 0;
    const f = cache(async (id: number) => {
      calls++;
      if (fail) throw new Error("database down");
      return { id, v: calls };
    }, {
      name: "failsafe.throws",
      ttl: 0.2,
      staleTtl: 30,
      backend: new MemoryBackend(),
      ...bare,
    });
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    await sleep(250); // past the TTL (L1 and the logical L2 expiry)
    fail = true;
    assert.deepEqual(await f(1), { id: 1, v: 1 }, "stale value instead of the error");
    assert.equal(calls, 2, "the function was tried");
    assert.equal(f.cacheInfo().staleHits, 1);
    const warned = logs.matching(/database down.*stale/);
    assert.equal(warned.length, 1, logs.records.map(render).join("\n"));
    assert.equal(warned[0].level, "warning");
    assert.deepEqual(warned[0].category, ["cachekit", "engine", "failsafe"]);
    assert.match(String(warned[0].properties.correlationId), /^[0-9a-f-]{36}$/);
    // A value never cached has no stale fallback: the error reaches the caller.
    await assert.rejects(f(2), /database down/);
    // The function recovering replaces the stale value.
    fail = false;
    assert.deepEqual(await f(1), { id: 1, v: 4 });
    assert.deepEqual(await f(1), { id: 1, v: 4 });
    assert.equal(calls, 4);
  } finally {
    await logs.stop();
  }
});

test("fail-safe: stale values also come from L2 (another instance, empty L1) within ttl + staleTtl", async () => {
  const { backend, writes } = recording();
  let fail = false;
  const fn = async (id: number) => {
    if (fail) throw new Error("upstream 500");
    return { id };
  };
  const opts = { name: "failsafe.l2", ttl: 0.2, staleTtl: 30, backend, ...bare } as const;
  const a = cache(fn, opts);
  await a(5);
  assert.equal(writes.length, 1);
  assert.equal(writes[0].ttl, 30.2, "L2 TTL = ttl + staleTtl");
  await sleep(250);
  fail = true;
  const b = cache(fn, { ...opts, l1: false });
  assert.deepEqual(await b(5), { id: 5 });
  assert.equal(b.cacheInfo().staleHits, 1);
  assert.equal(b.cacheInfo().l2Hits, 0, "a stale L2 entry is not a hit");
  // Before the logical expiry the same entry is an ordinary L2 hit.
  fail = false;
  const c = cache(fn, { ...opts, name: "failsafe.l2b", ttl: 60 });
  await c(6);
  const d = cache(fn, { ...opts, name: "failsafe.l2b", ttl: 60, l1: false });
  assert.deepEqual(await d(6), { id: 6 });
  assert.equal(d.cacheInfo().l2Hits, 1);
});

test("fail-safe: with softTimeout a slow refresh is served stale now and lands in the background", async () => {
  let delayMs = 0;
  let calls = 0;
  let running = 0;
  let maxRunning = 0;
  const f = cache(async (id: number) => {
    calls++;
    running++;
    maxRunning = Math.max(maxRunning, running);
    await sleep(delayMs);
    running--;
    return { id, v: calls };
  }, {
    name: "failsafe.soft",
    ttl: 0.2,
    staleTtl: 30,
    softTimeout: 0.05,
    backend: new MemoryBackend(),
    ...bare,
  });
  assert.deepEqual(await f(1), { id: 1, v: 1 });
  await sleep(250);
  delayMs = 400;
  const t0 = performance.now();
  assert.deepEqual(await f(1), { id: 1, v: 1 }, "stale now");
  const took = performance.now() - t0;
  assert.ok(took < 300, `answered after the soft timeout, not the refresh (${took.toFixed(0)} ms)`);
  // Callers arriving while the refresh runs are answered stale too, without a second call.
  assert.deepEqual(await f(1), { id: 1, v: 1 });
  assert.equal(calls, 2);
  assert.equal(maxRunning, 1);
  assert.equal(f.cacheInfo().staleHits, 2);
  await sleep(450); // the refresh lands
  assert.deepEqual(await f(1), { id: 1, v: 2 }, "the background result is stored");
  assert.equal(calls, 2, "and served from the cache");
  // A refresh faster than the soft timeout is simply the answer.
  await sleep(250);
  delayMs = 0;
  assert.deepEqual(await f(1), { id: 1, v: 3 });
});

test("fail-safe: a late refresh never resurrects a value invalidated meanwhile", async () => {
  const backend = new MemoryBackend();
  let delayMs = 0;
  let calls = 0;
  const f = cache(async (id: number) => {
    const n = ++calls;
    await sleep(delayMs);
    return { id, v: n };
  }, {
    name: "failsafe.late",
    ttl: 0.2,
    staleTtl: 30,
    softTimeout: 0.05,
    backend,
    ...bare,
  });
  await f(1);
  await sleep(250);
  delayMs = 200;
  assert.deepEqual(await f(1), { id: 1, v: 1 }, "stale while the refresh (v2) runs");
  await f.invalidate(1); // removes L1 and L2 (stale copies too)
  await sleep(300); // v2 lands after the invalidation: dropped
  delayMs = 0;
  assert.deepEqual(await f(1), { id: 1, v: 3 }, "recomputed, not the late v2");
  assert.equal(f.cacheInfo().size, 1);
});

test("fail-safe: a call after an invalidation does not join the background refresh started before it", async () => {
  let delayMs = 0;
  let calls = 0;
  const f = cache(async (id: number) => {
    const n = ++calls;
    await sleep(delayMs);
    return { id, v: n };
  }, {
    name: "failsafe.join",
    ttl: 0.2,
    staleTtl: 30,
    softTimeout: 0.05,
    backend: new MemoryBackend(),
    ...bare,
  });
  await f(1);
  await sleep(250);
  delayMs = 150;
  assert.deepEqual(await f(1), { id: 1, v: 1 }, "stale while the refresh (v2) runs");
  await f.invalidate(1);
  delayMs = 0;
  assert.deepEqual(await f(1), { id: 1, v: 3 }, "computed after the invalidation, not v2");
  await sleep(20); // v2 has landed (v3 waited for the stampede lock it held): dropped
  assert.deepEqual(await f(1), { id: 1, v: 3 }, "v3 is the cached value");
  assert.equal(calls, 3);
});

test("fail-safe: L1-only synchronous functions fall back to the stale value too; no staleTtl = errors propagate", () => {
  let fail = false;
  const f = cache((x: number) => {
    if (fail) throw new Error("boom");
    return x * 2;
  }, { name: "failsafe.sync", ttl: 0.05, staleTtl: 10, backend: null });
  assert.equal(f(2), 4);
  const until = Date.now() + 80;
  while (Date.now() < until) { /* expire */ }
  fail = true;
  assert.equal(f(2), 4);
  assert.equal(f.cacheInfo().staleHits, 1);
  fail = false;
  const g = cache((x: number) => {
    if (fail) throw new Error("boom");
    return x * 3;
  }, { name: "failsafe.sync.off", ttl: 0.05, backend: null });
  assert.equal(g(2), 6);
  const until2 = Date.now() + 80;
  while (Date.now() < until2) { /* expire */ }
  fail = true;
  assert.throws(() => g(2), /boom/);
});

test(
  "fail-safe: stale serving is counted in Prometheus (cache_stale_hits_total by reason)",
  async () => {
    const m = getDefaultMetrics();
    const before = (reason: string) => m.staleHits.get({ namespace: "fsmetrics", reason });
    const err0 = before("error");
    let fail = false;
    const f = cache.production(async (id: number) => {
      if (fail) throw new Error("nope");
      return id;
    }, {
      name: "failsafe.metrics",
      namespace: "fsmetrics",
      ttl: 0.2,
      staleTtl: 5,
      backend: new MemoryBackend(),
    });
    await f(1);
    await sleep(250);
    fail = true;
    assert.equal(await f(1), 1);
    assert.equal(before("error"), err0 + 1);
    assert.match(
      m.registry.exposition(),
      /cache_stale_hits_total\{namespace="fsmetrics",reason="error"\} \d+/,
    );
  },
  { sanitize: false },
);

const PY_READ_STALE = String.raw`
import sys, json, base64, time, msgpack, lz4.block, xxhash
doc = json.loads(base64.b64decode(sys.stdin.read()))
md = doc["metadata"]
data = base64.b64decode(doc["data"])
comp, checksum, size, fmt = msgpack.unpackb(data, raw=False)
payload = lz4.block.decompress(bytes(comp), uncompressed_size=size)
assert xxhash.xxh3_64_digest(payload) == bytes(checksum)
print(json.dumps({"version": doc["version"], "serializer": doc["serializer"], "format": md["format"],
    "compressed": md["compressed"], "fresh_in": md["fresh_until"] - time.time(),
    "value": msgpack.unpackb(payload, raw=False)}))
`;

test(
  "fail-safe: the L2 stale marker is metadata.fresh_until (Unix seconds); the document stays a cachekit-py 2.0 document",
  async () => {
    const backend = new MemoryBackend();
    const { backend: spy, writes } = recording(backend);
    const f = cache(async (id: number) => ({ id, name: "Ada" }), {
      name: "failsafe.py",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      ttl: 60,
      staleTtl: 600,
      backend: spy,
      ...bare,
    });
    await f(7);
    const keys = writes.map((w) => w.key);
    const stored = (await backend.get(keys[0]))!;
    const out = runPythonJson<
      {
        version: string;
        serializer: string;
        format: string;
        compressed: boolean;
        fresh_in: number;
        value: unknown;
      }
    >(PY_READ_STALE, btoa(String.fromCharCode(...stored)));
    assert.equal(out.version, "2.0");
    assert.equal(out.serializer, "default");
    assert.equal(out.format, "msgpack");
    assert.equal(out.compressed, true);
    assert.deepEqual(out.value, { id: 7, name: "Ada" });
    assert.ok(
      out.fresh_in > 55 && out.fresh_in <= 60.5,
      `fresh_until ≈ now + ttl (${out.fresh_in})`,
    );
    assert.ok((await backend.capabilities.ttl.ttl(keys[0]))! > 600, "kept ttl + staleTtl in L2");
  },
  pythonTestOptions,
);
