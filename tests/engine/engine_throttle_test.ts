// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Fail-safe throttle (`failSafeThrottle`): after a failure answered from stale, the stale value is
// reused for the window without calling the function (stale hits), and the function is tried
// again after it; invalidation and a fresh value end the window. And the newest stale value wins
// between L1 and L2, on Memory, File and Redis. Time is the test's shifted `Date.now`: no step
// depends on how fast the host runs.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { shiftDateNow, until } from "../_timing.ts";
import {
  type Backend,
  BackendError,
  cache,
  CacheConfigError,
  createCache,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";
import { getDefaultMetrics } from "../../health/metrics.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { MAX_THROTTLED } from "../../engine/_failsafe.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/** A source the test breaks and mends; counts its calls. */
function source() {
  const s = {
    fail: false,
    calls: 0,
    fn: async (id: number) => {
      s.calls++;
      if (s.fail) throw new Error("database down");
      return { id, v: s.calls };
    },
  };
  return s;
}

test("throttle: after a failure answered stale, the stale value is reused for failSafeThrottle without calling the function, then the function is tried again", async () => {
  const clock = shiftDateNow(true);
  try {
    const src = source();
    const f = cache(src.fn, {
      name: "throttle.window",
      ttl: 60,
      staleTtl: 600,
      failSafeThrottle: 10,
      backend: new MemoryBackend(),
      ...bare,
    });
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    clock.advance(61_000);
    src.fail = true;
    assert.deepEqual(await f(1), { id: 1, v: 1 }, "the failure is answered stale");
    assert.equal(src.calls, 2);
    for (let i = 0; i < 5; i++) assert.deepEqual(await f(1), { id: 1, v: 1 });
    assert.equal(src.calls, 2, "not called within the window");
    assert.equal(f.cacheInfo().staleHits, 6, "every answer of the window is a stale hit");
    assert.equal(f.cacheInfo().misses, 2, "reuses are not misses");
    // The window is per key: another argument is not throttled.
    await assert.rejects(f(2), /database down/);
    assert.equal(src.calls, 3);
    clock.advance(9_999);
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    assert.equal(src.calls, 3, "still within the window");
    clock.advance(2);
    assert.deepEqual(await f(1), { id: 1, v: 1 }, "tried again, failed again: stale");
    assert.equal(src.calls, 4, "the function was tried after the window");
    src.fail = false;
    assert.deepEqual(await f(1), { id: 1, v: 1 }, "a new window began with that failure");
    assert.equal(src.calls, 4);
    clock.advance(10_001);
    assert.deepEqual(await f(1), { id: 1, v: 5 }, "the source is back: a fresh value");
    assert.deepEqual(await f(1), { id: 1, v: 5 });
    assert.equal(src.calls, 5);
  } finally {
    clock.restore();
  }
});

test("throttle: the default window is 30 s (FusionCache's FailSafeThrottleDuration); 0 tries the function on every call; a negative one is refused", async () => {
  assert.equal(resolveConfig({}).failSafeThrottle, 30);
  assert.equal(resolveConfig({ failSafeThrottle: 2.5 }).failSafeThrottle, 2.5);
  assert.throws(
    () => resolveConfig({ failSafeThrottle: -1 }),
    (e) => e instanceof CacheConfigError && e.option === "failSafeThrottle",
  );
  const clock = shiftDateNow(true);
  try {
    for (const [throttle, callsAfter] of [[undefined, 2], [0, 5]] as const) {
      const src = source();
      const f = cache(src.fn, {
        name: `throttle.default.${throttle}`,
        ttl: 60,
        staleTtl: 600,
        ...(throttle === undefined ? {} : { failSafeThrottle: throttle }),
        backend: new MemoryBackend(),
        ...bare,
      });
      await f(1);
      clock.advance(61_000);
      src.fail = true;
      for (let i = 0; i < 4; i++) assert.deepEqual(await f(1), { id: 1, v: 1 });
      assert.equal(src.calls, callsAfter, `failSafeThrottle ${throttle}`);
      if (throttle === undefined) {
        clock.advance(29_999);
        await f(1);
        assert.equal(src.calls, 2, "within 30 s");
        clock.advance(2);
        await f(1);
        assert.equal(src.calls, 3, "after 30 s");
      }
    }
  } finally {
    clock.restore();
  }
});

test("throttle: reuses are counted as stale hits with reason=throttled in Prometheus", async () => {
  const clock = shiftDateNow(true);
  try {
    const src = source();
    const name = `throttle.metrics.${crypto.randomUUID().slice(0, 8)}`;
    const f = cache(src.fn, {
      name,
      namespace: "throttlemetrics",
      ttl: 60,
      staleTtl: 600,
      backend: new MemoryBackend(),
      monitoring: { prometheus: true },
      ...bare,
    });
    await f(1);
    clock.advance(61_000);
    src.fail = true;
    await f(1);
    await f(1);
    await f(1);
    const text = getDefaultMetrics().registry.exposition();
    const line = (reason: string) =>
      text.split("\n").find((l) =>
        l.startsWith("cache_stale_hits_total{") && l.includes('namespace="throttlemetrics"') &&
        l.includes(`reason="${reason}"`)
      );
    assert.match(line("error") ?? "", / 1$/, text);
    assert.match(line("throttled") ?? "", / 2$/, text);
  } finally {
    clock.restore();
  }
});

test("throttle: an invalidation or a clear ends the window (an invalidated value is never reused)", async () => {
  const clock = shiftDateNow(true);
  try {
    const src = source();
    const f = cache(src.fn, {
      name: "throttle.invalidate",
      ttl: 60,
      staleTtl: 600,
      backend: new MemoryBackend(),
      ...bare,
    });
    await f(1);
    clock.advance(61_000);
    src.fail = true;
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    await f.invalidate(1);
    await assert.rejects(f(1), /database down/, "no stale value left to reuse");
    assert.equal(src.calls, 3);
    src.fail = false;
    assert.deepEqual(await f(1), { id: 1, v: 4 });
    clock.advance(61_000);
    src.fail = true;
    assert.deepEqual(await f(1), { id: 1, v: 4 }, "held for the window");
    assert.equal(src.calls, 5);
    await f.cacheClear();
    await assert.rejects(f(1), /database down/, "cleared: nothing held");
  } finally {
    clock.restore();
  }
});

test("throttle: a stale value from L2 (L1 off) is reused without calling the function, each caller getting its own copy; L2 is still read, and a value written there ends the window", async () => {
  const clock = shiftDateNow(true);
  try {
    const inner = new MemoryBackend();
    let reads = 0;
    const backend: Backend = {
      type: "memory",
      capabilities: inner.capabilities,
      get: (k, o) => {
        reads++;
        return inner.get(k, o);
      },
      set: (k, v, t, o) => inner.set(k, v, t, o),
      delete: (k, o) => inner.delete(k, o),
      exists: (k, o) => inner.exists(k, o),
      healthCheck: () => inner.healthCheck(),
    };
    const src = source();
    const f = cache(src.fn, {
      name: "throttle.l2",
      ttl: 60,
      staleTtl: 600,
      backend,
      l1: false,
      stampede: false,
      ...bare,
    });
    await f(1);
    clock.advance(61_000);
    src.fail = true;
    const first = await f(1);
    assert.deepEqual(first, { id: 1, v: 1 });
    const readsAfterFailure = reads;
    const a = await f(1);
    const b = await f(1);
    assert.deepEqual(a, { id: 1, v: 1 });
    assert.equal(src.calls, 2);
    // Without an L1, no bus event can end the window: L2 is read, as on every call.
    assert.equal(reads, readsAfterFailure + 2, "one L2 read per call within the window");
    (a as { v: number }).v = 99;
    assert.deepEqual(b, { id: 1, v: 1 }, "a caller mutating its answer does not change another's");
    assert.deepEqual(await f(1), { id: 1, v: 1 });
  } finally {
    clock.restore();
  }
});

test("throttle: f.refresh() calls the function within the window, and its success ends the window", async () => {
  const clock = shiftDateNow(true);
  try {
    const src = source();
    const f = cache(src.fn, {
      name: "throttle.refresh",
      ttl: 60,
      staleTtl: 600,
      backend: new MemoryBackend(),
      ...bare,
    });
    await f(1);
    clock.advance(61_000);
    src.fail = true;
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    assert.deepEqual(await f(1), { id: 1, v: 1 });
    assert.equal(src.calls, 2);
    src.fail = false;
    assert.deepEqual(await f.refresh(1), { id: 1, v: 3 }, "a forced refresh is not throttled");
    assert.deepEqual(await f(1), { id: 1, v: 3 }, "the fresh value, not the held stale one");
    assert.equal(src.calls, 3);
    // The synchronous twin (L1 only).
    let calls = 0;
    let fail = false;
    const g = cache((id: number) => {
      calls++;
      if (fail) throw new Error("boom");
      return id * 10 + calls;
    }, { name: "throttle.refresh.sync", ttl: 60, staleTtl: 600, backend: null });
    assert.equal(g(1), 11);
    clock.advance(61_000);
    fail = true;
    assert.equal(g(1), 11);
    assert.equal(g(1), 11);
    assert.equal(calls, 2);
    fail = false;
    assert.equal(g.refresh(1), 13);
    assert.equal(g(1), 13);
  } finally {
    clock.restore();
  }
});

test("throttle: createCache getOrSet reuses the stale value within the window without calling the factory", async () => {
  const clock = shiftDateNow(true);
  try {
    const c = createCache({
      ttl: 60,
      staleTtl: 600,
      failSafeThrottle: 10,
      backend: new MemoryBackend(),
      ...bare,
    });
    let calls = 0;
    let fail = false;
    const factory = async () => {
      calls++;
      if (fail) throw new Error("down");
      return { v: calls };
    };
    assert.deepEqual(await c.getOrSet("k", factory), { v: 1 });
    clock.advance(61_000);
    fail = true;
    assert.deepEqual(await c.getOrSet("k", factory), { v: 1 });
    assert.deepEqual(await c.getOrSet("k", factory), { v: 1 });
    assert.equal(calls, 2, "the factory is not called within the window");
    clock.advance(10_001);
    fail = false;
    assert.deepEqual(await c.getOrSet("k", factory), { v: 3 });
  } finally {
    clock.restore();
  }
});

test("throttle: createCache set() ends the window, with or without an L1 (a held stale value is older than the write)", async () => {
  for (const l1 of [true, false]) {
    const clock = shiftDateNow(true);
    try {
      const c = createCache({
        ttl: 60,
        staleTtl: 600,
        backend: new MemoryBackend(),
        ...(l1 ? {} : { l1: false as const }),
        ...bare,
      });
      const down = () => {
        throw new Error("down");
      };
      await c.set("k", "old");
      clock.advance(61_000);
      assert.equal(await c.getOrSet("k", down), "old", "the failure is answered stale");
      await c.set("k", "new");
      assert.equal(await c.get("k"), "new");
      assert.equal(await c.getOrSet("k", () => "computed"), "new", `l1: ${l1}`);
      assert.equal(
        await c.getOrSet("k", () => "computed", { skipL1Read: true }),
        "new",
        `l1: ${l1}, skipL1Read`,
      );
    } finally {
      clock.restore();
    }
  }
});

test("throttle: without an L1 (no bus event can reach it), another instance's write in L2 ends the window", async () => {
  const clock = shiftDateNow(true);
  try {
    const backend = new MemoryBackend();
    const opts = { namespace: "throttle-l2", ttl: 60, staleTtl: 600, backend, ...bare };
    const c = createCache({ ...opts, l1: false });
    const other = createCache(opts);
    let calls = 0;
    const down = () => {
      calls++;
      throw new Error("down");
    };
    await c.set("k", "old");
    clock.advance(61_000);
    assert.equal(await c.getOrSet("k", down), "old", "the failure is answered stale");
    assert.equal(await c.getOrSet("k", down), "old", "held within the window");
    assert.equal(calls, 1);
    await other.set("k", "new");
    assert.equal(await c.getOrSet("k", down), "new", "the fresh L2 value, not the held one");
    clock.advance(61_000);
    assert.equal(await c.getOrSet("k", () => "computed"), "computed", "the window has ended");
    assert.equal(calls, 1);
  } finally {
    clock.restore();
  }
});

test("throttle: a synchronous L1-only function reuses its stale value too", () => {
  const clock = shiftDateNow(true);
  try {
    let calls = 0;
    let fail = false;
    const f = cache((id: number) => {
      calls++;
      if (fail) throw new Error("boom");
      return id * 10 + calls;
    }, { name: "throttle.sync", ttl: 60, staleTtl: 600, backend: null });
    assert.equal(f(1), 11);
    clock.advance(61_000);
    fail = true;
    assert.equal(f(1), 11);
    assert.equal(f(1), 11);
    assert.equal(calls, 2);
    clock.advance(30_001);
    assert.equal(f(1), 11);
    assert.equal(calls, 3);
  } finally {
    clock.restore();
  }
});

test(`throttle: at most ${MAX_THROTTLED} keys are held; beyond, the oldest window ends first`, async () => {
  const clock = shiftDateNow(true);
  try {
    let fail = false;
    const calls = new Map<number, number>();
    const f = cache(async (id: number) => {
      calls.set(id, (calls.get(id) ?? 0) + 1);
      if (fail) throw new Error("down");
      return id;
    }, {
      name: "throttle.bound",
      ttl: 60,
      staleTtl: 600,
      backend: null,
      l1: { maxEntries: MAX_THROTTLED + 10 },
    });
    const n = MAX_THROTTLED + 3;
    for (let i = 0; i < n; i++) await f(i);
    clock.advance(61_000);
    fail = true;
    for (let i = 0; i < n; i++) assert.equal(await f(i), i);
    // Newest first: asking for a held value changes nothing; a dropped one calls the function.
    for (let i = n - 1; i >= 0; i--) await f(i);
    const tried = [...calls].filter(([, c]) => c === 3).map(([id]) => id);
    assert.deepEqual(tried, [0, 1, 2], "only the 3 oldest windows were dropped");
  } finally {
    clock.restore();
  }
});

// ---------------------------------------------------------------------------------------------
// Newest stale value wins, on Memory, File and Redis.

/** `inner` with writes that fail while `down.sets` is set (an L2 write lost to an outage). */
function lossyWrites(inner: Backend): { backend: Backend; down: { sets: boolean } } {
  const down = { sets: false };
  const fail = () =>
    Promise.reject(
      new BackendError("write refused (test)", {
        kind: "transient",
        backend: inner.type,
        operation: "set",
      }),
    );
  const backend: Backend = {
    type: inner.type,
    capabilities: inner.capabilities,
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => down.sets ? fail() : inner.set(k, v, t, o),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return { backend, down };
}

const KINDS = ["memory", "file", "redis"] as const;

for (const kind of KINDS) {
  test(
    `newest stale wins (${kind}): an L1 value whose L2 write failed beats the older L2 entry, and a newer L2 entry beats L1`,
    async () => {
      const clock = shiftDateNow();
      const dir = kind === "file" ? await mkdtemp(join(tmpdir(), "ck-newest-")) : "";
      const inner: Backend = kind === "memory"
        ? new MemoryBackend()
        : kind === "file"
        ? new FileBackend({ directory: dir })
        : new RedisBackend({ url: SHARED_REDIS_URL, keyPrefix: uniquePrefix("newest") });
      try {
        const { backend, down } = lossyWrites(inner);
        const name = `newest.${kind}.${crypto.randomUUID().slice(0, 8)}`;
        const opts = { name, ttl: 60, staleTtl: 600, failSafeThrottle: 0, ...bare } as const;
        const state = { fail: false, version: 0 };
        // One function for both instances (an identity names one function).
        const fn = async (id: number) => {
          if (state.fail) throw new Error("source down");
          return { id, v: ++state.version };
        };
        const a = cache(fn, { ...opts, backend });
        assert.deepEqual(await a(1), { id: 1, v: 1 }, "v1 in L1 and L2");
        clock.advance(61_000);
        down.sets = true;
        assert.deepEqual(await a(1), { id: 1, v: 2 }, "v2 in L1 only: its L2 write failed");
        down.sets = false;
        clock.advance(61_000);
        state.fail = true;
        assert.deepEqual(await a(1), { id: 1, v: 2 }, "the newer L1 value, not L2's older v1");
        // Another instance (L1 off) refreshes L2 with v3: newer than this process's L1 copy.
        state.fail = false;
        const b = cache(fn, { ...opts, backend: inner, l1: false });
        assert.deepEqual(await b(1), { id: 1, v: 3 });
        clock.advance(61_000);
        state.fail = true;
        assert.deepEqual(await a(1), { id: 1, v: 3 }, "the newer L2 value, not L1's v2");
        assert.equal(a.cacheInfo().staleHits, 2);
      } finally {
        clock.restore();
        await inner.close?.();
        if (dir) await rm(dir, { recursive: true, force: true });
      }
    },
    kind === "redis" ? { ...sharedRedisTestOptions, sanitize: false } : {},
  );
}

test(
  "throttle (redis): a write from another instance on the bus ends the window: the fresh value is served at once",
  async () => {
    const clock = shiftDateNow(); // not frozen: `until` measures its deadline on Date.now
    const opts = {
      url: SHARED_REDIS_URL,
      keyPrefix: uniquePrefix("throttlebus"),
      invalidationChannel: `cktest:inv:${crypto.randomUUID().slice(0, 8)}`,
    };
    const ra = new RedisBackend(opts);
    const rb = new RedisBackend(opts);
    try {
      const name = `throttle.bus.${crypto.randomUUID().slice(0, 8)}`;
      const base = { name, ttl: 60, staleTtl: 600, ...bare } as const;
      const src = source();
      // One function for both instances (an identity names one function).
      const a = cache(src.fn, { ...base, backend: ra });
      const b = cache(src.fn, { ...base, backend: rb });
      assert.deepEqual(await a(1), { id: 1, v: 1 });
      await b(2); // B subscribes to the bus on its first miss
      clock.advance(61_000);
      src.fail = true;
      assert.deepEqual(await a(1), { id: 1, v: 1 }, "stale, window open");
      assert.deepEqual(await a(1), { id: 1, v: 1 });
      assert.equal(src.calls, 3);
      // B computes a fresh value and announces its write on the bus.
      src.fail = false;
      assert.deepEqual(await b(1), { id: 1, v: 4 });
      src.fail = true;
      assert.ok(
        await until(async () => (await a(1) as { v: number }).v === 4),
        "A serves B's fresh value before its window ends",
      );
      assert.equal(src.calls, 4, "without calling its failing source");
    } finally {
      clock.restore();
      await ra.close();
      await rb.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test("throttle: with an L1, another instance's write ends a window holding a stale value read from L2 (file bus)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "cachekit-thr-"));
  const a = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  const b = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  const clock = shiftDateNow();
  try {
    const opts = { namespace: "thr-remote", ttl: 1, staleTtl: 60, ...bare };
    const c1 = createCache({ ...opts, backend: a });
    const c2 = createCache({ ...opts, backend: b });
    await c1.get("other"); // c1 listens on its bus
    await c2.set("k", "v1");
    clock.advance(1_100); // stale in L2; c1 has no L1 copy of it
    const down = () => {
      throw new Error("source down");
    };
    assert.equal(await c1.getOrSet("k", down), "v1", "stale from L2, then held by the throttle");
    await c2.set("k", "v2");
    // The write event ends the hold (no L1 entry of c1 names the key); then L2 answers.
    assert.ok(await until(async () => (await c1.getOrSet("k", down)) === "v2", 5_000));
  } finally {
    clock.restore();
    await a.close();
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test("throttle: without an L1, a call within the window that waits for another holder's lock does not call the function, with or without a hard timeout", async () => {
  for (const hardTimeout of [undefined, 5]) {
    const clock = shiftDateNow();
    const backend = new MemoryBackend();
    try {
      const opts = { namespace: `thr-wait-${hardTimeout}`, ttl: 1, staleTtl: 60, backend, ...bare };
      const c1 = createCache({ ...opts, l1: false });
      const c2 = createCache({ ...opts, l1: false });
      await c2.set("k", "v1");
      clock.advance(1_100);
      let calls = 0;
      const down = () => {
        calls++;
        throw new Error("down");
      };
      const o = hardTimeout === undefined ? undefined : { hardTimeout };
      assert.equal(await c1.getOrSet("k", down, o), "v1"); // held within the window
      assert.equal(calls, 1);
      // Another cache object computes the key under its lock, slowly, and fails.
      let release!: () => void;
      const slow = new Promise<void>((r) => (release = r));
      const other = c2.getOrSet("k", async () => {
        await slow;
        throw new Error("down too");
      });
      await new Promise((r) => setTimeout(r, 20));
      const mine = c1.getOrSet("k", down, o);
      release();
      assert.equal(await mine, "v1");
      assert.equal(await other, "v1");
      assert.equal(calls, 1, `hardTimeout ${hardTimeout}: no call within the window`);
    } finally {
      clock.restore();
      await backend.close();
    }
  }
});
