// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * The fail-safe throttle (`failSafeThrottle`): after a failure answered from a stale value, that
 * value is reused for the window without calling the function. A computation that started before
 * an invalidation and fails after it must not open such a window: its stale value is the one the
 * invalidation removed. Before, the failure held it anyway (the invalidation had cleared the
 * throttle before the failure came), and every call of the key for the next 30 s answered the
 * invalidated value without calling the function. Its own caller, which asked before the
 * invalidation, may still get the stale value it had.
 *
 * Deterministic: the factory is held open until the test lets it fail; time for the cache(fn)
 * case is the test's shifted `Date.now`.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { shiftDateNow } from "../_timing.ts";
import { cache, createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

/** Every microtask chain settles before a timer fires (no I/O in these tests: memory backend). */
const flush = () => new Promise((r) => setTimeout(r, 0));

type Obj = ReturnType<typeof createCache>;
const INVALIDATIONS: [string, (c: Obj) => Promise<void>][] = [
  ["delete", (c) => c.delete("k")],
  ["deleteByTags", (c) => c.deleteByTags("t")],
  ["clear", (c) => c.clear()],
];

for (const l1 of [true, false]) {
  for (const [what, invalidate] of INVALIDATIONS) {
    test(`createCache (l1 ${l1}): ${what} during a computation that then fails: no throttle window on the removed value`, async () => {
      const c = createCache({
        ...bare,
        backend: new MemoryBackend(),
        staleTtl: 600,
        l1: { enabled: l1 },
      });
      await c.set("k", "v0", { tags: ["t"] });
      await c.expire("k"); // stale: the fallback of the next computation
      const held = gate();
      const started = gate();
      const failing = c.getOrSet("k", async () => {
        started.open();
        await held.wait;
        throw new Error("source down");
      });
      await started.wait;
      await invalidate(c);
      held.open();
      assert.equal(await failing, "v0", "its caller asked before: the stale value it had");
      let calls = 0;
      assert.equal(await c.getOrSet("k", async () => (calls++, "new")), "new");
      assert.equal(calls, 1, "the function was called");
    });
  }

  test(
    `createCache (l1 ${l1}): delete while a computation runs past its soft timeout, then fails: no throttle window`,
    async () => {
      const c = createCache({
        ...bare,
        backend: new MemoryBackend(),
        staleTtl: 600,
        l1: { enabled: l1 },
      });
      await c.set("k", "v0");
      await c.expire("k");
      const held = gate();
      const slow = c.getOrSet("k", async () => {
        await held.wait;
        throw new Error("source down");
      }, { softTimeout: 0.05 });
      assert.equal(await slow, "v0", "served at the soft timeout; the computation goes on");
      await c.delete("k");
      held.open(); // the background computation fails
      await flush();
      assert.equal(await c.getOrSet("k", async () => "new"), "new");
    },
    { sanitize: false },
  );
}

test("cache(fn): f.invalidate during a computation that then fails: the next call calls the function", async () => {
  const clock = shiftDateNow();
  try {
    let mode: "ok" | "hold" = "ok";
    let version = "v0";
    const held = gate();
    const started = gate();
    const f = cache(async (_x: number) => {
      if (mode === "hold") {
        started.open();
        await held.wait;
        throw new Error("source down");
      }
      return version;
    }, { ...bare, name: "throttle-invalidate-fn", backend: new MemoryBackend(), staleTtl: 600 });
    assert.equal(await f(1), "v0");
    clock.advance(61_000); // stale in L1 and L2
    mode = "hold";
    const failing = f(1);
    await started.wait;
    await f.invalidate(1);
    held.open();
    assert.equal(await failing, "v0", "its caller asked before: the stale value it had");
    mode = "ok";
    version = "v1";
    assert.equal(await f(1), "v1");
  } finally {
    clock.restore();
  }
});
