// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * A key holding a lone surrogate (a createCache key, a `key` option's result) is refused with a
 * `CacheKeyError`, as such an argument is. Before, it was written: Redis stores the key's UTF-8,
 * where every lone surrogate is U+FFFD, so `"a\uD800"`, `"a\uDC00"` and `"a\uFFFD"` read one
 * another's entry; the file backend refused it with a message about permissions.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { cache, CacheKeyError, createCache, MemoryBackend, RedisBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

test("createCache and key options: a lone surrogate in a key is a CacheKeyError", async () => {
  const backend = new MemoryBackend();
  const c = createCache({ ...bare, backend });
  for (const k of ["a\ud800", "\udc00", "x\ud800\ud800y", "z".repeat(300) + "\ud800"]) {
    await assert.rejects(c.set(k, 1), CacheKeyError);
    await assert.rejects(c.get(k), CacheKeyError);
    await assert.rejects(c.getOrSet(k, () => 1), CacheKeyError);
  }
  await c.set("a\ufffd", "replacement char");
  assert.equal(await c.get("a\ufffd"), "replacement char");
  await c.set("🙂", "pair");
  assert.equal(await c.get("🙂"), "pair");
  const f = cache(async (k: string) => k, { ...bare, name: "lone.key", backend, key: (k) => k });
  await assert.rejects(f("b\ud800"), CacheKeyError);
  assert.equal(await f("b\ufffd"), "b\ufffd");
});

test(
  "createCache (redis): keys differing only in lone surrogates no longer share an entry",
  async () => {
    const backend = new RedisBackend({
      url: "redis://127.0.0.1:6379",
      keyPrefix: uniquePrefix("lonekey"),
    });
    try {
      const c = createCache({ ...bare, backend, l1: false });
      await assert.rejects(c.set("a\ud800", "lone"), CacheKeyError);
      assert.equal(await c.get("a\ufffd"), undefined);
    } finally {
      await backend.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
