// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * The stampede lease in the key itself (`backends/_redis_lease.ts`, native mode): the commands of
 * a lock-on miss (two plain `SET`s, no script, no `<key>:lock`), a marker invisible to every read
 * (`get`, batched `MGET`, `exists`, a cache object's `get`/`has`/`getMany`) and left in place, a
 * crashed holder's marker that expires and lets a waiter compute, a failed computation that
 * deletes its own marker only, and the fallback to `<key>:lock` when the server refuses
 * `SET … NX … GET` (faked: Redis 7.0 runs here).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import {
  freePort,
  redisCli,
  redisServerTestOptions,
  scanKeys,
  sharedRedisTestOptions,
  startRedisServer,
} from "../_redis_server.ts";
import { startRespTap } from "../_resp_tap.ts";
import { until } from "../_timing.ts";
import { RedisBackend } from "../../backends/mod.ts";
import type { FetchLockCapability } from "../../backends/types.ts";
import { leaseMarker, RedisKeyLease } from "../../backends/_redis_lease.ts";
import type { RedisCore } from "../../backends/_redis_core.ts";
import type { RedisTags } from "../../backends/_redis_tags.ts";
import { DeadlineQueue } from "../../backends/_redis_deadlines.ts";
import type { SettleHook } from "../../backends/internal.ts";
import { cache, createCache } from "../../mod.ts";

const SHARED = "redis://127.0.0.1:6379";
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const quiet = { collectStats: false, prometheus: false, structuredLogging: false };
const prefix = () => `cktest:lease:${crypto.randomUUID().slice(0, 8)}:`;

/** The keys under `p` (without it), the chunk keys and locks included. */
async function keysUnder(p: string): Promise<string[]> {
  return (await scanKeys(6379, `${p}*`)).map((k) => k.slice(p.length)).sort();
}

function inKeyOf(b: RedisBackend): FetchLockCapability {
  const fl = b.capabilities.fetchLock!.inKey;
  assert.ok(fl !== undefined, "the Redis backend has the lease-in-the-key lock");
  return fl;
}

test(
  "lease in the key: a lock-on miss is SET NX PX GET then SET PX GET, no script and no " +
    "<key>:lock; once hits dominate a hit is one GET and a miss three plain commands",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using tap = await startRespTap(server.port);
    await using backend = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}` });
    let computed = 0;
    const f = cache(async (i: number) => ({ i, n: ++computed }), {
      name: "lease.count",
      ttl: 60,
      backend,
      l1: false,
      monitoring: quiet,
      ...bare,
    });
    await f(0); // connect
    const data = () => tap.commands.slice(start).filter((c) => c.name !== "PUBLISH");
    const names = () => data().map((c) => c.name);
    let start = tap.commands.length;
    await f(1);
    assert.deepEqual(names(), ["SET", "SET"]);
    const [take, write] = data();
    assert.deepEqual([take.args[2], take.args[3], take.args[5]], ["NX", "PX", "GET"]);
    assert.ok(take.args[1].startsWith("\0cachekit\x01lease:"), "the marker");
    assert.equal(take.args[4], "30000", "the lease (stampede.lease, 30 s)");
    assert.equal(write.args[0], take.args[0], "the value written over the marker");
    assert.deepEqual(write.args.slice(2), ["PX", "60000", "GET"]);
    assert.equal(await redisCli(server.port, ["KEYS", "*:lock"]), "");
    for (let k = 0; k < 6; k++) assert.deepEqual(await f(1), { i: 1, n: 2 });
    start = tap.commands.length;
    assert.deepEqual(await f(1), { i: 1, n: 2 });
    assert.deepEqual(names(), ["GET"]);
    start = tap.commands.length;
    assert.deepEqual(await f(2), { i: 2, n: 3 });
    assert.deepEqual(names(), ["GET", "SET", "SET"]);
    assert.equal(computed, 3);
  },
  { ...redisServerTestOptions, sanitize: false },
);

test(
  "lease in the key: a marker is absent to get, batched MGET, exists and a cache object's " +
    "get/has/getMany, and is neither deleted nor replaced by those reads",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const fl = inKeyOf(backend);
    assert.equal(await fl.fetchOrLock("m", "tok-a", 10_000), true, "the lease is ours");
    assert.equal(await fl.fetchOrLock("m", "tok-b", 10_000), false, "another's: held");
    assert.equal(await backend.get("m"), null);
    await backend.set("v", new Uint8Array([1, 2, 3]));
    // Concurrent reads go out as one MGET.
    const [a, b] = await Promise.all([backend.get("m"), backend.get("v")]);
    assert.equal(a, null);
    assert.deepEqual(b, new Uint8Array([1, 2, 3]));
    assert.equal(await backend.exists("m"), false);
    assert.equal(await backend.exists("v"), true);
    assert.equal(await backend.exists("none"), false);
    assert.ok((await redisCli(6379, ["GET", `${p}m`])).includes("lease:tok-a"), "still there");

    // A cache object over the same backend: learn its key, then put a marker in its place.
    const c = createCache({ ttl: 60, backend, l1: false, ...bare, monitoring: quiet });
    await c.set("x", { v: 1 });
    const [xKey] = (await keysUnder(p)).filter((k) => k !== "m" && k !== "v");
    assert.ok(xKey !== undefined);
    await backend.delete(xKey);
    assert.equal(await fl.fetchOrLock(xKey, "tok-c", 10_000), true);
    assert.equal(await c.get("x"), undefined);
    assert.equal(await c.has("x"), false);
    assert.deepEqual(await c.getMany(["x", "y"]), [undefined, undefined]);
    assert.ok((await redisCli(6379, ["GET", `${p}${xKey}`])).includes("lease:tok-c"));
    // The holder's write replaces it; a foreign token's release leaves it.
    assert.equal(await fl.unlock("m", "tok-b"), false);
    assert.ok((await redisCli(6379, ["GET", `${p}m`])).includes("lease:tok-a"));
    assert.equal(await fl.unlock("m", "tok-a"), true);
    assert.equal(await redisCli(6379, ["EXISTS", `${p}m`]), "0");
    await backend.delete(xKey);
    await backend.delete("v");
  },
  sharedRedisTestOptions,
);

test(
  "lease in the key: a crashed holder's marker expires after its lease and a waiter computes; " +
    "a failed computation deletes its own marker",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const fl = inKeyOf(backend);
    let computed = 0;
    let fail = false;
    const f = cache(async (i: number) => {
      if (fail) throw new Error("boom");
      return { i, n: ++computed };
    }, {
      name: "lease.crash",
      ttl: 60,
      backend,
      l1: false,
      monitoring: quiet,
      stampede: { lease: 30, wait: 10 },
      ...bare,
    });
    assert.deepEqual(await f(1), { i: 1, n: 1 });
    const [key] = await keysUnder(p);
    await backend.delete(key);
    // A holder that dies: its marker with a short lease, never released.
    assert.equal(await fl.fetchOrLock(key, "dead-holder", 300), true);
    assert.deepEqual(await f(1), { i: 1, n: 2 }, "computed once the lease ran out");
    assert.equal(computed, 2);
    assert.ok(!(await redisCli(6379, ["GET", `${p}${key}`])).includes("lease:"));

    // A failed computation: its marker is gone (the next caller does not wait for a lease).
    await backend.delete(key);
    fail = true;
    await assert.rejects(() => f(1), /boom/);
    // The release goes out after the caller has its error (it does not wait for the round trip).
    assert.ok(
      await until(async () => (await redisCli(6379, ["EXISTS", `${p}${key}`])) === "0"),
      "the failed computation's marker is deleted",
    );
    fail = false;
    assert.deepEqual(await f(1), { i: 1, n: 3 });
    await backend.delete(key);
  },
  sharedRedisTestOptions,
);

test(
  "lease in the key: a server refusing SET NX GET (before 7.0) falls back to <key>:lock for " +
    "good, and the tokens locked that way are stored and released through it",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const keyLock = backend.capabilities.fetchLock!;
    let refusals = 0;
    // A core whose server refuses NX with GET (what Redis 6.2 answers), the rest unused (no
    // op queue: the attempt goes through `run`).
    const core = {
      full: (k: string) => p + k,
      opQueue: () => undefined,
      run: (_op: string, _o: unknown, fn: () => Promise<unknown>) => fn(),
      driver: {
        send: (_k: string, _ro: boolean, args: string[]) => {
          if (args.includes("NX") && args.includes("GET")) {
            refusals++;
            return Promise.reject(new Error("ERR syntax error"));
          }
          return Promise.reject(new Error(`unexpected ${args[0]}`));
        },
      },
    } as unknown as RedisCore;
    const lease = new RedisKeyLease(core, {} as RedisTags, keyLock);
    assert.equal(await lease.fetchOrLock("k", "tok-1", 10_000), true);
    assert.equal(lease.refused, true);
    assert.equal(await redisCli(6379, ["GET", `${p}k:lock`]), "tok-1", "<key>:lock taken");
    assert.equal(await lease.fetchOrLock("k", "tok-2", 10_000), false, "held by tok-1");
    assert.equal(refusals, 1, "asked once");
    await lease.setAndUnlock("k", new Uint8Array([7]), 60, null, "tok-1");
    assert.deepEqual(await backend.get("k"), new Uint8Array([7]));
    assert.equal(await redisCli(6379, ["EXISTS", `${p}k:lock`]), "0", "released");
    assert.deepEqual(await lease.fetchOrLock("k", "tok-3", 10_000), new Uint8Array([7]));
    // Another error is the operation's failure, not a refusal.
    const other = new RedisKeyLease(
      {
        ...core,
        driver: { send: () => Promise.reject(new Error("WRONGTYPE Operation against a key")) },
      } as unknown as RedisCore,
      {} as RedisTags,
      keyLock,
    );
    await assert.rejects(() => other.fetchOrLock("k2", "t", 1000), /WRONGTYPE/);
    assert.equal(other.refused, false);
    await backend.delete("k");
    // The marker is what `leaseMarker` says (the bytes the other tests look for).
    assert.ok(leaseMarker("t").endsWith("lease:t"));
  },
  sharedRedisTestOptions,
);

test(
  "lease in the key: as one op (a deadline, connected), a refusal's fallback to <key>:lock is " +
    "part of the attempt: a guard's settle hook is called once, with its outcome",
  async () => {
    const p = prefix();
    await using backend = new RedisBackend({ url: SHARED, keyPrefix: p });
    const keyLock = backend.capabilities.fetchLock!;
    const queue = new DeadlineQueue(10_000);
    let inFlight = 0;
    const core = {
      full: (k: string) => p + k,
      opQueue: () => queue,
      started: () => void inFlight++,
      settled: () => void inFlight--,
      error: (e: unknown) => e,
      driver: {
        send: (_k: string, _ro: boolean, args: string[]) =>
          Promise.reject(new Error(args.includes("NX") ? "ERR syntax error" : "unexpected")),
      },
    } as unknown as RedisCore;
    const lease = new RedisKeyLease(core, {} as RedisTags, keyLock);
    const calls: unknown[] = [];
    const hook: SettleHook = {
      hooked: false,
      timeoutMs: 10_000,
      settled(error) {
        calls.push(error);
        return error;
      },
    };
    const got = lease.fetchOrLock("k", "tok-1", 10_000, hook);
    assert.equal(hook.hooked, true, "taken during the call");
    assert.equal(await got, true);
    assert.deepEqual(calls, [null], "called once, as the fallback's attempt succeeded");
    assert.equal(await redisCli(6379, ["GET", `${p}k:lock`]), "tok-1", "<key>:lock taken");
    assert.equal(lease.refused, true);
    assert.equal(inFlight, 0);
    assert.ok(queue.empty, "the deadline is gone");
    queue.dispose();
    await keyLock.unlock("k", "tok-1");
  },
  sharedRedisTestOptions,
);

test(
  "lease in the key: a failed plain write releases its marker before it fails, and before a " +
    "guard's settle hook is called",
  async () => {
    const port = await freePort();
    await using server = await startRedisServer(port);
    await using b = new RedisBackend({ url: server.url });
    const fl = inKeyOf(b);
    assert.equal(await fl.fetchOrLock("k", "tok", 60_000), true);
    // Watch the release (the write calls the capability's own `unlock`).
    let released = false;
    const unlock = fl.unlock.bind(fl);
    fl.unlock = (key, token, opts) =>
      unlock(key, token, opts).then((r) => {
        released = true;
        return r;
      });
    // A full server (noeviction): the write is refused, the marker's release (a delete) is not.
    await redisCli(port, ["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    await redisCli(port, ["CONFIG", "SET", "maxmemory", "1"]);
    const seen: { error: unknown; released: boolean }[] = [];
    const hook: SettleHook = {
      hooked: false,
      timeoutMs: 10_000,
      settled(error) {
        seen.push({ error, released });
        return error;
      },
    };
    const p = fl.setAndUnlock("k", new TextEncoder().encode("v"), 60, null, "tok", hook);
    assert.equal(hook.hooked, true, "taken during the call");
    const got = await p.then(() => "resolved", (e) => e);
    assert.match(String(got), /OOM/);
    assert.equal(seen.length, 1, "called once");
    assert.equal(seen[0].error, got);
    assert.equal(seen[0].released, true, "the marker was released when the hook was called");
    await redisCli(port, ["CONFIG", "SET", "maxmemory", "0"]);
    assert.equal(await redisCli(port, ["EXISTS", "k"]), "0", "no marker left");
  },
  redisServerTestOptions,
);
