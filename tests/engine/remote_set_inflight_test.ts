/**
 * Another instance stores a value on purpose (a cache object's `set`, a forced refresh
 * `f.refresh()`), or invalidates the key, while this instance computes it: the computation's
 * caller, which asked before, gets its result, but the older result must not be stored over the
 * newer state, in this instance's L1 or in L2.
 *
 * Two guards, on a real Redis (127.0.0.1:6379) with two backends as two instances:
 * - the bus announces such writes as `set` (a computed value is a `write`), and an instance that
 *   hears one stops its work in flight from storing (as for a deletion);
 * - without the bus (an instance without L1 does not subscribe), the computation's write, which
 *   takes the place of its stampede lease, finds a value written over its lease, or nothing while
 *   the lease cannot have run out yet, and is withdrawn (`backends/_redis_set_op.ts`): the next
 *   call computes afresh.
 *
 * Before, the set was announced as a `write`, which leaves work in flight alone, and the late
 * write stayed (after an invalidation too, on instances that do not hear the bus): the older
 * value was answered by every instance until it expired.
 */
import assert from "node:assert/strict";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { gate, until } from "../_timing.ts";
import { heldSource } from "./_held_source.ts";
import { cache, createCache, RedisBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const url = "redis://127.0.0.1:6379";

/** Two backends on one Redis and one channel: two instances. */
function instances(label: string) {
  const opts = {
    url,
    keyPrefix: uniquePrefix(label),
    invalidationChannel: `cktest:inv:${crypto.randomUUID()}`,
  };
  return { opts, a: new RedisBackend(opts), b: new RedisBackend(opts) };
}

/** Until `n` connections listen on `channel`. */
async function subscribers(channel: string, n: number): Promise<void> {
  const r = createClient({ url });
  await r.connect();
  try {
    const ok = await until(async () =>
      Number(((await r.sendCommand(["PUBSUB", "NUMSUB", channel])) as unknown[])[1]) >= n
    );
    assert.ok(ok, "both instances subscribed");
  } finally {
    await r.close();
  }
}

test(
  "createCache (redis): another instance's set during a getOrSet here: its older result is " +
    "answered to its caller, stored neither in this L1 nor in L2",
  async () => {
    const { opts, a: ba, b: bb } = instances("rset-obj");
    const mk = (backend: RedisBackend) =>
      createCache({ ttl: 60, backend, ...bare, l1: { invalidation: true } });
    const a = mk(ba);
    const b = mk(bb);
    try {
      await a.get("warm");
      await b.get("warm");
      await subscribers(opts.invalidationChannel, 2);
      let heard = false;
      a.events.addEventListener("invalidate", () => heard = true);
      const started = gate();
      const release = gate();
      const first = a.getOrSet("k", async () => {
        started.open();
        await release.promise;
        return "old";
      });
      await started.promise;
      await b.set("k", "new");
      // a heard b's announcement while it computed (polled: the bus's connections do not keep
      // the process alive, so a bare promise would let the test end before the message comes)
      assert.ok(await until(() => heard), "a heard the set");
      release.open();
      assert.equal(await first, "old", "its caller asked before the set");
      assert.equal(await a.get("k"), "new", "not in a's L1");
      assert.equal(await b.get("k"), "new");
      const reader = createCache({ ttl: 60, backend: ba, ...bare, l1: false });
      assert.equal(await reader.get("k"), "new", "not in L2");
    } finally {
      await ba.close();
      await bb.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "cache(fn) (redis): another instance's f.refresh() during a miss here: the older result is " +
    "not stored over the refreshed one",
  async () => {
    const { opts, a: ba, b: bb } = instances("rset-fn");
    const src = heldSource();
    const o = { name: "remote-set.refresh", ttl: 60, ...bare, l1: { invalidation: true } };
    const fa = cache(src.work, { ...o, backend: ba });
    const fb = cache(src.work, { ...o, backend: bb });
    try {
      await fa(0);
      await fb(0);
      await subscribers(opts.invalidationChannel, 2);
      let heard = false;
      fa.events.addEventListener("invalidate", () => heard = true);
      const h = src.hold();
      const first = fa(1);
      await h.started;
      src.version = "new";
      assert.equal(await fb.refresh(1), "new");
      assert.ok(await until(() => heard), "a heard the refresh");
      h.release();
      assert.equal(await first, "old");
      src.version = "newer";
      assert.equal(await fa(1), "new", "the refreshed value: not the older one from a's L1");
      const reader = cache(src.work, { ...o, backend: ba, l1: false });
      assert.equal(await reader(1), "new", "nor from L2");
    } finally {
      await ba.close();
      await bb.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

/** The cached function's controls the other instance uses below. */
interface Controls {
  refresh(x: number): Promise<unknown>;
  invalidate(x: number): Promise<void>;
}

/** What another instance does while a computation here holds the key's lease. */
const OVER_LEASE: [string, string, (f: Controls) => Promise<unknown>][] = [
  ["f.refresh()", "finds a value over its lease", (f) => f.refresh(1)],
  ["invalidation", "finds its lease deleted", (f) => f.invalidate(1)],
];

for (const [what, finds, act] of OVER_LEASE) {
  test(
    `cache(fn) (redis), no L1 (no bus): another instance's ${what} during a miss here: the late ` +
      `write ${finds} and is withdrawn; the next call computes`,
    async () => {
      const { a: ba, b: bb } = instances("rset-nol1");
      const src = heldSource();
      const o = { name: `remote-set.nol1.${what}`, ttl: 60, ...bare, l1: false } as const;
      const fa = cache(src.work, { ...o, backend: ba });
      const fb = cache(src.work, { ...o, backend: bb });
      try {
        const h = src.hold();
        const first = fa(1);
        await h.started;
        src.version = "new";
        await act(fb); // overwrites or deletes a's lease marker
        h.release();
        assert.equal(await first, "old", "its caller asked before the other instance's step");
        src.version = "newer";
        const next = await fa(1);
        assert.notEqual(next, "old", "the older value is not answered from L2");
        assert.equal(next, "newer", "computed afresh");
      } finally {
        await ba.close();
        await bb.close();
      }
    },
    sharedRedisTestOptions,
  );
}
