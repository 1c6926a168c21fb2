/**
 * Background refresh in one process (`engine/_call.ts` `refresh`, `engine/_refresh.ts`): the
 * `eagerRefresh` point, the cross-process stampede lock a refresh takes (two engines on one
 * backend stand for two processes: separate L1s and single-flight tables), the value another
 * engine stored found under the lock, a lock whose holder died, and invalidation during a
 * refresh. Time is the test's shifted `Date.now` (the memory backend's TTLs and leases too), so a
 * loaded host cannot bring a refresh point early or late; background work is awaited by polling.
 * On Redis, the commands of a refresh, counted at a tap. The same across 4 real processes:
 * `engine_refresh_process_test.ts`.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { gate, shiftDateNow, sleep, until } from "../_timing.ts";
import {
  cache,
  CacheConfigError,
  createCache,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";
import { sharedRedisTestOptions } from "../_redis_server.ts";
import { startRespTap } from "../_resp_tap.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { envConfig } from "../../config/env.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

type Run = { id: number; run: number };

/** A function counting its runs; runs from `gatedFrom` on wait for the test to open a gate. */
function counted(gatedFrom = Infinity) {
  const state = { runs: 0, gates: [] as Array<() => void> };
  const fn = async (id: number): Promise<Run> => {
    const run = ++state.runs;
    if (run >= gatedFrom) {
      const g = gate();
      state.gates.push(g.open);
      await g.promise;
    }
    return { id, run };
  };
  return { state, fn };
}

/**
 * Whether the refresh of two engines' due entry has started (`runs` reached 2); if not, both are
 * called once more. The refresh starts on a hit that finds the entry due, not necessarily the
 * first: an engine whose own L2 write landed over 50 ms after its L1 entry was made (a loaded
 * host; `OWN_WRITE_MS` in `engine/_refresh.ts`) takes that write, under the lock, for a newer value
 * another process stored, serves it aged, and leaves the recomputation to its next hit. Polled
 * with {@linkcode until}.
 */
async function dueHits(
  state: { runs: number },
  calls: readonly ((id: number) => Promise<Run>)[],
): Promise<boolean> {
  if (state.runs < 2) await Promise.all(calls.map((call) => call(1)));
  return state.runs >= 2;
}

test("eagerRefresh: validated; true takes CACHEKIT_EARLY_REFRESH_RATIO; needs L1", () => {
  assert.equal(resolveConfig({ name: "f" }).eagerRefresh, 0, "off by default");
  assert.equal(resolveConfig({ name: "f", eagerRefresh: 0.8 }).eagerRefresh, 0.8);
  assert.equal(resolveConfig({ name: "f", eagerRefresh: false }).eagerRefresh, 0);
  const env = { ...envConfig(), earlyRefreshRatio: 0.75 };
  assert.equal(resolveConfig({ name: "f", eagerRefresh: true }, undefined, env).eagerRefresh, 0.75);
  for (const bad of [0, 1, 1.5, -0.1, NaN, "0.9"]) {
    assert.throws(
      () => resolveConfig({ name: "f", eagerRefresh: bad as number }),
      (e: unknown) => e instanceof CacheConfigError && e.option === "eagerRefresh",
      String(bad),
    );
  }
  assert.throws(
    () => resolveConfig({ name: "f", eagerRefresh: 0.9, l1: { enabled: false } }),
    (e: unknown) =>
      e instanceof CacheConfigError && e.option === "eagerRefresh" && /l1/.test(e.message),
  );
});

test("eagerRefresh: a hit past the point answers at once and refreshes once in the background", async () => {
  const clock = shiftDateNow();
  try {
    const { state, fn } = counted(2);
    const f = cache(fn, {
      name: "refresh.eager",
      ttl: 60,
      eagerRefresh: 0.5,
      backend: new MemoryBackend(),
      l1: { swrEnabled: false },
      ...bare,
    });
    assert.equal((await f(1)).run, 1);
    clock.advance(29_000); // before 50 % of 60 s: no refresh
    assert.equal((await f(1)).run, 1);
    await sleep(20);
    assert.equal(state.runs, 1, "no refresh before the point");
    clock.advance(2_000); // past it
    const hits = await Promise.all([f(1), f(1), f(1)]);
    assert.deepEqual(hits.map((h) => h.run), [1, 1, 1], "the current value, at once");
    assert.ok(await until(() => state.runs === 2), "one refresh started");
    assert.equal((await f(1)).run, 1, "still served while the refresh runs");
    state.gates.shift()!();
    assert.ok(await until(async () => (await f(1)).run === 2), "the refresh landed");
    assert.equal(state.runs, 2, "exactly one refresh");
  } finally {
    clock.restore();
  }
});

test("eagerRefresh on a short TTL falls back to the L1 lifetime (still before L1 expiry)", async () => {
  const clock = shiftDateNow();
  try {
    const { state, fn } = counted();
    // ttl 4: L1 lives max(4 - 1, 2) = 3 s; 0.9 × 4 s would come after that: 0.9 × 3 s instead.
    const f = cache(fn, {
      name: "refresh.eager.short",
      ttl: 4,
      eagerRefresh: 0.9,
      backend: new MemoryBackend(),
      l1: { swrEnabled: false },
      ...bare,
    });
    await f(1);
    clock.advance(2_750);
    assert.equal((await f(1)).run, 1, "an L1 hit before the L1 expiry");
    assert.ok(await until(() => state.runs === 2), "refreshed before the L1 entry expired");
  } finally {
    clock.restore();
  }
});

test("eagerRefresh counts on an entry's own TTL (a ttl function)", async () => {
  const clock = shiftDateNow();
  try {
    const { state, fn } = counted();
    const f = cache(fn, {
      name: "refresh.eager.ttlfn",
      ttl: () => 10, // this entry: 10 s (L1: 9 s), its eager point 5 s (the default TTL: far later)
      eagerRefresh: 0.5,
      backend: new MemoryBackend(),
      l1: { swrEnabled: false },
      ...bare,
    });
    await f(1);
    clock.advance(4_000);
    assert.equal((await f(1)).run, 1);
    await sleep(20);
    assert.equal(state.runs, 1, "not before 5 s");
    clock.advance(2_000);
    assert.equal((await f(1)).run, 1, "served at once");
    assert.ok(await until(() => state.runs === 2), "refreshed at 50 % of its own TTL");
  } finally {
    clock.restore();
  }
});

for (
  const [trigger, kind] of [["swr", "memory"], ["eager", "memory"], ["eager", "file"]] as const
) {
  const timing = trigger === "swr"
    ? { l1: { swrEnabled: true, swrThreshold: 0.5, swrJitter: 0 } }
    : { eagerRefresh: 0.5, l1: { swrEnabled: false } };

  test(`refresh (${trigger}, ${kind}): two engines sharing a backend refresh once (the lock); the other keeps serving, then takes the new value`, async () => {
    const clock = shiftDateNow();
    const dir = kind === "file" ? fs.mkdtempSync(path.join(os.tmpdir(), "ck-refresh-")) : "";
    try {
      const backend = kind === "file" ? new FileBackend({ directory: dir }) : new MemoryBackend();
      const { state, fn } = counted(2);
      const opts = { name: `refresh.two.${trigger}`, ttl: 60, backend, ...timing, ...bare };
      const one = cache(fn, opts);
      const two = cache(fn, opts); // same function, another L1 and single-flight table
      assert.equal((await one(1)).run, 1);
      assert.equal((await two(1)).run, 1, "an L2 hit");
      clock.advance(31_000); // past 50 % of the L1 (59 s) and of the L2 TTL
      const [a, b] = await Promise.all([one(1), two(1)]);
      assert.equal(a.run, 1);
      assert.equal(b.run, 1);
      assert.ok(await until(() => dueHits(state, [one, two])), "one refresh runs");
      // The other engine found the lock taken: it serves its value and does not compute.
      for (let i = 0; i < 5; i++) {
        await Promise.all([one(1), two(1)]);
        await sleep(5);
      }
      assert.equal(state.runs, 2, "no second refresh while the first holds the lock");
      state.gates.shift()!();
      // Both end up with the refreshed value: the refresher stored it, the other takes it from L2
      // under the lock when it tries again (no invalidation bus on a memory backend).
      assert.ok(
        await until(async () => (await one(1)).run === 2 && (await two(1)).run === 2),
        "both serve the refreshed value",
      );
      assert.equal(state.runs, 2, "exactly one refresh");
      await backend.close();
    } finally {
      clock.restore();
      if (dir !== "") fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("createCache getOrSet: two cache objects on one backend refresh a hot key once", async () => {
  const clock = shiftDateNow();
  try {
    const backend = new MemoryBackend();
    const { state, fn } = counted(2);
    const opts = {
      namespace: "refresh-obj",
      ttl: 60,
      eagerRefresh: 0.5,
      backend,
      l1: { swrEnabled: false },
      ...bare,
    };
    const one = createCache(opts);
    const two = createCache(opts);
    const get = (c: typeof one) => c.getOrSet("hot", () => fn(1));
    assert.equal((await get(one)).run, 1);
    assert.equal((await get(two)).run, 1);
    clock.advance(31_000);
    await Promise.all([get(one), get(two)]);
    assert.ok(
      await until(() => dueHits(state, [() => get(one), () => get(two)])),
      "one refresh runs",
    );
    for (let i = 0; i < 5; i++) {
      await Promise.all([get(one), get(two)]);
      await sleep(5);
    }
    assert.equal(state.runs, 2, "the other found the lock taken");
    state.gates.shift()!();
    assert.ok(
      await until(async () => (await get(one)).run === 2 && (await get(two)).run === 2),
      "both serve the refreshed value",
    );
    assert.equal(state.runs, 2, "exactly one refresh");
  } finally {
    clock.restore();
  }
});

test("refresh: a value another engine stored since this entry was made is taken under the lock, not recomputed", async () => {
  const clock = shiftDateNow();
  try {
    const backend = new MemoryBackend();
    const { state, fn } = counted();
    // The reliability guard on (circuit breaker, adaptive timeout, backpressure): the lock and
    // the TTL inspection go through it.
    const opts = { name: "refresh.newer", ttl: 60, backend, eagerRefresh: 0.5 };
    const one = cache(fn, { ...opts, l1: { swrEnabled: false } });
    const two = cache(fn, { ...opts, l1: { swrEnabled: false } });
    await one(1);
    await two(1);
    clock.advance(31_000);
    await one(1); // one refreshes alone, and lands
    assert.ok(await until(async () => (await one(1)).run === 2));
    // two's entry is due too: under the lock it finds one's newer write (2 s old) and keeps it.
    clock.advance(2_000);
    assert.equal((await two(1)).run, 1, "served at once");
    assert.ok(await until(async () => (await two(1)).run === 2), "two took the stored value");
    assert.equal(state.runs, 2, "no recomputation");
    // An entry refreshed by this engine itself is recomputed at its next point (its own write is
    // not "newer").
    clock.advance(31_000);
    await one(1);
    assert.ok(await until(() => state.runs === 3), "one's own entry is refreshed again");
  } finally {
    clock.restore();
  }
});

test("refresh: a value another engine stored soon after this entry was read from L2 is taken, not recomputed", async () => {
  const clock = shiftDateNow();
  try {
    const backend = new MemoryBackend();
    const { state, fn } = counted();
    const opts = { name: "refresh.soon", ttl: 60, backend, eagerRefresh: 0.5, ...bare };
    const one = cache(fn, { ...opts, l1: { swrEnabled: false } });
    const two = cache(fn, { ...opts, l1: { swrEnabled: false } });
    await one(1);
    clock.advance(31_000);
    assert.equal((await two(1)).run, 1, "two reads the old value from L2 (its entry is new)");
    clock.advance(1_000);
    await one(1); // one's entry is due: it refreshes, one second after two's read
    assert.ok(await until(async () => (await one(1)).run === 2));
    clock.advance(29_100); // two's entry is due (30 s); one's write is not yet (29.1 s)
    assert.ok(await until(async () => (await two(1)).run === 2), "two took one's write");
    assert.equal(state.runs, 2, "not recomputed");
  } finally {
    clock.restore();
  }
});

test("refresh: a newer value taken under the lock keeps its age: already due, it is refreshed at the next hit", async () => {
  const clock = shiftDateNow();
  try {
    const backend = new MemoryBackend();
    const { state, fn } = counted();
    // ttl 100 s (L1: 99 s), refresh point 30 s.
    const opts = { name: "refresh.aged", ttl: 100, backend, eagerRefresh: 0.3, ...bare };
    const one = cache(fn, { ...opts, l1: { swrEnabled: false } });
    const two = cache(fn, { ...opts, l1: { swrEnabled: false } });
    await one(1);
    await two(1);
    clock.advance(31_000);
    await one(1);
    assert.ok(await until(async () => (await one(1)).run === 2), "one refreshed");
    clock.advance(31_000); // two's entry is 62 s old; one's write 31 s: due as well
    assert.ok(await until(async () => (await two(1)).run === 2), "two took one's value");
    assert.equal(state.runs, 2);
    assert.ok(
      await until(async () => (await two(1), state.runs === 3)),
      "the taken value, 31 s old, is refreshed at the next hit (not 30 s after it was taken)",
    );
  } finally {
    clock.restore();
  }
});

test("refresh: a lock held by a dead process stops a refresh only until its lease ends", async () => {
  const clock = shiftDateNow();
  try {
    const rec = recording(new MemoryBackend());
    const { state, fn } = counted();
    const f = cache(fn, {
      name: "refresh.deadlock",
      ttl: 60,
      eagerRefresh: 0.5,
      backend: rec.backend,
      l1: { swrEnabled: false },
      stampede: { lease: 5 },
      ...bare,
    });
    await f(1);
    const key = rec.keys[0];
    clock.advance(31_000);
    // A "process" takes the key's lock and dies: it is never released.
    const dead = await rec.inner.capabilities.lock.acquire(key + ":lock", {
      leaseMs: 3_000,
      waitMs: 0,
    });
    assert.ok(dead !== null);
    for (let i = 0; i < 5; i++) {
      assert.equal((await f(1)).run, 1, "served while the lock is held");
      await sleep(5);
    }
    assert.equal(state.runs, 1, "no refresh while the lock is held");
    clock.advance(3_000); // the dead holder's lease ends
    assert.ok(await until(async () => (await f(1)).run === 2), "the refresh ran after the lease");
    assert.equal(state.runs, 2);
  } finally {
    clock.restore();
  }
});

test("refresh under the lock: an invalidation during it stores nothing (no resurrection), in L1 or L2", async () => {
  const clock = shiftDateNow();
  try {
    const rec = recording(new MemoryBackend());
    const { state, fn } = counted(2);
    const f = cache(fn, {
      name: "refresh.invalidate",
      ttl: 60,
      eagerRefresh: 0.5,
      backend: rec.backend,
      l1: { swrEnabled: false },
      ...bare,
    });
    await f(1);
    clock.advance(31_000);
    await f(1);
    assert.ok(await until(() => state.runs === 2), "refresh running");
    await f.invalidate(1);
    state.gates.shift()!(); // the refresh ends after the invalidation
    await sleep(20);
    assert.deepEqual(await rec.live(), [], "the refresh did not write L2");
    const next = f(1); // a miss: computes anew (run 3, gated)
    assert.ok(await until(() => state.runs === 3));
    state.gates.shift()!();
    assert.equal((await next).run, 3);
    // The lock the refresh held was released: the miss did not wait for its lease.
  } finally {
    clock.restore();
  }
});

test(
  "refresh on Redis: the refresher locks, reads the TTL, writes and unlocks in one script; the other " +
    "engine makes one lock attempt, then takes the value (lock, PTTL, GET, unlock)",
  async () => {
    // Real time (Redis TTLs cannot be shifted): a refresh point of 5 % of 20 s = 1 s.
    const keyPrefix = `cktest:refresh:${crypto.randomUUID().slice(0, 8)}:`;
    await using tap = await startRespTap(6379);
    await using backend = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}`, keyPrefix });
    const { state, fn } = counted(2);
    const opts = {
      name: "refresh.redis",
      ttl: 20,
      eagerRefresh: 0.05,
      backend,
      l1: { swrEnabled: false, invalidation: false },
      monitoring: { collectStats: true, prometheus: false, structuredLogging: false },
      ...bare,
    };
    const one = cache(fn, opts);
    const two = cache(fn, opts);
    try {
      assert.equal((await one(1)).run, 1);
      assert.equal((await two(1)).run, 1);
      await sleep(1_100); // past both entries' refresh points
      const DATA = new Set(["EVALSHA", "EVAL", "PTTL", "GET", "SET"]);
      let start = tap.commands.length;
      const names = () => tap.commands.slice(start).filter((c) => DATA.has(c.name));
      assert.equal((await one(1)).run, 1);
      // (Polled with calls: had the warm-up write taken longer than the own-write margin, the
      // first attempt would take that value back, aged, and the next hit refresh.)
      assert.ok(await until(async () => (await one(1), state.runs === 2)), "one refreshes (gated)");
      const [lock, pttl] = names();
      assert.deepEqual([lock.name, pttl.name], ["EVALSHA", "PTTL"]);
      assert.equal(lock.args[3], `${lock.args[2]}:lock`, "the key's own lock (as a miss takes)");
      start = tap.commands.length;
      assert.equal((await two(1)).run, 1, "two serves its value");
      assert.ok(await until(() => names().length === 1), "two's lock attempt");
      assert.equal(names()[0].name, "EVALSHA");
      assert.equal(state.runs, 2, "two does not compute");
      start = tap.commands.length;
      state.gates.shift()!();
      assert.ok(await until(async () => (await one(1)).run === 2), "one's refresh landed");
      assert.ok(await until(() => names().length >= 1));
      assert.deepEqual(names().map((c) => c.name), ["EVALSHA"], "write and unlock: one script");
      start = tap.commands.length;
      assert.ok(await until(async () => (await two(1)).run === 2), "two took the stored value");
      assert.ok(await until(() => names().length >= 4), "the unlock follows the answer");
      assert.deepEqual(names().map((c) => c.name), ["EVALSHA", "PTTL", "GET", "EVALSHA"]);
      assert.equal(state.runs, 2, "exactly one refresh");
    } finally {
      await backend.capabilities.prefix?.deleteByPrefix("");
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
