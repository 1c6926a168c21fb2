// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The cache engine's behaviour on real backends (MemoryBackend; no mocks of our own layers).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { assertTtlLeft, shiftDateNow, type ShiftedClock } from "../_timing.ts";
import {
  type Backend,
  BackendError,
  cache,
  CacheConfigError,
  cached,
  CacheKeyError,
  clearNamespace,
  invalidateTags,
  type InvalidationEvent,
  MemoryBackend,
  withTenant,
} from "../../mod.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** No reliability layers (they keep timers); behaviour under test is the engine's. */
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test("single flight: 1,000 concurrent callers of one cold key run the function once", async () => {
  let runs = 0;
  const f = cache(async (id: number) => {
    runs++;
    await sleep(20);
    return { id, at: runs };
  }, { name: "core.sf", ttl: 60, backend: new MemoryBackend(), ...bare });
  const results = await Promise.all(Array.from({ length: 1000 }, () => f(7)));
  assert.equal(runs, 1);
  assert.ok(results.every((r) => r.id === 7 && r.at === 1));
  // A different key is a different flight.
  await Promise.all([f(8), f(8)]);
  assert.equal(runs, 2);
});

test("a rejected call is not cached and its waiters all see the rejection", async () => {
  let runs = 0;
  const f = cache(async (x: number) => {
    runs++;
    await sleep(5);
    if (runs === 1) throw new Error("boom");
    return x * 10;
  }, { name: "core.reject", ttl: 60, backend: new MemoryBackend(), ...bare });
  const settled = await Promise.allSettled([f(1), f(1), f(1)]);
  assert.ok(settled.every((s) => s.status === "rejected"));
  assert.equal(runs, 1);
  assert.equal(await f(1), 10);
  assert.equal(runs, 2);
  assert.equal(await f(1), 10);
  assert.equal(runs, 2);
});

test("a sync function stays synchronous with backend: null; with an L2 it returns a Promise", async () => {
  let runs = 0;
  const local = cache((a: number, b: number) => {
    runs++;
    return a + b;
  }, { name: "core.sync", backend: null });
  const r1 = local(2, 3);
  const r2 = local(2, 3);
  assert.equal(r1, 5);
  assert.equal(r2, 5);
  assert.equal(runs, 1);
  const remote = cache((a: number) => a * 2, {
    name: "core.sync.l2",
    backend: new MemoryBackend(),
    ...bare,
  });
  const p = remote(4);
  assert.ok(p instanceof Promise);
  assert.equal(await p, 8);
});

test("undefined and null results are cached as themselves (L1 and L2)", async () => {
  const backend = new MemoryBackend();
  let runs = 0;
  const mk = () =>
    cache(async (k: string): Promise<string | null | undefined> => {
      runs++;
      return k === "u" ? undefined : k === "n" ? null : k;
    }, { name: "core.undef", ttl: 60, backend, ...bare });
  const f = mk();
  assert.equal(await f("u"), undefined);
  assert.equal(await f("n"), null);
  assert.equal(await f("u"), undefined);
  assert.equal(runs, 2);
  // A fresh wrapper (empty L1) reads them back from L2.
  const g = mk();
  assert.equal(await g("u"), undefined);
  assert.equal(await g("n"), null);
  assert.equal(runs, 2);
  assert.equal(g.cacheInfo().l2Hits, 2);
});

test("values are immutable through L1: mutating a returned object does not change the cache", async () => {
  const f = cache(async (id: number) => ({ id, tags: ["a"] }), {
    name: "core.immutable",
    ttl: 60,
    backend: new MemoryBackend(),
    ...bare,
  });
  const first = await f(1);
  first.tags.push("mutated");
  const second = await f(1);
  second.id = 99;
  const third = await f(1);
  assert.deepEqual(third, { id: 1, tags: ["a"] });
  assert.equal(f.cacheInfo().l1Hits, 2);
  // L1-only too (a copy per hit unless copy: "none").
  const g = cache((id: number) => ({ id }), { name: "core.immutable.l1", backend: null });
  g(1).id = 5;
  assert.deepEqual(g(1), { id: 1 });
  // storeReferences (deprecated alias of copy: "none"): the same object comes back.
  const h = cache((id: number) => ({ id }), {
    name: "core.refs",
    backend: null,
    l1: { storeReferences: true },
  });
  assert.equal(h(1), h(1));
});

test("TTL: L1-only entries expire on read; L2 entries expire too", async () => {
  // Time is the test's shifted Date.now: a stalled host cannot expire an entry between two reads.
  const clock = shiftDateNow();
  try {
    let runs = 0;
    const f = cache((x: number) => {
      runs++;
      return x;
    }, { name: "core.ttl.l1", ttl: 60, backend: null });
    f(1);
    f(1);
    assert.equal(runs, 1);
    clock.advance(60_001);
    f(1);
    assert.equal(runs, 2);

    const backend = new MemoryBackend();
    let n = 0;
    const g = cache(async (x: number) => ({ x, n: ++n }), {
      name: "core.ttl.l2",
      ttl: 60,
      backend,
      l1: false,
      ...bare,
    });
    assert.equal((await g(1)).n, 1);
    assert.equal((await g(1)).n, 1);
    assert.equal(g.cacheInfo().l2Hits, 1);
    clock.advance(60_001);
    assert.equal((await g(1)).n, 2);
  } finally {
    clock.restore();
  }
});

test("L1 is LRU by bytes and by entries", () => {
  let runs = 0;
  const big = (i: number) => ({ i, pad: "x".repeat(1000) });
  const f = cache((i: number) => {
    runs++;
    return big(i);
  }, { name: "core.lru.bytes", backend: null, l1: { maxBytes: 4000 } });
  f(1);
  f(2);
  f(3); // ~1.2 KB each (value estimate + entry overhead): three fit
  assert.equal(f.cacheInfo().size, 3);
  f(1); // 1 is now most recently used
  f(4); // evicts the least recently used: 2
  assert.ok(f.cacheInfo().bytes <= 4000);
  const before = runs;
  f(1);
  f(3);
  f(4);
  assert.equal(runs, before, "1, 3, 4 still cached");
  f(2);
  assert.equal(runs, before + 1, "2 was evicted");

  let m = 0;
  const g = cache((i: number) => ++m + i * 0, {
    name: "core.lru.entries",
    backend: null,
    l1: { maxEntries: 2 },
  });
  g(1);
  g(2);
  g(1);
  g(3); // evicts 2
  assert.equal(g.cacheInfo().size, 2);
  const k = m;
  g(1);
  g(3);
  assert.equal(m, k);
  g(2);
  assert.equal(m, k + 1);
});

test("invalidate(args) and cacheClear() remove entries from L1 and L2", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.inval",
    ttl: 60,
    backend,
    ...bare,
  });
  await f(1);
  await f(2);
  assert.equal(backend.size, 2);
  await f.invalidate(1);
  assert.equal(backend.size, 1);
  assert.equal((await f(1)).n, 3);
  assert.equal((await f(2)).n, 2);
  await f.cacheClear();
  assert.equal(backend.size, 0);
  assert.equal(f.cacheInfo().size, 0);
  assert.equal((await f(2)).n, 4);
});

test(
  "f(1) and f(1n) share one entry and one L1 copy: invalidating either reaches both calls",
  async () => {
    const backend = new MemoryBackend();
    let n = 0;
    const f = cache(async (id: number | bigint) => ({ id: Number(id), n: ++n }), {
      name: "core.inval.bigint",
      ttl: 60,
      backend,
      ...bare,
    });
    assert.equal((await f(1)).n, 1);
    assert.equal((await f(1n)).n, 1, "one protocol key: the entry f(1) stored");
    assert.equal(backend.size, 1);
    await f.invalidate(1n);
    assert.equal((await f(1)).n, 2, "f(1) is not answered from a stale L1 copy");
    assert.equal((await f(1n)).n, 2);
    await f.invalidate(1);
    assert.equal((await f(1n)).n, 3);
    assert.equal((await f(1)).n, 3);
    // Nested: ["a", 2n] is ["a", 2].
    const g = cache(async (k: string, _id: number | bigint) => ({ k, n: ++n }), {
      name: "core.inval.bigint2",
      ttl: 60,
      backend,
      ...bare,
    });
    const first = (await g("a", 2)).n;
    assert.equal((await g("a", 2n)).n, first);
    await g.invalidate("a", 2n);
    assert.notEqual((await g("a", 2)).n, first);
  },
);

/** A MemoryBackend whose deletions (by key, prefix and tag) wait until `open()` is called. */
function gatedDeletes() {
  const inner = new MemoryBackend();
  let gate: Promise<void> = Promise.resolve();
  let open = () => {};
  const held = <T>(run: () => Promise<T>) => gate.then(run);
  const caps = inner.capabilities;
  const backend: Backend = {
    type: inner.type,
    capabilities: {
      ...caps,
      prefix: caps.prefix &&
        { deleteByPrefix: (p, o) => held(() => caps.prefix!.deleteByPrefix(p, o)) },
      tags: caps.tags && {
        addTags: (k, t, ttl) => caps.tags!.addTags(k, t, ttl),
        invalidateTags: (t) => held(() => caps.tags!.invalidateTags(t)),
      },
    },
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => inner.set(k, v, t, o),
    delete: (k, o) => held(() => inner.delete(k, o)),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return {
    backend,
    hold: () => {
      gate = new Promise<void>((r) => open = r);
    },
    open: () => open(),
  };
}

test("invalidations: a call made while L2 is being cleared does not leave the old value in L1", async () => {
  const cases: [string, (f: ReturnType<typeof make>) => Promise<void>][] = [
    ["invalidate", (f) => f.invalidate(1)],
    ["cacheClear", (f) => f.cacheClear()],
    ["clearNamespace", (f) => f.clearNamespace()],
    ["invalidateTags", () => invalidateTags("race:1")],
  ];
  function make(name: string, backend: Backend) {
    let n = 0;
    return cache(async (id: number) => ({ id, n: ++n }), {
      name: `core.race.${name}`,
      namespace: `race-${name.toLowerCase()}`,
      ttl: 60,
      backend,
      tags: (id) => [`race:${id}`],
      stampede: false,
      ...bare,
    });
  }
  for (const [name, invalidate] of cases) {
    const g = gatedDeletes();
    const f = make(name, g.backend);
    assert.equal((await f(1)).n, 1);
    g.hold();
    const done = invalidate(f);
    await sleep(5);
    // L2 still holds the old entry: this call may answer with it (the invalidation is not done).
    assert.equal((await f(1)).n, 1, name);
    g.open();
    await done;
    assert.equal((await f(1)).n, 2, `${name}: recomputed after the invalidation resolved`);
  }
});

test("tags: invalidateTags reaches L1 and L2 (module-level and on the wrapper)", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const user = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.tags.user",
    ttl: 60,
    backend,
    tags: (id) => [`user:${id}`, "users"],
    ...bare,
  });
  const local = cache((id: number) => ({ id, n: ++n }), {
    name: "core.tags.local",
    backend: null,
    tags: (id) => [`user:${id}`],
  });
  await user(1);
  await user(2);
  local(1);
  const n0 = n;
  await invalidateTags("user:1");
  assert.equal(backend.size, 1);
  await user(2);
  assert.equal(n, n0);
  await user(1);
  local(1);
  assert.equal(n, n0 + 2);
  await user.invalidateTags("users");
  assert.equal(backend.size, 0);
  await user(2);
  assert.equal(n, n0 + 3);
});

test("clearNamespace clears every function of the namespace, and only those", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const a = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.ns.a",
    namespace: "nsA",
    ttl: 60,
    backend,
    ...bare,
  });
  const b = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.ns.b",
    namespace: "nsA",
    ttl: 60,
    backend,
    ...bare,
  });
  const c = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.ns.c",
    namespace: "nsB",
    ttl: 60,
    backend,
    ...bare,
  });
  await a(1);
  await b(1);
  await c(1);
  assert.equal(backend.size, 3);
  await clearNamespace("nsA");
  assert.equal(backend.size, 1);
  const n0 = n;
  await c(1);
  assert.equal(n, n0);
  await a(1);
  await b(1);
  assert.equal(n, n0 + 2);
  await c.clearNamespace();
  assert.equal(c.cacheInfo().size, 0);
  await assert.rejects(clearNamespace(""), CacheConfigError);
});

test("config errors are thrown when wrapping, never on the first call", () => {
  let called = false;
  const fn = (x: number) => {
    called = true;
    return x;
  };
  assert.throws(() => cache(fn, { name: "core.err.ttl", ttl: -1 }), CacheConfigError);
  assert.throws(
    () => cache(fn, { name: "core.err.thr", ttlRefreshThreshold: 2 }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "ttlRefreshThreshold",
  );
  assert.throws(
    () => cache(fn, { name: "core.err.l1", l1: { maxBytes: 0 } }),
    (e: unknown) => e instanceof CacheConfigError && e.option.startsWith("l1"),
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => cache(fn, { name: "core.err.typo", tll: 5 } as any), CacheConfigError);
  assert.throws(() => cache.secure(fn, { name: "core.err.secure" }), CacheConfigError);
  assert.throws(
    () => cache.secure(fn, { name: "core.err.secure.ic", integrityChecking: false }),
    CacheConfigError,
  );
  // deno-lint-ignore no-explicit-any
  assert.throws(() => cache(42 as any), CacheConfigError);
  assert.throws(() => {
    class Bad {
      // deno-lint-ignore no-explicit-any
      @cached({ ttl: -5 } as any)
      async m(): Promise<number> {
        return 1;
      }
    }
    return Bad;
  }, CacheConfigError);
  assert.equal(called, false);
});

test("identity: anonymous functions need a name or namespace; collisions are refused", () => {
  assert.throws(
    () => cache((x: number) => x, { backend: null }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "name",
  );
  // With a namespace an anonymous function is accepted.
  const ok = cache((x: number) => x + 1, { namespace: "core-anon", backend: null });
  assert.match(ok.identity, /<anonymous>$/);
  // The default identity is the module path + function name.
  function namedHelper(x: number) {
    return x;
  }
  const d = cache(namedHelper, { backend: null });
  assert.equal(d.identity, "tests.engine.engine_core_test.namedHelper");
  // Two different functions under one identity: refused.
  cache((x: number) => x * 3, { name: "core.collide", backend: null });
  assert.throws(
    () => cache((x: number) => x * 4, { name: "core.collide", backend: null }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "name",
  );
  // Same identity in another namespace is another key space: accepted.
  cache((x: number) => x * 4, { name: "core.collide", namespace: "other", backend: null });
  // The same function again (a re-created wrapper) is accepted.
  const same = (x: number) => x * 5;
  cache(same, { name: "core.same", backend: null });
  cache(same, { name: "core.same", backend: null });
});

test("decorator: keys on arguments and the instance key; L1-only sync methods stay sync", async () => {
  const { backend, keys } = recording();
  class Repo {
    runs = 0;
    constructor(readonly region: string) {}
    @cached({ ttl: 60, backend, ...bare })
    async load(id: number): Promise<{ id: number }> {
      this.runs++;
      return { id };
    }
    @cached({ backend: null, instanceKey: (self: Repo) => self.region })
    price(sku: string): number {
      this.runs++;
      return sku.length * (this.region === "eu" ? 2 : 1);
    }
  }
  const eu = new Repo("eu");
  const us = new Repo("us");
  assert.deepEqual(await eu.load(1), { id: 1 });
  assert.deepEqual(await us.load(1), { id: 1 }); // no instance key: shared entry
  assert.equal(eu.runs + us.runs, 1);
  assert.equal(eu.price("abc"), 6);
  assert.equal(us.price("abc"), 3);
  assert.equal(eu.price("abc"), 6);
  assert.equal(eu.runs + us.runs, 3);
  // The key uses the class-qualified identity.
  assert.deepEqual([...new Set(keys)].map((k) => k.split(":args:")[0]), [
    "t:default:func:tests.engine.engine_core_test.Repo.load",
  ]);
});

test("corrupt or foreign L2 entries are misses, removed and overwritten", async () => {
  const { backend, keys } = recording();
  let n = 0;
  const mk = () =>
    cache(async (id: number) => ({ id, n: ++n }), {
      name: "core.corrupt",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      ttl: 60,
      backend,
      ...bare,
    });
  const f = mk();
  await f(1);
  const [key] = keys;
  const good = (await backend.get(key))!;
  const doc = JSON.parse(new TextDecoder().decode(good));
  const variants: Uint8Array[] = [
    new TextEncoder().encode("not json"),
    new Uint8Array([0x81, 0xa1, 0x61, 0x01]), // msgpack, not the JSON document
    enc({ ...doc, data: "!!not base64!!" }),
    enc({ ...doc, serializer: "pickle" }),
    enc({ ...doc, version: "9.9" }),
    enc({
      ...doc,
      metadata: { ...doc.metadata, encrypted: true, tenant_id: "x", key_fingerprint: "00" },
    }),
    enc({ ...doc, data: flipLastByte(doc.data) }), // envelope checksum fails
    good.subarray(0, good.length - 3), // truncated
  ];
  for (const bytes of variants) {
    await backend.set(key, bytes, 60);
    const g = mk(); // fresh L1
    const before = n;
    const v = await g(1);
    assert.equal(n, before + 1, "recomputed");
    assert.deepEqual(v, { id: 1, n: before + 1 });
    const back = JSON.parse(new TextDecoder().decode((await backend.get(key))!));
    assert.equal(back.version, "2.0", "overwritten with a good entry");
  }
});

test("a failing backend degrades to the function: no user-visible error", async () => {
  const backend = new MemoryBackend();
  await backend.close(); // every operation now rejects with a BackendError
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.degrade",
    ttl: 60,
    backend,
    ...bare,
  });
  assert.deepEqual(await f(1), { id: 1, n: 1 });
  assert.deepEqual(await f(1), { id: 1, n: 1 }, "answered from L1");
  assert.ok(f.cacheInfo().l2Errors >= 2);
  assert.notEqual(f.getHealthStatus().status, "healthy");
  const h = await f.checkHealth();
  assert.equal(h.status, "unhealthy");
});

test("safeMode: an uncacheable argument or value answers uncached instead of throwing", async () => {
  const strict = cache(async (s: Set<number>) => s.size, {
    name: "core.safe.off",
    backend: new MemoryBackend(),
    ...bare,
  });
  await assert.rejects(strict(new Set([1])), CacheKeyError);
  let n = 0;
  const safe = cache(async (s: Set<number>) => s.size + ++n * 0, {
    name: "core.safe.on",
    safeMode: true,
    backend: new MemoryBackend(),
    ...bare,
  });
  assert.equal(await safe(new Set([1, 2])), 2);
  assert.equal(await safe(new Set([1, 2])), 2);
  assert.equal(n, 2, "not cached");
});

test("cyclic and deep arguments: CacheKeyError naming the path; safeMode answers uncached (issue 11.4)", async () => {
  const cyclic: Record<string, unknown> = { id: 1 };
  cyclic.self = cyclic;
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  const size = (v: unknown) => Object.keys(v as object).length;
  for (
    const [arg, path, reason] of [
      [cyclic, "args[0].self", /it is args\[0\] again/],
      [deep, "args[0]", /deeper than 256 levels/],
    ] as const
  ) {
    const isKeyError = (e: unknown) => {
      assert.ok(e instanceof CacheKeyError, `expected CacheKeyError, got ${e}`);
      assert.ok(e.path.startsWith(path), e.path);
      assert.match(e.message, reason);
      return true;
    };
    const syncStrict = cache((v: unknown) => size(v), { name: "core.cycle.sync", backend: null });
    assert.throws(() => syncStrict(arg), isKeyError);
    const asyncStrict = cache(async (v: unknown) => size(v), {
      name: "core.cycle.async",
      backend: new MemoryBackend(),
      ...bare,
    });
    await assert.rejects(asyncStrict(arg), isKeyError);

    let runs = 0;
    const syncSafe = cache((v: unknown) => (runs++, size(v)), {
      name: "core.cycle.sync.safe",
      backend: null,
      safeMode: true,
    });
    assert.equal(syncSafe(arg), size(arg));
    assert.equal(syncSafe(arg), size(arg));
    assert.equal(runs, 2, "ran each time: nothing cached");
    const backend = new MemoryBackend();
    const asyncSafe = cache(async (v: unknown) => (runs++, size(v)), {
      name: "core.cycle.async.safe",
      backend,
      safeMode: true,
      ...bare,
    });
    assert.equal(await asyncSafe(arg), size(arg));
    assert.equal(await asyncSafe(arg), size(arg));
    assert.equal(runs, 4);
    assert.equal(backend.size, 0);
  }
});

test("undefined arguments: trailing ones and undefined properties share the L1 and L2 entry (issue 13.4)", async () => {
  let runs = 0;
  const search = cache(async (term: string, page?: number) => ({ term, page, run: ++runs }), {
    name: "core.undef.search",
    backend: new MemoryBackend(),
    ...bare,
  });
  assert.equal((await search("a")).run, 1);
  assert.equal((await search("a", undefined)).run, 1, "L1: the same call");
  assert.equal((await search("a", 2)).run, 2);
  // L2 only: the entry is found under one backend key.
  const backend = new MemoryBackend();
  const list = cache(
    async (q: { limit: number; cursor?: string }, page?: number) => ({ q, page, run: ++runs }),
    { name: "core.undef.list", backend, l1: { enabled: false }, ...bare },
  );
  const first = await list({ limit: 10 });
  assert.equal((await list({ limit: 10, cursor: undefined })).run, first.run, "L2: same entry");
  assert.equal((await list({ cursor: undefined, limit: 10 }, undefined)).run, first.run);
  assert.equal(backend.size, 1);
  assert.notEqual((await list({ limit: 10, cursor: "c" })).run, first.run);
  assert.equal(backend.size, 2);
  // A non-trailing undefined argument stays refused, with what to do.
  await assert.rejects(list(undefined as never, 1), (e: unknown) => {
    assert.ok(e instanceof CacheKeyError, String(e));
    assert.equal(e.path, "args[0]");
    assert.match(e.message, /pass null/);
    return true;
  });
});

test("stale-while-revalidate: one background refresh; a refresh landing after invalidate is dropped", async () => {
  // Time is the test's shifted Date.now: a stalled host cannot expire the entry while it is read
  // (a miss would wait for a gated computation).
  const clock = shiftDateNow();
  try {
    await swrScenario(clock);
  } finally {
    clock.restore();
  }
});

async function swrScenario(clock: ShiftedClock): Promise<void> {
  let n = 0;
  const gates: Array<() => void> = [];
  const f = cache(async (id: number) => {
    const mine = ++n;
    if (mine >= 2) await new Promise<void>((r) => gates.push(r));
    return { id, n: mine };
  }, {
    name: "core.swr",
    ttl: 60,
    backend: null,
    l1: { swrEnabled: true, swrThreshold: 0.25, swrJitter: 0 },
  });
  assert.equal((await f(1)).n, 1);
  clock.advance(20_000); // past 25 % of 60 s
  const a = await f(1);
  const b = await f(1);
  assert.equal(a.n, 1, "stale value served at once");
  assert.equal(b.n, 1);
  await sleep(5);
  assert.equal(n, 2, "exactly one refresh started");
  await f.invalidate(1); // the running refresh is now outdated
  gates.shift()!();
  await sleep(5);
  const c = f(1); // a miss: the refresh's late result was not stored
  await sleep(5);
  assert.equal(n, 3);
  gates.shift()!();
  assert.equal((await c).n, 3);
}

test("cross-process stampede: two instances on one backend compute once (backend lock)", async () => {
  const backend = new MemoryBackend();
  let runs = 0;
  const work = async (id: number) => {
    runs++;
    await sleep(50);
    return { id };
  };
  const opts = { name: "core.stampede", ttl: 60, backend, ...bare };
  const one = cache(work, opts);
  const two = cache(work, opts); // same function, separate L1 and single-flight map
  const res = await Promise.all([one(5), two(5), one(5), two(5)]);
  assert.equal(runs, 1);
  assert.ok(res.every((r) => r.id === 5));
  assert.equal(one.cacheInfo().misses + two.cacheInfo().misses, 1);
  assert.equal(two.cacheInfo().l2Hits + one.cacheInfo().l2Hits, 1);
});

test("tenants: withTenant separates entries and backend keys (percent-encoded)", async () => {
  const { backend, keys: written } = recording();
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.tenant",
    ttl: 60,
    backend,
    ...bare,
  });
  const a = await withTenant("acme corp/1", () => f(1));
  const b = await withTenant("globex", () => f(1));
  const a2 = await withTenant("acme corp/1", () => f(1));
  assert.equal(a.n, 1);
  assert.equal(b.n, 2);
  assert.equal(a2.n, 1);
  const keys = [...new Set(written)];
  assert.ok(keys.some((k) => k.startsWith("t:acme%20corp%2F1:func:core.tenant:args:")));
  assert.ok(keys.some((k) => k.startsWith("t:globex:func:core.tenant:args:")));
});

test("refreshTtlOnGet extends the L2 TTL when less than the threshold remains", async () => {
  // Time is the test's shifted Date.now (the backend's TTL clock too): no stall on a loaded host
  // expires the entry or eats into the refreshed TTL before it is read.
  const clock = shiftDateNow();
  try {
    const { backend, inner, keys } = recording();
    const f = cache(async (id: number) => ({ id }), {
      name: "core.refresh-ttl",
      ttl: 60,
      backend,
      l1: false,
      refreshTtlOnGet: true,
      ttlRefreshThreshold: 0.9,
      ...bare,
    });
    await f(1);
    const [key] = keys;
    clock.advance(10_000); // 50 s left < 0.9 × 60 s
    const t1 = Date.now();
    await f(1);
    assertTtlLeft(await inner.capabilities.ttl.ttl(key), 60, t1, "ttl refreshed");
  } finally {
    clock.restore();
  }
});

test("backend contract: a third-party backend with no capabilities works (no instanceof)", async () => {
  const store = new Map<string, Uint8Array>();
  const tiny: Backend = {
    type: "tiny",
    capabilities: {},
    get: (k) => Promise.resolve(store.get(k) ?? null),
    set: (k, v) => {
      store.set(k, v);
      return Promise.resolve();
    },
    delete: (k) => Promise.resolve(store.delete(k)),
    exists: (k) => Promise.resolve(store.has(k)),
    healthCheck: () => Promise.resolve({ healthy: true, latencyMs: 0, backendType: "tiny" }),
  };
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.tiny",
    namespace: "tinyns",
    ttl: 60,
    backend: tiny,
    tags: (id) => [`t${id}`],
    ...bare,
  });
  await f(1);
  await f(2);
  assert.equal(store.size, 2);
  await invalidateTags("t1"); // tracked keys (no tag capability)
  assert.equal(store.size, 1);
  await clearNamespace("tinyns"); // tracked keys (no prefix capability)
  assert.equal(store.size, 0);
  assert.equal((await f.checkHealth()).status, "healthy");
});

function enc(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}

function flipLastByte(b64: string): string {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  bytes[bytes.length - 1] ^= 0xff;
  return btoa(String.fromCharCode(...bytes));
}

test("circuit breaker: a dead backend opens the circuit; calls keep answering", async () => {
  // A store whose server is gone: every operation fails with a transient error.
  const down = (operation: string) =>
    Promise.reject(
      new BackendError("connection refused", { kind: "transient", backend: "down", operation }),
    );
  const backend: Backend = {
    type: "down",
    capabilities: {},
    get: () => down("get"),
    set: () => down("set"),
    delete: () => down("delete"),
    exists: () => down("exists"),
    healthCheck: () => Promise.resolve({ healthy: false, latencyMs: 0, backendType: "down" }),
  };
  let n = 0;
  const f = cache.production(async (id: number) => ({ id, n: ++n }), {
    name: "core.circuit",
    ttl: 60,
    backend,
    circuitBreaker: { failureThreshold: 3 },
    l1: false,
  });
  for (let i = 0; i < 6; i++) assert.equal((await f(i)).id, i);
  assert.equal(n, 6);
  const h = f.getHealthStatus();
  assert.equal(h.circuit, "open");
  assert.equal(h.status, "unhealthy");
}, { sanitize: false });

test("L1 argument keys: distinct arguments never share an entry; equal ones do", () => {
  let runs = 0;
  const echo = cache((...args: unknown[]) => {
    runs++;
    return JSON.stringify(args, (_k, v) => (typeof v === "bigint" ? `${v}n` : v)) + typeof args[0];
  }, { name: "core.argkeys", backend: null });
  const distinct: unknown[][] = [
    [1],
    ["1"],
    [1n],
    [true],
    ["true"],
    [null],
    [[1, 2]],
    ["1,2"],
    [[1], [2]],
    [[1, [2]]],
    [{ a: 1 }],
    [{ a: "1" }],
    [{ a: 1, b: 2 }],
    [{ "a:1": 2 }],
    ["a", "b"],
    ["ab"],
    ["a:b"],
    [new Date(0)],
    [new Uint8Array([1, 2])],
    [],
  ];
  const seen = new Map<string, number>();
  for (const args of distinct) {
    const before = runs;
    const out = echo(...args);
    assert.equal(runs, before + 1, `a miss for ${JSON.stringify(String(args))}`);
    seen.set(out, (seen.get(out) ?? 0) + 1);
  }
  const before = runs;
  echo({ b: 2, a: 1 }); // same map as { a: 1, b: 2 }
  echo(1);
  echo(1.0);
  assert.equal(runs, before, "equal arguments hit");
});

test("custom key function: entries keyed by its string, under ns/func, spaces escaped", async () => {
  const { backend, keys } = recording();
  let n = 0;
  const f = cache(async (user: { id: number; name: string }) => ({ ...user, n: ++n }), {
    name: "core.customkey",
    namespace: "ck",
    ttl: 60,
    backend,
    key: (user) => `user ${user.id}`,
    ...bare,
  });
  assert.equal((await f({ id: 1, name: "a" })).n, 1);
  assert.equal((await f({ id: 1, name: "b" })).n, 1, "same custom key: same entry");
  assert.equal((await f({ id: 2, name: "a" })).n, 2);
  assert.deepEqual([...new Set(keys)], [
    "t:default:ns:ck:func:core.customkey:args:user%201",
    "t:default:ns:ck:func:core.customkey:args:user%202",
  ]);
});

test("a throwing key or instanceKey function rejects the async wrapper's promise, never throws synchronously", async () => {
  const boom = () => {
    throw new Error("no key");
  };
  const f = cache(async (x: number) => x, {
    name: "core.keythrows",
    backend: new MemoryBackend(),
    key: (x) => (x < 0 ? boom() : String(x)),
    ...bare,
  });
  let p: Promise<number> | undefined;
  assert.doesNotThrow(() => {
    p = f(-1);
  });
  await assert.rejects(p!, /no key/);
  assert.equal(await f(1), 1);
  class Repo {
    @cached({ backend: new MemoryBackend(), instanceKey: () => boom(), ...bare })
    async get(id: number): Promise<number> {
      return id;
    }
  }
  let q: Promise<number> | undefined;
  assert.doesNotThrow(() => {
    q = new Repo().get(1);
  });
  await assert.rejects(q!, /no key/);
  // L1 only and synchronous: the error is thrown, as the function's own errors are.
  const s = cache((x: number) => x, { name: "core.keythrows.sync", backend: null, key: boom });
  assert.throws(() => s(1), /no key/);
});

test("invalidation bus: a failed subscription is retried on a later miss (at most once a second)", async () => {
  const inner = new MemoryBackend();
  let fail = true;
  let attempts = 0;
  const handlers: ((ev: InvalidationEvent) => void)[] = [];
  const backend: Backend = {
    type: "bus-test",
    capabilities: {
      ...inner.capabilities,
      invalidation: {
        instanceId: "me",
        publish: async () => {},
        subscribe: async (h) => {
          attempts++;
          if (fail) throw new Error("bus down");
          handlers.push(h);
          return async () => {};
        },
      },
    },
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => inner.set(k, v, t, o),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "core.busretry",
    ttl: 60,
    backend,
    l1: { invalidation: true },
    stampede: false,
    ...bare,
  });
  // The retry delay runs on Date.now: frozen here, so a stalled host cannot reach it by itself.
  const clock = shiftDateNow(true);
  try {
    await f(1);
    await sleep(5);
    assert.equal(attempts, 1);
    fail = false;
    await f(2);
    assert.equal(attempts, 1, "no new attempt within the retry delay");
    clock.advance(1050);
    await f(3);
  } finally {
    clock.restore();
  }
  await sleep(5);
  assert.equal(attempts, 2, "retried on the next miss");
  assert.equal(handlers.length, 1);
  handlers[0]({ level: "all", targets: [], sender: "other" });
  assert.equal(f.cacheInfo().size, 0, "remote events reach L1 again");
  await f(4);
  assert.equal(attempts, 2, "subscribed once");
});

test("L1 off: protocol keys remembered per call arguments stay the protocol's keys, past the memo's bound", async () => {
  const { cacheKey, interopKey } = await import("../../protocol/keys.ts");
  const backend = new MemoryBackend();
  let runs = 0;
  const fn = async (x: unknown) => {
    runs++;
    return { x };
  };
  const std = cache(fn, { name: "memo.std", namespace: "memo", backend, l1: false, ...bare });
  const iop = cache(fn, {
    interop: { namespace: "memo", operation: "iop" },
    backend,
    l1: false,
    ...bare,
  });
  const n = 10_050; // more distinct calls than the engine remembers keys for
  for (const f of [std, iop]) {
    for (let i = 0; i < n; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => f(i + j)));
    }
  }
  assert.equal(runs, 2 * n);
  // Again (first keys forgotten by the memo, last ones remembered): all L2 hits, own values.
  for (const f of [std, iop]) {
    for (const x of [0, 1, 2, 9_999, 10_000, 10_049]) assert.deepEqual(await f(x), { x });
  }
  // Arguments the protocol keys apart are kept apart.
  for (const f of [std, iop]) {
    for (const x of [7, "7", [7], { a: 7 }]) assert.deepEqual(await f(x), { x });
  }
  assert.equal(runs, 2 * n + 2 * 3);
  // The entries sit under the keys the protocol functions give (memo or not).
  for (const x of [0, 10_049, "7", [7]]) {
    const k = cacheKey({ namespace: "memo", func: "memo.std", args: [x], serializer: "std" });
    assert.notEqual(await backend.get(`t:default:${k}`), null, k);
    assert.notEqual(await backend.get(interopKey("memo", "iop", [x])), null);
  }
});

test("cacheInfo: l2AvgLatencyMs is the mean L2 read latency (sampled reads)", async () => {
  // Each read takes exactly 20 ms on a stubbed performance.now (the engine's latency clock), so the
  // mean is exact however slowly the host runs.
  const clock = performance.now;
  let fakeNow = 1000;
  performance.now = () => fakeNow;
  try {
    const inner = new MemoryBackend();
    const slow: Backend = {
      type: "slow",
      capabilities: {},
      get: async (k) => {
        await sleep(0);
        fakeNow += 20;
        return await inner.get(k);
      },
      set: (k, v, t) => inner.set(k, v, t),
      delete: (k) => inner.delete(k),
      exists: (k) => inner.exists(k),
      healthCheck: () => inner.healthCheck(),
    };
    const f = cache(async (id: number) => id, {
      name: "core.latency",
      ttl: 60,
      backend: slow,
      l1: false,
      ...bare,
    });
    for (let i = 0; i < 17; i++) await f(i); // 17 L2 reads (misses), each 20 ms
    const info = f.cacheInfo();
    assert.equal(info.l2AvgLatencyMs, 20, "mean L2 latency of reads of 20 ms");
  } finally {
    performance.now = clock;
  }
});

test("cacheInfo: concurrent L2 reads are timed one in 8 too (clock reads counted)", async () => {
  const backend = new MemoryBackend();
  const f = cache(async (id: number) => id, {
    name: "core.latency.concurrent",
    ttl: 60,
    backend,
    l1: false,
    ...bare,
  });
  await Promise.all(Array.from({ length: 100 }, (_, i) => f(i))); // store
  const clock = performance.now;
  let reads = 0;
  performance.now = () => {
    reads++;
    return clock.call(performance);
  };
  try {
    // 4 rounds of 100 concurrent hits: 400 L2 reads, 50 of them timed (2 clock reads each).
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => f(i)));
    }
  } finally {
    performance.now = clock;
  }
  assert.equal(f.cacheInfo().l2Hits, 400);
  assert.equal(reads, 100, `${reads} clock reads for 400 L2 hits`);
});
