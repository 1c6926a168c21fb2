/**
 * Late writes (`engine/_late_writes.ts`), what a withdrawal leaves in L1. Between a late write
 * landing and its withdrawal (once another instance's invalidation is heard), any instance may
 * read the older value from L2 and keep it in L1: this one (a call after the event's eviction,
 * whose read ends before the deletion), and the others (the late write's `write` announcement
 * went out before: nothing evicts their copies afterwards). Before, the withdrawal deleted the
 * key in L2 alone: those copies were answered until their L1 lifetime ended, while L2 was empty.
 * Now it evicts the key here, with the marks that refuse the fill of a read in flight, and
 * announces it (`write`: a change of the key, no deletion of anyone's work).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { heldSource } from "./_held_source.ts";
import { cache } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** Every microtask chain settles before a timer fires (memory backend: no I/O). */
const flush = () => new Promise((r) => setTimeout(r, 0));

test(
  "cache(fn): a late write read into L1 while its withdrawal runs is not answered after it " +
    "(evicted here, announced to the other instances)",
  async () => {
    const { backend, inner, deliver, read, hold, published } = drivenBackend({ bus: true });
    const src = heldSource();
    const f = cache(src.work, {
      ...bare,
      name: "late-writes-fill",
      backend,
      l1: { invalidation: true },
    });
    await f(0); // subscribes to the bus
    const held = src.hold();
    const first = f(1);
    await held.started;
    const key = read.at(-1)!;
    await inner.delete(key); // the other instance's invalidation (announced late)
    src.version = "new";
    held.release();
    assert.equal(await first, "old");
    await flush(); // the late write of "old" has landed
    published.length = 0;
    const h = hold(); // the withdrawal's read of the key
    deliver({ level: "key", targets: [key], reason: "delete" });
    await h.read;
    // A call here now: its L1 copy was evicted; it reads L2, which still holds "old".
    assert.equal(await f(1), "old", "L2 held it when read");
    h.release();
    await flush();
    assert.equal(await inner.get(key), null, "withdrawn");
    const announced: Omit<InvalidationEvent, "sender">[] = [
      { level: "key", targets: [key], reason: "write" },
    ];
    assert.deepEqual(published, announced, "to the other instances (their copies read meanwhile)");
    const before = src.calls;
    assert.equal(await f(1), "new", "the withdrawn value is not answered from L1");
    assert.equal(src.calls, before + 1);
  },
);
