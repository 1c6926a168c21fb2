// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * During a master-key rotation (`encryption.previousKeys`, hashed tenant segments) a read that
 * misses the entry's current key looks under the previous keys' segments and answers what it
 * finds there (`SecureKeys.findPrevious`). Deleting one entry (`f.invalidate(...)`, a cache
 * object's `delete`) deleted only the current key, so when the entry had not been rewritten yet
 * the next read found the old copy and answered the value just invalidated. The copies under the
 * previous segments are now deleted too.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, createCache, withTenant } from "../../mod.ts";
import { kindOptions, KINDS, store } from "./_backends.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const K1 = hex(crypto.getRandomValues(new Uint8Array(32)));
const K2 = hex(crypto.getRandomValues(new Uint8Array(32)));
const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

let n = 0;

for (const kind of KINDS) {
  for (const l1 of [true, false]) {
    test(
      `secure on ${kind} (l1 ${l1}): f.invalidate during a rotation deletes the entry under the previous key too`,
      async () => {
        const s = store(kind, "rotation-delete");
        try {
          let version = "old";
          const work = async (_id: number) => version;
          const name = `rotation-delete-${n++}`;
          const mk = (masterKey: string, previousKeys: string[] = []) =>
            cache.secure(work, {
              ...bare,
              name,
              backend: s.open(),
              l1: { enabled: l1 },
              encryption: { masterKey, previousKeys, singleTenant: false },
            });
          assert.equal(await withTenant("acme", () => mk(K1)(1)), "old"); // under K1's segment
          const rotated = mk(K2, [K1]);
          version = "new";
          await withTenant("acme", () => rotated.invalidate(1));
          assert.equal(await withTenant("acme", () => rotated(1)), "new");
        } finally {
          await s.close();
        }
      },
      kindOptions(kind),
    );
  }

  test(
    `secure createCache on ${kind}: delete during a rotation deletes the entry under the previous key too`,
    async () => {
      const s = store(kind, "rotation-delete");
      try {
        const namespace = `rotation-delete-${n++}`;
        const mk = (masterKey: string, previousKeys: string[] = []) =>
          createCache.secure({
            ...bare,
            namespace,
            backend: s.open(),
            encryption: { masterKey, previousKeys, singleTenant: false },
          });
        await withTenant("acme", () => mk(K1).set("k", "old"));
        const rotated = mk(K2, [K1]);
        await withTenant("acme", () => rotated.delete("k"));
        assert.equal(await withTenant("acme", () => rotated.get("k")), undefined);
        assert.equal(
          await withTenant("acme", () => rotated.getOrSet("k", async () => "new")),
          "new",
        );
      } finally {
        await s.close();
      }
    },
    kindOptions(kind),
  );
}

test("secure: an invalidation while a rotation rewrites the entry it read: the rewrite is not written", async () => {
  const { MemoryBackend } = await import("../../mod.ts");
  const inner = new MemoryBackend();
  // The rewrite reads the old copy's remaining TTL first: that answer is held.
  let hold: { reached: () => void; released: Promise<void> } | null = null;
  const ttlCap = inner.capabilities.ttl!;
  const caps = {
    ...inner.capabilities,
    ttl: {
      ttl: async (k: string, o?: Parameters<typeof ttlCap.ttl>[1]) => {
        const left = await ttlCap.ttl(k, o);
        const h = hold;
        if (h !== null) {
          hold = null;
          h.reached();
          await h.released;
        }
        return left;
      },
      expire: ttlCap.expire.bind(ttlCap),
    },
  };
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "capabilities") return caps;
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  });
  let version = "old";
  const work = async (_id: number) => version;
  const name = `rotation-delete-${n++}`;
  const mk = (masterKey: string, previousKeys: string[] = []) =>
    cache.secure(work, {
      ...bare,
      name,
      backend,
      l1: false,
      encryption: { masterKey, previousKeys, singleTenant: false },
    });
  assert.equal(await withTenant("acme", () => mk(K1)(1)), "old");
  const rotated = mk(K2, [K1]);
  let release!: () => void;
  const reached = new Promise<void>((r) => {
    hold = { reached: r, released: new Promise<void>((rr) => release = rr) };
  });
  assert.equal(await withTenant("acme", () => rotated(1)), "old", "found under K1; rewrite starts");
  await reached; // the rewrite is under way
  version = "new";
  await withTenant("acme", () => rotated.invalidate(1));
  release();
  await new Promise((r) => setTimeout(r, 0)); // the rewrite ends (memory backend: no I/O left)
  assert.equal(await withTenant("acme", () => rotated(1)), "new");
});
