// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * The wrapper's inlined L1 hit (`cache.ts`), in both its forms: `unary` (a one-parameter function
 * called with one number or string) and the general `wrapper`. Expiry exact to the millisecond,
 * the shared entry's one fulfilled promise (`sharedAnswer`), hits counted (statistics and the
 * Prometheus counter), the background refresh, and the calls `unary` hands to `wrapper`.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { shiftDateNow, until } from "../_timing.ts";
import { cache, MemoryBackend } from "../../mod.ts";
import { getDefaultMetrics } from "../../health/mod.ts";
import { L1_REBASE_MS, L1Cache } from "../../engine/l1.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/** A counted function of `arity` parameters (1 or 2), async or not, returning a fresh object. */
function counted(asyncFn: boolean, arity: 1 | 2) {
  const state = { runs: 0 };
  const body = (x: unknown) => ({ x, run: ++state.runs, tags: ["a"] });
  const fn = arity === 1
    ? (asyncFn ? async (x: unknown) => body(x) : (x: unknown) => body(x))
    : (asyncFn
      ? async (x: unknown, _y?: unknown) => body(x)
      : (x: unknown, _y?: unknown) => body(x));
  return { state, fn: fn as (x: unknown, y?: unknown) => unknown };
}

for (const asyncFn of [true, false]) {
  for (const arity of [1, 2] as const) {
    for (const arg of [7, "seven"]) {
      test(`L1 hit (${asyncFn ? "async" : "sync"}, ${arity} parameter(s), ${typeof arg} key): an entry of a 60 s TTL is served at 59,999 ms and not at 60,000 ms`, async () => {
        const clock = shiftDateNow(true); // Date.now moves only when the test says
        try {
          const { state, fn } = counted(asyncFn, arity);
          const f = cache(fn, {
            name: `l1hit.ttl.${asyncFn}.${arity}.${typeof arg}`,
            ttl: 60,
            backend: null,
            l1: { copy: "freeze", swrEnabled: false },
          });
          await f(arg);
          clock.advance(59_999);
          assert.equal(((await f(arg)) as { run: number }).run, 1, "served 1 ms before expiry");
          assert.equal(state.runs, 1);
          clock.advance(1);
          assert.equal(((await f(arg)) as { run: number }).run, 2, "expired at its TTL exactly");
          assert.equal(f.cacheInfo().l1Hits, 1);
        } finally {
          clock.restore();
        }
      });
    }
  }
}

test('l1.copy "freeze": every hit answers the same frozen object, one fulfilled promise, counted', async () => {
  const { state, fn } = counted(true, 1);
  const f = cache(fn as (x: number) => Promise<{ run: number; tags: string[] }>, {
    name: "l1hit.freeze.same",
    namespace: "l1hitns",
    ttl: 60,
    backend: null,
    l1: { copy: "freeze" },
    monitoring: { prometheus: true, collectStats: true },
  });
  const first = await f(1);
  const before = Date.now();
  const p = f(1);
  const q = f(1);
  // One fulfilled promise per entry: awaiting it is one microtask, as Promise.resolve(value) was.
  assert.equal(p, q);
  let order = "";
  const settled = p.then(() => (order += "p"));
  await Promise.resolve().then(() => (order += "t"));
  await settled;
  assert.equal(order, "pt", "settles in the microtask its then was queued in");
  const a = await p;
  const b = await f(1);
  assert.equal(a, b);
  assert.equal(a, first, "the stored frozen value itself");
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.tags));
  assert.equal(state.runs, 1);
  const info = f.cacheInfo();
  assert.equal(info.l1Hits, 3);
  assert.equal(info.hits, 3);
  assert.ok((info.lastOperationAt ?? 0) >= before, "the last operation's time moves on a hit");
  const m = getDefaultMetrics();
  const labels = {
    namespace: "l1hitns",
    function: m.functionLabel(f.identity),
    layer: "l1",
  };
  assert.equal(m.hits.get(labels), 3, "the Prometheus L1 hit counter");
  // A new entry (after invalidation) gets its own promise.
  await f.invalidate(1);
  const c = await f(1);
  assert.notEqual(c, a);
  assert.notEqual(f(1), p);
  assert.equal(await f(1), c);
});

test("one-parameter wrapper: calls it does not key itself give the general wrapper's answers", async () => {
  const seen: unknown[][] = [];
  const f = cache(async (x: unknown, ...rest: unknown[]) => {
    seen.push([x, ...rest]);
    return { x };
  }, { name: "l1hit.unary.fallback", ttl: 60, backend: null });
  const g = cache(async (x: unknown) => {
    seen.push([x]);
    return { x };
  }, { name: "l1hit.unary.fallback.one", ttl: 60, backend: null });
  const loose = g as unknown as (...a: unknown[]) => Promise<unknown>;
  await g(1);
  // A trailing undefined and a second call are the same key (as argKey says).
  await loose(1, undefined);
  await g(1);
  assert.equal(seen.length, 1);
  // 0 and -0: one key, as in the protocol.
  await g(0);
  await g(-0);
  assert.equal(seen.length, 2);
  // An object, a boolean, no argument at all: keyed by the general wrapper, cached all the same.
  await g({ a: 1 });
  await g({ a: 1 });
  await g(true);
  await g(true);
  await loose();
  await loose();
  assert.equal(seen.length, 5);
  // A second argument is part of the key.
  await loose(1, 2);
  assert.equal(seen.length, 6);
  assert.deepEqual(seen.at(-1), [1]);
  // "1" and 1 are different keys.
  await g("1");
  assert.equal(seen.length, 7);
  assert.equal(g.cacheInfo().l1Hits, 6);
  // A function of another arity keeps the general wrapper.
  await f(1);
  await f(1);
  assert.equal(seen.length, 8);
  assert.equal(f.cacheInfo().l1Hits, 1);
});

test("one-parameter wrapper: a listener sees its hits (the observed path)", async () => {
  const f = cache(async (x: number) => ({ x }), {
    name: "l1hit.unary.events",
    ttl: 60,
    backend: null,
    l1: { copy: "freeze" },
  });
  await f(1);
  const hits: unknown[] = [];
  const listener = (e: Event) => hits.push(e);
  f.events.addEventListener("hit", listener);
  try {
    await f(1);
    assert.equal(hits.length, 1);
    const r = await f.withStatus(1);
    assert.equal(r.status, "hit");
    assert.equal(r.layer, "l1");
  } finally {
    f.events.removeEventListener("hit", listener);
  }
  await f(1);
  assert.equal(hits.length, 2, "withStatus emits its hit; nothing after the removal");
});

test("one-parameter wrapper: a hit past the SWR point answers at once and refreshes in the background", async () => {
  const clock = shiftDateNow(true);
  try {
    let runs = 0;
    const f = cache(async (x: number) => ({ x, run: ++runs }), {
      name: "l1hit.unary.swr",
      ttl: 60,
      backend: new MemoryBackend(),
      l1: { copy: "freeze", swrEnabled: true, swrThreshold: 0.5, swrJitter: 0 },
      ...bare,
    });
    assert.equal((await f(1)).run, 1);
    clock.advance(29_000);
    assert.equal((await f(1)).run, 1, "before the SWR point: a plain hit");
    assert.equal(runs, 1);
    clock.advance(2_000);
    assert.equal((await f(1)).run, 1, "past it: the old value at once");
    assert.ok(await until(() => runs === 2), "the refresh ran");
    assert.ok(await until(async () => (await f(1)).run === 2), "the refreshed value is served");
  } finally {
    clock.restore();
  }
});

test("lastOperationAt: the time of the last inlined hit, to the millisecond, in both wrapper forms", async () => {
  const clock = shiftDateNow(true);
  try {
    const t0 = Date.now();
    const one = cache(async (x: number) => ({ x }), {
      name: "l1hit.last.one",
      ttl: 60,
      backend: null,
    });
    const two = cache(async (x: number, _y?: number) => ({ x }), {
      name: "l1hit.last.two",
      ttl: 60,
      backend: null,
    });
    for (const f of [one, two]) {
      assert.equal(f.cacheInfo().lastOperationAt, null);
      await f(1);
      assert.equal(f.cacheInfo().lastOperationAt, Date.now(), "the miss");
      clock.advance(1234);
      await f(1);
      assert.equal(f.cacheInfo().l1Hits, 1);
      assert.equal(f.cacheInfo().lastOperationAt, Date.now(), "the hit");
    }
    assert.equal(one.cacheInfo().lastOperationAt, t0 + 1234, "one's hit, before two's calls");
  } finally {
    clock.restore();
  }
});

test("L1Cache.lastHit moves with the base on a rebase (same epoch time)", () => {
  let wall = 1_700_000_000_000;
  const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10 }, () => wall);
  wall += 500;
  l1.lastHit = l1.now();
  const at = l1.base + l1.lastHit;
  wall += L1_REBASE_MS + 7;
  assert.equal(l1.now(), 0, "rebased");
  assert.equal(l1.base + l1.lastHit, at);
  assert.equal(at, 1_700_000_000_500);
});
