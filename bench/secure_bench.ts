// deno-lint-ignore-file require-await -- async functions without await are what the bench caches
/**
 * `cache.secure` L2 hit vs plain L2 hit, in the same run, on the same backend, L1 off (every call
 * reads L2): `cache.production` (integrity envelope, breaker, timeouts, backpressure, metrics) vs
 * `cache.secure` (the same + AES-256-GCM decryption of the entry, hashed tenant segment, AAD
 * v0x03). Values: a ~1 KiB record and a ~10 KiB one. Backends: MemoryBackend (the cost of the
 * engine alone) and the shared Redis at 127.0.0.1:6379 (unique key prefix, 10-minute TTL).
 * The seed claims 3 % encryption overhead for the Python library.
 *
 * Measured (two runs, shared 2-core machine, avg per call): memory 1 KiB plain 19.6–25.4 µs vs
 * secure 66.9–75.6 µs; memory 10 KiB 28.0–29.8 vs 83.8–123 µs; Redis 1 KiB 128–182 vs 266–290 µs;
 * Redis 10 KiB 158–259 vs 285–335 µs. The difference is one WebCrypto AES-GCM decryption per hit.
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
      name: `cache.secure L2 hit, withTenant (${where}, ${kib} KiB)`,
      group,
      async fn() {
        await withTenant("acme", () => tenant(1));
      },
    });
  }
}
