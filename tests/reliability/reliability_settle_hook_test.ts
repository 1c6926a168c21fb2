/**
 * The settle hook between the guard and the Redis backend's batched `GET`
 * (`backends/_settle_hook.ts`, `reliability/_guard_hook.ts`): the guard chains no `then` on a
 * hooked `get`, and its bookkeeping still happens for every outcome — successes counted and timed,
 * a hung server's gets rejected as `timeout` and counted by the breaker and the adaptive timeout,
 * backpressure slots given back — before the caller resumes.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { redisServerTestOptions, startRedisServer } from "../_redis_server.ts";
import { RedisBackend } from "../../backends/mod.ts";
import type { SettleHook } from "../../backends/internal.ts";
import { BackendError } from "../../errors.ts";
import { CacheMetrics } from "../../health/metrics.ts";
import { GuardedBackend } from "../../reliability/guarded_backend.ts";

const enc = (s: string) => new TextEncoder().encode(s);

test(
  "settle hook: a batched Redis get takes it and calls it once, before its promise settles",
  async () => {
    await using server = await startRedisServer(16441);
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
    await using server = await startRedisServer(16442);
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
