/**
 * The L1 cache (`engine/l1.ts`), tested directly rather than through `cache()`: byte accounting
 * (the value's estimated size + key length + the fixed overhead, kept exact through replace, delete and
 * eviction), LRU eviction by bytes and by entry count in least-recently-used order, promotion on
 * read (skipped for the newest eighth, as documented), expiry checked on read and the fail-safe
 * window kept for `stale()`. Times are passed as `now`, so no test depends on the wall clock.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { L1_BYTES, L1_ENTRY_OVERHEAD, L1_SHARED, L1Cache, type L1Entry } from "../../engine/l1.ts";

const TTL = 60_000;

/** An entry holding `n` serialized bytes. */
function bytesEntry(l1: L1Cache, n: number, ttlMs = TTL): L1Entry {
  return l1.entry(new Uint8Array(n), L1_BYTES, n, ttlMs);
}

/** The keys in LRU order (least recently used first). */
function order(l1: L1Cache): unknown[] {
  return [...l1.map.keys()];
}

/** The sum of the entries' counted sizes: must always equal `l1.bytes`. */
function counted(l1: L1Cache): number {
  let sum = 0;
  for (const e of l1.map.values()) sum += e.size;
  return sum;
}

test("L1: an entry counts its stored bytes, its key length and the fixed overhead", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 100 });
  assert.equal(l1.set("abc", bytesEntry(l1, 100)), true);
  assert.equal(l1.bytes, 100 + 3 + L1_ENTRY_OVERHEAD);
  // A value stored by reference counts the size it was given; a number key counts 8.
  assert.equal(l1.set(7, l1.entry({ big: true }, L1_SHARED, 40, TTL)), true);
  assert.equal(l1.bytes, 100 + 3 + 40 + 8 + 2 * L1_ENTRY_OVERHEAD);
  assert.equal(l1.get(7)?.size, 40 + 8 + L1_ENTRY_OVERHEAD);
  assert.equal(counted(l1), l1.bytes);
  assert.equal(l1.size, 2);
});

test("L1: byte accounting stays exact through replace, delete, deleteWhere and clear", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 100 });
  l1.set("a", bytesEntry(l1, 10));
  l1.set("b", bytesEntry(l1, 20));
  l1.set("c", bytesEntry(l1, 30));
  // Replacing counts the new entry only.
  l1.set("a", bytesEntry(l1, 500));
  assert.equal(l1.size, 3);
  assert.equal(l1.bytes, 500 + 20 + 30 + 3 + 3 * L1_ENTRY_OVERHEAD);
  assert.equal(counted(l1), l1.bytes);
  assert.equal(l1.delete("b"), true);
  assert.equal(l1.delete("b"), false);
  assert.equal(l1.bytes, 500 + 30 + 2 + 2 * L1_ENTRY_OVERHEAD);
  l1.set("t1", bytesEntry(l1, 1));
  l1.set("t2", bytesEntry(l1, 2));
  l1.get("t1")!.tags = ["x"];
  l1.get("t2")!.tags = ["x"];
  assert.equal(l1.deleteWhere((e) => e.tags?.includes("x") ?? false), 2);
  assert.deepEqual(order(l1).sort(), ["a", "c"]);
  assert.equal(counted(l1), l1.bytes);
  l1.clear();
  assert.equal(l1.size, 0);
  assert.equal(l1.bytes, 0);
});

test("L1: over maxBytes, least recently used entries are evicted until it fits", () => {
  const one = 100 + 1 + L1_ENTRY_OVERHEAD; // an entry of 100 bytes under a one-letter key
  const l1 = new L1Cache({ maxBytes: 3 * one, maxEntries: 100 });
  l1.set("a", bytesEntry(l1, 100));
  l1.set("b", bytesEntry(l1, 100));
  l1.set("c", bytesEntry(l1, 100));
  assert.equal(l1.bytes, 3 * one); // exactly at the limit: nothing evicted
  assert.deepEqual(order(l1), ["a", "b", "c"]);
  l1.set("d", bytesEntry(l1, 100));
  assert.deepEqual(order(l1), ["b", "c", "d"]);
  assert.equal(l1.bytes, 3 * one);
  // One entry worth two evicts the two oldest.
  l1.set("e", bytesEntry(l1, 100 + one));
  assert.deepEqual(order(l1), ["d", "e"]);
  assert.equal(l1.bytes, 3 * one);
  assert.equal(counted(l1), l1.bytes);
});

test("L1: over maxEntries, the least recently used entry is evicted", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 3 });
  for (const k of ["a", "b", "c", "d"]) l1.set(k, bytesEntry(l1, 1));
  assert.deepEqual(order(l1), ["b", "c", "d"]);
  assert.equal(l1.has("a"), false);
  assert.equal(l1.bytes, 3 * (1 + 1 + L1_ENTRY_OVERHEAD));
});

test("L1: a read promotes the entry, so eviction takes the least recently used, not the oldest", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 3 });
  for (const k of ["a", "b", "c"]) l1.set(k, bytesEntry(l1, 1));
  assert.equal(l1.get("a")?.value, l1.map.get("a")?.value);
  assert.deepEqual(order(l1), ["b", "c", "a"]);
  l1.set("d", bytesEntry(l1, 1));
  assert.deepEqual(order(l1), ["c", "a", "d"]);
  // Replacing a key makes it the most recently used as well.
  l1.set("c", bytesEntry(l1, 1));
  l1.set("e", bytesEntry(l1, 1));
  assert.deepEqual(order(l1), ["d", "c", "e"]);
});

test("L1: reads of the newest eighth do not reorder; older entries are promoted", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 100 });
  const keys = Array.from({ length: 16 }, (_, i) => `k${i}`);
  for (const k of keys) l1.set(k, bytesEntry(l1, 1));
  // 16 entries: the newest eighth is the last two stamps behind the clock plus the newest.
  for (const k of ["k15", "k14", "k13"]) l1.get(k);
  assert.deepEqual(order(l1), keys);
  l1.get("k12");
  assert.deepEqual(order(l1), [...keys.filter((k) => k !== "k12"), "k12"]);
  l1.get("k0");
  assert.deepEqual(order(l1).slice(0, 2), ["k1", "k2"]);
  assert.equal(order(l1).at(-1), "k0");
});

test("L1: an entry larger than maxBytes is not stored and leaves no stale copy", () => {
  const l1 = new L1Cache({ maxBytes: 200, maxEntries: 10 });
  assert.equal(l1.set("a", bytesEntry(l1, 10)), true);
  const before = l1.bytes;
  assert.equal(l1.set("big", bytesEntry(l1, 200)), false);
  assert.equal(l1.has("big"), false);
  assert.equal(l1.bytes, before);
  // Replacing a key by an entry too large drops the old value (it is no longer current).
  assert.equal(l1.set("a", bytesEntry(l1, 500)), false);
  assert.equal(l1.has("a"), false);
  assert.equal(l1.size, 0);
  assert.equal(l1.bytes, 0);
});

test("L1: expiry is checked on read; the expired entry is removed and uncounted", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 10 });
  l1.set("k", l1.entry("v", L1_SHARED, 1, 1_000));
  l1.set("other", bytesEntry(l1, 5));
  const { expiresAt } = l1.map.get("k")!;
  assert.equal(l1.get("k", expiresAt - 1)?.value, "v");
  assert.equal(l1.get("k", expiresAt), undefined);
  assert.equal(l1.map.has("k"), false);
  assert.deepEqual(order(l1), ["other"]);
  assert.equal(l1.bytes, 5 + 5 + L1_ENTRY_OVERHEAD);
  // A zero TTL is already expired.
  l1.set("z", l1.entry(1, L1_SHARED, 1, 0));
  assert.equal(l1.has("z"), false);
  assert.equal(l1.map.has("z"), false);
});

test("L1: an expired entry in its fail-safe window is kept for stale(), then removed", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 10, staleMs: 5_000 });
  const e = l1.entry("v", L1_SHARED, 1, 1_000);
  const staleUntil = e.expiresAt + 5_000;
  l1.set("k", e);
  assert.equal(l1.stale("k", e.expiresAt - 1), undefined); // still fresh: not stale
  assert.equal(l1.get("k", e.expiresAt), undefined); // expired: no hit ...
  assert.equal(l1.map.has("k"), true); // ... but kept
  assert.equal(l1.stale("k", staleUntil - 1)?.value, "v");
  assert.equal(l1.stale("k", staleUntil), undefined);
  assert.equal(l1.map.has("k"), false);
  assert.equal(l1.bytes, 0);
});

test("L1: entry() sets expiry and refresh points from the TTL and refresh delay", () => {
  let wall = 1_700_000_000_000;
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 10 }, () => wall);
  wall += 5;
  const e = l1.entry(new Uint8Array(3), L1_BYTES, 3, 1_000, 400);
  assert.equal(e.size, 3 + L1_ENTRY_OVERHEAD);
  assert.equal(e.expiresAt, 1_005); // ms since the base
  assert.equal(e.refreshAt, 405);
  // Stale-while-revalidate off (or a refresh point at or past the expiry): the expiry itself.
  assert.equal(l1.entry(1, L1_SHARED, 1, 1_000).refreshAt, 1_005);
  assert.equal(l1.entry(1, L1_SHARED, 1, 1_000, 2_000).refreshAt, 1_005);
  // A fractional TTL is rounded up: against a whole-millisecond clock, nothing changes.
  const f = l1.entry(1, L1_SHARED, 1, 0.5);
  assert.equal(f.expiresAt, 6);
  l1.set("f", f);
  assert.equal(l1.get("f", 5)?.value, 1); // 5.5 > 5 held before, 6 > 5 now
  assert.equal(l1.get("f", 6), undefined); // 5.5 > 6 did not, 6 > 6 does not
});

test("L1: entry times stay small integers: the base moves forward with the clock (rebase)", () => {
  let wall = 1_700_000_000_000;
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 10, staleMs: 1_000 }, () => wall);
  const day = 86_400_000;
  l1.set("a", l1.entry("a", L1_SHARED, 1, 10 * day, 3 * day)); // expires in 10 days
  l1.set("b", l1.entry("b", L1_SHARED, 1, 60_000)); // expires in a minute
  l1.set("far", l1.entry("far", L1_SHARED, 1, 400 * day)); // beyond 2^30 ms: a plain number
  assert.equal(l1.map.get("far")!.expiresAt, 400 * day);
  wall += 7 * day; // past L1_REBASE_MS (about 6.2 days): the next clock reading rebases
  assert.equal(l1.now(), 0);
  assert.equal(l1.base, 1_700_000_000_000 + 7 * day);
  const a = l1.map.get("a")!;
  assert.equal(a.expiresAt, 3 * day);
  assert.equal(a.refreshAt, -4 * day); // refresh point passed: a hit refreshes
  assert.equal(l1.map.get("far")!.expiresAt, 393 * day);
  assert.ok(Number.isSafeInteger(a.expiresAt) && Math.abs(a.expiresAt) < 2 ** 30);
  // Expiry keeps its meaning across the rebase.
  assert.equal(l1.get("a")?.value, "a");
  assert.equal(l1.get("b"), undefined); // expired 7 days ago, past the 1 s fail-safe window
  assert.equal(l1.map.has("b"), false);
  wall += 3 * day - 1;
  assert.equal(l1.get("a")?.value, "a");
  wall += 1;
  assert.equal(l1.get("a"), undefined);
  assert.equal(l1.get("far")?.value, "far");
  // An entry built after the rebase compares against the same clock.
  l1.set("c", l1.entry("c", L1_SHARED, 1, 1_000));
  assert.equal(l1.map.get("c")!.expiresAt, 3 * day + 1_000);
  assert.equal(l1.get("c")?.value, "c");
});

test("L1: expire() makes an entry a miss for the next read, which removes it", () => {
  const l1 = new L1Cache({ maxBytes: 1 << 20, maxEntries: 10, staleMs: 60_000 });
  const e = l1.entry("v", L1_SHARED, 1, TTL);
  l1.set("k", e);
  l1.expire(e);
  assert.equal(l1.stale("k"), undefined); // past the fail-safe window too
  assert.equal(l1.get("k"), undefined);
  assert.equal(l1.map.has("k"), false);
  assert.equal(l1.bytes, 0);
});

test("L1: eviction keeps LRU order through many evictions, reads, replaces, deletes and clears", () => {
  // A reference model (an array in LRU order) against the L1 under a random mix of operations:
  // eviction goes on from where it stopped (not from the map's start), so this checks that the
  // entry it evicts is always the least recently used one.
  const l1 = new L1Cache({ maxBytes: 1 << 30, maxEntries: 50 });
  const model: number[] = [];
  let seed = 7;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const touchModel = (k: number) => {
    const i = model.indexOf(k);
    if (i >= 0) model.splice(i, 1);
    model.push(k);
  };
  for (let step = 0; step < 20_000; step++) {
    const op = rand(100);
    const k = rand(120);
    if (op < 50) {
      l1.set(k, bytesEntry(l1, 10));
      touchModel(k);
      while (model.length > 50) model.shift();
    } else if (op < 97) {
      // A read promotes the entry unless it is among the newest eighth (see the module docs).
      const before = order(l1);
      const e = l1.get(k);
      assert.equal(e !== undefined, model.includes(k));
      if (e !== undefined) {
        const moved = order(l1);
        if (moved.at(-1) === k && before.at(-1) !== k) touchModel(k);
      }
    } else if (op < 99) {
      l1.delete(k);
      const i = model.indexOf(k);
      if (i >= 0) model.splice(i, 1);
    } else {
      l1.clear();
      model.length = 0;
    }
    assert.deepEqual(order(l1), model, `step ${step}`);
    assert.equal(counted(l1), l1.bytes);
  }
});
