// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Auto-recovery of remote operations (`engine/_recovery.ts`): a deletion, tag invalidation, clear
// or bus publish that failed while L2 was down is queued (deduplicated, bounded: the oldest is
// dropped and counted), shows in health, and is retried when L2 answers again: after the next
// successful operation, or by the unref'd timer without any call. Writes are not queued. Against a
// MemoryBackend behind a switch the test flips, and a private redis-server (on a free
// loopback port) cut by a TCP proxy, or stopped and restarted with its data.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { onExit } from "../_runtime.ts";
import {
  freePort,
  redisCli,
  type RedisServer,
  redisServerTestOptions,
  startRedisServer,
} from "../_redis_server.ts";
import { startTcpProxy } from "../_tcp_proxy.ts";
import { until } from "../_timing.ts";
import {
  type Backend,
  BackendError,
  cache,
  checkCacheHealth,
  createCache,
  invalidateTags,
  type InvalidationEvent,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";
import { MAX_PENDING } from "../../engine/_recovery.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/**
 * A MemoryBackend behind a switch: while `down`, every operation (and every capability call)
 * rejects with a transient BackendError. Records the keys written and the events published on
 * its bus (when `bus`).
 */
function outage(opts: { bus?: boolean } = {}) {
  const inner = new MemoryBackend();
  const state = { down: false };
  const written: string[] = [];
  const published: Omit<InvalidationEvent, "sender">[] = [];
  const refuse = (operation: string) =>
    Promise.reject(
      new BackendError("connection refused (test outage)", {
        kind: "transient",
        backend: "memory",
        operation,
      }),
    );
  const guardOp = <T>(operation: string, run: () => Promise<T>): Promise<T> =>
    state.down ? refuse(operation) : run();
  const caps = inner.capabilities;
  const backend: Backend = {
    type: "memory",
    capabilities: {
      ttl: caps.ttl,
      timeouts: true,
      prefix: {
        deleteByPrefix: (p) => guardOp("deleteByPrefix", () => caps.prefix.deleteByPrefix(p)),
        deleteByTenantPrefix: (p) =>
          guardOp("deleteByPrefix", () => caps.prefix.deleteByTenantPrefix!(p)),
      },
      tags: {
        addTags: (k, t, ttl) => guardOp("addTags", () => caps.tags.addTags(k, t, ttl)),
        invalidateTags: (t) => guardOp("invalidateTags", () => caps.tags.invalidateTags(t)),
      },
      ...(opts.bus
        ? {
          invalidation: {
            instanceId: "test-outage",
            publish: (e: Omit<InvalidationEvent, "sender">) =>
              guardOp("publish", () => {
                published.push(e);
                return Promise.resolve();
              }),
            subscribe: () => Promise.resolve(() => Promise.resolve()),
          },
        }
        : {}),
    },
    get: (k, o) => guardOp("get", () => inner.get(k, o)),
    set: (k, v, t, o) =>
      guardOp("set", () => {
        written.push(k);
        return inner.set(k, v, t, o);
      }),
    delete: (k, o) => guardOp("delete", () => inner.delete(k, o)),
    exists: (k, o) => guardOp("exists", () => inner.exists(k, o)),
    healthCheck: () => inner.healthCheck(),
  };
  return { backend, inner, state, written, published };
}

/** The recovery figures of a cached function's health (`undefined`: nothing was ever queued). */
function recovery(f: { getHealthStatus(): { components: Record<string, unknown> } }) {
  const c = f.getHealthStatus().components.recovery as
    | {
      status: string;
      details: {
        pending: number;
        dropped: number;
        lastRetry: { ok: boolean; error: string | null; completed: number } | null;
      };
    }
    | undefined;
  return c;
}

test("recovery: an invalidation while L2 is down queues the delete and its publish; health shows them; the next successful operation retries them", async () => {
  const o = outage({ bus: true });
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "recovery.next_op",
    ttl: 60,
    backend: o.backend,
    ...bare,
  });
  await f(1);
  const key = o.written[0];
  assert.equal(await o.inner.exists(key), true);
  o.state.down = true;
  await f.invalidate(1);
  // The publish is not awaited by invalidate(): its failure is queued a moment later.
  assert.ok(await until(() => recovery(f)?.details.pending === 2));
  const down = recovery(f);
  assert.ok(down, "a recovery component");
  assert.equal(down.status, "degraded");
  assert.equal(down.details.pending, 2, "the delete and its publish");
  assert.equal(f.getHealthStatus().status, "degraded");
  // The process report lists the queue once, on the backend's entry.
  const report = await checkCacheHealth("ping");
  const entry = report.backends.find((b) => b.functions.includes("recovery.next_op"));
  assert.equal(entry?.components.recovery?.details?.pending, 2);
  assert.equal(entry?.status, "degraded");
  const own = report.functions.find((fh) => fh.identity === "recovery.next_op");
  assert.equal(own?.components.recovery, undefined, "not repeated on the function's entry");
  assert.equal(own?.status, "degraded");
  assert.equal(await o.inner.exists(key), true, "still in L2 during the outage");
  o.state.down = false;
  await f(2); // a successful L2 operation: the queue is retried at once
  assert.ok(await until(() => recovery(f)!.details.pending === 0), "drained");
  assert.equal(await o.inner.exists(key), false, "the delete reached L2");
  assert.deepEqual(o.published.filter((e) => e.reason === "delete"), [
    { level: "key", targets: [key], reason: "delete" },
  ]);
  const up = recovery(f)!;
  assert.equal(up.status, "healthy");
  assert.equal(up.details.lastRetry?.ok, true);
  assert.equal(up.details.lastRetry?.completed, 2);
  assert.equal(f.getHealthStatus().status, "healthy");
  assert.equal((await f(1)).n, 3, "recomputed");
});

test("recovery: without any further call, the unref'd timer retries the queue when L2 is back", async () => {
  const o = outage();
  const f = cache(async (id: number) => ({ id }), {
    name: "recovery.timer",
    ttl: 60,
    backend: o.backend,
    ...bare,
  });
  await f(1);
  const key = o.written[0];
  o.state.down = true;
  await f.invalidate(1);
  assert.equal(recovery(f)!.details.pending, 1);
  // A timed retry while still down fails and backs off.
  assert.ok(await until(() => recovery(f)!.details.lastRetry !== null), "a timed retry ran");
  assert.equal(recovery(f)!.details.lastRetry!.ok, false);
  assert.match(recovery(f)!.details.lastRetry!.error ?? "", /connection refused/);
  o.state.down = false;
  assert.ok(await until(() => recovery(f)!.details.pending === 0, 20_000), "drained by the timer");
  assert.equal(await o.inner.exists(key), false);
});

test("recovery: two invalidations of one key queue it once", async () => {
  const o = outage({ bus: true });
  const f = cache(async (id: number) => ({ id }), {
    name: "recovery.dedup",
    ttl: 60,
    backend: o.backend,
    ...bare,
  });
  await f(1);
  await f(2);
  o.state.down = true;
  await f.invalidate(1);
  await f.invalidate(1);
  assert.ok(await until(() => recovery(f)?.details.pending === 2));
  await f.invalidate(1);
  await f.invalidate(2);
  assert.ok(await until(() => recovery(f)?.details.pending === 4));
  assert.equal(recovery(f)!.details.pending, 4, "one delete and one publish per key");
  o.state.down = false;
  await f(3);
  assert.ok(await until(() => recovery(f)!.details.pending === 0));
  assert.equal(o.published.filter((e) => e.reason === "delete").length, 2, "one event per key");
  assert.equal(await o.inner.exists(o.written[0]), false);
  assert.equal(await o.inner.exists(o.written[1]), false);
});

test(`recovery: over ${MAX_PENDING} pending operations the oldest are dropped and counted`, async () => {
  const o = outage();
  const f = cache(async (id: number) => ({ id }), {
    name: "recovery.bound",
    ttl: 60,
    backend: o.backend,
    l1: false,
    ...bare,
  });
  const extra = 5;
  for (let i = 0; i < MAX_PENDING + extra; i++) await f(i);
  o.state.down = true;
  for (let i = 0; i < MAX_PENDING + extra; i++) await f.invalidate(i);
  const r = recovery(f)!;
  assert.equal(r.details.pending, MAX_PENDING);
  assert.equal(r.details.dropped, extra);
  o.state.down = false;
  await f.checkHealth(); // a successful probe retries the queue too
  assert.ok(await until(() => recovery(f)!.details.pending === 0));
  for (let i = 0; i < extra; i++) {
    assert.equal(await o.inner.exists(o.written[i]), true, `the dropped (oldest) delete ${i}`);
  }
  for (let i = extra; i < MAX_PENDING + extra; i += 97) {
    assert.equal(await o.inner.exists(o.written[i]), false, `delete ${i} was retried`);
  }
  assert.equal(recovery(f)!.details.dropped, extra);
});

test("recovery: createCache delete() during an outage reaches L2 afterwards", async () => {
  const o = outage({ bus: true });
  const c = createCache({ ttl: 60, backend: o.backend, ...bare });
  await c.set("user:1", { name: "Ada" });
  const key = o.written[0];
  o.state.down = true;
  await c.delete("user:1");
  assert.ok(await until(() => recovery(c)?.details.pending === 2), "the delete and its publish");
  assert.equal(await o.inner.exists(key), true);
  o.state.down = false;
  assert.ok(await until(() => recovery(c)!.details.pending === 0, 20_000));
  assert.equal(await o.inner.exists(key), false, "the delete reached L2");
  assert.equal(await c.get("user:1"), undefined);
});

test("recovery: writes are not queued (a write lost to an outage is only a miss)", async () => {
  const o = outage({ bus: true });
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "recovery.writes",
    ttl: 60,
    backend: o.backend,
    ...bare,
  });
  o.state.down = true;
  assert.deepEqual(await f(7), { id: 7, n: 1 }, "answered without L2");
  assert.equal(recovery(f), undefined, "nothing queued");
  o.state.down = false;
  await f(8);
  assert.equal(o.written.length, 1, "only the call made after the outage was written");
  assert.equal(recovery(f), undefined);
});

test("recovery: cacheClear and invalidateTags during an outage reach L2 afterwards", async () => {
  const o = outage();
  const f = cache(async (id: number) => ({ id }), {
    name: "recovery.clear",
    ttl: 60,
    backend: o.backend,
    tags: (id) => [`rec-tag-${id % 2}`],
    ...bare,
  });
  for (const id of [1, 2, 3]) await f(id);
  const [k1, k2, k3] = o.written;
  o.state.down = true;
  await invalidateTags("rec-tag-0", { backend: o.backend });
  assert.equal(recovery(f)!.details.pending, 1, "the tag");
  o.state.down = false;
  await f(4);
  assert.ok(await until(() => recovery(f)!.details.pending === 0));
  assert.equal(await o.inner.exists(k2), false, "the tagged entry is gone");
  assert.equal(await o.inner.exists(k1), true);
  o.state.down = true;
  await f.cacheClear();
  assert.ok(recovery(f)!.details.pending >= 1, "the prefix deletion is queued");
  o.state.down = false;
  await f(5);
  assert.ok(await until(() => recovery(f)!.details.pending === 0));
  assert.equal(await o.inner.exists(k1), false);
  assert.equal(await o.inner.exists(k3), false);
});

test("recovery: a retried tag invalidation announces the entries it deleted, by key", async () => {
  const o = outage({ bus: true });
  const f = cache(async (id: number) => ({ id }), {
    name: "recovery.tagkeys",
    ttl: 60,
    backend: o.backend,
    tags: (id) => [`rec-tagkeys-${id % 2}`],
    ...bare,
  });
  for (const id of [1, 2]) await f(id);
  const k2 = o.written[1];
  o.state.down = true;
  await invalidateTags("rec-tagkeys-0", { backend: o.backend });
  o.state.down = false;
  await f(3);
  assert.ok(await until(() => recovery(f)!.details.pending === 0));
  // Another process's L1 copy of k2, read from L2, does not know its tags: the key reaches it.
  assert.ok(
    o.published.some((e) => e.level === "key" && e.reason === "delete" && e.targets.includes(k2)),
    JSON.stringify(o.published),
  );
});

for (const invalidation of [true, false]) {
  test(`recovery: a value read back from L2 before the retry is evicted from L1 when the retry lands (l1.invalidation ${invalidation})`, async () => {
    const o = outage();
    let n = 0;
    const f = cache(async (id: number) => ({ id, n: ++n }), {
      name: `recovery.reapply.${invalidation}`,
      ttl: 60,
      backend: o.backend,
      l1: { invalidation },
      ...bare,
    });
    await f(1);
    o.state.down = true;
    await f.invalidate(1);
    o.state.down = false;
    // This read succeeds (the old entry is still in L2) and triggers the retry.
    await f(1);
    assert.ok(await until(() => recovery(f)!.details.pending === 0));
    assert.equal((await f(1)).n, 2, "recomputed: the old value did not stay in L1");
    // The same for a clear: the retried prefix deletion clears L1 again.
    await f(2);
    o.state.down = true;
    await f.cacheClear();
    o.state.down = false;
    await f(2); // read back from L2, and the retry starts
    assert.ok(await until(() => recovery(f)!.details.pending === 0));
    assert.equal((await f(2)).n, 4, "recomputed after the retried clear");
  });
}

// ---------------------------------------------------------------------------------------------
// Redis: a private redis-server, cut by a TCP proxy, or stopped and restarted with its data.

const started: RedisServer[] = [];
onExit(() => {
  for (const s of started) if (!s.exited) s.kill().catch(() => {});
});
const redisOpts = { ...redisServerTestOptions, sanitize: false };

/**
 * A referenced timer for the length of a test: while Redis is away, an operation waits for the
 * reconnection on unreferenced timers only (a script must be free to exit), which would leave the
 * test's event loop empty with the operation pending.
 */
function keepAlive(): () => void {
  const t = setInterval(() => {}, 1000);
  return () => clearInterval(t);
}

async function keysOf(port: number): Promise<string[]> {
  return (await redisCli(port, ["--scan", "--pattern", "*"])).split("\n").filter((k) =>
    k !== "" && !k.includes(":lock")
  );
}

test(
  "recovery (redis, cut connection): the delete reaches Redis and the publish goes out after the connection is back, without another call; the write made meanwhile is not queued nor sent late",
  async () => {
    const port = await freePort();
    const server = await startRedisServer(port);
    started.push(server);
    const proxy = await startTcpProxy(port);
    const channel = `ck:recovery:${crypto.randomUUID().slice(0, 8)}`;
    const a = new RedisBackend({
      url: `redis://127.0.0.1:${proxy.port}`,
      invalidationChannel: channel,
    });
    const observer = new RedisBackend({ url: server.url, invalidationChannel: channel });
    const events: InvalidationEvent[] = [];
    const release = keepAlive();
    try {
      const unsubscribe = await observer.capabilities.invalidation!.subscribe((e) =>
        events.push(e)
      );
      let n = 0;
      const f = cache(async (id: number) => ({ id, n: ++n }), {
        name: "recovery.redis.cut",
        ttl: 60,
        backend: a,
      });
      await f(1);
      const [key] = await keysOf(port);
      assert.ok(key, "the entry is in Redis");
      // Its write event went out too (after the write, in the background): cut only then, or a
      // loaded host may still have it to send, and queue it for recovery when the cut fails it.
      assert.ok(
        await until(() => events.some((e) => e.reason === "write" && e.targets.includes(key))),
        "the write event was published",
      );
      proxy.cut();
      await f.invalidate(1);
      assert.ok(
        await until(() => recovery(f)?.details.pending === 2),
        "the delete and its publish",
      );
      await f(5); // computed; its write is lost to the outage
      assert.equal(recovery(f)?.details.pending, 2, "the write is not queued");
      assert.equal(await redisCli(port, ["EXISTS", key]), "1", "still there during the outage");
      proxy.restore();
      assert.ok(
        await until(async () => (await redisCli(port, ["EXISTS", key])) === "0", 20_000),
        "the queued delete reached Redis",
      );
      assert.ok(
        await until(() => events.some((e) => e.reason === "delete" && e.targets.includes(key))),
        "the queued delete event was published",
      );
      assert.ok(await until(() => recovery(f)!.details.pending === 0));
      assert.equal(recovery(f)!.details.lastRetry?.ok, true);
      // Nor sent late by the backend: the command waited for the connection past its deadline.
      assert.deepEqual(await keysOf(port), [], "the lost write did not land after the outage");
      await unsubscribe();
    } finally {
      await a.close();
      await observer.close();
      await proxy.close();
      await server.stop();
      release();
    }
  },
  redisOpts,
);

test(
  "recovery (redis restart): an invalidation and a tag invalidation made while Redis is stopped reach it once it is restarted with its data",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "ck-recovery-redis-"));
    const persist = ["--appendonly", "yes"];
    const port = await freePort(); // kept for the restart
    let server = await startRedisServer(port, persist, { dir });
    started.push(server);
    const backend = new RedisBackend({ url: server.url });
    const release = keepAlive();
    try {
      let n = 0;
      const f = cache(async (id: number) => ({ id, n: ++n }), {
        name: "recovery.redis.restart",
        ttl: 60,
        backend,
        tags: (id) => [`rec-restart-${id}`],
      });
      await f(1);
      await f(2);
      const before = await keysOf(port);
      await server.stop(); // SIGTERM: the append-only file is flushed
      await f.invalidate(1);
      await invalidateTags("rec-restart-2", { backend });
      assert.ok(
        await until(() => (recovery(f)?.details.pending ?? 0) >= 4),
        "the delete, the tag and their publishes are queued",
      );
      assert.equal(f.getHealthStatus().components.recovery?.status, "degraded");
      server = await startRedisServer(port, persist, { dir });
      started.push(server);
      // The restarted server loaded its data: the entries are back until the queue is retried.
      assert.ok(
        await until(async () => {
          const left = await keysOf(port);
          return !left.some((k) => k.includes(":args:"));
        }, 30_000),
        `the invalidated entries were deleted (before: ${before.join(", ")}; now: ${
          (await keysOf(port)).join(", ")
        })`,
      );
      assert.ok(await until(() => recovery(f)!.details.pending === 0));
      assert.equal((await f(1)).n, 3, "recomputed");
    } finally {
      await backend.close();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      release();
    }
  },
  redisOpts,
);

test(
  "RedisBackend: a write that waited for the connection past its deadline is not sent once connected",
  async () => {
    const port = await freePort();
    const server = await startRedisServer(port);
    started.push(server);
    const proxy = await startTcpProxy(port);
    const b = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, operationTimeoutMs: 200 });
    const release = keepAlive();
    try {
      // A 10 s deadline, as for any write to a healthy server here: the 200 ms default is for the
      // slow reconnection below (a loaded host can take longer for this first write).
      await b.set("warm", new Uint8Array([1]), 60, { timeoutMs: 10_000 });
      // A slow reconnection: the connection is cut, and new ones are held 1.5 s before they reach
      // the server, so commands wait for the connection longer than their deadline.
      proxy.acceptDelayMs = 1500;
      proxy.cut();
      await b.get("warm").catch(() => null); // fails with the connection
      proxy.restore();
      await assert.rejects(b.set("late", new Uint8Array([2]), 60));
      assert.ok(
        await until(async () => (await b.exists("warm").catch(() => null)) === true, 20_000),
        "reconnected",
      );
      await new Promise((r) => setTimeout(r, 100)); // anything still queued would land by now
      assert.equal(await redisCli(port, ["EXISTS", "late"]), "0", "the abandoned write");
    } finally {
      await b.close();
      await proxy.close();
      await server.stop();
      release();
    }
  },
  redisOpts,
);
