// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * `expire(key)` says the key's value is out of date: the next read misses and recomputes. Two ways
 * it did not hold:
 *
 * - A computation of the key that started before it (a `getOrSet` miss in flight, or the
 *   background refresh of its L1 entry) stored its result after it, as fresh, in L1 and L2: the
 *   next read answered that value, computed from the state `expire` had declared old. `set` and
 *   `delete` already stopped such a computation; `expire` now does too (`supersede`).
 * - An invalidation of something else while `expire` read the entry back (another key's `delete`,
 *   a tag, a remote event: anything that moves the epoch) made it give up its write-back, leaving
 *   the entry fresh in L2: once L1 was gone (or in any other instance) it answered as fresh. It
 *   now deletes the entry instead (a write or deletion of the key itself meanwhile still wins).
 *
 * Deterministic: factories and the L2 read are held open until the test releases them; time for
 * the refresh is the test's shifted `Date.now`.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { shiftDateNow } from "../_timing.ts";
import { createCache, MemoryBackend } from "../../mod.ts";
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

for (const kind of KINDS) {
  for (const l1 of [true, false]) {
    test(
      `createCache on ${kind} (l1 ${l1}): expire during a getOrSet in flight: its result is not stored`,
      async () => {
        const s = store(kind, "expire-inflight");
        try {
          const o = { ...bare, namespace: `expire-inflight-${n++}`, staleTtl: 600 };
          const c = createCache({ ...o, backend: s.open(), l1: { enabled: l1 } });
          const held = gate();
          const started = gate();
          let version = "old";
          const running = c.getOrSet("k", async () => {
            const mine = version;
            started.open();
            await held.wait;
            return mine;
          });
          await started.wait;
          version = "new";
          await c.expire("k");
          held.open();
          assert.equal(await running, "old", "its caller asked before the expire");
          assert.equal(await c.get("k"), undefined, "not fresh in this instance");
          const other = createCache({ ...o, backend: s.open(), l1: false }); // another instance
          assert.equal(await other.get("k"), undefined, "nor in L2");
          assert.equal(await c.getOrSet("k", async () => version), "new");
        } finally {
          await s.close();
        }
      },
      kindOptions(kind),
    );
  }
}

test("createCache: expire during the background refresh of the key: the refresh does not store", async () => {
  const clock = shiftDateNow();
  try {
    const backend = new MemoryBackend(); // after shiftDateNow: its TTLs run on the shifted clock
    const o = { ...bare, namespace: `expire-inflight-${n++}`, staleTtl: 600, eagerRefresh: 0.5 };
    const c = createCache({ ...o, backend, l1: { swrEnabled: false } });
    assert.equal(await c.getOrSet("k", async () => "v1"), "v1");
    clock.advance(31_000); // due for its refresh
    const held = gate();
    const started = gate();
    let version = "v2";
    const factory = async () => {
      const mine = version;
      started.open();
      await held.wait;
      return mine;
    };
    assert.equal(await c.getOrSet("k", factory), "v1", "served; the refresh starts");
    await started.wait;
    version = "v3";
    await c.expire("k");
    held.open();
    await flush(); // the refresh ends
    assert.equal(await c.get("k"), undefined, "not put back as fresh");
    const other = createCache({ ...o, eagerRefresh: false, backend, l1: false });
    assert.equal(await other.get("k"), undefined, "nor in L2");
    assert.equal(await c.getOrSet("k", async () => version), "v3");
  } finally {
    clock.restore();
  }
});

type Obj = ReturnType<typeof createCache>;
const ELSEWHERE: [string, (c: Obj) => Promise<void>][] = [
  ["another key's delete", (c) => c.delete("other")],
  ["a tag invalidation of another key", (c) => c.deleteByTags("other-tag")],
];

for (const [what, invalidate] of ELSEWHERE) {
  test(`createCache: ${what} during expire's L2 read does not leave the entry fresh`, async () => {
    const inner = new MemoryBackend();
    const { backend, hold } = drivenBackend({ inner });
    const o = { ...bare, namespace: `expire-inflight-${n++}`, staleTtl: 600 };
    const c = createCache({ ...o, backend });
    await c.set("k", "v");
    await c.set("other", "o", { tags: ["other-tag"] });
    const h = hold();
    const expiring = c.expire("k");
    await h.read; // expire read the entry; its answer is held
    await invalidate(c);
    h.release();
    await expiring;
    assert.equal(await c.get("k"), undefined, "expired here");
    const other = createCache({ ...o, backend: inner, l1: false });
    assert.equal(await other.get("k"), undefined, "and in L2");
  });
}

test("createCache: a set of the key during expire's L2 read still wins", async () => {
  const inner = new MemoryBackend();
  const { backend, hold } = drivenBackend({ inner });
  const o = { ...bare, namespace: `expire-inflight-${n++}`, staleTtl: 600 };
  const c = createCache({ ...o, backend });
  await c.set("k", "v1");
  const h = hold();
  const expiring = c.expire("k");
  await h.read;
  await c.set("k", "v2");
  h.release();
  await expiring;
  assert.equal(await c.get("k"), "v2");
  const other = createCache({ ...o, backend: inner, l1: false });
  assert.equal(await other.get("k"), "v2");
});
