// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * An L2 read in flight as another instance's event about its key arrives (a write or deletion of
 * the key, a tag, namespace or full invalidation, heard on the invalidation bus) answers what it
 * read, but does not put it into L1: it may be the old value. Before, a remote write found no L1
 * copy to evict (the read had not filled it yet), the read then filled L1 with the old value, and
 * this instance answered it for one L1 lifetime while every other instance had the new one.
 *
 * Deterministic: the backend holds the read's answer (what L2 held when it was read) until the
 * test releases it, after the other instance's write and its event.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { until } from "../_timing.ts";
import { type Backend, cache, createCache, MemoryBackend } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 600 } as const;

/** An event of another instance, for `deliver`. */
type Remote = Omit<InvalidationEvent, "sender">;

/**
 * A memory backend with an invalidation bus the test drives (`deliver`), whose next `get` (the
 * one after `hold()`) reads L2 at once but answers only when the test calls `release`.
 */
function heldBackend() {
  const inner = new MemoryBackend();
  const handlers = new Set<(e: InvalidationEvent) => void>();
  let next: { reached: (key: string) => void; released: Promise<void> } | null = null;
  const reads: string[] = [];
  const backend: Backend = {
    type: "heldmem",
    capabilities: {
      ...inner.capabilities,
      invalidation: {
        instanceId: "this",
        publish: () => Promise.resolve(),
        subscribe: (h: (e: InvalidationEvent) => void) => {
          handlers.add(h);
          return Promise.resolve(() => Promise.resolve(void handlers.delete(h)));
        },
      },
    },
    get: async (k, o) => {
      reads.push(k);
      const v = await inner.get(k, o);
      const h = next;
      if (h !== null && !k.endsWith(":lock")) {
        next = null;
        h.reached(k);
        await h.released;
      }
      return v;
    },
    set: (k, v, t, o) => inner.set(k, v, t, o),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return {
    backend,
    inner,
    /** The keys read, in order. */
    reads,
    /** Hold the next read; resolves its backend key once it has read L2; `release` answers it. */
    hold() {
      let reached!: (key: string) => void;
      let release!: () => void;
      const key = new Promise<string>((r) => reached = r);
      next = { reached, released: new Promise<void>((r) => release = r) };
      return { key, release };
    },
    deliver(e: Remote) {
      assert.ok(handlers.size > 0, "subscribed to the bus");
      for (const h of handlers) h({ ...e, sender: "other" });
    },
  };
}

/** The events that must refuse the fill of a read in flight (`key`: the held read's key). */
const EVENTS: [string, (key: string) => Remote][] = [
  ["a remote write of the key", (key) => ({ level: "key", targets: [key], reason: "write" })],
  ["a remote deletion of the key", (key) => ({ level: "key", targets: [key], reason: "delete" })],
  ["a remote tag invalidation", () => ({ level: "tags", targets: ["t"] })],
  ["a remote clear of everything", () => ({ level: "all", targets: [] })],
];

let n = 0;

for (const stampede of [true, false]) {
  for (const [what, event] of EVENTS) {
    test(`cache(fn) (stampede ${stampede}): ${what} during an L2 read: the read does not fill L1`, async () => {
      const { backend, inner, hold, deliver } = heldBackend();
      let version = "v1";
      const work = async (_x: number) => version;
      const o = {
        ...bare,
        name: `remote-race-fn-${n++}`,
        tags: () => ["t"],
        stampede: stampede ? {} : false as const,
      };
      const f = cache(work, { ...o, backend, l1: { invalidation: true } });
      const other = cache(work, { ...o, backend: inner, l1: false }); // another instance
      assert.equal(await other(1), "v1"); // in L2
      const held = hold();
      const read = f(1); // misses L1, reads "v1" from L2, held
      const key = await held.key;
      version = "v2";
      await other.refresh(1); // the other instance writes "v2"…
      deliver(event(key)); // …and this instance hears it while its read is in flight
      held.release();
      assert.equal(await read, "v1", "the read answers what it read");
      assert.equal(f.cacheInfo().size, 0, "but does not keep it in L1");
      assert.equal(await f(1), "v2", "the next call reads the new value");
    });
  }
}

for (
  const [face, read] of [["get", (c, k) => c.get(k)], [
    "getOrSet",
    (c, k) => c.getOrSet(k, async () => "computed"),
  ]] as [string, (c: ReturnType<typeof createCache>, k: string) => Promise<unknown>][]
) {
  for (const [what, event] of EVENTS) {
    test(`createCache ${face}: ${what} during an L2 read: the read does not fill L1`, async () => {
      const { backend, inner, hold, deliver } = heldBackend();
      const o = { ...bare, namespace: `remote-race-obj-${n++}` };
      const c = createCache({ ...o, backend, l1: { invalidation: true } });
      const other = createCache({ ...o, backend: inner, l1: false }); // another instance
      await other.set("k", "v1", { tags: ["t"] });
      const held = hold();
      const pending = read(c, "k"); // reads "v1" from L2, held
      const key = await held.key;
      await other.set("k", "v2", { tags: ["t"] });
      deliver(event(key));
      held.release();
      assert.equal(await pending, "v1", "the read answers what it read");
      assert.equal(c.cacheInfo().size, 0, "but does not keep it in L1");
      assert.equal(await read(c, "k"), "v2", "the next read reads the new value");
    });
  }
}

test("a read that started after the remote write's event fills L1 (only reads in flight are refused)", async () => {
  const { backend, inner, hold, deliver } = heldBackend();
  const o = { ...bare, namespace: `remote-race-obj-${n++}` };
  const c = createCache({ ...o, backend, l1: { invalidation: true } });
  const other = createCache({ ...o, backend: inner, l1: false });
  await other.set("k", "v1");
  const first = hold();
  const pending = c.get("k");
  const key = await first.key;
  first.release();
  assert.equal(await pending, "v1");
  await other.set("k", "v2");
  deliver({ level: "key", targets: [key], reason: "write" }); // evicts "v1"
  assert.equal(c.cacheInfo().size, 0);
  assert.equal(await c.get("k"), "v2");
  assert.equal(c.cacheInfo().size, 1, "filled: no event since its read started");
  await other.set("k", "v3");
  await other.set("o", "o");
  const second = hold();
  const again = c.get("o"); // another key's read, held
  await second.key;
  deliver({ level: "key", targets: [key], reason: "write" }); // evicts "v2"
  second.release();
  assert.equal(await again, "o");
  assert.equal(await c.get("k"), "v3");
  assert.equal(c.cacheInfo().size, 2, "another key's read in flight still fills");
});

test("cache(fn): a call that waited for another instance's lock fills L1 with the value read after its event", async () => {
  const { backend, inner, deliver, reads } = heldBackend();
  const o = { ...bare, name: `remote-race-fn-${n++}`, stampede: { wait: 30 } };
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  const work = async (_x: number) => (await gate, "theirs");
  const f = cache(work, { ...o, backend, l1: { invalidation: true } });
  // Another instance computes the key under its lock (the same L2 and lock).
  const other = cache(work, { ...o, backend: inner });
  const computing = other(1);
  const call = f(1); // misses, finds the key locked, waits and tries again
  assert.ok(await until(() => reads.length >= 2), "waiting: tried the lock again");
  // The other instance's write is announced before this instance's next attempt starts (the
  // attempts of a Memory backend end within the turn they start in).
  deliver({ level: "key", targets: [reads[0]], reason: "write" });
  open();
  assert.equal(await computing, "theirs");
  assert.equal(await call, "theirs", "read after the other instance's lock");
  assert.equal(f.cacheInfo().size, 1, "kept in L1: its read started after the event");
});
