// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Adaptive caching on Memory, File and Redis: `ttl` as a function of the result (the TTL written to
// L2, the fail-safe freshness, L1 in this and in another instance), `cacheIf`, `resultTags`, and the
// factory context (`cacheContext()`): setTtl, skip, fail with and without a stale value, stale,
// setTags with invalidateTags.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { assertTtlLeft, shiftDateNow, until } from "../_timing.ts";
import { cache, CacheConfigError, cacheContext, invalidateTags, MemoryBackend } from "../../mod.ts";
import { kindOptions, KINDS, store, subscribed } from "./_backends.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

for (const kind of KINDS) {
  test(
    `[${kind}] ttl as a function of the result: the TTL of each entry in L2, its freshness, and L1 here and in another instance`,
    async () => {
      const s = store(kind, "ttlfn");
      const clock = shiftDateNow();
      try {
        const rec = recording(s.open());
        let n = 0;
        const work = async (id: number) => ({ id, n: ++n, empty: id === 1 });
        const opts = {
          name: `fc.ttlfn.${kind}`,
          ttl: (r: { empty: boolean }, id: number) => (r.empty ? 5 : 100 + id),
          ...bare,
        };
        const f = cache(work, { ...opts, backend: rec.backend });
        const since = Date.now();
        assert.equal((await f(1)).n, 1);
        assert.equal((await f(2)).n, 2);
        assert.deepEqual(rec.writes.map((w) => w.ttl), [5, 102], "the TTL written per result");
        const ttlCap = rec.inner.capabilities.ttl!;
        assertTtlLeft(
          await ttlCap.ttl(rec.writes[0].key),
          5,
          since,
          "stored TTL of the short entry",
        );
        assertTtlLeft(
          await ttlCap.ttl(rec.writes[1].key),
          102,
          since,
          "stored TTL of the long one",
        );
        // Another instance (its own L1) reads both from L2.
        const g = cache(work, { ...opts, backend: s.open() });
        assert.equal((await g(1)).n, 1);
        assert.equal((await g(2)).n, 2);
        clock.advance(6_000); // past the short entry's TTL only
        assert.equal((await f(1)).n, 3, "the short entry expired in L1 and in L2 (fresh_until)");
        assert.equal((await f(2)).n, 2, "the long one did not");
        assert.equal((await g(2)).n, 2);
        assert.equal((await g(1)).n, 3, "the other instance's L1 copy lived no longer than L2's");
      } finally {
        clock.restore();
        await s.close();
      }
    },
    kindOptions(kind),
  );

  test(
    `[${kind}] cacheIf false answers without caching: the next call recomputes, nothing is written`,
    async () => {
      const s = store(kind, "cacheif");
      try {
        const rec = recording(s.open());
        let n = 0;
        const f = cache(async (q: string) => (++n, q === "none" ? [] : [q]), {
          name: `fc.cacheif.${kind}`,
          ttl: 60,
          cacheIf: (hits: string[], q: string) => hits.length > 0 && q !== "",
          backend: rec.backend,
          ...bare,
        });
        assert.deepEqual(await f("none"), []);
        assert.deepEqual(await f("none"), []);
        assert.equal(n, 2, "the empty answer was computed twice");
        assert.equal(rec.writes.length, 0, "and never written");
        assert.deepEqual(await f("a"), ["a"]);
        assert.deepEqual(await f("a"), ["a"]);
        assert.equal(n, 3, "a non-empty answer is cached");
        assert.equal(rec.writes.length, 1);
        assert.equal(f.cacheInfo().size, 1, "one L1 entry");
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );

  test(
    `[${kind}] ctx.skip answers without caching; ctx.setTtl overrides the ttl option`,
    async () => {
      const s = store(kind, "skip");
      try {
        const rec = recording(s.open());
        let n = 0;
        const f = cache(async (id: number) => {
          n++;
          const ctx = cacheContext<number>();
          assert.equal(ctx.cached, true);
          assert.equal(ctx.signal.aborted, false);
          if (id === 0) ctx.skip();
          if (id === 7) ctx.setTtl(7);
          if (id === 9) ctx.setTtl(null); // no expiry
          return id * 10;
        }, { name: `fc.skip.${kind}`, ttl: 60, backend: rec.backend, ...bare });
        assert.equal(await f(0), 0);
        assert.equal(await f(0), 0);
        assert.equal(n, 2, "skipped: computed each time");
        assert.equal(await f(7), 70);
        assert.equal(await f(7), 70);
        assert.equal(await f(8), 80);
        assert.equal(n, 4);
        assert.equal(await f(9), 90);
        assert.deepEqual(rec.writes.map((w) => w.ttl), [7, 60, null]);
        const left = await rec.inner.capabilities.ttl!.ttl(rec.writes[2].key);
        assert.ok(left === Infinity || left === null, `no expiry in L2 (${left})`);
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );

  test(
    `[${kind}] ctx.fail: the stale value (L1, or L2 in another instance) answers; without one the error does`,
    async () => {
      const s = store(kind, "fail");
      const clock = shiftDateNow();
      try {
        let down = false;
        const seen: { has: boolean; stale: unknown }[] = [];
        const work = async (id: number) => {
          const ctx = cacheContext<{ id: number; v: string }>();
          seen.push({ has: ctx.hasStale, stale: ctx.stale });
          if (down) return ctx.fail(new Error(`source down for ${id}`));
          return { id, v: "fresh" };
        };
        const opts = { name: `fc.fail.${kind}`, ttl: 60, staleTtl: 600, ...bare };
        const f = cache(work, { ...opts, backend: s.open() });
        assert.deepEqual(await f(1), { id: 1, v: "fresh" });
        assert.deepEqual(seen.pop(), { has: false, stale: undefined });
        clock.advance(61_000);
        down = true;
        assert.deepEqual(await f(1), { id: 1, v: "fresh" }, "stale L1 value served");
        assert.deepEqual(seen.pop(), { has: true, stale: { id: 1, v: "fresh" } });
        assert.equal(f.cacheInfo().staleHits, 1);
        // A second instance has nothing in L1: the stale value comes from L2 (fresh_until passed).
        const g = cache(work, { ...opts, backend: s.open() });
        assert.deepEqual(await g(1), { id: 1, v: "fresh" }, "stale L2 value served");
        assert.deepEqual(seen.pop(), { has: true, stale: { id: 1, v: "fresh" } });
        await assert.rejects(f(2), /source down for 2/, "no stale value: the error");
        assert.deepEqual(seen.pop(), { has: false, stale: undefined });
      } finally {
        clock.restore();
        await s.close();
      }
    },
    kindOptions(kind),
  );

  test(
    `[${kind}] tags from the result (resultTags, ctx.setTags) are invalidated by invalidateTags in L1 and L2`,
    async () => {
      const s = store(kind, "settags");
      try {
        let n = 0;
        const work = async (id: number) => {
          const order = { id, customer: `c${id % 2}`, n: ++n };
          cacheContext().setTags([`customer:${order.customer}`]);
          return order;
        };
        const opts = {
          name: `fc.settags.${kind}`,
          ttl: 60,
          tags: (id: number) => [`order:${id}`],
          resultTags: (o: { id: number }) => [`parity:${o.id % 2}`],
          ...bare,
        };
        const f = cache(work, { ...opts, backend: s.open() });
        const g = cache(work, { ...opts, backend: s.open(), l1: false as const });
        assert.equal((await f(1)).n, 1);
        assert.equal((await f(2)).n, 2);
        assert.equal((await g(1)).n, 1, "L2 holds it");
        await invalidateTags("customer:c1");
        assert.equal((await f(2)).n, 2, "c0 kept");
        assert.equal((await g(1)).n, 3, "gone from L2");
        assert.equal((await f(1)).n, 3, "gone from L1 (then read from L2)");
        await invalidateTags("parity:0");
        assert.equal((await f(2)).n, 4, "resultTags tag invalidated");
        await invalidateTags("order:1");
        assert.equal((await f(1)).n, 5, "option tags still apply");
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );
}

test(
  "[redis] resultTags: another instance's L1 copy read from L2 drops at invalidateTags (bus)",
  async () => {
    const s = store("redis", "bus-tags");
    try {
      let n = 0;
      const work = async (id: number) => ({ id, org: `o${id}`, n: ++n });
      const opts = {
        name: "fc.bustags",
        ttl: 60,
        resultTags: (u: { org: string }) => [`org:${u.org}`],
        l1: { invalidation: true },
        ...bare,
      };
      const f = cache(work, { ...opts, backend: s.open() });
      const g = cache(work, { ...opts, backend: s.open() });
      assert.equal((await f(1)).n, 1);
      assert.equal((await g(1)).n, 1, "g's L1 copy comes from L2");
      assert.equal(g.cacheInfo().size, 1);
      assert.ok(await subscribed(s.channel!, 2), "both instances listen to the bus");
      await f.invalidateTags("org:o1");
      assert.ok(await until(() => g.cacheInfo().size === 0, 10_000), "g's L1 copy dropped");
      assert.equal((await g(1)).n, 2);
    } finally {
      await s.close();
    }
  },
  kindOptions("redis"),
);

const KEY = Array.from(
  crypto.getRandomValues(new Uint8Array(32)),
  (b) => b.toString(16).padStart(2, "0"),
)
  .join("");

test("encrypted entries (cache.secure) carry their own TTL: fresh_until is authenticated, another instance honours it", async () => {
  const clock = shiftDateNow();
  try {
    const backend = new MemoryBackend();
    let n = 0;
    const work = async (id: number) => ({ id, n: ++n });
    const opts = {
      name: "fc.secure",
      backend,
      ttl: (r: { id: number }) => (r.id === 1 ? 5 : 100),
      encryption: { masterKey: KEY, singleTenant: true },
      ...bare,
    };
    const f = cache.secure(work, opts);
    const g = cache.secure(work, opts);
    assert.equal((await f(1)).n, 1);
    assert.equal((await f(2)).n, 2);
    assert.equal((await g(1)).n, 1, "decrypted from L2");
    clock.advance(6_000);
    assert.equal((await g(1)).n, 3, "expired by its own TTL in g's L1 and in L2");
    assert.equal((await g(2)).n, 2);
  } finally {
    clock.restore();
  }
});

test("ttl function returning 0 answers without caching; a bad TTL or bad tags reject the call", async () => {
  let n = 0;
  const f = cache(async (id: number) => (++n, id), {
    name: "fc.ttl0",
    ttl: (v: number) => (v === 0 ? 0 : v === 9 ? -1 : 60),
    backend: null,
    ...bare,
  });
  await f(0);
  await f(0);
  assert.equal(n, 2);
  await assert.rejects(f(9), (e) => e instanceof CacheConfigError && e.option === "ttl()");
  // safeMode: the result is answered, uncached.
  let m = 0;
  const safe = cache(async (id: number) => (++m, id), {
    name: "fc.ttl.safe",
    ttl: () => -1,
    cacheIf: (v: number) => {
      if (v === 3) throw new Error("cacheIf bug");
      return true;
    },
    backend: null,
    safeMode: true,
  });
  assert.equal(await safe(1), 1);
  assert.equal(await safe(3), 3);
  await safe(1);
  await safe(3);
  assert.equal(m, 4, "answered each time, never cached");
  const g = cache(async () => {
    cacheContext().setTags("a" as unknown as string[]);
    return 1;
  }, { name: "fc.badtags", backend: null });
  await assert.rejects(g(), (e) => e instanceof CacheConfigError && e.option === "setTags(tags)");
  const h = cache(() => {
    cacheContext().setTtl(NaN);
    return 1;
  }, { name: "fc.badttl", backend: null });
  assert.throws(() => h(), (e) => e instanceof CacheConfigError && e.option === "setTtl(seconds)");
  assert.throws(
    () => cache(async () => 1, { name: "fc.badopt", cacheIf: true as unknown as () => boolean }),
    (e) => e instanceof CacheConfigError && e.option === "cacheIf",
  );
});

test("the context follows awaits, is the detached one outside a computation, and nests", async () => {
  const detached = cacheContext();
  assert.equal(detached.cached, false);
  detached.setTtl(5); // changes nothing
  detached.skip();
  assert.throws(() => detached.fail(new Error("x")), /x/);
  let n = 0;
  const inner = cache(async (id: number) => {
    cacheContext().skip(); // the inner call's own context
    return id + 1;
  }, { name: "fc.inner", backend: null });
  const outer = cache(async (id: number) => {
    await new Promise((r) => setTimeout(r, 1));
    const before = cacheContext();
    await inner(id);
    assert.equal(cacheContext(), before, "the outer context is back after the inner call");
    before.setTtl(60);
    n++;
    return id;
  }, { name: "fc.outer", backend: null });
  await outer(1);
  await outer(1);
  assert.equal(n, 1, "the outer result was cached (the inner skip did not leak)");
  const direct = outer.uncached(1);
  assert.equal(direct instanceof Promise, true);
  assert.equal(await direct, 1);
  assert.equal(n, 2, "uncached calls the function");
});

test("a synchronous L1-only function reaches its context; ttl function sets its L1 life", () => {
  const clock = shiftDateNow();
  try {
    let n = 0;
    const f = cache((id: number): number => {
      n++;
      if (id < 0) cacheContext().skip();
      return id;
    }, { name: "fc.sync", backend: null, ttl: (v: number) => (v === 1 ? 5 : 100) });
    f(-1);
    f(-1);
    assert.equal(n, 2);
    f(1);
    f(2);
    f(1);
    f(2);
    assert.equal(n, 4);
    clock.advance(6_000);
    f(1);
    f(2);
    assert.equal(n, 5, "only the 5 s entry expired");
  } finally {
    clock.restore();
  }
});

test("stale-while-revalidate refresh stores under the TTL of the new result", async () => {
  const clock = shiftDateNow();
  try {
    let n = 0;
    const f = cache(async (id: number) => ({ id, n: ++n }), {
      name: "fc.swr",
      backend: null,
      ttl: (r: { n: number }) => (r.n === 1 ? 100 : 10),
      l1: { swrEnabled: true, swrThreshold: 0.5, swrJitter: 0 },
    });
    assert.equal((await f(1)).n, 1);
    clock.advance(60_000); // past the refresh point of the 100 s entry
    assert.equal((await f(1)).n, 1, "served, refresh started");
    assert.ok(await until(() => n === 2, 10_000), "the background refresh ran");
    assert.equal((await f(1)).n, 2, "the refreshed value");
    clock.advance(11_000); // past the new entry's 10 s TTL
    assert.equal((await f(1)).n, 3, "the refreshed entry lived by its own TTL");
  } finally {
    clock.restore();
  }
});
