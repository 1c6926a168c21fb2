// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Tenants never answer one another: a call under tenant B gets B's value, a miss or a typed error,
 * never tenant A's value.
 *
 * - Interop keys (`{namespace}:{operation}:{hash}`) carry no tenant segment: every cachekit SDK
 *   computes them alike. Before, an interop function (or an interop cache object) called under
 *   `withTenant` read and wrote that one shared entry: tenant B was answered tenant A's value from
 *   L2 (its L1 key was tenant-prefixed, its L2 key was not). Now such a call is refused with a
 *   `CacheKeyError` (under `safeMode`: the function runs uncached), and `encryption.tenant` with
 *   `interop` is refused at `cache()`.
 * - A tenant id with a lone surrogate (from `withTenant`, `encryption.tenant` or its function) is
 *   a `CacheConfigError`. Before, it failed the call with a bare `URIError` from the tenant's
 *   percent-encoding; an invalidation or forced refresh recorded the tenant for prefix deletions
 *   first, and every later one threw that `URIError` too, so `cacheClear()` on a backend without
 *   `deleteByTenantPrefix` left the L2 entries in place (answered after the clear).
 * - Ciphertext copied by hand on Redis from tenant A's key to tenant B's is refused (label check,
 *   and the AEAD once relabelled), whether the reader's L1 is on or off, and the reader's L1 then
 *   holds B's own entry.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import {
  type Backend,
  cache,
  CacheConfigError,
  CacheKeyError,
  createCache,
  MemoryBackend,
  RedisBackend,
  withTenant,
} from "../../mod.ts";
import { decodeWire, encodeWire } from "../../protocol/stored_value.ts";
import { recording } from "../_recording_backend.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const K1 = hex(crypto.getRandomValues(new Uint8Array(32)));

test("interop: a call under withTenant never reads or writes the tenant-less entry", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  // The value depends on the tenant, as a tenant's data does.
  const work = async (x: number) => `${x}:${++n}`;
  for (const l1 of [true, false]) {
    const f = cache(work, {
      ...bare,
      interop: { namespace: "tiso", operation: `op-${l1}` },
      backend,
      ttl: 60,
      l1: l1 ? undefined : false,
    });
    const shared = await f(1); // outside any tenant: the interop entry other SDKs share
    assert.equal(await f(1), shared);
    await assert.rejects(withTenant("acme", () => f(1)), CacheKeyError);
    await assert.rejects(withTenant("globex", () => f(2)), CacheKeyError);
    // The tenant "default" is no tenant (as everywhere): the shared entry.
    assert.equal(await withTenant("default", () => f(1)), shared);
    const seen = n;
    assert.notEqual(await f(2), undefined, "nothing was stored by the refused call");
    assert.equal(n, seen + 1);
  }
  // safeMode: the refused call runs the function uncached (its own value, nothing stored).
  const s = cache(work, {
    ...bare,
    interop: { namespace: "tiso", operation: "safe" },
    backend,
    ttl: 60,
    safeMode: true,
  });
  const a = await withTenant("acme", () => s(7));
  const b = await withTenant("globex", () => s(7));
  assert.notEqual(a, b, "each tenant's call ran the function");
  assert.notEqual(await s(7), a, "nothing was stored under the shared key");
});

test("interop: a cache object under withTenant never reads another tenant's entry", async () => {
  const backend = new MemoryBackend();
  for (const l1 of [true, false]) {
    const c = createCache({
      ...bare,
      interop: true,
      namespace: "tiso",
      name: `obj-${l1}`,
      backend,
      ttl: 60,
      l1: l1 ? undefined : false,
    });
    await assert.rejects(withTenant("acme", () => c.set("k", "acme's")), CacheKeyError);
    await c.set("k", "shared");
    await assert.rejects(withTenant("globex", () => c.get("k")), CacheKeyError);
    await assert.rejects(
      withTenant("globex", () => c.getOrSet("k", () => "globex's")),
      CacheKeyError,
    );
    assert.equal(await withTenant("default", () => c.get("k")), "shared");
    assert.equal(await c.get("k"), "shared");
  }
});

test("interop: encryption.tenant is refused at cache() and createCache()", () => {
  const fn = async (org: string) => org;
  assert.throws(
    () =>
      cache(fn, {
        interop: { namespace: "tiso", operation: "fn" },
        backend: new MemoryBackend(),
        encryption: { tenant: (org: string) => org },
      }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "encryption.tenant",
  );
  assert.throws(
    () =>
      createCache({
        interop: true,
        namespace: "tiso",
        name: "fixed",
        backend: new MemoryBackend(),
        encryption: { tenant: "acme" },
      }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "encryption.tenant",
  );
  assert.throws(
    () =>
      cache(fn, {
        interop: { namespace: "tiso", operation: "multi" },
        backend: new MemoryBackend(),
        encryption: { singleTenant: false },
      }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "encryption.singleTenant",
  );
});

/** A backend that deletes prefixes but not under every tenant segment at once. */
function withoutTenantPrefix(inner: MemoryBackend): Backend {
  const prefix = inner.capabilities.prefix!;
  return {
    type: inner.type,
    capabilities: {
      prefix: { deleteByPrefix: (p, o) => prefix.deleteByPrefix(p, o) },
    },
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => inner.set(k, v, t, o),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
    close: () => inner.close(),
  };
}

test("tenant ids with a lone surrogate are a CacheConfigError, and clearing still works", async () => {
  const backend = withoutTenantPrefix(new MemoryBackend());
  for (const bad of ["\ud800", "a\udc00b", "x".repeat(400) + "\ud800"]) {
    assert.throws(() => withTenant(bad, () => 1), CacheConfigError);
    assert.throws(
      () => cache(async () => 1, { backend, encryption: { tenant: bad } }),
      CacheConfigError,
    );
  }
  let n = 0;
  const f = cache(async (o: { org: string }, x: number) => `${o.org}:${x}:${++n}`, {
    ...bare,
    name: "tiso.extractor",
    backend,
    ttl: 60,
    encryption: { tenant: (o: { org: string }) => o.org.slice(0, 1) }, // "\ud83d" of "🙂"
  });
  await assert.rejects(f({ org: "🙂" }, 1), CacheConfigError);
  await assert.rejects(f.invalidate({ org: "🙂" }, 1), CacheConfigError);
  const secure = cache(async (o: { org: string }) => `${o.org}:${++n}`, {
    ...bare,
    name: "tiso.extractor.secure",
    backend,
    ttl: 60,
    encryption: { masterKey: K1, tenant: (o: { org: string }) => o.org.slice(0, 1) },
  });
  await assert.rejects(secure({ org: "🙂" }), CacheConfigError);
  assert.equal(n, 0, "the function never ran");
  // Before, the invalidation under the bad tenant recorded it for prefix deletions, whose next
  // use threw: `cacheClear()` then left every L2 entry in place (a backend without
  // `deleteByTenantPrefix` deletes under each tenant segment this process saw).
  const g = cache(async (x: number) => `${x}:${++n}`, {
    ...bare,
    name: "tiso.g",
    backend,
    ttl: 60,
  });
  await assert.rejects(
    async () => await withTenant("\udc00", () => g.invalidate(1)),
    CacheConfigError,
  );
  const a = await withTenant("acme", () => g(1));
  assert.equal(await withTenant("acme", () => g(1)), a);
  await g.cacheClear();
  assert.notEqual(await withTenant("acme", () => g(1)), a, "the cleared value is not answered");
  const b = await f({ org: "acme" }, 1);
  assert.equal(await f({ org: "acme" }, 1), b);
  await f.cacheClear();
  assert.notEqual(await f({ org: "acme" }, 1), b);
});

test(
  "secure on Redis: tenant A's entry copied by hand to tenant B's key is a miss, L1 on or off",
  async () => {
    const raw = new RedisBackend({
      url: "redis://127.0.0.1:6379",
      keyPrefix: uniquePrefix("tiso"),
    });
    const s = recording(raw);
    try {
      for (const wire of ["envelope", "document"] as const) {
        for (const tenantKeys of ["hashed", "plain"] as const) {
          let n = 0;
          const name = `tiso.copy.${wire}.${tenantKeys}`;
          const mk = (l1: boolean) =>
            cache(async (id: number) => ({ id, n: ++n }), {
              ...bare,
              name,
              wire,
              ttl: 60,
              backend: s.backend,
              l1: l1 ? undefined : false,
              encryption: { masterKey: K1, singleTenant: false, tenantKeys },
            });
          const writer = mk(false);
          await withTenant("acme", () => writer(1)); // n=1
          await withTenant("globex", () => writer(1)); // n=2
          const [acmeKey, globexKey] = s.keys.filter((k) => k.includes(name));
          assert.notEqual(acmeKey, globexKey);
          const acmeBytes = (await raw.get(acmeKey))!;
          const globex = decodeWire((await raw.get(globexKey))!).encryption!;
          const doc = decodeWire(acmeBytes);
          // As is (its label names acme); relabelled as globex's (its key fingerprint is acme's
          // key's); relabelled with globex's fingerprint too: the AEAD (globex's key, AAD binding
          // globex) must refuse it.
          const relabel = (fp: string) =>
            encodeWire({
              ...doc,
              encryption: { tenantId: globex.tenantId, keyFingerprint: fp },
              aad: undefined,
            }, wire);
          const copies = [
            acmeBytes,
            relabel(doc.encryption!.keyFingerprint),
            relabel(globex.keyFingerprint),
          ];
          for (const copy of copies) {
            for (const l1 of [true, false]) {
              await raw.set(globexKey, copy, 60);
              const before = n;
              const reader = mk(l1);
              const got = await withTenant("globex", () => reader(1));
              assert.deepEqual(got, { id: 1, n: before + 1 }, "a miss: the function ran");
              // Its L1 (when on) and L2 now hold globex's own entry; acme's is untouched.
              assert.deepEqual(await withTenant("globex", () => reader(1)), got);
              assert.deepEqual(await withTenant("acme", () => reader(1)), { id: 1, n: 1 });
            }
          }
        }
      }
    } finally {
      await raw.capabilities.prefix?.deleteByPrefix("");
      await raw.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
