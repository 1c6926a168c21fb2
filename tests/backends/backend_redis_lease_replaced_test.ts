/**
 * The write that takes the place of the stampede lease in the key (`backends/_redis_set_op.ts`,
 * `leasedReply`): its `SET … GET` tells what it replaced. Its own marker is the usual case; the
 * marker of a call that took the key after the lease ran out leaves the late (computed) value too,
 * so that call's lease is not broken. A value means another write landed while the value was
 * computed (another instance's `set`, or a call's value), and nothing while the lease cannot have
 * run out yet means an invalidation deleted the marker: the late write is withdrawn, so that no
 * instance answers the older value until it expires, and a value written over it since stays.
 * Both write paths: the op under a deadline, and the one through `run` (no deadline).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions } from "../_redis_server.ts";
import { RedisBackend } from "../../backends/mod.ts";
import type { FetchLockCapability } from "../../backends/types.ts";

const SHARED = "redis://127.0.0.1:6379";
const prefix = () => `cktest:lease-replaced:${crypto.randomUUID().slice(0, 8)}:`;
const bytes = (s: string) => new TextEncoder().encode(s);
const text = (b: Uint8Array | null) => b === null ? null : new TextDecoder().decode(b);

function inKeyOf(b: RedisBackend): FetchLockCapability {
  const fl = b.capabilities.fetchLock!.inKey;
  assert.ok(fl !== undefined, "the Redis backend has the lease-in-the-key lock");
  return fl;
}

const PATHS: [string, number | undefined][] = [
  ["the op under a deadline", undefined],
  ["the write through run (no deadline)", 0],
];

for (const [path, operationTimeoutMs] of PATHS) {
  const open = (keyPrefix: string) =>
    new RedisBackend({
      url: SHARED,
      keyPrefix,
      ...(operationTimeoutMs === undefined ? {} : { operationTimeoutMs }),
    });

  test(`lease write (${path}): over its own marker it is the value`, async () => {
    const p = prefix();
    await using a = open(p);
    const fl = inKeyOf(a);
    assert.equal(await fl.fetchOrLock("k", "tok-a", 5_000), true);
    await fl.setAndUnlock("k", bytes("v1"), 60, null, "tok-a");
    assert.equal(text(await a.get("k")), "v1");
  }, sharedRedisTestOptions);

  test(
    `lease write (${path}): another instance's set landed over the marker first: the late write ` +
      "is withdrawn, never answered",
    async () => {
      const p = prefix();
      await using a = open(p);
      await using b = open(p);
      const fl = inKeyOf(a);
      assert.equal(await fl.fetchOrLock("k", "tok-a", 5_000), true);
      await b.set("k", bytes("v2 set on purpose"), 60); // overwrites a's marker
      await fl.setAndUnlock("k", bytes("v1 computed before"), 60, null, "tok-a");
      assert.equal(text(await a.get("k")), null, "the older value is not left in L2");
      assert.equal(text(await b.get("k")), null);
    },
    sharedRedisTestOptions,
  );

  test(
    `lease write (${path}): the lease ran out and another call took the key: the late write ` +
      "stays, and that call's lease is not broken (a next call reads the value, no third " +
      "computation); that call's own write then leaves no older value",
    async () => {
      const p = prefix();
      await using a = open(p);
      await using c = open(p);
      await using d = open(p);
      const flA = inKeyOf(a);
      const flC = inKeyOf(c);
      assert.equal(await flA.fetchOrLock("k", "tok-a", 30), true);
      // The lease runs out (Redis expires the marker), and another call takes the key.
      let taken: Uint8Array | boolean = false;
      for (let i = 0; i < 200 && taken !== true; i++) {
        await new Promise((r) => setTimeout(r, 10));
        taken = await flC.fetchOrLock("k", "tok-c", 5_000);
      }
      assert.equal(taken, true, "the lease ran out");
      await flA.setAndUnlock("k", bytes("v1 late"), 60, null, "tok-a"); // over c's marker
      // A computed value, as fresh as the one c computes: it answers the next call. Withdrawn,
      // it would leave the key empty while c's lease runs, and the next call would compute too
      // (under steady load with computations longer than the lease, nothing was ever stored).
      const next = await inKeyOf(d).fetchOrLock("k", "tok-d", 5_000);
      assert.notEqual(next, true, "the next call does not take a lease while c's runs");
      assert.equal(text(next as Uint8Array), "v1 late");
      await flC.setAndUnlock("k", bytes("v3 newer"), 60, null, "tok-c");
      assert.notEqual(text(await a.get("k")), "v1 late", "c's write leaves no older value");
    },
    sharedRedisTestOptions,
  );

  test(
    `lease write (${path}): the marker was deleted (an invalidation) before the write landed: ` +
      "the write is withdrawn",
    async () => {
      const p = prefix();
      await using a = open(p);
      await using b = open(p);
      const fl = inKeyOf(a);
      assert.equal(await fl.fetchOrLock("k", "tok-a", 60_000), true);
      const until = Date.now() + 50_000; // the engine's bound (`leaseHeld`): the lease still runs
      assert.equal(await b.delete("k"), true, "the marker was there, and is deleted");
      const late = bytes("v1 computed before the invalidation");
      await fl.setAndUnlock("k", late, 60, null, "tok-a", undefined, until);
      assert.equal(text(await a.get("k")), null, "the older value is not left in L2");
    },
    sharedRedisTestOptions,
  );

  test(
    `lease write (${path}): the lease ran out with no one else there: the write stays`,
    async () => {
      const p = prefix();
      await using a = open(p);
      const fl = inKeyOf(a);
      assert.equal(await fl.fetchOrLock("k", "tok-a", 20), true);
      const until = Date.now() + 20 - 10; // the engine's bound for a lease of 20 ms
      await new Promise((r) => setTimeout(r, 100)); // past the lease: expired, or about to be
      await fl.setAndUnlock("k", bytes("v1"), 60, null, "tok-a", undefined, until);
      assert.equal(text(await a.get("k")), "v1");
    },
    sharedRedisTestOptions,
  );

  test(
    `lease write (${path}): without the lease's bound, a marker gone is taken for expired`,
    async () => {
      const p = prefix();
      await using a = open(p);
      await using b = open(p);
      const fl = inKeyOf(a);
      assert.equal(await fl.fetchOrLock("k", "tok-a", 60_000), true);
      await b.delete("k");
      // A caller that does not say (a third-party engine): the write stays, as before.
      await fl.setAndUnlock("k", bytes("v1"), 60, null, "tok-a");
      assert.equal(text(await a.get("k")), "v1");
    },
    sharedRedisTestOptions,
  );

  test(
    `lease write (${path}): a value written over the late write since is not withdrawn`,
    async () => {
      const p = prefix();
      await using a = open(p);
      await using b = open(p);
      const fl = inKeyOf(a);
      assert.equal(await fl.fetchOrLock("k", "tok-a", 5_000), true);
      await b.set("k", bytes("v2"), 60);
      // On a's connection, in order: its late write (which finds v2, not its marker), then a
      // newer write; the withdrawal goes out after the late write's reply, when the key holds
      // the newer value: the compare-and-delete leaves it.
      const late = fl.setAndUnlock("k", bytes("v1"), 60, null, "tok-a");
      const newer = a.set("k", bytes("v3"), 60);
      await Promise.all([late, newer]);
      assert.equal(text(await a.get("k")), "v3");
    },
    sharedRedisTestOptions,
  );
}
