// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * A user key ending in `:lock` must not name another key's Redis stampede lock (`<key>:lock`, as
 * cachekit-py names it). Before, `set("x:lock", v)` wrote the lock of `"x"`: every miss of `"x"`
 * then waited out the lock wait (5 s) while the entry lived, and a miss of `"x"` holding its lock
 * made `get("x:lock")` read the lock's token as an entry.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { cache, createCache, MemoryBackend, RedisBackend } from "../../mod.ts";
import { customKey } from "../../engine/_argkey.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

test("customKey: no result names another result's stampede lock, and results stay apart", () => {
  const prefix = "obj:key:";
  const customs = ["x", "x:lock", "x%3Alock", "x%3A", ":lock", "", "lock", "a:lock:lock", "a:lock"];
  const keys = customs.map((c) => customKey(prefix, c));
  assert.equal(new Set(keys).size, customs.length, keys.join(" "));
  for (const k of keys) {
    assert.ok(!keys.includes(k + ":lock"), `${k}:lock is a key too`);
    assert.ok(!k.endsWith(":lock"), k);
  }
});

test("createCache: a key ending in :lock is stored under its own key (memory)", async () => {
  const backend = new MemoryBackend();
  const c = createCache({ ...bare, backend });
  await c.set("x:lock", "v");
  assert.equal(await backend.exists("t:default:obj:key:x:lock"), false);
  assert.equal(await c.get("x:lock"), "v");
  assert.equal(await c.getOrSet("x", async () => "computed"), "computed");
  assert.equal(await c.get("x:lock"), "v");
  // A function's custom key follows the same rule.
  const f = cache(async (k: string) => `fn:${k}`, {
    ...bare,
    name: "lockkey",
    key: (k) => k,
    backend,
  });
  assert.equal(await f("y:lock"), "fn:y:lock");
  assert.equal(await f("y"), "fn:y");
});

test('createCache (redis): a set of "x:lock" does not hold the stampede lock of "x"', async () => {
  const backend = new RedisBackend({
    url: "redis://127.0.0.1:6379",
    keyPrefix: uniquePrefix("objlock"),
  });
  try {
    // A lock wait far above any test's patience: a miss of "x" waiting on the lock would hang.
    const c = createCache({ ...bare, backend, stampede: { wait: 600 } });
    await c.set("x:lock", "v");
    let calls = 0;
    assert.equal(await c.getOrSet("x", async () => (calls++, "computed")), "computed");
    assert.equal(calls, 1);
    assert.equal(await c.get("x:lock"), "v");
  } finally {
    await backend.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });
