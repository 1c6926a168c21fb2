/**
 * RedisBackend against a real 3-master Redis Cluster of private redis-server processes on
 * three free loopback ports chosen at start (`freeClusterPorts`; started once for this file, stopped
 * by pid in the last test and on unload).
 * Checks reads, writes, chunked values, locks, tags, prefix deletion and invalidation across slots.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { BackendError } from "../../errors.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { keySlot, lockKeyOf } from "../../backends/_redis_fetch_lock.ts";
import { cache } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";
import { test, type TestOptions } from "../_harness.ts";
import {
  freeClusterPorts,
  redisCli,
  type RedisClusterHandle,
  redisServerTestOptions,
  startRedisCluster,
  uniquePrefix,
} from "../_redis_server.ts";
import { backendConformance } from "../_backend_conformance.ts";
import { onExit } from "../_runtime.ts";
import { assertTtlLeft } from "../_timing.ts";

let PORTS: number[] = [];
const enc = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// The cluster outlives single tests, so the resource sanitizer cannot be on for them.
const opts: TestOptions = { ...redisServerTestOptions, sanitize: false };

let started: Promise<RedisClusterHandle> | undefined;
function cluster(): Promise<RedisClusterHandle> {
  started ??= freeClusterPorts(3).then((ports) => {
    PORTS = ports;
    return startRedisCluster(ports);
  }).then((c) => {
    // Kill by pid if the run ends without reaching the last test.
    onExit(() => {
      for (const n of c.nodes) {
        try {
          process.kill(n.pid, "SIGKILL");
        } catch { /* gone */ }
      }
    });
    return c;
  });
  return started;
}

async function backend(extra: ConstructorParameters<typeof RedisBackend>[0] = {}) {
  const c = await cluster();
  return new RedisBackend({
    cluster: { rootNodes: c.rootNodes },
    keyPrefix: uniquePrefix("cl"),
    ...extra,
  });
}

async function slotOf(key: string): Promise<number> {
  return Number(await redisCli(PORTS[0], ["CLUSTER", "KEYSLOT", key]));
}

/** Number of keys matching a pattern on each master. */
function keysPerNode(pattern: string): Promise<number[]> {
  return Promise.all(
    PORTS.map(async (p) => {
      const out = await redisCli(p, ["--scan", "--pattern", pattern]);
      return out === "" ? 0 : out.split("\n").length;
    }),
  );
}

backendConformance("redis-cluster", () => backend(), {
  capabilities: ["ttl", "lock", "timeouts", "prefix", "tags"],
  testOptions: opts,
});

test("redis cluster: reads and writes land on every master and read back", async () => {
  await using b = await backend();
  assert.equal(b.isCluster, true);
  const keys = Array.from({ length: 120 }, (_, i) => `k${i}`);
  const t0 = Date.now();
  await Promise.all(keys.map((k, i) => b.set(k, enc(`v${i}`), 60)));
  const values = await Promise.all(keys.map((k) => b.get(k)));
  values.forEach((v, i) => assert.deepEqual(v, enc(`v${i}`)));
  const spread = await keysPerNode(`${b.keyPrefix}*`);
  assert.equal(spread.reduce((a, n) => a + n, 0), 120);
  assert.ok(spread.every((n) => n > 0), `keys on every master: ${spread}`);
  assertTtlLeft(await b.ttl("k1"), 60, t0);
  assert.equal(await b.expire("k1", 0), true);
  assert.equal(await b.ttl("k1"), Infinity);
  assert.equal(await b.exists("k2"), true);
  assert.equal(await b.delete("k2"), true);
  assert.equal(await b.exists("k2"), false);
  const h = await b.healthCheck();
  assert.equal(h.healthy, true);
  assert.equal(h.details?.cluster, true);
  // Prefix deletion scans every master.
  assert.equal(await b.deleteByPrefix(""), 119);
  assert.deepEqual(await keysPerNode(`${b.keyPrefix}*`), [0, 0, 0]);
}, opts);

test("redis cluster: chunked values keep their chunks in the key's slot", async () => {
  await using b = await backend({ chunkSizeBytes: 64 * 1024, chunkGraceMs: 100 });
  const value = new Uint8Array(1024 * 1024 + 5).map((_, i) => (i * 131) & 0xff);
  for (const key of ["plain-key", "user:{42}:profile"]) {
    await b.set(key, value, 60);
    const back = await b.get(key);
    assert.ok(back && back.length === value.length && back.every((x, i) => x === value[i]));
    const slot = await slotOf(b.keyPrefix + key);
    const tag = key.includes("{") ? "{42}" : `{${b.keyPrefix}${key}}`;
    const chunkKeys = (await Promise.all(
      PORTS.map((p) => redisCli(p, ["--scan", "--pattern", `${tag}:__ck:*`])),
    )).join("\n").split("\n").filter((s) => s !== "");
    assert.equal(chunkKeys.length, 17);
    for (const ck of chunkKeys) assert.equal(await slotOf(ck), slot, `${ck} in slot ${slot}`);
    const stream = await b.getStream(key);
    let total = 0;
    for await (const piece of stream!) total += piece.length;
    assert.equal(total, value.length);
    assert.equal(await b.delete(key), true);
  }
  // A "}" without a hash tag cannot be chunked within one slot: a clear permanent error.
  await assert.rejects(b.set("odd}key", value), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.equal(e.kind, "permanent");
    assert.match(e.message, /hash tag/);
    return true;
  });
  await b.set("odd}key", enc("small values are fine"));
  assert.deepEqual(await b.get("odd}key"), enc("small values are fine"));
  await b.deleteByPrefix("");
}, opts);

test("redis cluster: locks and tags work across slots", async () => {
  await using a = await backend();
  await using b = new RedisBackend({
    cluster: { rootNodes: [`127.0.0.1:${PORTS[2]}`] },
    keyPrefix: a.keyPrefix,
  });
  const names = ["lock-a", "lock-b", "lock-c", "lock-d", "lock-e"];
  const slots = new Set(await Promise.all(names.map((n) => slotOf(a.keyPrefix + n))));
  assert.ok(slots.size > 1);
  const held = await Promise.all(names.map((n) => a.acquire(n, { leaseMs: 5000, waitMs: 0 })));
  assert.ok(held.every((h) => h !== null));
  for (const n of names) assert.equal(await b.acquire(n, { leaseMs: 5000, waitMs: 0 }), null);
  assert.equal(await held[0]!.release(), true);
  const taken = await b.acquire(names[0], { leaseMs: 5000, waitMs: 0 });
  assert.ok(taken);
  assert.equal(await held[0]!.release(), false);
  await taken.release();
  await Promise.all(held.slice(1).map((h) => h!.release()));

  const members = Array.from({ length: 30 }, (_, i) => `item${i}`);
  await Promise.all(members.map((m) => a.set(m, enc(m), 60)));
  await Promise.all(members.map((m, i) => a.addTags(m, i % 2 ? ["odd", "all"] : ["all"], 60)));
  const odd = await b.invalidateTags(["odd"]);
  assert.deepEqual(odd.sort(), members.filter((_, i) => i % 2).sort());
  assert.equal(await a.get("item1"), null);
  assert.deepEqual(await a.get("item0"), enc("item0"));
  const rest = await a.invalidateTags(["all"]);
  assert.equal(rest.length, 15);
  assert.equal(await a.deleteByPrefix(""), 0);
}, opts);

test(
  "redis cluster: invalidation events reach instances connected through other nodes",
  async () => {
    const channel = `inv:${crypto.randomUUID()}`;
    const c = await cluster();
    await using a = new RedisBackend({
      cluster: { rootNodes: [c.rootNodes[0]] },
      invalidationChannel: channel,
    });
    await using b = new RedisBackend({
      cluster: { rootNodes: [c.rootNodes[1]] },
      invalidationChannel: channel,
    });
    const gotA: InvalidationEvent[] = [];
    const gotB: InvalidationEvent[] = [];
    await a.subscribe((e) => gotA.push(e));
    await b.subscribe((e) => gotB.push(e));
    await a.publish({ level: "prefix", targets: ["ns:"] });
    const deadline = Date.now() + 10_000;
    while (gotB.length === 0 && Date.now() < deadline) await sleep(10);
    assert.deepEqual(gotB, [{ level: "prefix", targets: ["ns:"], sender: a.instanceId }]);
    await sleep(50);
    assert.deepEqual(gotA, [], "own events are ignored");
  },
  opts,
);

test("redis cluster: fetchLock keeps each key's lock in the key's slot", async () => {
  await using a = await backend();
  const fl = a.capabilities.fetchLock!;
  const names = ["plain", "x{tag}y", "a}b", "{}z", "c{", "t:é}ü", "k1", "k2", "k3", "k4"];
  for (const n of names) {
    const full = a.keyPrefix + n;
    const lock = lockKeyOf(full);
    assert.equal(await slotOf(lock), await slotOf(full), `${full} → ${lock}`);
    assert.equal(keySlot(full), await slotOf(full));
    assert.equal(await fl.fetchOrLock(n, "A", 5000), true);
    assert.equal(await fl.fetchOrLock(n, "B", 5000), false);
    await fl.setAndUnlock(n, enc(n), 60, ["fl-tag"], "A");
    assert.deepEqual(await fl.fetchOrLock(n, "B", 5000), enc(n));
    assert.equal(await fl.fetchOrLock(n, "B", 5000, { lockOnly: true }), true, "released");
    assert.equal(await fl.unlock(n, "B"), true);
  }
  assert.equal((await a.invalidateTags(["fl-tag"])).length, names.length);
  // The lease in the key (native mode): one key, one slot, whatever its name.
  const lease = fl.inKey!;
  for (const [i, n] of names.entries()) {
    const k = `lease:${n}`;
    assert.equal(await lease.fetchOrLock(k, "A", 5000), true);
    assert.equal(await lease.fetchOrLock(k, "B", 5000), false);
    assert.equal(await a.get(k), null, "a marker reads as absent");
    assert.equal(await a.exists(k), false);
    await lease.setAndUnlock(k, enc(n), 60, i % 2 === 0 ? ["lease-tag"] : null, "A");
    assert.deepEqual(await lease.fetchOrLock(k, "B", 5000), enc(n));
    assert.equal(await lease.unlock(k, "B"), false, "a value is no marker");
    await a.delete(k);
  }
  // The engine's lock-on miss on a cluster (native: the lease in the key).
  let computed = 0;
  // deno-lint-ignore require-await
  const f = cache(async (i: number) => ({ i, n: ++computed }), {
    name: "cluster.fl",
    ttl: 60,
    backend: a,
    l1: false,
    // The computations are counted: no adaptive timeout (100 ms at first) that a loaded machine
    // can run out, making a call compute without the lock or its write.
    timeout: false,
  });
  // Keys 1 and 2 may live on different nodes: which computes first depends on which answers first.
  const [a1, b2, c1] = await Promise.all([f(1), f(2), f(1)]);
  assert.deepEqual([a1.i, b2.i, c1.i], [1, 2, 1]);
  assert.deepEqual(c1, a1, "one computation for key 1");
  assert.deepEqual([a1.n, b2.n].sort(), [1, 2]);
  assert.deepEqual(await f(2), b2);
  assert.equal(computed, 2);
}, opts);

test("redis cluster: stop the cluster", async () => {
  if (!started) return;
  const c = await started;
  await c.stop();
  assert.ok(c.nodes.every((n) => n.exited));
}, opts);
