/**
 * `expire(key)` reads the entry from L2 and writes it back as stale; a `delete(key)` that lands
 * while it reads must win. Before, `expire` wrote the deleted value back (as a stale entry), so a
 * later failing computation was answered with the value that had been deleted.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { type Backend, createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

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
