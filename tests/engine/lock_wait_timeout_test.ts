// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * `softTimeout` and `hardTimeout` bound the wait for a stampede lock that another process holds,
 * as they bound a computation in this process (README "Timeouts"): after `softTimeout` a caller
 * with a stale value gets it; after `hardTimeout` it gets the stale value, else a
 * `FactoryTimeoutError`. The wait goes on in the background (the holder's value is read into L1,
 * or this process computes once `stampede.wait` runs out), and calls that arrive meanwhile join it.
 * A call without a timeout that applies still waits for the holder. Checked for `createCache`
 * (per-call options) on the memory and file backends (the lock composed from `lock`), on Redis (the
 * lease in the key, `<key>:lock` over a stale value) and Redis in interop mode (`<key>:lock`), and
 * for `cache(fn)` (the options of the function).
 *
 * Before, such a caller waited for the holder up to `stampede.wait` (5 s) and then answered the
 * holder's value, ignoring both timeouts and the stale value. Two cache objects (or two functions
 * of one name) on one backend stand for two processes, with L1s of their own.
 *
 * No tight wall-clock bound: the holder computes until the test opens its gate (after the caller
 * answered, or after 1.5 s at most), and a caller with timeouts of 0.1–0.2 s must answer before.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { gate, shiftDateNow, sleep, until } from "../_timing.ts";
import {
  type Backend,
  cache,
  createCache,
  type CreateCacheOptions,
  FactoryTimeoutError,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
/** Far above the timeouts under test, far below the holder's computation (it waits for a gate). */
const ANSWER_WITHIN_MS = 1500;

interface Setup {
  backend: Backend;
  close(): Promise<void>;
}

const KINDS: Record<string, { make: () => Setup; interop: boolean; ignore: boolean }> = {
  memory: {
    make: () => {
      const backend = new MemoryBackend();
      return { backend, close: () => backend.close() };
    },
    interop: false,
    ignore: false,
  },
  file: {
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), "ck-lockwait-"));
      const backend = new FileBackend({ directory: dir });
      return {
        backend,
        close: async () => {
          await backend.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    interop: false,
    ignore: false,
  },
  redis: {
    make: () => {
      const backend = new RedisBackend({ url: "redis://127.0.0.1:6379", ...isolated() });
      return { backend, close: () => backend.close() };
    },
    interop: false,
    ignore: sharedRedisTestOptions.ignore,
  },
  "redis interop": {
    make: () => {
      const backend = new RedisBackend({ url: "redis://127.0.0.1:6379", ...isolated() });
      return { backend, close: () => backend.close() };
    },
    interop: true,
    ignore: sharedRedisTestOptions.ignore,
  },
};

/**
 * A key prefix and an invalidation channel of its own: a tag or group invalidation that another
 * test file publishes on the default channel would otherwise mark this file's computations stale
 * (a key-based cache's entries may carry any tag), and A's result would not be stored.
 */
function isolated(): { keyPrefix: string; invalidationChannel: string } {
  const keyPrefix = uniquePrefix("lockwait");
  return { keyPrefix, invalidationChannel: `${keyPrefix}bus` };
}

/** How `p` settled within `ms` (`pending` if not), and after how long. */
async function within<T>(
  p: Promise<T>,
  ms = ANSWER_WITHIN_MS,
): Promise<{ outcome: "value" | "error" | "pending"; value?: T; error?: unknown; ms: number }> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"pending">((r) => timer = setTimeout(() => r("pending"), ms));
  const r = await Promise.race([
    p.then((value) => ({ outcome: "value" as const, value }), (error) => ({
      outcome: "error" as const,
      error,
    })),
    late.then(() => ({ outcome: "pending" as const })),
  ]);
  clearTimeout(timer);
  return { ...r, ms: Math.round(performance.now() - t0) };
}

/** Two cache objects on one backend ("processes" A and B), and A computing `k` until `open`. */
async function holding(s: Setup, interop: boolean, stale: boolean, b: CreateCacheOptions = {}) {
  const base = interop
    ? { interop: true as const, namespace: "lockwait", name: "op" }
    : { namespace: "lockwait" };
  const o = { ttl: 60, staleTtl: 600, backend: s.backend, ...bare, ...base };
  const a = createCache(o);
  const cb = createCache({ ...o, ...b });
  if (stale) {
    await a.set("k", "old");
    await a.expire("k"); // stale from now on: the fallback of the timeouts
  }
  const g = gate();
  let started = false;
  const running = a.getOrSet("k", async () => {
    started = true;
    await g.promise; // A computes, holding the key's stampede lock
    return "A";
  });
  assert.ok(await until(() => started), "A computes");
  let bCalls = 0;
  const factoryB = async () => (bCalls++, "B");
  return { a, b: cb, open: g.open, running, factoryB, bCalls: () => bCalls };
}

for (const [kind, { make, interop, ignore }] of Object.entries(KINDS)) {
  const cases = [
    { label: "hardTimeout, stale value", opts: { hardTimeout: 0.2 }, stale: true },
    { label: "softTimeout, stale value", opts: { softTimeout: 0.1 }, stale: true },
    {
      label: "softTimeout below a long hardTimeout, stale value",
      opts: { softTimeout: 0.1, hardTimeout: 30 },
      stale: true,
    },
    { label: "hardTimeout, no stale value", opts: { hardTimeout: 0.2 }, stale: false },
  ].filter((c) => !(interop && c.stale)); // interop entries carry no logical expiry: no stale L2
  for (const { label, opts, stale } of cases) {
    test(
      `createCache (${kind}): getOrSet ${label} bounds the wait for another instance's lock`,
      async () => {
        const s = make();
        const h = await holding(s, interop, stale);
        const pb = h.b.getOrSet("k", h.factoryB, opts);
        try {
          const got = await within(pb);
          if (stale) {
            assert.equal(got.outcome, "value", `B answered within ${ANSWER_WITHIN_MS} ms`);
            assert.equal(got.value, "old", "the stale value");
          } else {
            assert.equal(got.outcome, "error", `B answered within ${ANSWER_WITHIN_MS} ms`);
            assert.ok(got.error instanceof FactoryTimeoutError, String(got.error));
            assert.match((got.error as Error).message, /key "k"/);
          }
          assert.equal(h.bCalls(), 0, "B does not compute while A holds the lock");
          h.open();
          assert.equal(await h.running, "A");
          // The wait went on in the background: it reads A's value into B's L1.
          assert.ok(await until(() => h.b.cacheInfo().l2Hits === 1), "B read A's value");
          assert.equal(await h.b.get("k", { skipL2Read: true }), "A", "in B's L1");
          assert.equal(await h.b.getOrSet("k", h.factoryB, opts), "A");
          assert.equal(h.bCalls(), 0);
        } finally {
          h.open();
          await Promise.allSettled([h.running, pb]); // before the fix B was still waiting
          await s.close();
        }
      },
      { ignore, ignoreReason: sharedRedisTestOptions.ignoreReason, sanitize: kind === "memory" },
    );
  }

  test(
    `createCache (${kind}): getOrSet without a timeout still waits for another instance's lock`,
    async () => {
      const s = make();
      const h = await holding(s, interop, false);
      const p = h.b.getOrSet("k", h.factoryB);
      try {
        assert.equal((await within(p, 300)).outcome, "pending", "B waits for A");
        h.open();
        assert.equal(await p, "A");
        assert.equal(h.bCalls(), 0);
      } finally {
        h.open();
        await Promise.allSettled([h.running, p]);
        await s.close();
      }
    },
    { ignore, ignoreReason: sharedRedisTestOptions.ignoreReason, sanitize: kind === "memory" },
  );
}

test(
  "createCache: after a hard timeout the wait goes on in the background, calls meanwhile join " +
    "it, and B computes once when stampede.wait runs out",
  async () => {
    const s = KINDS.memory.make();
    const h = await holding(s, false, false, { stampede: { wait: 0.5 } });
    const pb = h.b.getOrSet("k", h.factoryB, { hardTimeout: 0.1 });
    try {
      const first = await within(pb);
      assert.ok(first.error instanceof FactoryTimeoutError, String(first.error));
      // A second call joins the wait in flight (it does not wait for the lock on its own).
      const second = await within(h.b.getOrSet("k", h.factoryB, { hardTimeout: 0.1 }));
      assert.ok(second.error instanceof FactoryTimeoutError, String(second.error));
      // A still holds the lock: the wait runs out and B computes, once, in the background.
      assert.ok(await until(() => h.bCalls() === 1), "B computes after stampede.wait");
      assert.ok(
        await until(async () => (await h.b.get("k", { skipL2Read: true })) === "B"),
        "B's result is stored",
      );
      await sleep(50);
      assert.equal(h.bCalls(), 1);
    } finally {
      h.open();
      await Promise.allSettled([h.running, pb]);
      await s.close();
    }
  },
  { sanitize: true },
);

for (
  const [label, fnOpts, stale] of [
    ["hardTimeout, no stale value", { hardTimeout: 0.2 }, false],
    ["hardTimeout, stale value", { hardTimeout: 0.2 }, true],
    ["softTimeout, stale value", { softTimeout: 0.1 }, true],
  ] as const
) {
  test(`cache(fn): the function's ${label} bounds the wait for another process's lock`, async () => {
    // Expiry by the test's clock: TTLs of a minute that no load on the host reaches by itself.
    const clock = shiftDateNow();
    const backend = new MemoryBackend();
    const g = gate();
    const pending: Promise<unknown>[] = [];
    try {
      let calls = 0;
      // One function (one identity) in both "processes"; its first value is computed at once.
      const work = async (id: number) => {
        const n = ++calls;
        if (n > 1 || !stale) await g.promise;
        return { id, n };
      };
      const name = `lockwait.fn.${label.replaceAll(/\W+/g, "_")}`;
      const o = { name, ttl: 60, staleTtl: 600, backend, ...bare };
      const fa = cache(work, o);
      const fb = cache(work, { ...o, ...fnOpts });
      if (stale) {
        assert.deepEqual(await fa(1), { id: 1, n: 1 });
        clock.advance(61_000); // past the TTL: stale in L2
      }
      const held = stale ? 2 : 1;
      const running = fa(1);
      assert.ok(await until(() => calls === held), "A computes");
      const pb = fb(1);
      pending.push(running, pb);
      const got = await within(pb);
      if (stale) {
        assert.equal(got.outcome, "value", `B answered within ${ANSWER_WITHIN_MS} ms`);
        assert.deepEqual(got.value, { id: 1, n: 1 }, "the stale value");
      } else {
        assert.equal(got.outcome, "error", `B answered within ${ANSWER_WITHIN_MS} ms`);
        assert.ok(got.error instanceof FactoryTimeoutError, String(got.error));
      }
      assert.equal(calls, held, "B does not compute while A holds the lock");
      g.open();
      assert.deepEqual(await running, { id: 1, n: held });
      assert.ok(await until(() => fb.cacheInfo().l2Hits === 1), "B read A's value");
      assert.deepEqual(await fb(1), { id: 1, n: held });
      assert.equal(calls, held);
    } finally {
      g.open();
      await Promise.allSettled(pending); // before the fix B was still waiting
      clock.restore();
      await backend.close();
    }
  });
}
