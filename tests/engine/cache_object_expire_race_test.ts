/**
 * `expire(key)` reads the entry from L2 and writes it back as stale; a `delete(key)` or a
 * `set(key, …)` that lands while it reads must win. Before, `expire` wrote the deleted (or
 * overwritten) value back as a stale entry, so a later failing computation was answered with the
 * value that had been deleted, and a completed `set` was undone (`get` missed, the old value was
 * the fallback). Across instances see `cache_object_redis_test.ts`.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { type Backend, createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** The memory backend, with read answers held at a gate while one is set (`hold`). */
function gated(inner: MemoryBackend) {
  const g = { hold: null as Promise<void> | null, reading: () => {} };
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "get") {
        return async (...a: unknown[]) => {
          const got = await (t.get as (...x: unknown[]) => Promise<unknown>)(...a);
          if (g.hold !== null) {
            g.reading();
            await g.hold; // the answer read, not yet delivered
          }
          return got;
        };
      }
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as Backend;
  /** Hold the next reads; resolves the gate's opener once one of them has read. */
  const holdNext = (): { read: Promise<void>; open: () => void } => {
    let open!: () => void;
    g.hold = new Promise<void>((r) => open = r);
    const read = new Promise<void>((r) => g.reading = r);
    return {
      read: read.then(() => {
        g.hold = null; // later reads pass
      }),
      open,
    };
  };
  return { backend, holdNext };
}

test("createCache expire: a delete during its L2 read is not undone", async () => {
  const inner = new MemoryBackend();
  let hold: Promise<void> | null = null;
  let reading!: () => void;
  // The memory backend, with read answers held at a gate while `hold` is set.
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "get") {
        return async (...a: unknown[]) => {
          const got = await (t.get as (...x: unknown[]) => Promise<unknown>)(...a);
          if (hold !== null) {
            reading();
            await hold; // the answer read, not yet delivered
          }
          return got;
        };
      }
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as Backend;
  const c = createCache({ ...bare, staleTtl: 600, backend, l1: false });
  await c.set("k", "deleted value");
  let open!: () => void;
  hold = new Promise<void>((r) => open = r);
  const read = new Promise<void>((r) => reading = r);
  const expiring = c.expire("k");
  await read; // expire is reading L2
  hold = null;
  await c.delete("k");
  open();
  await expiring;
  assert.equal(await inner.exists("t:default:obj:key:k"), false);
  const got = await c.getOrSet("k", () => {
    throw new Error("down");
  }).catch((e: Error) => e.message);
  assert.equal(got, "down");
});

for (const l1 of [false, true]) {
  test(`createCache expire: a set during its L2 read is not undone (L1 ${l1 ? "on" : "off"})`, async () => {
    const inner = new MemoryBackend();
    const { backend, holdNext } = gated(inner);
    const o = { ...bare, staleTtl: 600, failSafeThrottle: 0, backend };
    const c = createCache({ ...o, l1: l1 ? {} : false });
    const other = createCache({ ...o, l1: false }); // reads L2 only
    await c.set("k", "old");
    const gate = holdNext();
    const expiring = c.expire("k");
    await gate.read; // expire is reading L2
    await c.set("k", "new"); // completed: the key now holds "new"
    gate.open();
    await expiring;
    const down = () => {
      throw new Error("down");
    };
    assert.equal(await c.get("k"), "new", "the written value, fresh");
    assert.equal(await other.get("k"), "new", "in L2 too");
    assert.equal(await c.getOrSet("k", down), "new");
    assert.equal(await other.getOrSet("k", down), "new");
    await inner.close();
  });
}
