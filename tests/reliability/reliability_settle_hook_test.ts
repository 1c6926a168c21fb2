/**
 * The settle hook between the guard and the Redis backend's batched `GET`
 * (`backends/_settle_hook.ts`, `reliability/_guard_hook.ts`): the guard chains no `then` on a
 * hooked `get`, and its bookkeeping still happens for every outcome — successes counted and timed,
 * a hung server's gets rejected as `timeout` and counted by the breaker and the adaptive timeout,
 * backpressure slots given back — before the caller resumes.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { freePort, redisServerTestOptions, startRedisServer } from "../_redis_server.ts";
import { RedisBackend } from "../../backends/mod.ts";
import type { SettleHook } from "../../backends/internal.ts";
import { BackendError } from "../../errors.ts";
import { CacheMetrics } from "../../health/metrics.ts";
import { GuardedBackend } from "../../reliability/guarded_backend.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test(
  "settle hook: a batched Redis get takes it and calls it once, before its promise settles",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using b = new RedisBackend({ url: server.url });
    await b.set("k", enc("v"), null, { timeoutMs: 10_000 });
    const calls: unknown[] = [];
    let resolvedBeforeHook = false;
    let resolved = false;
    const hook: SettleHook = {
      hooked: false,
      timeoutMs: 5000,
      settled(error) {
        if (resolved) resolvedBeforeHook = true;
        calls.push(error);
        return error;
      },
    };
    const p = b.get("k", hook).then((v) => (resolved = true, v));
    assert.equal(hook.hooked, true, "taken during the call");
    assert.deepEqual(await p, enc("v"));
    assert.deepEqual(calls, [null]);
    assert.equal(resolvedBeforeHook, false);

    // A failure rejects with what the hook returned.
    server.pause();
    const mine = new BackendError("classified", {
      kind: "timeout",
      backend: "redis",
      operation: "get",
    });
    const failing: SettleHook = { hooked: false, timeoutMs: 100, settled: () => mine };
    const got = await b.get("k", failing).then(() => "resolved", (e) => e);
    assert.equal(got, mine);
    server.resume();
    // A plain options object is not a hook.
    assert.deepEqual(await b.get("k", { timeoutMs: 5000 }), enc("v"));
  },
  redisServerTestOptions,
);

test(
  "settle hook: a guarded Redis get does the guard's bookkeeping for successes and timeouts",
  async () => {
    await using server = await startRedisServer(await freePort());
    const inner = new RedisBackend({ url: server.url });
    const metrics = new CacheMetrics();
    await using g = new GuardedBackend(inner, {
      metrics,
      timeout: { min: 0.15, initial: 0.15, max: 0.15 },
      circuitBreaker: { failureThreshold: 1000 },
      backpressure: { maxConcurrent: 500 },
    });
    await inner.set("k", enc("v"), null, { timeoutMs: 10_000 });
    const got = await Promise.all(Array.from({ length: 100 }, () => g.get("k")));
    assert.equal(got.filter((v) => v !== null && v[0] === 118).length, 100);
    let s = g.stats();
    assert.equal(s.successes, 100);
    assert.equal(s.backpressure?.active, 0, "every slot given back");
    const h = metrics.backendDurationFamily(g.type).labels({
      operation: "get",
      backend: g.type,
      function: "",
    });
    assert.equal(h.count, 100, "every get timed");
    assert.equal(s.timeout?.samples, 100, "every get recorded by the adaptive timeout");

    server.pause();
    const kinds = await Promise.all(
      Array.from(
        { length: 10 },
        () => g.get("k").then(() => "resolved", (e) => e instanceof BackendError ? e.kind : `${e}`),
      ),
    );
    assert.deepEqual(kinds, Array(10).fill("timeout"));
    s = g.stats();
    assert.equal(s.failures.timeout, 10);
    assert.equal(s.backpressure?.active, 0);
    assert.equal(s.circuitBreaker?.failures, 10, "the breaker counted them");
    assert.equal(h.count, 110, "the timed-out gets timed too");
    server.resume();
    assert.deepEqual(await g.get("k"), enc("v"));
    assert.equal(g.stats().successes, 101);
  },
  redisServerTestOptions,
);

test(
  "settle hook: a Redis set and the lease's attempt and write take it and call it once, " +
    "before their promise settles; a failure rejects with what it returned",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using b = new RedisBackend({ url: server.url });
    await b.set("warm", enc("v"), null, { timeoutMs: 10_000 }); // connected
    const fl = b.capabilities.fetchLock!.inKey!;
    const hookOf = (returns?: unknown) => {
      const calls: unknown[] = [];
      const hook: SettleHook = {
        hooked: false,
        timeoutMs: 5000,
        settled(error) {
          calls.push(error);
          return returns ?? error;
        },
      };
      return { hook, calls };
    };
    const ops: [string, (o: SettleHook) => Promise<unknown>, unknown][] = [
      ["set", (o) => b.set("k", enc("v"), 60, o), undefined],
      ["fetchOrLock", (o) => fl.fetchOrLock("m", "tok", 10_000, o), true],
      ["setAndUnlock", (o) => fl.setAndUnlock("m", enc("w"), 60, null, "tok", o), undefined],
    ];
    for (const [name, call, expected] of ops) {
      const { hook, calls } = hookOf();
      let settledFirst = false;
      const p = call(hook).then((v) => (settledFirst = calls.length === 1, v));
      assert.equal(hook.hooked, true, `${name}: taken during the call`);
      assert.deepEqual(await p, expected, name);
      assert.deepEqual(calls, [null], `${name}: called once`);
      assert.ok(settledFirst, `${name}: called before the promise settled`);
    }
    assert.deepEqual(await b.get("m"), enc("w"));

    // A failure (the deadline of a paused server) rejects with what the hook returned.
    server.pause();
    const mine = new BackendError("classified", {
      kind: "timeout",
      backend: "redis",
      operation: "set",
    });
    for (const [name, call] of ops.slice(0, 2)) {
      const { hook, calls } = hookOf(mine);
      hook.timeoutMs = 100;
      const got = await call(hook).then(() => "resolved", (e) => e);
      assert.equal(got, mine, name);
      assert.equal(calls.length, 1, `${name}: called once`);
      assert.ok(calls[0] instanceof BackendError && calls[0].kind === "timeout", name);
    }
    server.resume();
    assert.equal((await b.healthCheck()).pool?.inFlightOperations, 0, "none left in flight");
  },
  redisServerTestOptions,
);

test(
  "settle hook: a guarded Redis set and locked miss do the guard's bookkeeping for successes " +
    "and timeouts",
  async () => {
    await using server = await startRedisServer(await freePort());
    const inner = new RedisBackend({ url: server.url });
    const metrics = new CacheMetrics();
    await using g = new GuardedBackend(inner, {
      metrics,
      timeout: { min: 0.15, initial: 0.15, max: 0.15 },
      circuitBreaker: { failureThreshold: 1000 },
      backpressure: { maxConcurrent: 500 },
    });
    await inner.set("warm", enc("v"), null, { timeoutMs: 10_000 }); // connected
    const fl = g.capabilities.fetchLock!.inKey!;
    const miss = async (i: number) => {
      assert.equal(await fl.fetchOrLock(`k${i}`, `t${i}`, 10_000), true);
      await fl.setAndUnlock(`k${i}`, enc("v"), 60, null, `t${i}`);
      await g.set(`s${i}`, enc("v"), 60);
    };
    await Promise.all(Array.from({ length: 50 }, (_, i) => miss(i)));
    let s = g.stats();
    assert.equal(s.successes, 150);
    assert.equal(s.backpressure?.active, 0, "every slot given back");
    assert.equal(s.timeout?.samples, 150, "every operation recorded by the adaptive timeout");
    const timed = (operation: string) =>
      metrics.backendDurationFamily(g.type).labels({ operation, backend: g.type, function: "" })
        .count;
    assert.equal(timed("lock"), 50);
    assert.equal(timed("set"), 100);

    server.pause();
    const kinds = await Promise.all([
      ...Array.from({ length: 5 }, (_, i) => fl.fetchOrLock(`p${i}`, `t${i}`, 10_000)),
      ...Array.from({ length: 5 }, (_, i) => g.set(`q${i}`, enc("v"), 60)),
    ].map((p) => p.then(() => "resolved", (e) => e instanceof BackendError ? e.kind : `${e}`)));
    assert.deepEqual(kinds, Array(10).fill("timeout"));
    s = g.stats();
    assert.equal(s.failures.timeout, 10);
    assert.equal(s.backpressure?.active, 0);
    assert.equal(s.circuitBreaker?.failures, 10, "the breaker counted them");
    assert.equal(timed("lock") + timed("set"), 160, "the timed-out operations timed too");
    server.resume();
    await g.set("after", enc("v"), 60);
    assert.equal(g.stats().successes, 151);
  },
  redisServerTestOptions,
);
