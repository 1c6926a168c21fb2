// Adaptive timeout (cachekit-py 0.3.0: initial 1.0 s, bounds 0.1..5.0 s, last 1000 durations, p95; safety
// factor 1.5 as in Python cachekit's AdaptiveTimeout) and backpressure (100 concurrent, queue 1000,
// wait 0.1 s). Percentile expectations come from a plain sort (nearest-rank definition), an
// oracle independent of the quickselect under test.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { settlesBeforeTimers } from "../_timing.ts";
import { BackendError, CacheConfigError } from "../../errors.ts";
import { AdaptiveTimeout } from "../../reliability/adaptive_timeout.ts";
import { Backpressure, BackpressureError } from "../../reliability/backpressure.ts";

function nearestRank(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1];
}

// Deterministic pseudo-random durations (xorshift32).
function durations(n: number, seed: number, scale: number): number[] {
  let x = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.push((x / 0xffffffff) * scale);
  }
  return out;
}

test("timeout: cachekit-py's defaults and the initial value before 10 samples", () => {
  const t = new AdaptiveTimeout();
  const s = t.snapshot();
  assert.deepEqual(s.config, {
    initial: 1.0,
    min: 0.1,
    max: 5.0,
    window: 1000,
    percentile: 95,
    safetyFactor: 1.5,
  });
  assert.equal(t.timeoutMs, 1000);
  for (let i = 0; i < 9; i++) t.record(400);
  assert.equal(t.timeoutMs, 1000, "9 samples: still initial");
  t.record(400);
  assert.equal(t.timeoutMs, 600, "10 samples: p95 400 ms × 1.5");
});

test("timeout: p95 × 1.5 matches a sort-based nearest-rank p95", () => {
  for (const seed of [1, 7, 42, 1234]) {
    const values = durations(1000, seed, 2000); // 0..2000 ms
    const t = new AdaptiveTimeout({ recomputeEvery: 1 });
    for (const v of values) t.record(v);
    const p95 = nearestRank(values, 95);
    assert.equal(t.snapshot().percentileMs, p95, `seed ${seed}`);
    assert.equal(t.timeoutMs, Math.min(5000, Math.max(100, p95 * 1.5)));
  }
});

test("timeout: only the last `window` durations count", () => {
  const t = new AdaptiveTimeout({ window: 100, recomputeEvery: 1 });
  for (let i = 0; i < 100; i++) t.record(2000); // old, slow
  for (let i = 0; i < 100; i++) t.record(200); // recent, fast
  assert.equal(t.snapshot().samples, 100);
  assert.equal(t.timeoutMs, 300);
  const mixed = [...durations(250, 9, 800)];
  for (const v of mixed) t.record(v);
  assert.equal(t.snapshot().percentileMs, nearestRank(mixed.slice(-100), 95));
});

test("timeout: clamped to min 0.1 s and max 5 s", () => {
  const fast = new AdaptiveTimeout({ recomputeEvery: 1 });
  for (let i = 0; i < 50; i++) fast.record(0.3); // a 0.3 ms backend
  assert.equal(fast.timeoutMs, 100);
  const slow = new AdaptiveTimeout({ recomputeEvery: 1 });
  for (let i = 0; i < 50; i++) slow.record(60_000);
  assert.equal(slow.timeoutMs, 5000);
});

test("timeout: recomputed lazily every `recomputeEvery` samples; reset goes back to initial", () => {
  const t = new AdaptiveTimeout({ window: 100, recomputeEvery: 32 });
  for (let i = 0; i < 10; i++) t.record(1000);
  assert.equal(t.timeoutMs, 1500, "computed as soon as minSamples are known");
  for (let i = 0; i < 2; i++) t.record(3000);
  assert.equal(t.timeoutMs, 1500, "filling: recomputed after a quarter of the samples");
  t.record(3000);
  assert.equal(t.timeoutMs, 4500, "13 samples, 3 new: p95 = 3000 ms");
  for (let i = 0; i < 87; i++) t.record(1000);
  assert.equal(t.timeoutMs, 1500, "window full: 3 slow of 100");
  for (let i = 0; i < 31; i++) t.record(2000);
  assert.equal(t.timeoutMs, 1500, "full window: not yet recomputed after 31");
  t.record(2000);
  assert.equal(t.timeoutMs, 3000, "recomputed after recomputeEvery = 32");
  t.reset();
  assert.equal(t.timeoutMs, 1000);
  assert.equal(t.snapshot().samples, 0);
});

test("timeout: censored samples (timeouts) let the timeout grow toward the bound", () => {
  const t = new AdaptiveTimeout({ recomputeEvery: 1 });
  for (let i = 0; i < 1000; i++) t.record(1);
  let timeout = t.timeoutMs;
  assert.equal(timeout, 100);
  // The backend now takes 400 ms: every call times out and is recorded at its timeout.
  for (let round = 0; round < 3000 && timeout < 400; round++) {
    t.record(timeout);
    timeout = t.timeoutMs;
  }
  assert.ok(timeout >= 400, `timeout grew to ${timeout}`);
  assert.ok(timeout <= 5000);
});

test("timeout: bad samples ignored, bad options refused", () => {
  const t = new AdaptiveTimeout({ recomputeEvery: 1 });
  for (const v of [-1, Number.NaN, Infinity]) t.record(v);
  assert.equal(t.snapshot().samples, 0);
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ min: 0 }, "timeout.min"],
    [{ max: -1 }, "timeout.max"],
    [{ min: 2, max: 1 }, "timeout.min"],
    [{ initial: 10 }, "timeout.initial"],
    [{ window: 0 }, "timeout.window"],
    [{ percentile: 101 }, "timeout.percentile"],
    [{ percentile: 0 }, "timeout.percentile"],
    [{ safetyFactor: 0 }, "timeout.safetyFactor"],
  ];
  for (const [opts, option] of cases) {
    assert.throws(
      () => new AdaptiveTimeout(opts),
      (e: unknown) => e instanceof CacheConfigError && e.option === option,
      JSON.stringify(opts),
    );
  }
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

test("backpressure: cachekit-py's defaults", () => {
  assert.deepEqual(new Backpressure().snapshot().config, {
    maxConcurrent: 100,
    queueSize: 1000,
    waitTimeout: 0.1,
  });
});

test("backpressure: at most maxConcurrent run; waiters get slots in order", async () => {
  const bp = new Backpressure({ maxConcurrent: 2, queueSize: 10, waitTimeout: 5 });
  let running = 0;
  let peak = 0;
  const order: number[] = [];
  const gates = Array.from({ length: 6 }, deferred);
  const runs = gates.map((g, i) =>
    bp.run(async () => {
      running++;
      peak = Math.max(peak, running);
      order.push(i);
      await g.promise;
      running--;
      return i;
    })
  );
  await Promise.resolve();
  assert.equal(bp.active, 2);
  assert.equal(bp.queued, 4);
  for (const g of gates) {
    g.resolve();
    await new Promise((r) => setTimeout(r, 0));
  }
  assert.deepEqual(await Promise.all(runs), [0, 1, 2, 3, 4, 5]);
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4, 5]);
  assert.equal(bp.active, 0);
  assert.equal(bp.queued, 0);
});

test("backpressure: a full queue is refused at once (never unbounded)", async () => {
  const bp = new Backpressure({ maxConcurrent: 2, queueSize: 3, waitTimeout: 5, name: "redis" });
  const gate = deferred();
  const held = Array.from({ length: 5 }, () => bp.run(() => gate.promise));
  const refusals = Promise.all(
    Array.from({ length: 100 }, () => bp.run(() => Promise.resolve(), "get").catch((e) => e)),
  );
  // At once: refused before any timer could fire (not after waitTimeout), on a loaded host too.
  assert.ok(await settlesBeforeTimers(refusals), "refusals waited for something");
  const errs = await refusals;
  for (const e of errs) {
    assert.ok(e instanceof BackpressureError);
    assert.ok(e instanceof BackendError);
    assert.equal(e.kind, "transient");
    assert.equal(e.skipL2, true);
    assert.equal(e.reason, "queue full");
    assert.equal(e.operation, "get");
  }
  assert.equal(bp.queued, 3);
  assert.equal(bp.snapshot().rejectedQueueFull, 100);
  gate.resolve();
  await Promise.all(held);
  assert.equal(bp.active, 0);
});

test("backpressure: a waiter gives up after waitTimeout and the slot accounting stays right", async () => {
  const bp = new Backpressure({ maxConcurrent: 1, queueSize: 10, waitTimeout: 0.05 });
  const gate = deferred();
  const held = bp.run(() => gate.promise);
  const t0 = performance.now();
  const err = await bp.run(() => Promise.resolve()).catch((e) => e);
  const waited = performance.now() - t0;
  assert.ok(err instanceof BackpressureError);
  assert.equal(err.reason, "wait timeout");
  // Not before waitTimeout; the upper bound only tells "gave up" from "hung" (timers run late under load).
  assert.ok(waited >= 45 && waited < 10_000, `waited ${waited} ms`);
  assert.equal(bp.queued, 0);
  gate.resolve();
  await held;
  assert.equal(bp.active, 0);
  assert.equal(await bp.run(() => Promise.resolve(7)), 7);
  assert.equal(bp.snapshot().rejectedWaitTimeout, 1);
});

test("backpressure: timed-out waiters do not pile up in memory while slots are stuck", async () => {
  const bp = new Backpressure({ maxConcurrent: 1, queueSize: 2, waitTimeout: 0.001 });
  const gate = deferred();
  const held = bp.run(() => gate.promise);
  for (let i = 0; i < 50; i++) {
    const errs = await Promise.all([1, 2].map(() => bp.acquire().catch((e) => e)));
    assert.ok(errs.every((e) => e instanceof BackpressureError));
  }
  assert.equal(bp.queued, 0);
  gate.resolve();
  await held;
});

test("backpressure: queueSize 0 refuses at once when busy; bad options refused", async () => {
  const bp = new Backpressure({ maxConcurrent: 1, queueSize: 0 });
  assert.ok(bp.tryAcquire());
  const e = await bp.acquire().catch((x) => x);
  assert.equal(e.reason, "queue full");
  bp.release();
  assert.ok(bp.tryAcquire());
  bp.release();
  for (
    const [opts, option] of [
      [{ maxConcurrent: 0 }, "backpressure.maxConcurrent"],
      [{ queueSize: -1 }, "backpressure.queueSize"],
      [{ waitTimeout: -0.1 }, "backpressure.waitTimeout"],
    ] as const
  ) {
    assert.throws(
      () => new Backpressure(opts),
      (x: unknown) => x instanceof CacheConfigError && x.option === option,
    );
  }
});
