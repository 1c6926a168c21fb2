// deno-lint-ignore-file require-await -- async functions without await are what the bench caches
/**
 * `cache.secure` L2 hit vs plain L2 hit, in the same run, on the same backend, L1 off (every call
 * reads L2): `cache.production` vs `cache.secure`, whose presets differ only in `encryption`
 * (`config/presets.ts`), with identical explicit options (`ttl`, `backend`, `l1: false`,
 * `namespace`). Both carry the integrity envelope, breaker, timeouts, backpressure and metrics;
 * secure adds one AES-256-GCM decryption of the entry (AAD v0x03) and a hashed tenant segment.
 * Values: a ~1 KiB record and a ~10 KiB one. Backends: MemoryBackend (the cost of the engine
 * alone) and the shared Redis at 127.0.0.1:6379 (unique key prefix, 10-minute TTL). Each hit is
 * one `GET` in both modes (no TTL probe, no extra round trip).
 *
 * Reference row: the plain hit followed by one bare WebCrypto `subtle.decrypt` (AES-GCM, a
 * plaintext the size of the value's JSON, an AAD of the same size as the engine's): the floor of
 * what encryption can cost on this runtime. The `withTenant` row also pays
 * `AsyncLocalStorage.run`. cachekit-py, the Python SDK, claims 3 % encryption overhead; its
 * decryption runs synchronously on the calling thread.
 *
 * Where the overhead goes (CPU profile of the MemoryBackend 1 KiB hit): WebCrypto operations run
 * on the runtime's worker threads, so each hit pays ~7–12 µs of main-thread op dispatch plus a
 * round trip to a worker thread (the main thread is idle about half of a secure hit's wall
 * time); both grow with machine load. Our own framing (AAD, key and fingerprint lookup) costs
 * ~1 µs per hit: with `subtle.decrypt` stubbed out, a secure hit costs the same as a plain one.
 *
 * Measured: see the README (Secure caching, Cost).
 */
import { cache, MemoryBackend, RedisBackend, withTenant } from "../mod.ts";
import type { Backend } from "../backends/types.ts";

const MASTER = Array.from(
  crypto.getRandomValues(new Uint8Array(32)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");

function record(kib: number) {
  return {
    id: 42,
    name: "Ada Lovelace",
    email: "ada@example.org",
    roles: ["admin", "author"],
    bio: "x".repeat(kib * 1024 - 120),
  };
}

const redis = new RedisBackend({
  url: "redis://127.0.0.1:6379",
  keyPrefix: `bench:secure:${crypto.randomUUID().slice(0, 8)}:`,
});
globalThis.addEventListener("unload", () => void redis.close());

const setups: [string, Backend][] = [["memory", new MemoryBackend()], ["redis", redis]];
for (const [where, backend] of setups) {
  for (const kib of [1, 10]) {
    const value = record(kib);
    const common = { ttl: 600, backend, l1: false as const, namespace: `bench${where}${kib}` };
    const plain = cache.production(async (id: number) => ({ ...value, id }), {
      ...common,
      name: `bench.plain.${where}.${kib}`,
    });
    const secure = cache.secure(async (id: number) => ({ ...value, id }), {
      ...common,
      name: `bench.secure.${where}.${kib}`,
      encryption: { masterKey: MASTER },
    });
    const tenant = cache.secure(async (id: number) => ({ ...value, id }), {
      ...common,
      name: `bench.tenant.${where}.${kib}`,
      encryption: { masterKey: MASTER, singleTenant: false },
    });
    // Fill L2 and warm both paths.
    for (let i = 0; i < 200; i++) {
      await plain(1);
      await secure(1);
      await withTenant("acme", () => tenant(1));
    }
    if (plain.cacheInfo().misses !== 1 || secure.cacheInfo().misses !== 1) {
      throw new Error("bench setup: expected L2 hits");
    }
    // Reference: one bare WebCrypto AES-GCM decryption of a value-sized plaintext.
    const aesKey = await crypto.subtle.importKey(
      "raw",
      crypto.getRandomValues(new Uint8Array(32)),
      "AES-GCM",
      false,
      ["encrypt", "decrypt"],
    );
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const aad = new Uint8Array(140); // ~ the AAD of a cache.secure entry
    const sealed = new Uint8Array(
      await crypto.subtle.encrypt(
        { name: "AES-GCM", iv, additionalData: aad },
        aesKey,
        new TextEncoder().encode(JSON.stringify(value)),
      ),
    );
    const group = `l2-hit-${where}-${kib}KiB`;
    Deno.bench({
      name: `plain L2 hit (${where}, ${kib} KiB)`,
      group,
      baseline: true,
      async fn() {
        await plain(1);
      },
    });
    Deno.bench({
      name: `cache.secure L2 hit (${where}, ${kib} KiB)`,
      group,
      async fn() {
        await secure(1);
      },
    });
    Deno.bench({
      name: `plain L2 hit + one bare subtle.decrypt (${where}, ${kib} KiB)`,
      group,
      async fn() {
        await plain(1);
        await crypto.subtle.decrypt({ name: "AES-GCM", iv, additionalData: aad }, aesKey, sealed);
      },
    });
    Deno.bench({
      name: `cache.secure L2 hit, withTenant (${where}, ${kib} KiB)`,
      group,
      async fn() {
        await withTenant("acme", () => tenant(1));
      },
    });
  }
}
