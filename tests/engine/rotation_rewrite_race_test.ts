// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Key rotation (`encryption.previousKeys`) never brings an older value back.
 *
 * - An entry read under a previous master key (or, with hashed tenant segments, under a previous
 *   key's segment) is rewritten under the current key in the background. Before, that rewrite
 *   landed over whatever the key held by then: a `set` made right after the read (here, or by
 *   another instance) was undone by the old value.
 * - A deletion of one entry (`f.invalidate`, a cache object's `delete` / `deleteMany` / `expire`
 *   without a stale window) removed only its key under the current segment. A read that misses
 *   there looks under the previous keys' segments, so it found the old copy and answered the
 *   deleted value (and rewrote it under the current key).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { gate, sleep, until } from "../_timing.ts";
import { type Backend, cache, createCache, MemoryBackend, withTenant } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const K1 = hex(crypto.getRandomValues(new Uint8Array(32)));
const K2 = hex(crypto.getRandomValues(new Uint8Array(32)));

/**
 * `inner` with its operations logged, and the next TTL probe (the rewrite's, before it writes)
 * held until the gate given to `holdNextTtl` opens.
 */
function held(inner: MemoryBackend) {
  const ops: string[] = [];
  let hold: Promise<void> | null = null;
  const ttl = inner.capabilities.ttl!;
  const backend: Backend = {
    type: inner.type,
    capabilities: {
      ...inner.capabilities,
      ttl: {
        ttl: async (k, o) => {
          ops.push("ttl");
          const h = hold;
          hold = null;
          if (h !== null) await h;
          return await ttl.ttl(k, o);
        },
        expire: (k, t, o) => ttl.expire(k, t, o),
      },
    },
    get: (k, o) => {
      ops.push("get");
      return inner.get(k, o);
    },
    set: (k, v, t, o) => {
      ops.push("set");
      return inner.set(k, v, t, o);
    },
    delete: (k, o) => {
      ops.push("delete");
      return inner.delete(k, o);
    },
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
    close: () => inner.close(),
  };
  return {
    backend,
    ops,
    holdNextTtl(p: Promise<void>) {
      hold = p;
    },
  };
}

for (const tenantKeys of ["hashed", "plain"] as const) {
  for (const writer of ["here", "another instance"] as const) {
    test(
      `rotation (${tenantKeys}): a set ${writer} right after a read under the old key stays`,
      async () => {
        const inner = new MemoryBackend();
        const h = held(inner);
        const opts = { ...bare, ttl: 60, l1: false as const, namespace: "rot" };
        const enc = { masterKey: K2, previousKeys: [K1], tenantKeys };
        const old = createCache({
          ...opts,
          backend: inner,
          encryption: { masterKey: K1, tenantKeys },
        });
        await withTenant("acme", () => old.set("k", "v1"));
        const now = createCache({ ...opts, backend: h.backend, encryption: enc });
        const other = createCache({ ...opts, backend: h.backend, encryption: enc });
        const g = gate();
        h.holdNextTtl(g.promise);
        assert.equal(await withTenant("acme", () => now.get("k")), "v1"); // the rewrite starts
        assert.ok(await until(() => h.ops.includes("ttl")), "the rewrite reached its TTL probe");
        await withTenant("acme", () => (writer === "here" ? now : other).set("k", "v2"));
        const from = h.ops.length;
        g.open();
        // The rewrite decides (it writes, or reads the key to see whether it changed).
        assert.ok(await until(() => h.ops.slice(from).some((op) => op === "get" || op === "set")));
        const reader = createCache({ ...opts, backend: inner, encryption: enc });
        for (let i = 0; i < 10; i++) {
          assert.equal(await withTenant("acme", () => reader.get("k")), "v2");
          await sleep(10);
        }
      },
    );
  }
}

test("rotation (hashed): deleting an entry deletes its copy under the old segment", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const fn = async (x: number) => `${x}:${++n}`;
  const mk = (masterKey: string, previousKeys: string[] = []) =>
    cache(fn, {
      ...bare,
      name: "rot.invalidate",
      backend,
      ttl: 60,
      l1: false,
      encryption: { masterKey, previousKeys, singleTenant: false },
    });
  const a = await withTenant("acme", () => mk(K1)(1));
  const f = mk(K2, [K1]);
  await withTenant("acme", () => f.invalidate(1));
  assert.notEqual(await withTenant("acme", () => f(1)), a, "the deleted value is not answered");
  const obj = (masterKey: string, previousKeys: string[] = [], staleTtl = 0) =>
    createCache({
      ...bare,
      backend,
      ttl: 60,
      staleTtl,
      l1: false,
      encryption: { masterKey, previousKeys },
    });
  await obj(K1).setMany([["a", 1], ["b", 2], ["c", 3], ["d", 4]]);
  const c = obj(K2, [K1]);
  await c.delete("a");
  await c.deleteMany(["b"]);
  await c.expire("c"); // no stale window: a deletion
  assert.deepEqual(await c.getMany(["a", "b", "c", "d"]), [undefined, undefined, undefined, 4]);
  // Reading "d" under the old key starts its rewrite in the background, which may still run here.
}, { sanitize: false });
