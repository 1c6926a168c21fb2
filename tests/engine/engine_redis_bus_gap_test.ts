// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Missed invalidations: instance B reaches the shared Redis through a TCP proxy the test can cut.
// While B's invalidation-bus subscription is down its health is `degraded`; once it is back, B
// drops the L1 entries the lost events could have evicted instead of serving them until their TTL.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import { startTcpProxy, until } from "../_tcp_proxy.ts";
import { cache, type CacheEvent, RedisBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test(
  "a lost bus subscription is degraded health, and B's L1 is cleared when it is back",
  async () => {
    await using proxy = await startTcpProxy(6379);
    const id = crypto.randomUUID().slice(0, 8);
    const opts = { keyPrefix: `cktest:gap:${id}:`, invalidationChannel: `cktest:inv:gap:${id}` };
    await using a = new RedisBackend({ url: SHARED_REDIS_URL, ...opts });
    await using b = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, ...opts });
    let n = 0;
    const work = async (k: number) => ({ k, n: ++n });
    const fnOpts = { name: "redis.gap", ttl: 600, l1: { invalidation: true }, ...bare };
    const fa = cache(work, { ...fnOpts, backend: a });
    const fb = cache(work, { ...fnOpts, backend: b });
    assert.equal((await fa(1)).n, 1);
    assert.equal((await fb(1)).n, 1); // L2 hit, now in B's L1
    // B's subscription is established once a subscription on the same channel resolves.
    await (await b.subscribe(() => {}))();
    assert.equal(b.subscriptionUp, true);
    assert.equal(fb.getHealthStatus().status, "healthy");
    const bus: unknown[] = [];
    fb.events.addEventListener("bus", (e) => bus.push((e as CacheEvent).detail.bus));

    proxy.cut();
    assert.ok(
      await until(() => bus.includes("disconnected"), 20_000),
      "a `bus` event says the subscription was lost when it is lost",
    );
    assert.ok(
      await until(() => fb.getHealthStatus().status === "degraded", 20_000),
      "B's health is degraded while its subscription is down",
    );
    const down = fb.getHealthStatus();
    assert.equal(down.components.invalidation?.status, "degraded");
    assert.match(down.components.invalidation?.message ?? "", /invalidation bus/);
    assert.equal(b.subscriptionUp, false);

    await fa.invalidate(1); // deletes L2 and publishes: the event is lost for B
    assert.equal((await fa(1)).n, 2);
    assert.equal(fb.cacheInfo().size, 1, "B still holds the old value (it missed the event)");

    proxy.restore();
    assert.ok(
      await until(() => b.subscriptionUp && fb.getHealthStatus().status === "healthy", 30_000),
      "B's subscription comes back",
    );
    assert.equal(fb.cacheInfo().size, 0, "B's L1 was cleared on reconnect");
    assert.deepEqual(bus, ["disconnected", "recovered"], "one event each way");
    assert.equal((await fb(1)).n, 2, "B does not serve the value invalidated during the gap");
    assert.equal(fb.getHealthStatus().components.invalidation, undefined);
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "a bus subscription that failed at start is retried by itself and clears L1 when it succeeds",
  async () => {
    await using proxy = await startTcpProxy(6379);
    const id = crypto.randomUUID().slice(0, 8);
    const opts = { keyPrefix: `cktest:gap2:${id}:`, invalidationChannel: `cktest:inv:gap2:${id}` };
    await using a = new RedisBackend({ url: SHARED_REDIS_URL, ...opts });
    await using b = new RedisBackend({ url: `redis://127.0.0.1:${proxy.port}`, ...opts });
    let n = 0;
    const work = async (k: number) => ({ k, n: ++n });
    const fnOpts = { name: "redis.gap2", ttl: 600, l1: { invalidation: true }, ...bare };
    const fa = cache(work, { ...fnOpts, backend: a });
    const fb = cache(work, { ...fnOpts, backend: b });
    proxy.cut(); // B starts without Redis: L2 and the subscription fail
    assert.equal((await fb(1)).n, 1); // computed, kept in B's L1 only
    assert.ok(
      await until(() => fb.getHealthStatus().components.invalidation !== undefined, 20_000),
      "the failed subscription shows in B's health",
    );
    assert.equal((await fa(1)).n, 2); // A stores a newer value; B cannot hear of it
    proxy.restore();
    // No call of B misses (it answers from L1) and nothing probes it: the subscription is retried
    // by itself.
    assert.ok(
      await until(
        () =>
          fb.getHealthStatus().components.invalidation === undefined && fb.cacheInfo().size === 0,
        30_000,
      ),
      "B resubscribed and cleared what it cached while missing events",
    );
    assert.equal((await fb(1)).n, 2);
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
