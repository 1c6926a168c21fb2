/**
 * An invalidation that lands while a computation of the key runs (a miss, a joined single flight,
 * a computation past its soft timeout, a background refresh; under a tenant; or another
 * instance's invalidation heard on the bus): the computation's callers, which asked before it,
 * get its result, but it is stored neither in L1 nor in L2, and calls made after the
 * invalidation compute anew. These paths held already (the engine's epoch); this file keeps them.
 *
 * Deterministic: factories are held open until the test releases them; time for the timeouts'
 * stale values and the refresh is the test's shifted `Date.now`.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { shiftDateNow } from "../_timing.ts";
import { cache, clearFunction, invalidateTags, MemoryBackend, withTenant } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";
import { kindOptions, KINDS, store } from "./_backends.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

/** Every microtask chain settles before a timer fires (memory backend: no I/O). */
const flush = () => new Promise((r) => setTimeout(r, 0));

let n = 0;

/** A function whose computations read `source.version`; the next one after `hold()` is held. */
function source() {
  const s = {
    version: "old",
    held: null as null | { started: () => void; wait: Promise<void> },
    hold() {
      const g = gate();
      const started = gate();
      s.held = { started: started.open, wait: g.wait };
      return { started: started.wait, release: g.open };
    },
    work: async (_x: number): Promise<string> => {
      const mine = s.version;
      const h = s.held;
      if (h !== null) {
        s.held = null;
        h.started();
        await h.wait;
      }
      return mine;
    },
  };
  return s;
}

type Fn = ((x: number) => Promise<string>) & {
  invalidate(x: number): Promise<void>;
  cacheClear(): Promise<void>;
};
const INVALIDATIONS: [string, (f: Fn, name: string) => Promise<void>][] = [
  ["f.invalidate", (f) => f.invalidate(1)],
  ["cacheClear", (f) => f.cacheClear()],
  ["invalidateTags", () => invalidateTags("inflight-inv")],
  ["clearFunction", (_f, name) => clearFunction(name)],
];

for (const kind of KINDS) {
  for (const [what, invalidate] of INVALIDATIONS) {
    test(
      `cache(fn) on ${kind}: ${what} during a miss and a call joining it: neither stores, later calls compute`,
      async () => {
        const s = store(kind, "inflight-inv");
        try {
          const src = source();
          const o = { ...bare, name: `inflight-inv-${n++}`, tags: () => ["inflight-inv"] };
          const f = cache(src.work, { ...o, backend: s.open() }) as Fn;
          const h = src.hold();
          const first = f(1);
          await h.started;
          const joined = f(1); // joins the computation
          src.version = "new";
          await invalidate(f, o.name);
          const after = f(1); // asked after the invalidation: computes anew (after the lock)
          h.release();
          assert.equal(await after, "new");
          assert.equal(await first, "old", "asked before the invalidation");
          assert.equal(await joined, "old", "joined before the invalidation");
          assert.equal(await f(1), "new");
          src.version = "newer";
          const other = cache(src.work, { ...o, backend: s.open(), l1: false }); // another instance
          assert.equal(await other(1), "new", "L2 holds the value computed after it");
        } finally {
          await s.close();
        }
      },
      kindOptions(kind),
    );
  }

  test(
    `cache(fn) on ${kind}: an invalidation under a tenant during that tenant's miss`,
    async () => {
      const s = store(kind, "inflight-inv-tenant");
      try {
        const src = source();
        const o = { ...bare, name: `inflight-inv-${n++}` };
        const f = cache(src.work, { ...o, backend: s.open() }) as Fn;
        const h = src.hold();
        const first = withTenant("acme", () => f(1));
        await h.started;
        src.version = "new";
        await withTenant("acme", () => f.invalidate(1));
        h.release();
        assert.equal(await first, "old");
        assert.equal(await withTenant("acme", () => f(1)), "new");
        src.version = "newer";
        const other = cache(src.work, { ...o, backend: s.open(), l1: false });
        assert.equal(await withTenant("acme", () => other(1)), "new");
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );
}

test(
  "cache(fn): f.invalidate while a computation runs on past its soft timeout: it does not store",
  async () => {
    const clock = shiftDateNow();
    try {
      const src = source();
      const backend = new MemoryBackend();
      const o = { ...bare, name: `inflight-inv-${n++}`, staleTtl: 600, softTimeout: 0.05 };
      const f = cache(src.work, { ...o, backend });
      src.version = "v0";
      assert.equal(await f(1), "v0");
      clock.advance(61_000); // stale
      src.version = "old";
      const h = src.hold();
      assert.equal(
        await f(1),
        "v0",
        "the stale value at the soft timeout; the computation goes on",
      );
      await h.started;
      src.version = "new";
      await f.invalidate(1);
      const after = f(1); // does not join the background computation (waits for its lock)
      h.release();
      assert.equal(await after, "new");
      await flush();
      assert.equal(await f(1), "new");
      src.version = "newer";
      const other = cache(src.work, { ...o, backend, l1: false });
      assert.equal(await other(1), "new");
    } finally {
      clock.restore();
    }
  },
  { sanitize: false },
);

test("cache(fn): f.invalidate during a background (eager) refresh: the refresh does not store", async () => {
  const clock = shiftDateNow();
  try {
    const src = source();
    const backend = new MemoryBackend();
    const o = {
      ...bare,
      name: `inflight-inv-${n++}`,
      eagerRefresh: 0.5,
      l1: { swrEnabled: false },
    };
    const f = cache(src.work, { ...o, backend });
    assert.equal(await f(1), "old");
    clock.advance(31_000); // due for its refresh
    const h = src.hold();
    assert.equal(await f(1), "old", "served; the refresh starts");
    await h.started;
    src.version = "new";
    await f.invalidate(1);
    h.release();
    await flush(); // the refresh ends
    assert.equal(await f(1), "new");
    src.version = "newer";
    const other = cache(src.work, { ...o, eagerRefresh: false, backend, l1: false });
    assert.equal(await other(1), "new");
  } finally {
    clock.restore();
  }
});

const REMOTE: [string, (key: string) => Omit<InvalidationEvent, "sender">][] = [
  ["a deletion of the key", (key) => ({ level: "key", targets: [key], reason: "delete" })],
  ["a tag invalidation", () => ({ level: "tags", targets: ["inflight-inv"] })],
  [
    "a clear of the function",
    (key) => ({ level: "prefix", targets: [key.slice(0, key.indexOf(":args:") + 6)] }),
  ],
  ["a clear of everything", () => ({ level: "all", targets: [] })],
];

for (const [what, event] of REMOTE) {
  test(`cache(fn): another instance's ${what} during a miss: not stored in L1 or L2`, async () => {
    const { backend, inner, deliver, read } = drivenBackend({ bus: true });
    const src = source();
    const o = { ...bare, name: `inflight-inv-${n++}`, tags: () => ["inflight-inv"] };
    const f = cache(src.work, { ...o, backend, l1: { invalidation: true } });
    const h = src.hold();
    const first = f(1); // its first load subscribes to the bus
    await h.started;
    const key = read[0]; // the L2 key of f(1)
    assert.ok(key !== undefined && key.includes(":args:"), key);
    src.version = "new";
    deliver(event(key));
    h.release();
    assert.equal(await first, "old");
    assert.equal(await f(1), "new", "not in L1");
    src.version = "newer";
    const other = cache(src.work, { ...o, backend: inner, l1: false });
    assert.equal(await other(1), "new", "not in L2");
  });
}
