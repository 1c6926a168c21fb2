// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The per-call controls on Memory, File and Redis: `f.uncached(...args)` (the function itself: no
// statistics, nothing read or stored) and `f.refresh(...args)` (recomputes despite a fresh entry,
// stores the result for every instance, single flight: concurrent refreshes compute once, and a
// miss meanwhile joins the refresh). Then the same on an L1-only synchronous function.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { gate, sleep, until } from "../_timing.ts";
import { cache } from "../../mod.ts";
import { kindOptions, KINDS, store } from "./_backends.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

for (const kind of KINDS) {
  test(
    `[${kind}] uncached calls the function: no statistics change, nothing read or written`,
    async () => {
      const s = store(kind, "uncached");
      try {
        const rec = recording(s.open());
        let n = 0;
        const f = cache(async (id: number) => ({ id, n: ++n }), {
          name: `ctl.uncached.${kind}`,
          ttl: 60,
          backend: rec.backend,
          ...bare,
        });
        await f(1); // cached
        const before = f.cacheInfo();
        const writes = rec.writes.length;
        const p = f.uncached(1);
        assert.ok(p instanceof Promise, "typed like the wrapper: a promise");
        assert.deepEqual(await p, { id: 1, n: 2 }, "the function ran despite the entry");
        assert.deepEqual(await f.uncached(2), { id: 2, n: 3 });
        assert.deepEqual(f.cacheInfo(), before, "statistics unchanged");
        assert.equal(rec.writes.length, writes, "nothing written");
        assert.deepEqual(await f(1), { id: 1, n: 1 }, "the entry is untouched");
        assert.deepEqual(await f(2), { id: 2, n: 4 }, "and no entry was made for 2");
        const boom = cache(async () => {
          throw new Error("boom");
        }, { name: `ctl.uncached.boom.${kind}`, backend: rec.backend, ...bare });
        await assert.rejects(boom.uncached(), /boom/);
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );

  test(
    `[${kind}] refresh recomputes despite a fresh entry, stores it for every instance, and runs once for concurrent callers`,
    async () => {
      const s = store(kind, "refresh");
      try {
        let n = 0;
        let hold: Promise<void> | null = null;
        const work = async (id: number) => {
          const v = { id, n: ++n };
          if (hold !== null) await hold;
          return v;
        };
        const opts = { name: `ctl.refresh.${kind}`, ttl: 60, ...bare };
        const f = cache(work, { ...opts, backend: s.open() });
        const g = cache(work, { ...opts, backend: s.open() });
        assert.equal((await f(1)).n, 1);
        assert.equal((await g(1)).n, 1, "from L2");
        assert.equal((await f.refresh(1)).n, 2, "recomputed although fresh in L1 and L2");
        assert.equal((await f(1)).n, 2, "stored in L1");
        const h = cache(work, { ...opts, backend: s.open() });
        assert.equal((await h(1)).n, 2, "stored in L2");
        // Single flight: two refreshes while the computation is held compute once.
        const g8 = gate();
        hold = g8.promise;
        const a = f.refresh(1);
        assert.ok(await until(() => n === 3, 10_000), "the refresh is computing");
        const b = f.refresh(1);
        await sleep(20); // time for a second computation to start, were there one
        const calls = n;
        g8.open();
        const [ra, rb] = await Promise.all([a, b]);
        hold = null;
        assert.equal(n, calls, "no second computation");
        assert.equal(ra.n, 3);
        assert.equal(rb.n, 3, "the second refresh joined the first");
        assert.equal((await f(1)).n, 3);
        const misses = f.cacheInfo().misses;
        assert.equal(misses, 3, "each computation counted once as a miss");
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );
}

test("refresh takes the stampede lock: it waits while another process holds it", async () => {
  const rec = recording();
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "ctl.refresh.lock",
    ttl: 60,
    backend: rec.backend,
    stampede: { wait: 30 },
    ...bare,
  });
  await f(1);
  const key = rec.writes[0].key;
  const held = await rec.inner.capabilities.lock.acquire(key + ":lock", {
    leaseMs: 60_000,
    waitMs: 0,
  });
  assert.ok(held !== null, "the test holds the lock, as another process would");
  const r = f.refresh(1);
  await sleep(100);
  assert.equal(n, 1, "the refresh waits for the lock");
  await held.release();
  assert.equal((await r).n, 2, "then computes");
  assert.equal(rec.writes.length, 2);
  const again = await rec.inner.capabilities.lock.acquire(key + ":lock", {
    leaseMs: 1000,
    waitMs: 0,
  });
  assert.ok(again !== null, "and released the lock");
  await again.release();
});

test("a miss that arrives during a refresh joins it", async () => {
  let n = 0;
  const g8 = gate();
  let hold = false;
  const f = cache(async (id: number) => {
    n++;
    if (hold) await g8.promise;
    return id * 10 + n;
  }, { name: "ctl.refresh.join", backend: null, ...bare });
  assert.equal(await f(1), 11);
  await f.invalidate(1);
  hold = true;
  const r = f.refresh(1);
  const m = f(1);
  g8.open();
  assert.equal(await r, 12);
  assert.equal(await m, 12, "joined");
  assert.equal(n, 2);
});

test("refresh and uncached on an L1-only synchronous function stay synchronous", () => {
  let n = 0;
  const f = cache((id: number): number => id * 100 + ++n, { name: "ctl.sync", backend: null });
  assert.equal(f(1), 101);
  assert.equal(f(1), 101);
  assert.equal(f.refresh(1), 102, "recomputed, synchronously");
  assert.equal(f(1), 102, "and stored");
  assert.equal(f.uncached(1), 103);
  assert.equal(f(1), 102);
  assert.equal(f.cacheInfo().hits, 3);
});
