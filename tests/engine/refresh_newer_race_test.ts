/**
 * A background refresh that finds, under the key's lock, a value another process stored since its
 * entry was made takes that value into L1 (`takeNewer` in `engine/_refresh.ts`). The L2 read that
 * found it must not undo a write of the key made while it was in flight: here a cache object's
 * `expire`, which leaves the L1 entry in place (expired) and writes the L2 entry back stale.
 * Before, the refresh checked only that its entry was still the L1 entry, so it put the value it
 * had read into L1 as fresh over the `expire`: `get` answered it after `expire` had returned,
 * until the L1 copy's lifetime ended, while L2 (and every other instance) had it expired.
 *
 * Deterministic: the backend holds the refresh's read answer until the test releases it, after
 * the `expire`. Time is the test's shifted `Date.now` (the memory backend's TTLs too).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { shiftDateNow, until } from "../_timing.ts";
import { createCache, MemoryBackend } from "../../mod.ts";

/** The stampede lock of the key (the memory backend's, `_l2_lock.ts` ComposedFetchLock). */
const LOCK = "t:default:obj:ns:refresh-newer-expire:key:k:lock";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test("createCache: expire() during a refresh's read of a newer L2 value is not undone in L1", async () => {
  const clock = shiftDateNow();
  try {
    const inner = new MemoryBackend(); // after shiftDateNow: its TTLs run on the shifted clock
    const { backend, hold } = drivenBackend({ inner });
    const opts = {
      ...bare,
      namespace: "refresh-newer-expire",
      ttl: 60,
      staleTtl: 600,
      eagerRefresh: 0.5,
      l1: { swrEnabled: false },
    };
    const c = createCache({ ...opts, backend });
    const other = createCache({ ...opts, eagerRefresh: false, backend: inner, l1: false }); // another process
    assert.equal(await c.getOrSet("k", () => "v1"), "v1"); // L1 and L2
    clock.advance(2_000);
    await other.set("k", "v2", { skipBus: true }); // stored since, not heard
    clock.advance(29_000); // c's entry is due for its refresh (30 s)
    const h = hold();
    let computed = 0;
    const factory = () => `computed ${++computed}`;
    assert.equal(await c.getOrSet("k", factory), "v1", "served at once; the refresh starts");
    await h.read; // the refresh found v2 newer and read it; its answer is held
    await c.expire("k"); // expired now, here and in L2
    assert.equal(await c.get("k"), undefined, "expired");
    h.release();
    // The refresh ends (it takes the newer value, or leaves it): it releases the key's lock.
    const lock = inner.capabilities.lock!;
    const free = async () => {
      const l = await lock.acquire(LOCK, { leaseMs: 1000, waitMs: 0 });
      await l?.release();
      return l !== null;
    };
    assert.ok(await until(free), "the refresh ended");
    assert.equal(await c.get("k"), undefined, "still expired: the refresh did not put v2 back");
    assert.equal(computed, 0);
  } finally {
    clock.restore();
  }
});
