// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * A computation that passes its hard timeout goes on in the background, and calls of its key that
 * arrive meanwhile join it (`_hard_timeout.ts`). One that an invalidation marked stale before its
 * hard timeout fired must not be joined: it was computed from the state the invalidation replaced.
 * Before, the timer registered it as the key's late work whatever came since, so a call made after
 * `f.invalidate(...)` (or `delete`, `invalidateTags`, `cacheClear`) joined it and answered the
 * invalidated value (its store step, which checks the epoch, kept it out of L1 and L2 only).
 *
 * Deterministic: the factory is held open until the test releases it; the hard timeout (0.2 s)
 * fires after the invalidation, which the test awaits first (its caller's rejection says it fired).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import {
  cache,
  createCache,
  FactoryTimeoutError,
  invalidateTags,
  MemoryBackend,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

let n = 0;

type Invalidate = (
  f: { invalidate(x: number): Promise<void>; cacheClear(): Promise<void> },
) => Promise<void>;

const INVALIDATIONS: [string, Invalidate][] = [
  ["f.invalidate", (f) => f.invalidate(1)],
  ["cacheClear", (f) => f.cacheClear()],
  ["invalidateTags", () => invalidateTags("hard-timeout-inv")],
];

for (const stampede of [true, false]) {
  for (const [what, invalidate] of INVALIDATIONS) {
    test(`cache(fn) (stampede ${stampede}): ${what} before the hard timeout: later calls do not join the old computation`, async () => {
      const held = gate();
      const started = gate();
      let version = "old";
      let calls = 0;
      const backend = new MemoryBackend();
      const o = {
        ...bare,
        name: `hard-timeout-inv-${n++}`,
        tags: () => ["hard-timeout-inv"],
        stampede: stampede ? {} : false as const,
      };
      const work = async (_x: number) => {
        const mine = version;
        if (++calls === 1) {
          started.open();
          await held.wait;
        }
        return mine;
      };
      const f = cache(work, { ...o, backend, hardTimeout: 0.2 });
      const first = f(1);
      await started.wait; // computing "old"
      version = "new";
      await invalidate(f);
      await assert.rejects(first, FactoryTimeoutError); // the hard timeout fired after it
      const after = f(1); // asked after the invalidation
      held.open();
      assert.equal(await after, "new");
      assert.equal(await f(1), "new");
      version = "newer";
      const other = cache(work, { ...o, backend, l1: false }); // another instance
      assert.equal(await other(1), "new", "L2 holds the new value");
    });
  }
}

test("createCache: delete before the hard timeout: getOrSet after it does not join the old computation", async () => {
  const c = createCache({ ...bare, backend: new MemoryBackend() });
  const held = gate();
  const started = gate();
  const first = c.getOrSet("k", async () => {
    started.open();
    await held.wait;
    return "old";
  }, { hardTimeout: 0.2 });
  await started.wait;
  await c.delete("k");
  await assert.rejects(first, FactoryTimeoutError);
  const after = c.getOrSet("k", async () => "new", { hardTimeout: 0.2 });
  held.open();
  assert.equal(await after, "new");
  assert.equal(await c.get("k"), "new");
});

test("createCache: a stale value served at the hard timeout after a delete: the next call computes", async () => {
  const c = createCache({ ...bare, backend: new MemoryBackend(), staleTtl: 600 });
  await c.set("k", "v0");
  await c.expire("k"); // a stale value for the hard timeout to serve
  const held = gate();
  const started = gate();
  const first = c.getOrSet("k", async () => {
    started.open();
    await held.wait;
    return "old";
  }, { hardTimeout: 0.2 });
  await started.wait;
  await c.deleteByTags("never-set"); // moves the epoch without touching the key…
  await c.delete("k"); // …and the key itself
  assert.equal(await first, "v0", "its caller asked before: it gets the stale value it had");
  const after = c.getOrSet("k", async () => "new");
  held.open();
  assert.equal(await after, "new");
});
