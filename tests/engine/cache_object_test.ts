// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
// createCache on Memory, File and Redis: every method and per-call option, the key space apart
// from cache() functions, expire then the stale fallback, hard timeouts (with and without a stale
// value, the late result cached), cancellation by one or all of the callers sharing a factory.
// Two cache objects on one backend stand for two processes (separate L1s).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { gate, shiftDateNow, until } from "../_timing.ts";
import {
  type Backend,
  cache,
  CacheConfigError,
  createCache,
  type CreateCacheOptions,
  FactoryTimeoutError,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

interface Setup {
  backend: Backend;
  close(): Promise<void>;
}

const KINDS: Record<string, { make: () => Setup; options: { ignore: boolean } }> = {
  memory: {
    make: () => {
      const backend = new MemoryBackend();
      return { backend, close: () => backend.close() };
    },
    options: { ignore: false },
  },
  file: {
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), "ck-obj-"));
      const backend = new FileBackend({ directory: dir });
      return {
        backend,
        close: async () => {
          await backend.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    options: { ignore: false },
  },
  redis: {
    make: () => {
      const backend = new RedisBackend({
        url: "redis://127.0.0.1:6379",
        keyPrefix: uniquePrefix("obj"),
        invalidationChannel: `cktest:inv:${crypto.randomUUID()}`,
      });
      return { backend, close: () => backend.close() };
    },
    options: sharedRedisTestOptions,
  },
};

for (const [kind, { make, options }] of Object.entries(KINDS)) {
  const each = (name: string, fn: (s: Setup) => Promise<void>) =>
    test(`createCache (${kind}): ${name}`, async () => {
      const s = make();
      try {
        await fn(s);
      } finally {
        await s.close();
      }
    }, { ...options, sanitize: kind === "memory" });
  const two = (s: Setup, o: CreateCacheOptions = {}) =>
    [
      createCache({ ttl: 60, backend: s.backend, ...bare, ...o }),
      createCache({ ttl: 60, backend: s.backend, ...bare, ...o }),
    ] as const;

  each(
    "getOrSet computes once, shares concurrent misses, and a second instance reads L2",
    async (s) => {
      const [a, b] = two(s, { namespace: "t1" });
      let calls = 0;
      const g = gate();
      const factory = async () => {
        calls++;
        await g.promise;
        return { id: 1, when: "now" };
      };
      const p1 = a.getOrSet("user:1", factory);
      const p2 = a.getOrSet("user:1", factory);
      g.open();
      const [v1, v2] = await Promise.all([p1, p2]);
      assert.deepEqual(v1, { id: 1, when: "now" });
      assert.deepEqual(v2, v1);
      assert.equal(calls, 1);
      const v3: { id: number; when: string } = await b.getOrSet("user:1", factory);
      assert.deepEqual(v3, v1);
      assert.equal(calls, 1, "read from L2 by the other instance");
      assert.equal(b.cacheInfo().l2Hits, 1);
    },
  );

  each("get / set / has / delete / getMany / setMany / deleteMany round trips", async (s) => {
    const [a, b] = two(s);
    assert.equal(await a.get("k"), undefined);
    assert.equal(await a.has("k"), false);
    await a.set("k", { n: 1, d: new Date(0) });
    assert.deepEqual(await b.get<{ n: number; d: Date }>("k"), { n: 1, d: new Date(0) });
    assert.equal(await b.has("k"), true);
    await b.delete("k");
    // a's L1 keeps its copy without an invalidation bus (l1.invalidation is off by default).
    assert.equal(await a.get("k", { skipL1Read: true }), undefined, "deleted in L2");
    assert.equal(await b.has("k"), false);
    await a.setMany([["m1", 1], ["m2", "two"], ["m3", [3]]]);
    assert.deepEqual(await b.getMany(["m1", "m2", "m3", "nope"]), [1, "two", [3], undefined]);
    await b.deleteMany(["m1", "m3"]);
    assert.deepEqual(await b.getMany(["m1", "m2", "m3"]), [undefined, "two", undefined]);
    await a.delete("m2", "absent");
    assert.equal(await b.get("m2", { skipL1Read: true }), undefined);
  });

  each("keys are any strings; the key space is apart from cache() functions", async (s) => {
    const [a] = two(s);
    const weird = [
      "",
      " ",
      "a b",
      "a%20b",
      "func:x:args:1",
      "ns:q:func:f:args:",
      "ü:🙂",
      "x".repeat(400),
    ];
    for (const [i, k] of weird.entries()) await a.set(k, i);
    for (const [i, k] of weird.entries()) {
      assert.equal(await a.get(k), i, `key ${JSON.stringify(k)}`);
    }
    assert.equal(await s.backend.exists("t:default:obj:key:a%20b"), true, "documented layout");
    // A function whose custom key spells the same string lands elsewhere.
    const f = cache(async (k: string) => `fn:${k}`, {
      name: "x",
      key: (k) => k,
      ttl: 60,
      backend: s.backend,
      ...bare,
    });
    assert.equal(await f("1"), "fn:1");
    assert.equal(await a.get("func:x:args:1"), 4);
    assert.equal(await a.get("1"), undefined);
    await a.clear();
    assert.equal(await a.get(" "), undefined);
    assert.equal(await f("1"), "fn:1");
    assert.equal(f.cacheInfo().l1Hits, 1, "clear() of the object cache left the function alone");
  });

  each("deleteByTags, per-call tags and ctx.setTags", async (s) => {
    const [a, b] = two(s);
    await a.getOrSet("o:1", async () => 1, { tags: ["team:a"] });
    await a.getOrSet("o:2", async (ctx) => {
      ctx.setTags(["team:b"]);
      return 2;
    });
    await a.set("o:3", 3, { tags: ["team:a", "x"] });
    await b.deleteByTags("team:a");
    assert.equal(await a.get("o:1"), undefined);
    assert.equal(await a.get("o:3"), undefined);
    assert.equal(await a.get("o:2"), 2);
    await a.deleteByTags("team:b");
    assert.equal(await b.get("o:2"), undefined);
  });

  each("per-call ttl, ctx.setTtl and ctx.skip", async (s) => {
    const clock = shiftDateNow();
    try {
      // staleTtl: L2 entries carry their logical expiry, which the shifted clock reaches.
      const [a, b] = two(s, { staleTtl: 1 });
      await a.set("short", 1, { ttl: 5 });
      await a.getOrSet("long", async () => 2, { ttl: 600 });
      await a.getOrSet("adaptive", async (ctx) => {
        ctx.setTtl(5);
        return 3;
      });
      let skipped = 0;
      const skip = () =>
        a.getOrSet("skipped", async (ctx) => {
          skipped++;
          ctx.skip();
          return 4;
        });
      assert.equal(await skip(), 4);
      assert.equal(await skip(), 4);
      assert.equal(skipped, 2, "a skipped result is not cached");
      assert.equal(await b.get("short"), 1, "b's L1 takes it, for its remaining life only");
      clock.advance(30_000);
      assert.equal(await b.get("short"), undefined);
      assert.equal(await b.get("adaptive"), undefined);
      assert.equal(await b.get("long"), 2);
      assert.equal(await a.get("short"), undefined, "L1 expired too");
    } finally {
      clock.restore();
    }
  });

  each("skip flags: L1 read/write, L2 read/write", async (s) => {
    const [a, b] = two(s);
    await a.set("l1only", 1, { skipL2Write: true });
    assert.equal(await a.get("l1only"), 1);
    assert.equal(await b.get("l1only"), undefined, "never written to L2");
    await a.set("l2only", 2, { skipL1Write: true });
    assert.equal(a.cacheInfo().size, 1, "only l1only is in a's L1");
    assert.equal(await a.get("l2only", { skipL1Write: true }), 2);
    assert.equal(a.cacheInfo().size, 1);
    let calls = 0;
    await a.getOrSet("r", async () => ++calls);
    assert.equal(await b.getOrSet("r", async () => ++calls, { skipL2Read: true }), 2);
    assert.equal(await a.getOrSet("r", async () => ++calls, { skipL1Read: true }), 2, "L2 has b's");
    assert.equal(await a.get("r"), 2, "and L1 took it");
  });

  each("expire: the next read recomputes; a failure then answers the stale value", async (s) => {
    // failSafeThrottle 0: the success right after the failure is tried (not the held stale value).
    const [a, b] = two(s, { staleTtl: 300, failSafeThrottle: 0 });
    await a.set("rate", 1.08);
    await a.expire("rate");
    assert.equal(await a.get("rate"), undefined, "no longer fresh here");
    assert.equal(await b.get("rate"), undefined, "nor in L2");
    assert.equal(await b.has("rate"), false);
    // b has no L1 copy: the stale value comes from L2.
    const down = () => {
      throw new Error("source down");
    };
    assert.equal(await b.getOrSet("rate", down), 1.08);
    assert.equal(await a.getOrSet("rate", down), 1.08);
    assert.equal(await a.getOrSet("rate", async () => 1.1), 1.1, "a success refreshes it");
    assert.equal(await b.get("rate"), 1.1);
    // Without staleTtl, expire deletes.
    const [c] = two(s, { namespace: "nostale" });
    await c.set("k", 1);
    await c.expire("k");
    assert.equal(await c.getOrSet("k", async () => 2), 2);
  });

  each("expire keeps the entry's own stale window and never lengthens it", async (s) => {
    // Before, expire wrote the entry back with the cache's staleTtl (600 s here) whatever window
    // it had, and gave an entry already stale a new full window on every expire.
    const [a, b] = two(s, { staleTtl: 600, failSafeThrottle: 0 });
    const left = () => s.backend.capabilities.ttl!.ttl("t:default:obj:key:own");
    const down = () => {
      throw new Error("source down");
    };
    await a.set("own", "v", { staleTtl: 30, tags: ["t:own"] }); // fresh 60 s, then stale 30 s
    await a.expire("own");
    const first = await left();
    // 30 s past its logical expiry, as written (plus that write's latency: a margin of 5 s).
    assert.ok(first !== null && first <= 35, `L2 keeps it ${first} s, not the cache's 600 s`);
    assert.equal(await b.getOrSet("own", down), "v", "the stale fallback, within its window");
    assert.equal(await a.getOrSet("own", down), "v", "and from a's L1");
    await a.expire("own"); // already stale: left as it is
    const second = await left();
    assert.ok(second !== null && second <= first, `expired again: ${second} s, was ${first} s`);
    // Still reachable by its tags: the deleted value is no fallback anywhere.
    await a.deleteByTags("t:own");
    await assert.rejects(b.getOrSet("own", down), /source down/);
    await assert.rejects(a.getOrSet("own", down), /source down/);
    // A window of 0: L2 keeps it no longer than it was written to (its write's latency past its
    // logical expiry at most), and a's L1 not at all.
    await a.set("none", "v", { staleTtl: 0 });
    await a.expire("none");
    const none = await s.backend.capabilities.ttl!.ttl("t:default:obj:key:none");
    assert.ok(none === null || none < 5, `L2 keeps it ${none} s, not the cache's 600 s`);
  });

  each(
    "hard timeout without a stale value: FactoryTimeoutError, the late result is cached",
    async (s) => {
      const [a, b] = two(s);
      const g = gate();
      let calls = 0;
      const slow = async () => {
        calls++;
        await g.promise;
        return "late";
      };
      await assert.rejects(
        a.getOrSet("h", slow, { hardTimeout: 0.05 }),
        (e: unknown) => e instanceof FactoryTimeoutError && /key "h"/.test(e.message),
      );
      // A call that comes while it still runs joins it rather than starting another.
      await assert.rejects(a.getOrSet("h", slow, { hardTimeout: 0.05 }), FactoryTimeoutError);
      assert.equal(calls, 1);
      g.open();
      assert.ok(
        await until(async () => (await b.get("h")) === "late"),
        "the late result was stored",
      );
      assert.equal(await a.getOrSet("h", slow), "late");
      assert.equal(calls, 1);
    },
  );

  each(
    "after a hard timeout the late computation keeps the stampede lock: another instance waits and reads it",
    async (s) => {
      const [a, b] = two(s, { stampede: { wait: 30 } });
      const g = gate();
      await assert.rejects(
        a.getOrSet("lk", async () => {
          await g.promise;
          return "late";
        }, { hardTimeout: 0.05 }),
        FactoryTimeoutError,
      );
      let bCalls = 0;
      const pb = b.getOrSet("lk", async () => {
        bCalls++;
        return "b's own";
      });
      g.open();
      assert.equal(await pb, "late");
      assert.equal(bCalls, 0, "b waited for the lock instead of computing");
    },
  );

  each("hard timeout with a stale value answers it; soft timeout too", async (s) => {
    const clock = shiftDateNow();
    try {
      const [a] = two(s, { staleTtl: 300 });
      await a.set("p", "old");
      clock.advance(120_000);
      const g = gate();
      const v = await a.getOrSet("p", async () => {
        await g.promise;
        return "new";
      }, { hardTimeout: 0.05 });
      assert.equal(v, "old");
      g.open();
      assert.ok(await until(async () => (await a.get("p")) === "new"));
      clock.advance(120_000);
      const g2 = gate();
      const soft = await a.getOrSet("p", async () => {
        await g2.promise;
        return "newer";
      }, { softTimeout: 0.02, hardTimeout: 30 });
      assert.equal(soft, "new");
      g2.open();
      assert.ok(await until(async () => (await a.get("p")) === "newer"));
    } finally {
      clock.restore();
    }
  });

  each(
    "abort by one of two sharing callers: the other gets the value, the factory's signal stays",
    async (s) => {
      const [a] = two(s);
      const g = gate();
      let seen: AbortSignal | null = null;
      const factory = async (ctx: { signal: AbortSignal }) => {
        seen = ctx.signal;
        await g.promise;
        return 7;
      };
      const ac = new AbortController();
      const p1 = a.getOrSet("s", factory, { signal: ac.signal });
      const p2 = a.getOrSet("s", factory);
      await until(() => seen !== null);
      ac.abort();
      await assert.rejects(p1, (e: unknown) => (e as Error).name === "AbortError");
      g.open();
      assert.equal(await p2, 7);
      assert.equal(seen!.aborted, false);
      assert.equal(await a.get("s"), 7, "stored");
    },
  );

  each("abort by both sharing callers aborts the factory's signal", async (s) => {
    const [a] = two(s);
    let seen: AbortSignal | null = null;
    const factory = (ctx: { signal: AbortSignal }) =>
      new Promise<number>((resolve, reject) => {
        seen = ctx.signal;
        const timer = setTimeout(() => resolve(1), 60_000);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(timer);
          reject(ctx.signal.reason);
        });
      });
    const c1 = new AbortController();
    const c2 = new AbortController();
    const p1 = a.getOrSet("s2", factory, { signal: c1.signal });
    const p2 = a.getOrSet("s2", factory, { signal: c2.signal });
    await until(() => seen !== null);
    c1.abort();
    await assert.rejects(p1);
    assert.equal(seen!.aborted, false);
    c2.abort(new Error("bye"));
    await assert.rejects(p2, /bye/);
    assert.equal(seen!.aborted, true);
    assert.equal(await a.get("s2"), undefined);
    // An already aborted signal rejects before anything runs.
    await assert.rejects(a.getOrSet("s3", () => 1, { signal: AbortSignal.abort() }));
    assert.equal(await a.has("s3"), false);
  });
}

test("createCache: tenants bind entries; encryption authenticates the key (moved bytes are a miss)", async () => {
  const backend = new MemoryBackend();
  const masterKey = Array.from(
    crypto.getRandomValues(new Uint8Array(32)),
    (b) => b.toString(16).padStart(2, "0"),
  ).join("");
  const { withTenant } = await import("../../mod.ts");
  const c = createCache.secure({
    ttl: 60,
    backend,
    ...bare,
    encryption: { masterKey, singleTenant: false },
  });
  await withTenant("acme", () => c.set("k1", { secret: 1 }));
  await withTenant("acme", () => c.set("k2", { secret: 2 }));
  assert.equal(await withTenant("other", () => c.get("k1")), undefined, "another tenant's key");
  // Copy k1's ciphertext under k2's key: the AAD carries the key, so it is refused (a miss).
  const c2 = createCache.secure({
    ttl: 60,
    backend,
    ...bare,
    l1: false,
    encryption: { masterKey, singleTenant: false },
  });
  assert.deepEqual(await withTenant("acme", () => c2.get("k2")), { secret: 2 });
  const { recording } = await import("../_recording_backend.ts");
  const rec = recording(new MemoryBackend());
  const c3 = createCache.secure({
    ttl: 60,
    backend: rec.backend,
    ...bare,
    l1: false,
    encryption: { masterKey, singleTenant: false },
  });
  await withTenant("acme", () => c3.set("k1", { secret: 1 }));
  await withTenant("acme", () => c3.set("k2", { secret: 2 }));
  const [k1, k2] = rec.keys;
  assert.ok(k1.includes(":obj:key:k1") && k2.includes(":obj:key:k2"), `${k1} ${k2}`);
  assert.ok(!k1.includes("acme"), "the tenant id is hashed in the key");
  await rec.inner.set(k2, (await rec.inner.get(k1))!, 60);
  assert.equal(await withTenant("acme", () => c3.get("k2")), undefined);
  await backend.close();
});

test("createCache: options checked at creation and per call", async () => {
  assert.throws(() => createCache({ namespace: "a:key:b", backend: null }), /:key:/);
  assert.throws(() => cache(() => 1, { backend: null, hardTimeout: -1 }), /hardTimeout/);
  assert.throws(
    () => cache(() => 1, { backend: null, staleTtl: 60, softTimeout: 2, hardTimeout: 1 }),
    /softTimeout.*below hardTimeout/,
  );
  assert.throws(
    () => createCache({ backend: null, tags: () => [] } as unknown as CreateCacheOptions),
    /tags per call/,
  );
  const c = createCache({ backend: null });
  await assert.rejects(c.getOrSet("k", () => 1, { ttl: -1 }), /ttl/);
  await assert.rejects(c.set("k", 1, { tags: "x" as unknown as string[] }), /tags/);
  await assert.rejects(c.get(1 as unknown as string), /string keys/);
  // Types: getOrSet infers, get is explicit.
  const n: number = await c.getOrSet("n", () => 1);
  const s: string | undefined = await c.get<string>("s");
  const p: { a: number } = await c.getOrSet("p", async () => ({ a: 1 }));
  // @ts-expect-error get<T> may miss: T | undefined
  const _t: string = await c.get<string>("s");
  // @ts-expect-error the factory's type is kept
  const _u: string = await c.getOrSet("n2", () => 1);
  assert.deepEqual(p, { a: 1 });
  assert.equal(n, 1);
  assert.equal(s, undefined);
});

test("cache(fn): hardTimeout option, and withSignal", async () => {
  const g = gate();
  let calls = 0;
  const f = cache(async (x: number) => {
    calls++;
    await g.promise;
    return x * 2;
  }, { name: "obj.hard", hardTimeout: 0.05, backend: new MemoryBackend(), ...bare });
  await assert.rejects(f(1), FactoryTimeoutError);
  g.open();
  assert.ok(await until(async () => f.cacheInfo().size === 1));
  assert.equal(await f(1), 2);
  assert.equal(calls, 1);

  const g2 = gate();
  const h = cache(async (x: number) => {
    await g2.promise;
    return x + 1;
  }, { name: "obj.signal", backend: new MemoryBackend(), ...bare });
  const ac = new AbortController();
  const p1 = h.withSignal(ac.signal, 1);
  const p2 = h(1);
  ac.abort();
  await assert.rejects(p1, (e: unknown) => (e as Error).name === "AbortError");
  g2.open();
  assert.equal(await p2, 2);
  const v: number = await h.withSignal(new AbortController().signal, 1);
  assert.equal(v, 2);
  await assert.rejects(h.withSignal(AbortSignal.abort(), 5));
});

test("createCache: clearNamespace reaches key-based caches of the namespace, every tenant", async () => {
  const { clearNamespace, withTenant } = await import("../../mod.ts");
  const backend = new MemoryBackend();
  const a = createCache({ namespace: "objns", backend, ...bare });
  const other = createCache({ namespace: "objns2", backend, ...bare });
  await a.set("k", 1);
  await withTenant("t1", () => a.set("k", 2));
  await other.set("k", 3);
  await clearNamespace("objns", { backend });
  assert.equal(await a.get("k", { skipL1Read: true }), undefined);
  assert.equal(await withTenant("t1", () => a.get("k")), undefined);
  assert.equal(await other.get("k", { skipL1Read: true }), 3);
  await backend.close();
});

test("createCache: the factory's context is cacheContext(): stale from L2, cacheIf and ttl of (result, key)", async () => {
  const { cacheContext } = await import("../../mod.ts");
  const backend = new MemoryBackend();
  const seen: string[] = [];
  const c = createCache({
    backend,
    ...bare,
    ttl: (_v, key) => (key.startsWith("short:") ? 5 : 60),
    cacheIf: (v) => v !== null,
    staleTtl: 300,
  });
  const other = createCache({ backend, ...bare, staleTtl: 300 });
  await c.set("k", "old");
  await c.expire("k");
  const v = await other.getOrSet("k", (ctx) => {
    assert.equal(cacheContext(), ctx);
    seen.push(`${ctx.hasStale}:${ctx.stale}`);
    return "new";
  });
  assert.equal(v, "new");
  assert.deepEqual(seen, ["true:old"], "the stale value read from L2");
  let calls = 0;
  await c.getOrSet("none", () => (calls++, null));
  await c.getOrSet("none", () => (calls++, null));
  assert.equal(calls, 2, "cacheIf false: not cached");
  await backend.close();
});

test("cache(fn).withSignal: when every caller aborted, cacheContext().signal aborts", async () => {
  const { cacheContext } = await import("../../mod.ts");
  let seen: AbortSignal | null = null;
  const f = cache((x: number) =>
    new Promise<number>((resolve, reject) => {
      const signal = cacheContext().signal;
      seen = signal;
      const t = setTimeout(() => resolve(x), 60_000);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        reject(signal.reason);
      });
    }), { name: "obj.signal.all", backend: new MemoryBackend(), ...bare });
  const c1 = new AbortController();
  const c2 = new AbortController();
  const p1 = f.withSignal(c1.signal, 1);
  const p2 = f.withSignal(c2.signal, 1);
  await until(() => seen !== null);
  c1.abort();
  await assert.rejects(p1);
  assert.equal(seen!.aborted, false, "one caller left");
  c2.abort();
  await assert.rejects(p2);
  assert.equal(seen!.aborted, true);
});

test("createCache: expire on an L1-only cache keeps the L1 entry as the stale fallback", async () => {
  const c = createCache({ backend: null, ttl: 60, staleTtl: 300, failSafeThrottle: 0 });
  await c.set("k", "old");
  await c.expire("k");
  assert.equal(await c.get("k"), undefined);
  assert.equal(await c.has("k"), false);
  assert.equal(
    await c.getOrSet("k", () => {
      throw new Error("down");
    }),
    "old",
  );
  assert.equal(await c.getOrSet("k", () => "new"), "new");
  assert.equal(await c.get("k"), "new");
});

test("createCache: set with skipL1Write drops this instance's L1 copy of the value it replaces", async () => {
  const backend = new MemoryBackend();
  const a = createCache({ ttl: 60, backend, ...bare });
  const b = createCache({ ttl: 60, backend, ...bare });
  await a.set("k", "v1");
  assert.equal(await a.get("k"), "v1"); // in a's L1
  await a.set("k", "v2", { skipL1Write: true });
  assert.equal(await b.get("k"), "v2", "L2 holds v2");
  assert.equal(await a.get("k"), "v2", "not the overwritten v1 from a's L1");
  assert.equal(await a.getOrSet("k", () => "computed"), "v2");
  await backend.close();
});

test("createCache: a reader's per-call ttl does not keep an entry read from L2 in its L1 past the entry's life", async () => {
  const clock = shiftDateNow(true);
  try {
    const backend = new MemoryBackend();
    const writer = createCache({ ttl: 2, backend, ...bare });
    const reader = createCache({ ttl: 2, backend, ...bare });
    await writer.set("k", "v1"); // 2 s in L2, written without its own expiry (no fail-safe)
    // The reader finds it in L2 (it writes nothing) with its usual per-call ttl for writes.
    assert.equal(await reader.getOrSet("k", () => "computed", { ttl: 60 }), "v1");
    clock.advance(3_000); // gone from L2 and from the writer's L1
    assert.equal(await writer.get("k"), undefined);
    assert.equal(await reader.getOrSet("k", () => "v2", { ttl: 60 }), "v2", "not the expired v1");
    // Its own write keeps the per-call ttl.
    clock.advance(30_000);
    assert.equal(await reader.getOrSet("k", () => "v3", { ttl: 60 }), "v2");
    await backend.close();
  } finally {
    clock.restore();
  }
});

test("createCache: a per-call staleTtl is the stale window of the L1 entry too", async () => {
  // Before, L1 kept every expired entry for the cache's staleTtl: the writing instance answered a
  // value long past the window it was written with, where L2 (another instance) had dropped it.
  // The clock is shifted (no sleep); the caches and the backend are made after, so they read it.
  const clock = shiftDateNow();
  const down = () => {
    throw new Error("source down");
  };
  try {
    const only = createCache({ backend: null, ttl: 60, staleTtl: 600, failSafeThrottle: 0 });
    const backend = new MemoryBackend();
    const o = { backend, ...bare, ttl: 60, staleTtl: 600, failSafeThrottle: 0 };
    const a = createCache(o);
    const b = createCache(o); // another instance, same L2
    for (const c of [only, a]) {
      await c.set("short", "s", { staleTtl: 30 });
      await c.getOrSet("computed", () => "g", { staleTtl: 30 });
      await c.set("long", "l", { staleTtl: 3600 });
      await c.set("default", "d");
    }
    clock.advance(150_000); // 90 s past the expiry: past a 30 s window, within 600 s
    for (const c of [only, a, b]) {
      await assert.rejects(c.getOrSet("short", down), /source down/);
      await assert.rejects(c.getOrSet("computed", down), /source down/);
      assert.equal(await c.getOrSet("default", down), "d");
    }
    clock.advance(1_200_000); // 1,290 s past the expiry: past 600 s, within 3,600 s
    for (const c of [only, a]) {
      assert.equal(await c.getOrSet("long", down), "l");
      await assert.rejects(c.getOrSet("default", down), /source down/);
    }
    await backend.close();
  } finally {
    clock.restore();
  }
});

test("createCache getOrSet: bad per-call options are a CacheConfigError on an L1 hit too, and a signal-like object is refused before it is read", async () => {
  const backend = new MemoryBackend();
  const c = createCache({ ttl: 60, backend, ...bare });
  const bad: [string, unknown][] = [
    ["ttl -1", { ttl: -1 }],
    ["tags string", { tags: "x" }],
    ["signal {}", { signal: {} }],
    ["soft >= hard", { softTimeout: 2, hardTimeout: 1 }],
    ["aborted signal-like", { signal: { aborted: true, reason: 42 } }],
  ];
  const call = (key: string, opts: unknown) =>
    c.getOrSet(key, () => 1, opts as Parameters<typeof c.getOrSet>[2]);
  for (const [what, opts] of bad) {
    await assert.rejects(call("cold-" + what, opts), CacheConfigError, `miss, ${what}`);
  }
  await c.set("warm", 1);
  for (const [what, opts] of bad) {
    await assert.rejects(call("warm", opts), CacheConfigError, `hit, ${what}`);
  }
  assert.equal(await call("warm", { ttl: 5 }), 1, "good options still answer the hit");
  await backend.close();
});
