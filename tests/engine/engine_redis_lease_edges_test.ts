/**
 * Edge cases of the Redis stampede lease in the key, of the remote key events and of the decode from
 * the codec's reused memory (from an attack on the changes of 2026-12-04: each test failed before
 * its fix, except the reused-memory one, which guards it).
 *
 * - A lease marker (`backends/_redis_lease.ts`) reads as absent everywhere: `ttl()` answered the
 *   lease's remaining time for it, and `expire()` (the TTL refresh on read, a caller's) moved the
 *   marker's expiry (`expire(key, 0)` made it never expire: a key locked for good once its holder
 *   died).
 * - The L2 hit decodes from the codec's reused memory: an earlier answer must not change when a
 *   later read overwrites that memory.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { redisCli, scanKeys, sharedRedisTestOptions } from "../_redis_server.ts";
import { RedisBackend } from "../../backends/mod.ts";
import { type Backend, cache, createCache, MemoryBackend } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";

const SHARED = "redis://127.0.0.1:6379";
const prefix = () => `cktest:attack:${crypto.randomUUID().slice(0, 8)}:`;

test(
  "lease marker: ttl() reads it as absent, expire() leaves it and its lease alone",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const fl = backend.capabilities.fetchLock!.inKey!;
    assert.equal(await fl.fetchOrLock("m", "tok-a", 10_000), true);
    const ttl = backend.capabilities.ttl!;
    assert.equal(await ttl.ttl("m"), null, "a marker has no TTL: the key is absent");
    assert.equal(await ttl.expire("m", 0), false, "no entry to persist");
    assert.equal(await ttl.expire("m", 3600), false, "no entry to expire");
    const left = Number(await redisCli(6379, ["PTTL", `${p}m`]));
    assert.ok(left > 0 && left <= 10_000, `the lease's own expiry stays (${left} ms)`);
    // A value: as before.
    await backend.set("v", new Uint8Array([1]), 60);
    const t = await ttl.ttl("v");
    assert.ok(t !== null && t > 59 && t <= 60, String(t));
    assert.equal(await ttl.expire("v", 120), true);
    assert.ok((await ttl.ttl("v"))! > 119);
    assert.equal(await ttl.ttl("none"), null);
    assert.equal(await fl.unlock("m", "tok-a"), true);
    await backend.delete("v");
  },
  sharedRedisTestOptions,
);

test("an L2 hit's value does not change when later reads reuse the codec's memory", async () => {
  const backend = new MemoryBackend();
  const make = (i: number) => ({
    i,
    bin: new Uint8Array(300).fill(i + 1),
    nested: [{ deep: new Uint8Array([i, i, i, 9, 9, 9]) }, "s".repeat(200 + i)],
    at: new Date(Date.UTC(2024, 0, 1 + i)),
    map: new Map<unknown, unknown>([[i, new Uint8Array(40).fill(i)]]),
    big: 2n ** 60n + BigInt(i),
    text: `value ${i} `.repeat(100),
  });
  for (const integrityChecking of [true, false]) {
    const f = cache((i: number) => Promise.resolve(make(i)), {
      name: `attack.alias.${integrityChecking}`,
      backend,
      l1: false,
      integrityChecking,
    });
    for (let i = 0; i < 4; i++) await f(i);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await f(i)); // L2 hits
    // Later reads of other, larger entries through the same memory.
    const g = cache((i: number) => Promise.resolve({ junk: new Uint8Array(5000 + i).fill(0xee) }), {
      name: `attack.alias.junk.${integrityChecking}`,
      backend,
      l1: false,
      integrityChecking,
    });
    for (let i = 0; i < 3; i++) await g(i);
    for (let i = 0; i < 3; i++) await g(i);
    for (let i = 0; i < 4; i++) assert.deepEqual(answers[i], make(i), `entry ${i}`);
  }
});

/** A memory backend with an invalidation bus the test drives, and the keys written to it. */
function busBackend() {
  const inner = new MemoryBackend();
  let handler: ((e: InvalidationEvent) => void) | null = null;
  const written: string[] = [];
  const backend: Backend = {
    type: "busmem",
    capabilities: {
      ...inner.capabilities,
      invalidation: {
        instanceId: "test",
        publish: () => Promise.resolve(),
        subscribe: (h: (e: InvalidationEvent) => void) => {
          handler = h;
          return Promise.resolve(() => Promise.resolve());
        },
      },
    },
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => {
      written.push(k);
      return inner.set(k, v, t, o);
    },
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return {
    backend,
    inner,
    written,
    deliver: (targets: string[], reason: "write" | "delete") =>
      handler!({ level: "key", targets, reason, sender: "other" }),
  };
}

const quietBare = {
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
  ttl: 60,
  monitoring: { collectStats: false, prometheus: false, structuredLogging: false },
} as const;

test(
  "a remote key event evicts the L1 entry of a long key (shortened to 50 code points and a " +
    "hash) under a prefix longer than 50 code points",
  async () => {
    // createCache: a namespace of 43 characters makes the key prefix 55 long.
    const bus = busBackend();
    const namespace = "my-company.orders-service.customer-profiles";
    const c = createCache({
      namespace,
      backend: bus.backend,
      l1: { invalidation: true },
      ...quietBare,
    });
    const key = "https://example.com/customers/" + "segment/".repeat(30);
    await c.set(key, { v: 1 });
    assert.deepEqual(await c.get(key), { v: 1 });
    const backendKey = bus.written.at(-1)!;
    // Another process writes the key, then its event arrives.
    const other = createCache({ namespace, backend: bus.inner, l1: false, ...quietBare });
    await other.set(key, { v: 2 });
    bus.deliver([backendKey], "write");
    assert.deepEqual(await c.get(key), { v: 2 }, "not the stale L1 copy");
  },
);

test(
  "a remote key event evicts the L1 entry of a function with a long name and a long custom key",
  async () => {
    const bus2 = busBackend();
    const name = "my-company.orders-service.customers.getCustomerProfileById";
    let version = 1;
    const f = cache((id: string) => Promise.resolve({ id, version }), {
      name,
      key: (id: string) => `profile/${id}/` + "x".repeat(250),
      backend: bus2.backend,
      l1: { invalidation: true },
      ...quietBare,
    });
    assert.deepEqual(await f("a"), { id: "a", version: 1 });
    const fKey = bus2.written.at(-1)!;
    version = 2;
    await bus2.inner.delete(fKey); // another process deleted it
    bus2.deliver([fKey], "delete");
    assert.deepEqual(await f("a"), { id: "a", version: 2 }, "not the stale L1 copy");
  },
);

test(
  "lease in the key: a chunked value whose chunks are gone is a miss computed at once, not a " +
    "lock held by another",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p, chunkSizeBytes: 1024 });
    let runs = 0;
    const pad = crypto.getRandomValues(new Uint8Array(8000)); // incompressible
    const f = cache((i: number) => Promise.resolve({ i, runs: ++runs, pad }), {
      name: `attack.chunks.${p}`,
      backend,
      l1: false,
      ...quietBare,
    });
    await f(1);
    assert.equal(runs, 1);
    // The chunks go (evicted under maxmemory, say); the manifest stays.
    const keys = (await scanKeys(6379, `{${p}*`)).filter((k) => k.includes(":__ck:"));
    assert.ok(keys.length > 1, "chunked");
    for (const k of keys) await redisCli(6379, ["DEL", k]);
    // The lease is taken over the dead manifest (on main: `false`, a lock held by another, so
    // every call waited stampede.wait, 5 s, for a lock nobody held).
    const [full] = await scanKeys(6379, `${p}*`);
    const key = full.slice(p.length);
    const fl = backend.capabilities.fetchLock!.inKey!;
    assert.equal(await fl.fetchOrLock(key, "tok-x", 10_000), true, "the lease is ours");
    assert.equal(await fl.unlock(key, "tok-x"), true);
    assert.equal(await redisCli(6379, ["EXISTS", full]), "0");
    const got = await f(1) as { runs: number };
    assert.equal(got.runs, 2, "computed again");
    assert.equal(runs, 2);
    assert.equal((await f(1) as { runs: number }).runs, 2, "and stored again, chunked");
    for (const pattern of [`${p}*`, `{${p}*`]) {
      for (const k of await scanKeys(6379, pattern)) await redisCli(6379, ["DEL", k]);
    }
  },
  sharedRedisTestOptions,
);

test(
  "lease in the key: a key holding the manifest magic and bytes that are not UTF-8 is a dead " +
    "entry (deleted, the lease taken), not a lock held by another",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const fl = backend.capabilities.fetchLock!.inKey!;
    // A corrupt manifest: the magic, "{", then a byte no UTF-8 text holds (Lua: \0, \1 decimal).
    await redisCli(6379, [
      "EVAL",
      "redis.call('SET', KEYS[1], '\\0cachekit\\1{' .. string.char(255, 254) .. '}')",
      "1",
      `${p}bad`,
    ]);
    assert.equal(await backend.get("bad"), null, "a miss to a plain read");
    // On main: `false` (held by another) on every attempt, so each locked miss of the key waited
    // out stampede.wait (5 s) until one computed without the lock and wrote over it.
    assert.equal(await fl.fetchOrLock("bad", "tok-bad", 10_000), true, "the lease is ours");
    assert.equal(await fl.unlock("bad", "tok-bad"), true);
    assert.equal(await redisCli(6379, ["EXISTS", `${p}bad`]), "0");
  },
  sharedRedisTestOptions,
);

test(
  "<key>:lock (interop's lock): a dead or corrupt manifest under the key is deleted and the lock " +
    "taken, not read as a lock held by another",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const fl = backend.capabilities.fetchLock!;
    // A corrupt manifest: the magic, "{", then bytes no UTF-8 text holds (Lua: \0, \1 decimal).
    await redisCli(6379, [
      "EVAL",
      "redis.call('SET', KEYS[1], '\\0cachekit\\1{' .. string.char(255, 254) .. '}')",
      "1",
      `${p}bad`,
    ]);
    assert.equal(await backend.get("bad"), null, "a miss to a plain read");
    // Before: `false` (held by another) on every attempt, so each locked miss of the key waited
    // out stampede.wait (5 s) until one computed without the lock and wrote over it.
    assert.equal(await fl.fetchOrLock("bad", "tok-bad", 10_000), true, "the lock is ours");
    assert.equal(await redisCli(6379, ["GET", `${p}bad:lock`]), "tok-bad");
    assert.equal(await redisCli(6379, ["EXISTS", `${p}bad`]), "0", "the dead entry is gone");
    assert.equal(await fl.unlock("bad", "tok-bad"), true);
    // A manifest another process replaced meanwhile is left alone: a value answers.
    await backend.set("good", new Uint8Array([1, 2, 3]), 60);
    assert.deepEqual(await fl.fetchOrLock("good", "tok-g", 10_000), new Uint8Array([1, 2, 3]));
    await backend.delete("good");
  },
  sharedRedisTestOptions,
);
