// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Per-call status (`f.withStatus(...args)`, issue 16.1): each status with its layer, age, expiry
// and protocol key, on the memory, file and Redis backends: miss, L1 hit, L2 hit (a second
// wrapper, i.e. another process's L1), joined (single flight, in-process and behind an L2 read),
// stale from L1 and from L2 (fail-safe, the function failing or slower than softTimeout), and
// uncached (safeMode key, too large). Synchronous L1-only functions answer synchronously.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { gate, shiftDateNow } from "../_timing.ts";
import {
  type Backend,
  cache as realCache,
  cached,
  cachedControls,
  type CallResult,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/**
 * `cache` with Prometheus off unless asked: the process-wide registry bounds its `function` label
 * (100 identities), and under Bun every test file shares one process.
 */
const cache = ((fn: (...a: never[]) => unknown, o?: Record<string, unknown>) =>
  realCache(fn, {
    ...o,
    monitoring: { prometheus: false, ...(o?.monitoring as object | undefined) },
  })) as unknown as typeof realCache;

interface Kind {
  name: "memory" | "file" | "redis";
  /** Two backends on one store: two processes' views. */
  open(): Promise<{ a: Backend; b: Backend; close(): Promise<void> }>;
  options: { ignore: boolean; ignoreReason?: string };
}

const KINDS: Kind[] = [
  {
    name: "memory",
    open: () => {
      const m = new MemoryBackend();
      return Promise.resolve({ a: m, b: m, close: () => Promise.resolve() });
    },
    options: { ignore: false },
  },
  {
    name: "file",
    open: async () => {
      const dir = await mkdtemp(join(tmpdir(), "ck-status-"));
      const a = new FileBackend({ directory: dir });
      const b = new FileBackend({ directory: dir });
      return {
        a,
        b,
        close: async () => {
          await a.close?.();
          await b.close?.();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
    options: { ignore: false },
  },
  {
    name: "redis",
    open: () => {
      // Its own bus channel too: the events name keys without the prefix, and the same file on
      // another runtime at the same time (names, arguments alike) would evict this one's L1.
      const keyPrefix = uniquePrefix("status");
      const opts = {
        url: "redis://127.0.0.1:6379",
        keyPrefix,
        invalidationChannel: `${keyPrefix}inv`,
      };
      const a = new RedisBackend(opts);
      const b = new RedisBackend(opts);
      return Promise.resolve({
        a,
        b,
        close: async () => {
          await a.close();
          await b.close();
        },
      });
    },
    options: sharedRedisTestOptions,
  },
];

function assertShape<T>(r: CallResult<T>, status: string, layer: string, what: string): void {
  assert.equal(r.status, status, `${what}: status`);
  assert.equal(r.layer, layer, `${what}: layer`);
}

for (const kind of KINDS) {
  test(
    `${kind.name}: withStatus says miss, L1 hit, L2 hit and joined, with age, expiry and key`,
    async () => {
      const { a, b, close } = await kind.open();
      try {
        let calls = 0;
        const gateOpen = gate();
        const fn = async (id: number) => {
          calls++;
          if (id === 3) await gateOpen.promise;
          return { id };
        };
        const name = `status.${kind.name}.basic`;
        const f = cache(fn, { name, ttl: 60, backend: a, ...bare });
        const g = cache(fn, { name, ttl: 60, backend: b, ...bare });

        const miss = await f.withStatus(1);
        assertShape(miss, "miss", "source", "first call");
        assert.deepEqual(miss.value, { id: 1 });
        assert.equal(miss.ageMs, 0);
        assert.equal(miss.expiresInMs, 60_000);
        assert.match(miss.key!, new RegExp(`^func:${name.replaceAll(".", "\\.")}:args:`));

        const l1 = await f.withStatus(1);
        assertShape(l1, "hit", "l1", "second call");
        assert.equal(l1.key, miss.key, "the same protocol key");
        assert.ok(l1.ageMs! >= 0 && l1.ageMs! < 60_000, `age ${l1.ageMs}`);
        assert.ok(l1.expiresInMs! > 0 && l1.expiresInMs! <= 60_000, `expiry ${l1.expiresInMs}`);

        const l2 = await g.withStatus(1);
        assertShape(l2, "hit", "l2", "another instance (its own L1)");
        assert.deepEqual(l2.value, { id: 1 });
        assert.equal(l2.key, miss.key);
        assert.equal(calls, 1);

        // Single flight in this process: one computes, the other joins it.
        const p1 = f.withStatus(3);
        const p2 = f.withStatus(3);
        gateOpen.open();
        const [lead, joined] = await Promise.all([p1, p2]);
        assertShape(lead, "miss", "source", "leader");
        assertShape(joined, "joined", "source", "joined a computation");
        assert.equal(joined.key, lead.key);
        assert.equal(calls, 2);

        // Joined behind an L2 read: the leader found the value in L2.
        await f(4);
        const [h, j] = await Promise.all([g.withStatus(4), g.withStatus(4)]);
        assertShape(h, "hit", "l2", "leader read L2");
        assertShape(j, "joined", "l2", "joined an L2 read");
        assert.equal(calls, 3);

        // Joined behind another instance's lock: it computes, this one waits and reads L2.
        const held = gate();
        let started = 0;
        const slowFn = async (id: number) => {
          started++;
          await held.promise;
          return { id };
        };
        const lf = cache(slowFn, { name: `${name}.lock`, ttl: 60, backend: a, ...bare });
        const lg = cache(slowFn, { name: `${name}.lock`, ttl: 60, backend: b, ...bare });
        const leader = lf.withStatus(5);
        while (started === 0) await new Promise((r) => setTimeout(r, 1));
        const waiter = lg.withStatus(5);
        await new Promise((r) => setTimeout(r, 20));
        held.open();
        assertShape(await leader, "miss", "source", "lock holder");
        const w = await waiter;
        assertShape(w, "joined", "l2", "waited on the lock, then read L2");
        assert.deepEqual(w.value, { id: 5 });
        assert.equal(started, 1, "one computation across both instances");

        // A plain call is unaffected.
        assert.deepEqual(await f(1), { id: 1 });
      } finally {
        await close();
      }
    },
    kind.options,
  );

  test(
    `${kind.name}: withStatus says stale (L1 copy; L2 in another instance) past the TTL`,
    async () => {
      const { a, b, close } = await kind.open();
      const clock = shiftDateNow();
      try {
        let fail = false;
        const fn = async (id: number) => {
          if (fail) throw new Error("source down");
          return { id };
        };
        const name = `status.${kind.name}.stale`;
        const f = cache(fn, { name, ttl: 60, staleTtl: 600, backend: a, ...bare });
        assertShape(await f.withStatus(1), "miss", "source", "first call");
        clock.advance(61_000);
        fail = true;
        // Its L1 copy and the L2 entry come from one write: the fail-safe serves the L1 copy.
        const stale = await f.withStatus(1);
        assertShape(stale, "stale", "l1", "stale L1 copy");
        assert.deepEqual(stale.value, { id: 1 });
        assert.ok(stale.expiresInMs! < 0, `expired: ${stale.expiresInMs}`);
        assert.ok(stale.ageMs! > 60_000, `older than the TTL: ${stale.ageMs}`);
        // Another instance, its L1 empty: the L2 entry is past its logical expiry.
        const g = cache(fn, { name, ttl: 60, staleTtl: 600, backend: b, ...bare });
        const fromL2 = await g.withStatus(1);
        assertShape(fromL2, "stale", "l2", "stale L2 value");
        assert.deepEqual(fromL2.value, { id: 1 });
        assert.ok(fromL2.expiresInMs! < 0, `expired: ${fromL2.expiresInMs}`);
      } finally {
        clock.restore();
        await close();
      }
    },
    kind.options,
  );

  test(
    `${kind.name}: withStatus says uncached for a safeMode key failure and a value too large`,
    async () => {
      const { a, close } = await kind.open();
      try {
        const keyless = cache(async (s: Set<number>) => s.size, {
          name: `status.${kind.name}.keyless`,
          safeMode: true,
          backend: a,
          ...bare,
        });
        const r = await keyless.withStatus(new Set([1, 2]));
        assertShape(r, "uncached", "source", "no key");
        assert.equal(r.value, 2);
        assert.equal(r.key, null);
        assert.equal(r.ageMs, null);
        const big = cache(async (n: number) => "x".repeat(n), {
          name: `status.${kind.name}.big`,
          maxValueSize: 1024,
          backend: a,
          ...bare,
        });
        const r2 = await big.withStatus(4096);
        assertShape(r2, "uncached", "source", "too large");
        assert.equal(r2.value.length, 4096);
        assert.notEqual(r2.key, null, "the call had a key");
        assertShape(await big.withStatus(4096), "uncached", "source", "still not cached");
      } finally {
        await close();
      }
    },
    kind.options,
  );
}

test("L1 only: stale (layer l1) when the function fails past the TTL, synchronous or not", async () => {
  const clock = shiftDateNow();
  try {
    let fail = false;
    const f = cache((id: number) => {
      if (fail) throw new Error("source down");
      return { id };
    }, { name: "status.stale.l1", ttl: 60, staleTtl: 600, backend: null });
    assert.equal(f.withStatus(1).status, "miss");
    clock.advance(61_000);
    fail = true;
    const r = f.withStatus(1);
    assertShape(r, "stale", "l1", "synchronous stale");
    assert.deepEqual(r.value, { id: 1 });
    assert.ok(r.expiresInMs! < 0 && r.ageMs! > 60_000, `${r.expiresInMs} ${r.ageMs}`);
    const g = cache(async (id: number) => {
      if (fail) throw new Error("source down");
      return { id };
    }, { name: "status.stale.l1async", ttl: 60, staleTtl: 600, backend: null });
    fail = false;
    await g(1);
    clock.advance(61_000);
    fail = true;
    assertShape(await g.withStatus(1), "stale", "l1", "asynchronous stale");
  } finally {
    clock.restore();
  }
});

test("memory: stale after a soft timeout: the stale value now, the refresh in the background", async () => {
  const clock = shiftDateNow();
  try {
    const slow = gate();
    let n = 0;
    const f = cache(async () => {
      if (++n > 1) await slow.promise;
      return n;
    }, {
      name: "status.soft",
      ttl: 60,
      staleTtl: 600,
      softTimeout: 0.05,
      backend: new MemoryBackend(),
      ...bare,
    });
    assertShape(await f.withStatus(), "miss", "source", "first call");
    clock.advance(61_000);
    const r = await f.withStatus();
    assertShape(r, "stale", "l1", "soft timeout");
    assert.equal(r.value, 1);
    slow.open();
  } finally {
    clock.restore();
  }
});

test("L1 only: a synchronous function's withStatus answers synchronously; an async one a promise", async () => {
  const f = cache((n: number) => n * 2, { name: "status.sync", backend: null });
  const r = f.withStatus(2);
  assert.ok(!(r instanceof Promise), "a CallResult, not a promise");
  assert.deepEqual({ value: r.value, status: r.status, layer: r.layer }, {
    value: 4,
    status: "miss",
    layer: "source",
  });
  const h = f.withStatus(2);
  assert.deepEqual([h.status, h.layer], ["hit", "l1"]);
  assert.equal(h.key, r.key);
  assert.ok(h.key!.startsWith("func:status.sync:args:"));
  const g = cache(async (n: number) => n * 3, { name: "status.sync.async", backend: null });
  const p = g.withStatus(2);
  assert.ok(p instanceof Promise);
  assert.equal((await p).status, "miss");
  assert.equal((await g.withStatus(2)).status, "hit");
});

test("withStatus: a failing call rejects as the plain call does; the wrapper keeps working", async () => {
  const f = cache(async (n: number) => {
    if (n < 0) throw new Error("negative");
    return n;
  }, { name: "status.fail", backend: new MemoryBackend(), ...bare });
  await assert.rejects(f.withStatus(-1), /negative/);
  assert.equal((await f.withStatus(1)).status, "miss");
  assert.equal(await f(1), 1);
});

test("a @cached method's withStatus (cachedControls) acts for its instance", () => {
  class Prices {
    constructor(readonly region: string) {}
    @cached({ backend: null, instanceKey: (self: Prices) => self.region })
    price(sku: string): number {
      return sku.length * (this.region === "eu" ? 2 : 1);
    }
  }
  const eu = new Prices("eu");
  const us = new Prices("us");
  assert.equal(eu.price("abc"), 6);
  const hit = cachedControls(eu, "price").withStatus("abc");
  assert.deepEqual([hit.value, hit.status, hit.layer], [6, "hit", "l1"]);
  const other = cachedControls(us, "price").withStatus("abc");
  assert.deepEqual([other.value, other.status], [3, "miss"], "the other instance's own entry");
});
