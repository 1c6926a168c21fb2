// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * The stampede-protected miss through `capabilities.fetchLock`: the commands a miss and a hit
 * send (counted at a tap in front of a private redis-server), one read counted per call, the lock
 * shared by engines on separate connections, the wait that runs out, a foreign token left alone,
 * `NOSCRIPT` after `SCRIPT FLUSH`, and the same behaviour on the memory and file backends
 * (composed from `lock`, `get` and `set`).
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import {
  freePort,
  redisCli,
  redisServerTestOptions,
  sharedRedisTestOptions,
  startRedisServer,
} from "../_redis_server.ts";
import { startRespTap } from "../_resp_tap.ts";
import { gate, shiftDateNow, until, withDeadline } from "../_timing.ts";
import {
  type Backend,
  type FetchLockCapability,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../backends/mod.ts";
import { cache } from "../../mod.ts";
import { keySlot, lockKeyOf } from "../../backends/_redis_fetch_lock.ts";

const PORT = await freePort();
const SHARED = "redis://127.0.0.1:6379";
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const quiet = { collectStats: true, prometheus: false, structuredLogging: false };
const prefix = () => `cktest:fl:${crypto.randomUUID().slice(0, 8)}:`;

/** Counts what the engine asks of a backend (below the guard), and remembers the keys read. */
function counting(inner: Backend) {
  const n = { get: 0, set: 0, fetchOrLock: 0, setAndUnlock: 0, unlock: 0 };
  const keys: string[] = [];
  const fl = inner.capabilities.fetchLock;
  const fetchLock: FetchLockCapability | undefined = fl && {
    fetchOrLock: (k, t, l, o) => (n.fetchOrLock++, keys.push(k), fl.fetchOrLock(k, t, l, o)),
    setAndUnlock: (
      k,
      v,
      ttl,
      tags,
      t,
      o,
    ) => (n.setAndUnlock++, fl.setAndUnlock(k, v, ttl, tags, t, o)),
    unlock: (k, t, o) => (n.unlock++, fl.unlock(k, t, o)),
  };
  const backend: Backend = {
    type: inner.type,
    capabilities: { ...inner.capabilities, fetchLock },
    get: (k, o) => (n.get++, keys.push(k), inner.get(k, o)),
    set: (k, v, t, o) => (n.set++, inner.set(k, v, t, o)),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return { backend, n, keys };
}

test(
  "fetchLock (interop): a lock-on miss is two commands (read-or-lock, write-and-release) on " +
    "<key>:lock while reads miss; once hits dominate a hit is one GET and a miss three; SCRIPT " +
    "FLUSH falls back to EVAL",
  async () => {
    await using server = await startRedisServer(PORT);
    await using tap = await startRespTap(server.port);
    await using backend = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}` });
    let computed = 0;
    const f = cache(async (i: number) => ({ i, n: ++computed }), {
      name: "fl.count",
      interop: true,
      namespace: "fl",
      ttl: 60,
      backend,
      l1: false,
      monitoring: quiet,
      ...bare,
    });
    await f(0); // connect, load the scripts
    // The data commands (the write's announcement on the invalidation bus comes at any time).
    const data = () => tap.commands.slice(start).filter((c) => c.name !== "PUBLISH");
    const names = () => data().map((c) => c.name);
    let start = tap.commands.length;
    // While the function's reads miss, the first read is the read-or-lock script: two commands.
    await f(1);
    assert.deepEqual(names(), ["EVALSHA", "EVALSHA"]);
    const [fetch, write] = data();
    assert.equal(fetch.args[1], "2"); // the key and its lock
    // The lock cachekit-py 0.3.0 and `lock.acquire` use too (a cluster names it into the slot).
    assert.equal(fetch.args[3], `${fetch.args[2]}:lock`);
    assert.deepEqual(write.args.slice(1, 4), fetch.args.slice(1, 4), "write and release");
    assert.equal(write.args[6], fetch.args[4], "released with the token that locked");
    assert.equal(await redisCli(server.port, ["EXISTS", fetch.args[3]]), "0");
    // Once hits dominate, the first read is a plain GET: a hit is one GET, a miss three commands.
    for (let k = 0; k < 6; k++) assert.deepEqual(await f(1), { i: 1, n: 2 });
    start = tap.commands.length;
    assert.deepEqual(await f(1), { i: 1, n: 2 });
    assert.deepEqual(names(), ["GET"]);
    start = tap.commands.length;
    assert.deepEqual(await f(2), { i: 2, n: 3 });
    assert.deepEqual(names(), ["GET", "EVALSHA", "EVALSHA"]);
    // A server that forgot its scripts: EVALSHA → NOSCRIPT → EVAL, and the call still locks.
    await redisCli(server.port, ["SCRIPT", "FLUSH"]);
    start = tap.commands.length;
    assert.deepEqual(await f(3), { i: 3, n: 4 });
    assert.deepEqual(names(), ["GET", "EVALSHA", "EVAL", "EVALSHA", "EVAL"]);
    assert.equal(await redisCli(server.port, ["KEYS", "*:lock"]), "");
    assert.equal(computed, 4);
  },
  { ...redisServerTestOptions, sanitize: false },
);

for (
  const [kind, make] of [
    ["redis", () => new RedisBackend({ url: SHARED, keyPrefix: prefix() })],
    ["memory", () => new MemoryBackend()],
  ] as const
) {
  test(
    `fetchLock (${kind}): a lock-on miss reads once (Redis) and writes once`,
    async () => {
      const inner: Backend = make();
      try {
        const { backend, n } = counting(inner);
        const f = cache(async (i: number) => i * 2, {
          name: `fl.once.${kind}`,
          ttl: 60,
          backend,
          l1: false,
          monitoring: quiet,
          ...bare,
        });
        assert.equal(await f(21), 42);
        if (kind === "redis") {
          // A fresh function's first read is the read-or-lock script: no separate GET.
          assert.deepEqual(n, { get: 0, set: 0, fetchOrLock: 1, setAndUnlock: 1, unlock: 0 });
        } else {
          // Composed (memory): get; then lock, and get again.
          assert.deepEqual(n, { get: 2, set: 1, fetchOrLock: 0, setAndUnlock: 0, unlock: 0 });
        }
        assert.equal(await f(21), 42);
        assert.equal(n.get + n.fetchOrLock, kind === "redis" ? 2 : 3); // the hit: one read
      } finally {
        await inner.close?.();
      }
    },
    kind === "redis" ? sharedRedisTestOptions : {},
  );
}

/** Two engines, each with its own backend over the same store, on the same keys. */
function stampede(kind: string, pair: () => Promise<[Backend, Backend, () => Promise<void>]>) {
  test(`fetchLock (${kind}): two engines on separate connections compute a key once`, async () => {
    const [a, b, done] = await pair();
    try {
      let computed = 0;
      const g = gate();
      const work = async (i: number) => {
        computed++;
        await g.promise;
        return { i };
      };
      const opts = { name: `fl.stampede.${kind}`, ttl: 60, l1: false as const, ...bare };
      const fa = cache(work, { ...opts, backend: a });
      const fb = cache(work, { ...opts, backend: b, stampede: { wait: 30 } });
      const first = fa(7);
      await until(() => computed === 1, 10_000);
      const second = fb(7); // finds the lock held, waits, then reads fa's value
      const third = fb(7); // single flight in b
      setTimeout(g.open, 50);
      assert.deepEqual(await Promise.all([first, second, third]), [{ i: 7 }, { i: 7 }, { i: 7 }]);
      assert.equal(computed, 1);
    } finally {
      await done();
    }
  }, kind === "redis" ? sharedRedisTestOptions : {});
}
stampede("redis", () => {
  const p = prefix();
  const a = new RedisBackend({ url: SHARED, keyPrefix: p });
  const b = new RedisBackend({ url: SHARED, keyPrefix: p });
  return Promise.resolve([a, b, async () => {
    await a.close();
    await b.close();
  }]);
});
stampede("memory", () => {
  const m = new MemoryBackend();
  return Promise.resolve([m, m, () => m.close()]);
});
stampede("file", () => {
  const dir = mkdtempSync(join(tmpdir(), "cachekit-fl-"));
  const a = new FileBackend({ directory: dir });
  const b = new FileBackend({ directory: dir });
  return Promise.resolve([a, b, async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  }]);
});

test(
  "fetchLock (redis): a wait that runs out computes without the lock and leaves the holder's " +
    "lock alone; a foreign token neither releases it nor keeps a value from being stored",
  async () => {
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: prefix() });
    const fl = backend.capabilities.fetchLock!;
    // The capability itself.
    assert.equal(await fl.fetchOrLock("k", "A", 30_000), true);
    assert.equal(await fl.fetchOrLock("k", "B", 30_000), false);
    assert.equal(await fl.unlock("k", "B"), false);
    assert.equal(await fl.fetchOrLock("k", "C", 30_000), false, "B's unlock left A's lock");
    await fl.setAndUnlock("k", new Uint8Array([1, 2]), 60, null, "B");
    assert.deepEqual(await fl.fetchOrLock("k", "D", 30_000), new Uint8Array([1, 2]));
    assert.equal(await fl.fetchOrLock("k", "D", 30_000, { lockOnly: true }), false, "A holds");
    assert.equal(await fl.unlock("k", "A"), true);
    assert.equal(await fl.fetchOrLock("k", "D", 30_000, { lockOnly: true }), true);
    await fl.setAndUnlock("k", new Uint8Array([3]), 60, ["t1"], "D");
    assert.equal(await fl.fetchOrLock("k", "E", 30_000, { lockOnly: true }), true, "released");
    assert.deepEqual(await backend.capabilities.tags!.invalidateTags(["t1"]), ["k"]);
    // The name `lock.acquire` (and cachekit-py 0.3.0, `f"{cache_key}:lock"`) locks: one lock.
    const h = await backend.capabilities.lock!.acquire("j:lock", { leaseMs: 30_000, waitMs: 0 });
    assert.ok(h);
    assert.equal(await fl.fetchOrLock("j", "X", 30_000), false);
    await h.release();
    assert.equal(await fl.fetchOrLock("j", "X", 30_000), true);
    assert.equal(
      await backend.capabilities.lock!.acquire("j:lock", { leaseMs: 30_000, waitMs: 0 }),
      null,
    );
    assert.equal(await fl.unlock("j", "X"), true);
    // A key of another type: the one-script write fails (WRONGTYPE) and the plain write replaces it.
    await redisCli(6379, ["HSET", `${backend.keyPrefix}h`, "f", "1"]);
    assert.equal(await fl.fetchOrLock("h", "Y", 30_000, { lockOnly: true }), true);
    await fl.setAndUnlock("h", new Uint8Array([9]), 60, null, "Y");
    assert.deepEqual(await backend.get("h"), new Uint8Array([9]));
    assert.equal(await fl.fetchOrLock("h", "Z", 30_000, { lockOnly: true }), true, "released");

    // The engine, while another process holds its key's lock.
    const { backend: counted, keys } = counting(backend);
    let computed = 0;
    const f = cache(async (i: number) => ({ i, n: ++computed }), {
      name: "fl.wait",
      ttl: 60,
      backend: counted,
      l1: false,
      stampede: { wait: 0.1 },
      ...bare,
    });
    await f(1);
    const key = keys[0];
    await backend.delete(key);
    assert.equal(await fl.fetchOrLock(key, "other", 30_000), true);
    assert.deepEqual(await f(1), { i: 1, n: 2 }, "computed after the wait ran out");
    assert.equal(await fl.unlock(key, "other"), true, "the holder's lock is still there");
  },
  sharedRedisTestOptions,
);

test("fetchLock: the lock of any key lands in the key's cluster slot", () => {
  // Known slots (the cluster specification's examples and `CLUSTER KEYSLOT`).
  assert.equal(keySlot("foo"), 12182);
  assert.equal(keySlot("123456789"), 12739);
  assert.equal(keySlot("{user1000}.following"), keySlot("user1000"));
  const keys = [
    "plain",
    "p:t:default:ns:app:func:f:args:ab12",
    "a{b}c",
    "a}b",
    "{}x",
    "x{}",
    "{a}b}",
    "}{",
    "{open",
    "close}",
    "a{}b}c",
    "t:é:ünïcode}",
  ];
  for (const k of keys) {
    const lock = lockKeyOf(k);
    assert.notEqual(lock, k);
    assert.equal(keySlot(lock), keySlot(k), `${k} → ${lock}`);
  }
});

test(
  "fetchLock (redis): a stale entry is refreshed under the lock, and a refresh that went on in " +
    "the background (soft timeout) keeps the lock until its value lands",
  async () => {
    const clock = shiftDateNow();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: prefix() });
    try {
      const fl = backend.capabilities.fetchLock!;
      const { backend: counted, keys } = counting(backend);
      let slow: Promise<void> | null = null;
      let calls = 0;
      const f = cache(async (id: number) => {
        const n = ++calls;
        if (slow) await slow;
        return { id, v: n };
      }, {
        name: "fl.stale",
        ttl: 60,
        staleTtl: 600,
        softTimeout: 0.05,
        backend: counted,
        l1: false,
        ...bare,
      });
      await f(1);
      const key = keys[0];
      clock.advance(61_000); // past the logical expiry; Redis keeps the entry (stale TTL)
      const g = gate();
      slow = g.promise;
      assert.deepEqual(await withDeadline(f(1), "soft timeout"), { id: 1, v: 1 }, "stale");
      assert.equal(
        await fl.fetchOrLock(key, "probe", 1000, { lockOnly: true }),
        false,
        "the background refresh holds the lock",
      );
      g.open();
      assert.ok(
        await until(async () =>
          (await fl.fetchOrLock(key, "probe", 1000, { lockOnly: true })) === true
        ),
        "released once v2 landed",
      );
      await fl.unlock(key, "probe");
      slow = null;
      assert.deepEqual(await f(1), { id: 1, v: 2 });
    } finally {
      clock.restore();
    }
  },
  sharedRedisTestOptions,
);
