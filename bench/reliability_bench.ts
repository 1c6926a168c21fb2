// The cost of the reliability layer: guarded vs unguarded `get` on an in-memory backend (target:
// < 10 % overhead with every feature on), each feature alone, and the per-operation cost of the
// primitives. Run: deno bench -A bench/reliability_bench.ts
import { MemoryBackend } from "../backends/memory.ts";
import type { Backend } from "../backends/types.ts";
import { CacheMetrics } from "../health/metrics.ts";
import {
  AdaptiveTimeout,
  Backpressure,
  CircuitBreaker,
  GuardedBackend,
} from "../reliability/mod.ts";

const value = new Uint8Array(100);

/** A MemoryBackend-style store (Map of bytes) that does not advertise `timeouts`. */
function mapBackend(): Backend {
  const store = new Map<string, Uint8Array>([["k", value]]);
  return {
    type: "map",
    capabilities: {},
    get: (k) => Promise.resolve(store.get(k) ?? null),
    set: (k, v) => {
      store.set(k, v);
      return Promise.resolve();
    },
    delete: (k) => Promise.resolve(store.delete(k)),
    exists: (k) => Promise.resolve(store.has(k)),
    healthCheck: () => Promise.resolve({ healthy: true, latencyMs: 0, backendType: "map" }),
  };
}

const raw = mapBackend();
const all = new GuardedBackend(mapBackend());
const allMetrics = new GuardedBackend(mapBackend(), { metrics: new CacheMetrics() });
const none = new GuardedBackend(mapBackend(), {
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
});
const breakerOnly = new GuardedBackend(mapBackend(), { timeout: false, backpressure: false });
const timeoutOnly = new GuardedBackend(mapBackend(), {
  circuitBreaker: false,
  backpressure: false,
});
const bpOnly = new GuardedBackend(mapBackend(), { circuitBreaker: false, timeout: false });

Deno.bench({
  name: "raw map backend get",
  group: "get",
  baseline: true,
  fn: async () => {
    await raw.get("k");
  },
});
Deno.bench({
  name: "guarded get, all on",
  group: "get",
  fn: async () => {
    await all.get("k");
  },
});
Deno.bench({
  name: "guarded get, all on + metrics",
  group: "get",
  fn: async () => {
    await allMetrics.get("k");
  },
});
Deno.bench({
  name: "guarded get, all off",
  group: "get",
  fn: async () => {
    await none.get("k");
  },
});
Deno.bench({
  name: "guarded get, breaker only",
  group: "get",
  fn: async () => {
    await breakerOnly.get("k");
  },
});
Deno.bench({
  name: "guarded get, timeout only",
  group: "get",
  fn: async () => {
    await timeoutOnly.get("k");
  },
});
Deno.bench({
  name: "guarded get, backpressure only",
  group: "get",
  fn: async () => {
    await bpOnly.get("k");
  },
});

// The real MemoryBackend advertises `timeouts`: the guard hands it `timeoutMs` and it arms its own
// timer per operation.
const mem = new MemoryBackend();
await mem.set("k", value);
const memGuarded = new GuardedBackend(mem);
const memGuardedNoTimeout = new GuardedBackend(mem, { timeout: false });
Deno.bench({
  name: "MemoryBackend get",
  group: "memory",
  baseline: true,
  fn: async () => {
    await mem.get("k");
  },
});
Deno.bench({
  name: "guarded MemoryBackend get, all on",
  group: "memory",
  fn: async () => {
    await memGuarded.get("k");
  },
});
Deno.bench({
  name: "guarded MemoryBackend get, timeout off",
  group: "memory",
  fn: async () => {
    await memGuardedNoTimeout.get("k");
  },
});

// Over a real server: a minimal node-redis adapter (a bench fixture, not the RedisBackend) against
// the Redis at 127.0.0.1:6379, raw vs guarded. Skipped when no Redis answers.
const redisBackend = await (async (): Promise<(Backend & { quit(): Promise<void> }) | null> => {
  try {
    const { createClient } = await import("redis");
    const client = createClient({ url: "redis://127.0.0.1:6379", socket: { connectTimeout: 500 } });
    client.on("error", () => {});
    await client.connect();
    const key = "cachekit:bench:reliability";
    await client.set(key, "x".repeat(100));
    return {
      type: "redis",
      capabilities: {},
      get: async () => {
        const v = await client.get(key);
        return v === null ? null : value;
      },
      set: async () => {},
      delete: () => Promise.resolve(false),
      exists: () => Promise.resolve(true),
      healthCheck: () => Promise.resolve({ healthy: true, latencyMs: 0, backendType: "redis" }),
      quit: async () => {
        await client.del(key);
        await client.quit();
      },
    };
  } catch {
    console.warn("no Redis at 127.0.0.1:6379: skipping the redis group");
    return null;
  }
})();
if (redisBackend) {
  const guardedRedis = new GuardedBackend(redisBackend);
  Deno.bench({
    name: "raw redis get",
    group: "redis",
    baseline: true,
    fn: async () => {
      await redisBackend.get("k");
    },
  });
  Deno.bench({
    name: "guarded redis get, all on",
    group: "redis",
    fn: async () => {
      await guardedRedis.get("k");
    },
  });
  globalThis.addEventListener("unload", () => void redisBackend.quit());
}

// 100 concurrent gets (the engine's L2 fan-out), guarded vs raw.
Deno.bench({
  name: "raw 100 concurrent gets",
  group: "concurrent",
  baseline: true,
  fn: async () => {
    await Promise.all(Array.from({ length: 100 }, () => raw.get("k")));
  },
});
Deno.bench({
  name: "guarded 100 concurrent gets, all on",
  group: "concurrent",
  fn: async () => {
    await Promise.all(Array.from({ length: 100 }, () => all.get("k")));
  },
});

// Primitives, per operation.
const breaker = new CircuitBreaker();
const timeout = new AdaptiveTimeout();
const bp = new Backpressure();
let i = 0;
Deno.bench({
  name: "breaker tryAcquire + recordSuccess",
  group: "primitives",
  fn: () => {
    if (breaker.tryAcquire()) breaker.recordSuccess();
  },
});
Deno.bench({
  name: "adaptive timeout record + timeoutMs",
  group: "primitives",
  fn: () => {
    timeout.record((i++ % 100) / 10);
    if (timeout.timeoutMs < 0) throw new Error();
  },
});
Deno.bench({
  name: "backpressure tryAcquire + release",
  group: "primitives",
  fn: () => {
    if (bp.tryAcquire()) bp.release();
  },
});
const open = new CircuitBreaker({ failureThreshold: 1 });
open.tryAcquire();
open.recordFailure(new Error("x"));
const openGuard = new GuardedBackend(mapBackend(), { circuitBreaker: { failureThreshold: 1 } });
await openGuard.get("missing", { signal: AbortSignal.abort() }).catch(() => {});
Deno.bench({
  name: "open-circuit refusal (guarded get)",
  group: "primitives",
  fn: async () => {
    if (openGuard.circuitBreaker!.state !== "open") {
      openGuard.circuitBreaker!.tryAcquire();
      openGuard.circuitBreaker!.recordFailure(new Error("x"));
    }
    await openGuard.get("k").catch(() => {});
  },
});
