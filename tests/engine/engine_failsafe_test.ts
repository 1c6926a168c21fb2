// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Fail-safe (`staleTtl`, `softTimeout`): expired values kept in L1 and L2 and served when the
// function fails or is slower than the soft timeout; the late refresh lands unless invalidated
// meanwhile; stale serving is logged (LogTape, correlation id) and counted (cacheInfo, Prometheus).
// The L2 stale marker (metadata.fresh_until) is decoded by an independent Python reader.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { captureLogs, render } from "../_log_capture.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { cache, MemoryBackend } from "../../mod.ts";
import { getDefaultMetrics } from "../../health/metrics.ts";
import { gate, shiftDateNow, type ShiftedClock, sleep, until, withDeadline } from "../_timing.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test("fail-safe: the function throws after the value expired → the stale value is served and the error logged with a correlation id", async () => {
  const logs = await captureLogs();
  // Expiry is the test's shifted Date.now: the recomputed value must not expire by itself between
  // the two calls that read it, however slow the host (it did with a 0.2 s TTL).
  const clock = shiftDateNow();
  try {
    let fail = false;
    let calls = 0;
    const f = cache(async (id: number) => {
      calls++;
      if (fail) throw new Error("database down");
      return { id, v: calls };
    }, {
      name: "failsafe.throws",
      ttl: 60,
      staleTtl: 600,
      backend: new MemoryBackend(),
      ...bare,
    });
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    clock.advance(61_000); // past the TTL (L1 and the logical L2 expiry)
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
    // The function recovering replaces the stale value, once failSafeThrottle (default 30 s) has
    // passed: until then the stale value is reused without calling the function.
    fail = false;
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    assert.equal(calls, 3, "not called within the throttle window");
    clock.advance(30_001);
    assert.deepEqual(await f(1), { id: 1, v: 4 });
    assert.deepEqual(await f(1), { id: 1, v: 4 });
    assert.equal(calls, 4);
  } finally {
    clock.restore();
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
  // Expiry is the test's shifted Date.now, and the slow refresh a gate the test opens: no step
  // depends on how fast the host runs (a loaded host once expired the 0.2 s refreshed value).
  const clock = shiftDateNow();
  try {
    let slow: Promise<void> | null = null;
    let calls = 0;
    let running = 0;
    let maxRunning = 0;
    const f = cache(async (id: number) => {
      calls++;
      running++;
      maxRunning = Math.max(maxRunning, running);
      if (slow) await slow;
      running--;
      return { id, v: calls };
    }, {
      name: "failsafe.soft",
      ttl: 60,
      staleTtl: 600,
      softTimeout: 0.05,
      backend: new MemoryBackend(),
      ...bare,
    });
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    clock.advance(61_000);
    const refresh = gate();
    slow = refresh.promise;
    // The refresh cannot end before the gate opens: an answer now came from the soft timeout.
    assert.deepEqual(await withDeadline(f(1), "soft timeout"), { id: 1, v: 1 }, "stale now");
    // Callers arriving while the refresh runs are answered stale too, without a second call.
    assert.deepEqual(await withDeadline(f(1), "second caller"), { id: 1, v: 1 });
    assert.equal(calls, 2);
    assert.equal(maxRunning, 1);
    assert.equal(f.cacheInfo().staleHits, 2);
    assert.equal(running, 1, "the refresh is still running");
    refresh.open();
    assert.ok(await until(() => running === 0), "the refresh ended");
    await sleep(20); // the refresh lands (no timer or I/O: MemoryBackend)
    assert.deepEqual(await f(1), { id: 1, v: 2 }, "the background result is stored");
    assert.equal(calls, 2, "and served from the cache");
    // A refresh faster than the soft timeout is simply the answer.
    clock.advance(61_000);
    slow = null;
    assert.deepEqual(await f(1), { id: 1, v: 3 });
  } finally {
    clock.restore();
  }
});

/**
 * A cached function (soft timeout 50 ms) whose value expired on the shifted clock, and whose
 * background refresh (v2) waits on a gate: the caller was answered with the stale v1. Calls made
 * from now on compute at once.
 */
async function staleWithGatedRefresh(name: string, clock: ShiftedClock) {
  let slow: Promise<void> | null = null;
  const state = { calls: 0, done: 0 };
  const f = cache(async (id: number) => {
    const n = ++state.calls;
    if (slow) await slow;
    state.done++;
    return { id, v: n };
  }, {
    name,
    ttl: 60,
    staleTtl: 600,
    softTimeout: 0.05,
    backend: new MemoryBackend(),
    ...bare,
  });
  await f(1);
  clock.advance(61_000);
  const refresh = gate();
  slow = refresh.promise;
  assert.deepEqual(
    await withDeadline(f(1), "soft timeout"),
    { id: 1, v: 1 },
    "stale while the refresh (v2) runs",
  );
  slow = null; // v2 already waits on the gate
  return { f, refresh, state };
}

test("fail-safe: a late refresh never resurrects a value invalidated meanwhile", async () => {
  const clock = shiftDateNow();
  try {
    const { f, refresh, state } = await staleWithGatedRefresh("failsafe.late", clock);
    await f.invalidate(1); // removes L1 and L2 (stale copies too)
    refresh.open(); // v2 lands after the invalidation: dropped
    assert.ok(await until(() => state.done === 2), "v2 returned");
    await sleep(20); // and was handled (no timer or I/O: MemoryBackend)
    assert.deepEqual(await f(1), { id: 1, v: 3 }, "recomputed, not the late v2");
    assert.equal(f.cacheInfo().size, 1);
  } finally {
    clock.restore();
  }
});

test("fail-safe: a call after an invalidation does not join the background refresh started before it", async () => {
  const clock = shiftDateNow();
  try {
    const { f, refresh, state } = await staleWithGatedRefresh("failsafe.join", clock);
    await f.invalidate(1);
    const after = f(1); // may wait for the stampede lock the refresh holds
    refresh.open();
    assert.deepEqual(
      await withDeadline(after, "call after the invalidation"),
      { id: 1, v: 3 },
      "computed after the invalidation, not v2",
    );
    assert.ok(await until(() => state.done === 3), "v2 returned");
    await sleep(20); // v2 has landed: dropped
    assert.deepEqual(await f(1), { id: 1, v: 3 }, "v3 is the cached value");
    assert.equal(state.calls, 3);
  } finally {
    clock.restore();
  }
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
    // The label the process-wide registry gives this identity: the overflow value when earlier
    // tests sharing the process (Bun) admitted 100 others; the namespace keeps counts apart.
    const label = m.functionLabel("failsafe.metrics");
    const before = (reason: string) =>
      m.staleHits.get({ namespace: "fsmetrics", function: label, reason });
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
      new RegExp(
        `cache_stale_hits_total\\{namespace="fsmetrics",function="${
          label.replaceAll(".", "\\.")
        }",reason="error"\\} \\d+`,
      ),
    );
  },
  { sanitize: false },
);

const PY_READ_STALE = String.raw`
import sys, json, base64, msgpack, lz4.block, xxhash
doc = json.loads(base64.b64decode(sys.stdin.read()))
md = doc["metadata"]
data = base64.b64decode(doc["data"])
comp, checksum, size, fmt = msgpack.unpackb(data, raw=False)
payload = lz4.block.decompress(bytes(comp), uncompressed_size=size)
assert xxhash.xxh3_64_digest(payload) == bytes(checksum)
print(json.dumps({"version": doc["version"], "serializer": doc["serializer"], "format": md["format"],
    "compressed": md["compressed"], "fresh_until": md["fresh_until"],
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
    const t0 = Date.now() / 1000;
    await f(7);
    const t1 = Date.now() / 1000;
    const keys = writes.map((w) => w.key);
    const stored = (await backend.get(keys[0]))!;
    const out = runPythonJson<
      {
        version: string;
        serializer: string;
        format: string;
        compressed: boolean;
        fresh_until: number;
        value: unknown;
      }
    >(PY_READ_STALE, btoa(String.fromCharCode(...stored)));
    assert.equal(out.version, "2.0");
    assert.equal(out.serializer, "default");
    assert.equal(out.format, "msgpack");
    assert.equal(out.compressed, true);
    assert.deepEqual(out.value, { id: 7, name: "Ada" });
    // Bounded by clock readings around the write, not by when Python runs (late on a busy host).
    assert.ok(
      out.fresh_until >= t0 + 60 - 0.001 && out.fresh_until <= t1 + 60 + 0.001,
      `fresh_until = write time + ttl (${out.fresh_until - t0 - 60} s off)`,
    );
    assert.ok((await backend.capabilities.ttl.ttl(keys[0]))! > 600, "kept ttl + staleTtl in L2");
  },
  pythonTestOptions,
);
