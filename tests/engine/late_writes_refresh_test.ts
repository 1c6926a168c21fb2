/**
 * Late writes (`engine/_late_writes.ts`) of a forced refresh (`f.refresh()`): it computes, as a
 * miss does, so another instance's invalidation made while it computed, heard only once its write
 * was issued, came after what it read. Before, its writes were not remembered (as a cache object's
 * `set`, whose value the caller gave): its older value stayed in L2 after the invalidation, and
 * every instance answered it until it expired (unless the backend withdrew it itself: the Redis
 * lease in the key does, `backends/_redis_set_op.ts`, a key lock does not).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { heldSource } from "./_held_source.ts";
import { cache, createCache } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** Every microtask chain settles before a timer fires (memory backend: no I/O). */
const flush = () => new Promise((r) => setTimeout(r, 0));

test(
  "cache(fn): another instance's deletion, heard after a forced refresh's write of an older " +
    "computation was issued: the key is deleted again",
  async () => {
    const { backend, inner, deliver, read } = drivenBackend({ bus: true });
    const src = heldSource();
    const f = cache(src.work, {
      ...bare,
      name: "late-writes-refresh",
      backend,
      l1: { invalidation: true },
    });
    assert.equal(await f(1), "old"); // subscribes; the key
    const key = read.at(-1)!;
    src.version = "older"; // what the refresh computes (not the bytes of the miss's write)
    const h = src.hold();
    const refreshed = f.refresh(1);
    await h.started;
    await inner.delete(key); // the other instance's invalidation, announced late
    src.version = "new";
    h.release();
    assert.equal(await refreshed, "older");
    await flush(); // the refresh's write has landed
    assert.ok(await inner.get(key) !== null, "the late write put the older value back");
    deliver({ level: "key", targets: [key], reason: "delete" });
    await flush();
    assert.ok(await inner.get(key) === null, "deleted again");
    assert.equal(await f(1), "new");
  },
);

test("createCache: a set's value is not withdrawn by another instance's deletion heard after it", async () => {
  const { backend, inner, deliver, read } = drivenBackend({ bus: true });
  const c = createCache({ ...bare, backend, l1: { invalidation: true } });
  await c.getOrSet("k", () => "first"); // subscribes; the key
  const key = read.at(-1)!;
  await c.set("k", "given");
  await flush();
  deliver({ level: "key", targets: [key], reason: "delete" });
  await flush();
  assert.ok(await inner.get(key) !== null, "the value given stays");
});
