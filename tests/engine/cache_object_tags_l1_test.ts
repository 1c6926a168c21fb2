// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Tag invalidation reaches another cache object's L1 copy of an entry it read from L2: that copy
 * cannot know the tags its writer gave (per call, or `setTags` in the factory), which the stored
 * entry does not record, so any tag invalidation evicts it. Before, it kept answering the
 * invalidated value until its L1 lifetime ran out (in one process, and through the Redis bus).
 * The same for a `cache(fn)` copy whose writer gave tags with `setTags`: the invalidation announces
 * the entries it deleted by key.
 */
import assert from "node:assert/strict";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { until } from "../_timing.ts";
import {
  cache,
  cacheContext,
  createCache,
  invalidateTags,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

test("createCache: per-call and setTags tags reach another instance's L2-filled L1", async () => {
  const backend = new MemoryBackend();
  const a = createCache({ ...bare, backend, namespace: "tagsl1" });
  const b = createCache({ ...bare, backend, namespace: "tagsl1" });
  await a.set("set", 1, { tags: ["t1"] });
  assert.equal(await a.getOrSet("ctx", (ctx) => (ctx.setTags(["t2"]), 2)), 2);
  assert.equal(await b.get("set"), 1); // b's L1 filled from L2
  assert.equal(await b.getOrSet("ctx", () => -1), 2);
  await a.deleteByTags("t1");
  assert.equal(await b.get("set"), undefined);
  await b.deleteByTags("t2");
  assert.equal(await a.get("ctx"), undefined);
  assert.equal(await b.get("ctx"), undefined);
});

test("createCache: entries written here keep their tags (an unrelated tag spares them)", async () => {
  const c = createCache({ ...bare, backend: new MemoryBackend(), namespace: "tagsl1-own" });
  let calls = 0;
  await c.getOrSet("k", () => (calls++, 1), { tags: ["mine"] });
  await c.deleteByTags("other");
  assert.equal(await c.getOrSet("k", () => (calls++, 1)), 1);
  assert.equal(calls, 1);
});

test("createCache (redis): a tag invalidation reaches another process's L2-filled L1", async () => {
  const opts = {
    url: "redis://127.0.0.1:6379",
    keyPrefix: uniquePrefix("objtagsl1"),
    invalidationChannel: `cktest:inv:${crypto.randomUUID()}`,
  };
  const ba = new RedisBackend(opts);
  const bb = new RedisBackend(opts);
  const mk = (backend: RedisBackend) =>
    createCache({ ...bare, backend, l1: { invalidation: true } });
  const a = mk(ba);
  const b = mk(bb);
  try {
    await a.set("k", 1, { tags: ["t"] });
    assert.equal(await b.get("k"), 1); // b subscribes and keeps it in L1
    await until(async () => {
      const r = createClient({ url: opts.url });
      await r.connect();
      const n = Number(
        ((await r.sendCommand(["PUBSUB", "NUMSUB", opts.invalidationChannel])) as unknown[])[1],
      );
      await r.close();
      return n >= 2;
    });
    await a.deleteByTags("t");
    assert.ok(await until(async () => (await b.get("k")) === undefined), "b's L1 dropped it");
  } finally {
    await ba.close();
    await bb.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });

test("cache(fn) (redis): setTags tags reach another process's L2-filled L1", async () => {
  const opts = {
    url: "redis://127.0.0.1:6379",
    keyPrefix: uniquePrefix("fntagsl1"),
    invalidationChannel: `cktest:inv:${crypto.randomUUID()}`,
  };
  const ba = new RedisBackend(opts);
  const bb = new RedisBackend(opts);
  let n = 0;
  // The tags come from the result: only the process that computes a value knows them.
  const work = async (id: number) => {
    cacheContext().setTags([`order:${id}`]);
    return ++n;
  };
  const name = `fntagsl1.${crypto.randomUUID()}`;
  const a = cache(work, { ...bare, name, backend: ba, l1: { invalidation: true } });
  const b = cache(work, { ...bare, name, backend: bb, l1: { invalidation: true } });
  try {
    assert.equal(await a(1), 1);
    assert.equal(await b(1), 1, "b's L1 filled from L2 (b never ran the function)");
    assert.ok(await until(() => subscribers(opts.url, opts.invalidationChannel, 2)));
    await invalidateTags("order:1", { backend: ba }); // as another process would, on its backend
    assert.ok(await until(async () => (await b(1)) === 2), "b's L1 copy was dropped");
    assert.equal(n, 2);
  } finally {
    await ba.close();
    await bb.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });

test("cache(fn): setTags tags reach another engine's L2-filled L1 on a shared backend", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const work = async (id: number) => {
    cacheContext().setTags([`order:${id}`]);
    return ++n;
  };
  const name = `fntagsl1mem.${crypto.randomUUID()}`;
  const a = cache(work, { ...bare, name, backend });
  const b = cache(work, { ...bare, name, backend });
  assert.equal(await a(1), 1);
  assert.equal(await b(1), 1, "b's L1 filled from L2");
  await invalidateTags("order:1", { backend });
  assert.equal(await b(1), 2, "b recomputes");
  assert.equal(await a(1), 2, "a reads b's new value from L2");
});

async function subscribers(url: string, channel: string, want: number): Promise<boolean> {
  const r = createClient({ url });
  await r.connect();
  try {
    return Number(((await r.sendCommand(["PUBSUB", "NUMSUB", channel])) as unknown[])[1]) >= want;
  } finally {
    await r.close();
  }
}
