// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Fault tests of the engine against real `redis-server` processes (each on a free loopback port),
// with `cache.production(fn, { name, ttl, backend: new RedisBackend({ url }) })` and its defaults
// (only a short circuitBreaker.recoveryTimeout where the test waits for recovery, and a timeout
// floor a loaded host does not reach where failures are counted): kill under load,
// pause (SIGSTOP), full (maxmemory + noeviction), wrong password; the health and metrics handlers
// through a real Deno.serve on a loopback port, the metrics parsed as Prometheus text.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { denoOnly, onExit } from "../_runtime.ts";
import { settlesBeforeTimers } from "../_timing.ts";
import { captureLogs, render } from "../_log_capture.ts";
import { parsePrometheus } from "../_prometheus.ts";
import {
  freePort,
  redisCli,
  type RedisServer,
  redisServerTestOptions,
  startRedisServer,
} from "../_redis_server.ts";
import {
  type Backend,
  BackendError,
  cache,
  cacheHealthHandler,
  cacheMetricsHandler,
  RedisBackend,
} from "../../mod.ts";
import { DEFAULTS } from "../../config/resolve.ts";
import type { GuardedBackend } from "../../reliability/guarded_backend.ts";
import { guard } from "../../engine/_backend.ts";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const opts = { ...redisServerTestOptions, sanitize: false };

// Kill every server this file started if a test never reached its finally.
const started: RedisServer[] = [];
onExit(() => {
  for (const s of started) if (!s.exited) s.kill().catch(() => {});
});
async function server(port: number, args: string[] = [], o: { ping?: boolean } = {}) {
  const s = await startRedisServer(port, args, o);
  started.push(s);
  return s;
}

/** The engine's guard of a cached function's backend (shared per backend and settings). */
function guardOf(f: { config: Parameters<typeof guard>[1] }): GuardedBackend {
  return guard(f.config.backend as Backend, f.config) as GuardedBackend;
}

/** Concurrent callers, each calling `call(i)` with a fresh `i` until stopped. */
function load(workers: number, call: (i: number) => Promise<unknown>) {
  let next = 0;
  let running = true;
  const calls: { start: number; ms: number }[] = [];
  const failures: unknown[] = [];
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      const start = performance.now();
      try {
        await call(next++);
      } catch (e) {
        failures.push(e);
      }
      calls.push({ start, ms: performance.now() - start });
      await sleep(1);
    }
  });
  return {
    calls,
    failures,
    async stop() {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** 90th percentile (nearest rank) of durations. */
function p90(ms: number[]): number {
  const sorted = [...ms].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.9) - 1)] ?? 0;
}

test(
  "faults: Redis killed under load → no failed call, circuit opens at the threshold, fast while open, closes by itself",
  async () => {
    const port = await freePort();
    let redis = await server(port);
    const backend = new RedisBackend({ url: redis.url });
    const f = cache.production(async (id: number) => ({ id }), {
      name: "faults.kill",
      ttl: 60,
      backend,
      // Open for 8 s: time enough for the calls while open below on a loaded host, where the
      // calls in flight when the circuit opens may wait up to their timeout (timeout.max, 5 s)
      // before the callers make new ones.
      circuitBreaker: { recoveryTimeout: 8 },
      // Only the dead server's failures may count: at the default floor (0.1 s from the start, a
      // local backend) a loaded host's healthy server timed out and opened the circuit during the
      // warm-up (every runtime's files at once, two busy processes).
      timeout: { initial: 2, min: 2, max: 5 },
    });
    let failuresAtOpen = -1;
    let openedAt = 0;
    const g = guardOf(f);
    g.circuitBreaker!.onStateChange((c) => {
      if (c.to === "open" && failuresAtOpen < 0) {
        const s = g.stats().failures;
        failuresAtOpen = s.transient + s.timeout + s.unknown + s.authentication;
        openedAt = performance.now();
      }
    });
    const work = load(20, (i) => f(i));
    try {
      // Warm-up: wait (bounded) until Redis has served some traffic; a loaded machine connects slower.
      const warm = performance.now() + 5000;
      while (g.stats().successes <= 20 && performance.now() < warm) await sleep(20);
      assert.equal(g.circuitBreaker!.state, "closed");
      const hitsBefore = g.stats().successes;
      assert.ok(hitsBefore > 20, `Redis served the warm-up (${hitsBefore} operations)`);
      await redis.kill();
      const killedAt = performance.now();
      const deadline = killedAt + 10_000;
      while (openedAt === 0 && performance.now() < deadline) await sleep(10);
      assert.ok(openedAt > 0, "the circuit opened");
      assert.equal(
        failuresAtOpen,
        DEFAULTS.circuitBreaker.failureThreshold,
        "opened at the configured failure threshold",
      );
      // Calls while open (recoveryTimeout 8 s): those started in the first 250 ms, or, when fewer
      // than 21 of them have answered by then (a loaded host), until 21 have, for 7 s at most.
      const openEnd = openedAt + 7000;
      let windowEnd = openedAt + 250;
      const startedOpen = () =>
        work.calls.filter((c) => c.start > openedAt + 5 && c.start < windowEnd);
      await sleep(windowEnd - performance.now());
      while (startedOpen().length <= 20 && performance.now() < openEnd) {
        await sleep(10);
        windowEnd = Math.min(performance.now(), openEnd);
      }
      const whileOpen = startedOpen();
      assert.ok(whileOpen.length > 20, `calls while open: ${whileOpen.length}`);
      // While open, no call waits on the dead server: typical calls finish well under the smallest
      // timeout, and none reaches the timeout bound (scheduling noise on a busy machine aside).
      const openP90 = p90(whileOpen.map((c) => c.ms));
      const maxOpen = Math.max(...whileOpen.map((c) => c.ms));
      assert.ok(
        openP90 < DEFAULTS.timeout.min * 1000,
        `calls while open: p90 ${openP90.toFixed(1)} ms < the smallest timeout`,
      );
      assert.ok(
        maxOpen < DEFAULTS.timeout.max * 1000,
        `slowest call while open ${maxOpen.toFixed(1)} ms`,
      );
      // Redis comes back on the same port: half-open probes succeed and the circuit closes. (The
      // killed server's handle is stopped first: that removes its directory.)
      await redis.stop();
      redis = await server(port);
      const back = performance.now() + 10_000;
      while (g.circuitBreaker!.state !== "closed" && performance.now() < back) await sleep(20);
      assert.equal(g.circuitBreaker!.state, "closed", "the circuit closed by itself");
      const okAfter = g.stats().successes;
      // The callers keep going: an L2 operation succeeds again (at once, unless the host is loaded).
      const used = performance.now() + 10_000;
      while (g.stats().successes <= okAfter && performance.now() < used) await sleep(20);
      assert.ok(g.stats().successes > okAfter, "L2 is used again");
      await work.stop();
      assert.deepEqual(work.failures, [], "no user call failed");
      assert.ok(f.cacheInfo().l2Errors > 0);
    } finally {
      await work.stop();
      await backend.close();
      await redis.stop();
    }
  },
  opts,
);

test(
  "faults: Redis paused (SIGSTOP) → every call stays under the adaptive timeout bound, none fails",
  async () => {
    const redis = await server(await freePort());
    const backend = new RedisBackend({ url: redis.url });
    const f = cache.production(async (id: number) => ({ id }), {
      name: "faults.pause",
      ttl: 60,
      backend,
    });
    const g = guardOf(f);
    const work = load(20, (i) => f(i));
    const boundMs = DEFAULTS.timeout.max * 1000;
    try {
      await sleep(300);
      redis.pause();
      const pausedAt = performance.now();
      // Well past the bound: a call without a deadline would hang past it by more than the slack
      // below, which allows for timers running late on a loaded host.
      await sleep(boundMs + 3000);
      const during = work.calls.filter((c) => c.start + c.ms > pausedAt);
      redis.resume();
      await work.stop();
      assert.deepEqual(work.failures, [], "no user call failed");
      assert.ok(during.length > 100, `calls answered during the pause: ${during.length}`);
      const max = Math.max(...during.map((c) => c.ms));
      assert.ok(max < boundMs + 1500, `slowest call ${max.toFixed(0)} ms <= timeout.max + slack`);
      // Once the circuit is open the calls do not touch Redis: they answer at once.
      const late = during.filter((c) => c.start > pausedAt + 1500);
      const lateP90 = p90(late.map((c) => c.ms));
      assert.ok(
        lateP90 < DEFAULTS.timeout.min * 1000,
        `calls while open: p90 ${lateP90.toFixed(1)} ms < the smallest timeout`,
      );
      assert.ok(g.stats().failures.timeout > 0, "operations timed out (adaptive timeout)");
      assert.ok(g.circuitBreaker!.snapshot().timesOpened >= 1);
    } finally {
      await work.stop();
      redis.resume();
      await backend.close();
      await redis.stop();
    }
  },
  opts,
);

test(
  "faults: Redis full (maxmemory 1mb, noeviction) → writes fail, reads and the function answer",
  async () => {
    const redis = await server(await freePort(), ["--maxmemory-policy", "noeviction"]);
    const backend = new RedisBackend({ url: redis.url });
    try {
      let calls = 0;
      const fn = async (id: number) => ({ id, calls: ++calls });
      const f = cache.production(fn, { name: "faults.full", ttl: 60, backend });
      assert.deepEqual(await f(1), { id: 1, calls: 1 }); // stored while there is room
      // Pre-fill, then cap the memory below what is used (an empty redis-server alone uses ~1 MB).
      const raw = new RedisBackend({ url: redis.url, keyPrefix: "fill:" });
      for (let i = 0; i < 16; i++) await raw.set(`k${i}`, new Uint8Array(64 * 1024), null);
      assert.equal(await redisCli(redis.port, ["CONFIG", "SET", "maxmemory", "1mb"]), "OK");
      const refused = await raw.set("more", new Uint8Array(1024), null).catch((e) => e);
      await raw.close();
      assert.ok(refused instanceof BackendError, "the server is full");
      assert.equal(refused.kind, "permanent");
      assert.match(refused.message, /OOM/);
      // A reader without L1 (another instance) still gets the stored value from Redis.
      const other = cache.production(fn, { name: "faults.full", ttl: 60, backend, l1: false });
      assert.deepEqual(await other(1), { id: 1, calls: 1 });
      assert.equal(other.cacheInfo().l2Hits, 1);
      // New values: the function answers, the write fails (permanent: not a circuit failure).
      for (let i = 2; i < 12; i++) assert.deepEqual(await f(i), { id: i, calls: i });
      assert.ok(f.cacheInfo().l2Errors >= 10, `failed writes ${f.cacheInfo().l2Errors}`);
      assert.equal(f.getHealthStatus().lastErrorKind, "permanent");
      assert.equal(guardOf(f).circuitBreaker!.state, "closed", "reads keep flowing");
      assert.deepEqual(await other(1), { id: 1, calls: 1 }, "reads still answer");
    } finally {
      await backend.close();
      await redis.stop();
    }
  },
  opts,
);

test(
  "faults: wrong password → checkHealth() at start-up says unhealthy/authentication, the first call logs an error and answers",
  async () => {
    const redis = await server(await freePort(), ["--requirepass", "s3cret"], { ping: false });
    const backend = new RedisBackend({ url: `redis://:wrong@127.0.0.1:${redis.port}` });
    const logs = await captureLogs("error");
    try {
      const f = cache.production(async (id: number) => ({ id }), {
        name: "faults.auth",
        ttl: 60,
        backend,
      });
      // The explicit fail-fast start-up check: a typed error naming the cause.
      await assert.rejects(backend.connect(), (e: unknown) => {
        assert.ok(e instanceof BackendError, `a BackendError, got ${e}`);
        assert.equal(e.kind, "authentication");
        assert.match(e.message, /WRONGPASS|password|auth/i);
        return true;
      });
      const h = await f.checkHealth();
      assert.equal(h.status, "unhealthy");
      assert.equal(h.lastErrorKind, "authentication");
      assert.match(h.lastError ?? "", /WRONGPASS|password/i);
      assert.equal(h.components.backend?.status, "unhealthy");
      assert.deepEqual(await f(1), { id: 1 }, "the call answers from the function");
      const errors = logs.records.filter((r) => r.level === "error");
      assert.ok(
        errors.some((r) => /refused our credentials/.test(render(r))),
        logs.records.map(render).join("\n"),
      );
    } finally {
      await logs.stop();
      await backend.close();
      await redis.stop();
    }
  },
  opts,
);

test(
  "faults: health and metrics handlers over a real Deno.serve: 200 → 503 when Redis dies; Prometheus text parses",
  async () => {
    const redis = await server(await freePort());
    const backend = new RedisBackend({ url: redis.url });
    const f = cache.production(async (id: number) => ({ id }), {
      name: "faults.http",
      namespace: "faultshttp",
      ttl: 60,
      backend,
    });
    const health = cacheHealthHandler();
    const metrics = cacheMetricsHandler();
    // deno-lint-ignore no-explicit-any
    const D = (globalThis as any).Deno;
    const srv = D.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (req: Request) => new URL(req.url).pathname === "/metrics" ? metrics(req) : health(req),
    );
    const base = `http://127.0.0.1:${srv.addr.port}`;
    try {
      await f(1);
      await f(1);
      await f(2);
      const ok = await fetch(`${base}/health?level=full`);
      const body = await ok.json();
      assert.equal(ok.status, body.status === "unhealthy" ? 503 : 200);
      assert.equal(ok.headers.get("content-type"), "application/json; charset=utf-8");
      const mine = body.functions.find((x: { identity: string }) => x.identity === "faults.http");
      assert.ok(mine, "every cached function is reported");
      assert.equal(mine.status, "healthy");
      assert.equal(mine.circuit, "closed");
      // The backend's components are in its one entry of `backends`, not repeated per function.
      const be = body.backends.find((b: { id: string }) => b.id === mine.backendId);
      assert.deepEqual(be.functions, ["faults.http"]);
      assert.equal(be.components.backend.status, "healthy");
      assert.equal(typeof be.components.backend.latencyMs, "number");
      assert.equal(be.components.circuitBreaker.details.state, "closed");
      assert.equal(typeof be.components.pool.details.connections, "number", "pool figures");
      assert.ok(be.components.timeout, "full level: adaptive timeout");
      assert.equal(mine.components.backend, undefined);
      assert.equal(mine.components.l1.details.entries, 2);

      const m = await fetch(`${base}/metrics`);
      assert.equal(m.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
      const fams = parsePrometheus(await m.text());
      const sample = (name: string, labels: Record<string, string>) =>
        fams.get(name)?.samples.find((s) =>
          Object.entries(labels).every(([k, v]) => s.labels[k] === v)
        )?.value;
      const fn = { namespace: "faultshttp", function: "faults.http" };
      assert.equal(sample("cache_hits_total", { ...fn, layer: "l1" }), 1);
      assert.equal(sample("cache_misses_total", { ...fn, layer: "l2" }), 2);
      assert.equal(sample("circuit_breaker_state", { backend: "redis" }) !== undefined, true);
      assert.equal(fams.get("redis_cache_operation_duration_seconds")?.type, "histogram");
      assert.equal(sample("cache_l1_entries", { namespace: "faultshttp" }), 2);

      await redis.kill();
      const down = await fetch(`${base}/health?level=ping`);
      const downBody = await down.json();
      assert.equal(down.status, 503);
      assert.equal(downBody.status, "unhealthy");
      const mineDown = downBody.functions.find((x: { identity: string }) =>
        x.identity === "faults.http"
      );
      assert.equal(mineDown.status, "unhealthy");
      const beDown = downBody.backends.find((b: { id: string }) => b.id === mineDown.backendId);
      assert.equal(beDown.components.backend.status, "unhealthy");
      assert.equal(await fetch(`${base}/health?level=bogus`).then((r) => r.status), 400);
    } finally {
      await srv.shutdown();
      await backend.close();
      await redis.stop();
    }
  },
  { ...opts, ...denoOnly("Deno.serve") },
);

test("faults: backpressure over the limit skips L2 at once (no queueing), the function answers", async () => {
  const store = new Map<string, Uint8Array>();
  let inFlight = 0;
  let maxInFlight = 0;
  // The backend's operations wait until the test opens the gate: a call that answers before then
  // did not wait for L2, however slowly a loaded host runs this process.
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  const slow = async <T>(v: T): Promise<T> => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await gate;
    inFlight--;
    return v;
  };
  const backend = {
    type: "slow",
    capabilities: {},
    get: (k: string) => slow(store.get(k) ?? null),
    set: (k: string, v: Uint8Array) => slow(void store.set(k, v)),
    delete: (k: string) => Promise.resolve(store.delete(k)),
    exists: (k: string) => Promise.resolve(store.has(k)),
    healthCheck: () => Promise.resolve({ healthy: true, latencyMs: 0, backendType: "slow" }),
  };
  const f = cache.production(async (id: number) => ({ id }), {
    name: "faults.backpressure",
    ttl: 60,
    backend,
    timeout: false,
    backpressure: { maxConcurrent: 2, queueSize: 0 },
  });
  const calls = Array.from({ length: 10 }, (_, i) => f(i));
  try {
    // 8 calls answer without waiting for anything (no queue, no timer), while the 2 L2 operations
    // admitted hold their slots.
    const quick = await Promise.all(calls.map(settlesBeforeTimers));
    const fast = quick.filter(Boolean).length;
    assert.ok(fast >= 8, `calls over the limit skipped L2 at once: ${quick}`);
    assert.equal(inFlight, 2, "the 2 admitted L2 operations are still waiting");
  } finally {
    open();
  }
  assert.deepEqual(await Promise.all(calls), Array.from({ length: 10 }, (_, id) => ({ id })));
  assert.ok(maxInFlight <= 2, `at most 2 L2 operations at once (${maxInFlight})`);
  assert.ok(guardOf(f).stats().rejectedByBackpressure >= 8);
  assert.equal(guardOf(f).circuitBreaker!.state, "closed", "refusals are no failures");
});
