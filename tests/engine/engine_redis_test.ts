// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The engine on a real Redis (127.0.0.1:6379): L1 invalidation across instances through the
// backend's invalidation bus, cross-instance stampede lock, tags. Two RedisBackend instances stand
// for two processes (separate connections, separate L1s). In CI a missing Redis is a failure.
import assert from "node:assert/strict";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions } from "../_redis_server.ts";
import { gate, sleep, until } from "../_timing.ts";
import { cache, RedisBackend } from "../../mod.ts";

const URL = "redis://127.0.0.1:6379";
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/** Two backends on one key prefix and invalidation channel; the third element is the channel. */
function pair(tag: string) {
  const id = `${tag}-${crypto.randomUUID().slice(0, 8)}`;
  const opts = { url: URL, keyPrefix: `cktest:${id}:`, invalidationChannel: `cktest:inv:${id}` };
  return [new RedisBackend(opts), new RedisBackend(opts), opts.invalidationChannel] as const;
}

/**
 * Wait until `n` connections subscribe to `channel` (both instances listen to the bus), instead
 * of a fixed sleep that a loaded host outlasts.
 */
async function subscribed(channel: string, n: number): Promise<void> {
  const redis = createClient({ url: URL });
  await redis.connect();
  try {
    let seen = -1;
    const ok = await until(async () => {
      const reply = await redis.sendCommand(["PUBSUB", "NUMSUB", channel]) as unknown[];
      seen = Number(reply[1]);
      return seen >= n;
    }, 10_000);
    assert.ok(ok, `${n} subscribers to ${channel} expected, ${seen} present`);
  } finally {
    await redis.close();
  }
}

/** Deadline for an invalidation event to reach the other instance: only a lost event takes this long. */
const EVENT_MS = 5000;

test(
  "L1 invalidation reaches another instance (invalidate, write, clear)",
  async () => {
    const [a, b, channel] = pair("inv");
    try {
      let n = 0;
      const work = async (id: number) => ({ id, n: ++n });
      const opts = { name: "redis.inv", ttl: 60, l1: { invalidation: true }, ...bare };
      const fa = cache(work, { ...opts, backend: a });
      const fb = cache(work, { ...opts, backend: b });
      assert.equal((await fa(1)).n, 1);
      assert.equal((await fb(1)).n, 1); // L2 hit, now in b's L1
      assert.equal(fb.cacheInfo().size, 1);
      await subscribed(channel, 2);
      await fa.invalidate(1);
      assert.ok(await until(() => fb.cacheInfo().size === 0, EVENT_MS), "b's L1 entry evicted");
      assert.equal((await fb(1)).n, 2);
      // A write in b evicts a's stale entry too.
      assert.equal((await fa(1)).n, 2); // L2 hit of b's value
      await fb.invalidate(1); // evicts in a
      assert.ok(await until(() => fa.cacheInfo().size === 0, EVENT_MS));
      assert.equal((await fb(1)).n, 3);
      assert.ok(await until(() => fa.cacheInfo().size === 0, EVENT_MS));
      assert.equal((await fa(1)).n, 3);
      // cacheClear: a prefix event.
      await fb.cacheClear();
      assert.ok(await until(() => fa.cacheInfo().size === 0, EVENT_MS));
      assert.equal((await fa(1)).n, 4);
    } finally {
      await a.close();
      await b.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "stampede across instances: 2 instances × 100 concurrent callers run the function once",
  async () => {
    const [a, b] = pair("stampede");
    try {
      let runs = 0;
      const work = async (id: number) => {
        runs++;
        await sleep(100);
        return { id };
      };
      const opts = { name: "redis.stampede", ttl: 60, ...bare };
      const fa = cache(work, { ...opts, backend: a });
      const fb = cache(work, { ...opts, backend: b });
      const calls = [];
      for (let i = 0; i < 100; i++) calls.push(fa(9), fb(9));
      const res = await Promise.all(calls);
      assert.equal(runs, 1);
      assert.ok(res.every((r) => r.id === 9));
    } finally {
      await a.close();
      await b.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test("tags and namespaces on Redis reach L2 and the other instance's L1", async () => {
  const [a, b, channel] = pair("tags");
  try {
    let n = 0;
    const work = async (id: number) => ({ id, n: ++n });
    const opts = {
      name: "redis.tags",
      namespace: "rtags",
      ttl: 60,
      tags: (id: number) => [`user:${id}`],
      l1: { invalidation: true },
      ...bare,
    };
    const fa = cache(work, { ...opts, backend: a });
    const fb = cache(work, { ...opts, backend: b });
    await fa(1);
    await fb(1);
    await subscribed(channel, 2);
    await fa.invalidateTags("user:1");
    assert.ok(await until(() => fb.cacheInfo().size === 0, EVENT_MS));
    assert.equal((await fb(1)).n, 2, "L2 entry gone too");
    await fb.clearNamespace();
    assert.equal((await fa(1)).n, 3);
  } finally {
    await a.close();
    await b.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });

test(
  "a write announced by another instance does not discard this instance's in-flight work",
  async () => {
    const [a, b, channel] = pair("write-event");
    try {
      let runs = 0;
      const slowKey = gate();
      const work = async (id: number) => {
        runs++;
        if (id === 1) await slowKey.promise; // key 1 is slow: still computing when b writes key 2
        return { id };
      };
      const opts = { name: "redis.writeevent", ttl: 60, l1: { invalidation: true }, ...bare };
      const fa = cache(work, { ...opts, backend: a });
      const fb = cache(work, { ...opts, backend: b });
      await fa(0); // a subscribes to the bus
      await fb(0); // b too (an L2 hit of a's value)
      await subscribed(channel, 2);
      runs = 0;
      const slow = fa(1);
      await fb(2); // b computes and writes key 2: a "write" event reaches a mid-computation
      await sleep(50); // a handles the event (were it to drop its in-flight work, it would now)
      slowKey.open();
      await slow;
      assert.equal(runs, 2, "key 1 once (a), key 2 once (b)");
      // a stored key 1 although an unrelated write was announced while it computed.
      await fa(1);
      assert.equal(runs, 2, "key 1 answered from a's cache, not recomputed");
      assert.ok(fa.cacheInfo().l1Hits >= 1);
      // A deletion still reaches a's L1.
      await fb.invalidate(1);
      assert.ok(
        await until(() => fa.cacheInfo().size <= 1, EVENT_MS),
        "a's entry for key 1 evicted",
      );
      await fa(1);
      assert.equal(runs, 3, "recomputed after the remote invalidation");
    } finally {
      await a.close();
      await b.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
