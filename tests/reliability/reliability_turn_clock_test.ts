/**
 * The guard's clock for operations' ends (`reliability/_turn_clock.ts`): one `performance.now()`
 * per microtask checkpoint, shared by the operations that settle in it, while durations stay the
 * real ones (the histogram and the adaptive timeout still record every operation). Starts are read
 * fresh.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { MemoryBackend } from "../../backends/memory.ts";
import { CacheMetrics } from "../../health/metrics.ts";
import { GuardedBackend } from "../../reliability/guarded_backend.ts";
import { turnNow } from "../../reliability/_turn_clock.ts";

const busy = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* spin */ }
};

test("turnNow: one reading per microtask checkpoint, a fresh one after it", async () => {
  const a = turnNow();
  busy(2);
  assert.equal(turnNow(), a, "same synchronous stretch: the same reading");
  await null; // queued after the reading's reset: a later microtask
  busy(2);
  const b = turnNow();
  assert.ok(b >= a + 1, `a fresh reading (${b} after ${a})`);
  await new Promise((r) => setTimeout(r, 5));
  assert.ok(turnNow() >= b + 1, "a later task reads the clock again");
});

/**
 * A memory backend whose reads all miss together, `ms` after the first (one reply for a batch, as a
 * Redis `MGET` gives), without reading the clock themselves.
 */
class SlowMemory extends MemoryBackend {
  #reply: Promise<null> | undefined;
  constructor(readonly ms: number) {
    super();
  }
  override get(_key: string): Promise<Uint8Array | null> {
    return this.#reply ??= new Promise((r) => setTimeout(() => r(null), this.ms));
  }
}

test("guard: 100 concurrent operations settled together share one clock reading and all record real durations", async () => {
  const metrics = new CacheMetrics();
  const g = new GuardedBackend(new SlowMemory(30), { metrics });
  const now = performance.now;
  const readings: number[] = [];
  performance.now = function () {
    const t = now.call(performance);
    readings.push(t);
    return t;
  };
  let got: (Uint8Array | null)[];
  let started: number;
  try {
    const ops = Array.from({ length: 100 }, (_, i) => g.get(`k${i}`));
    started = readings.length;
    got = await Promise.all(ops);
  } finally {
    performance.now = now;
  }
  const reads = readings.length;
  assert.equal(got.length, 100);
  // Each start reads the clock; the ends (one reply) share a reading: 200 without sharing.
  assert.equal(started, 100, "one clock read per start");
  assert.ok(reads >= 100 && reads <= 104, `${reads} clock reads for 100 operations`);
  const h = metrics.backendDurationFamily(g.type).labels({
    operation: "get",
    backend: g.type,
    function: "",
  });
  assert.equal(h.count, 100, "every operation is in the histogram");
  // The recorded durations are real ones, not the zero a shared start and end would give. The
  // first operation waited ≥ 30 ms for the reply (timers never fire early; 29 for Node's rounding).
  // And every operation ended at a reading taken after all 100 starts, so its duration is at least
  // the time from its own start to the first of those readings: a bound counted from the readings
  // themselves, so that a host that ran the 100 starts slowly (a loaded one) moves it with them.
  assert.ok(h.sum >= 0.029, `sum of durations ${h.sum} s`);
  const firstEnd = readings[100];
  const least = readings.slice(0, 100).reduce((sum, start) => sum + (firstEnd - start), 0) / 1000;
  assert.ok(h.sum >= least - 1e-6, `sum of durations ${h.sum} s, at least ${least} s`);
  assert.equal(g.stats().successes, 100);
  await g.close();
});

test("guard: an operation started after a long synchronous stretch gets its whole timeout", async () => {
  // Without its own timeouts: the guard races it against the deadline it computes from the start.
  const inner = new SlowMemory(50);
  Object.defineProperty(inner, "capabilities", {
    value: { ...inner.capabilities, timeouts: false },
  });
  // The stretch is 10 s on the clock the guard reads, not spun: with a 5 s timeout the 50 ms read
  // ends long before its deadline however late a loaded host runs its timers (a 300 ms spin and a
  // 200 ms timeout failed there), and a deadline counted from before the stretch is long past.
  const realNow = performance.now;
  let stretch = 0;
  performance.now = () => realNow.call(performance) + stretch;
  const g = new GuardedBackend(inner, {
    circuitBreaker: false,
    timeout: { min: 5, initial: 5, max: 5 },
  });
  try {
    turnNow(); // a reading taken in this checkpoint, before the stretch
    stretch += 10_000;
    // Started now: its deadline is 5 s from now, not from before the stretch (already past).
    assert.equal(await g.get("k"), null);
    assert.equal(g.stats().failures.timeout, 0);
  } finally {
    performance.now = realNow;
    await g.close();
  }
});
