// The cost of the reliability layer on an L2 hit through the engine, against the shared Redis at
// 127.0.0.1:6379 (target: < 10 % overhead with every feature on). L1 is off so every call is an
// L2 read + decode. Variants, same backend connection and value (a 1 KiB object, integrity on):
// - off: no circuit breaker, adaptive timeout, backpressure, metrics;
// - reliability on: breaker + adaptive timeout + backpressure (cachekit-py's defaults);
// - all on: + Prometheus metrics + fail-safe (staleTtl 60).
// Each one caller at a time and 100 concurrent callers.
// Run: deno bench -A bench/engine_reliability_bench.ts
import { cache, type CacheOptions, RedisBackend } from "../mod.ts";

const prefix = `bench:engrel:${crypto.randomUUID().slice(0, 8)}:`;
const backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: prefix });
const value = { id: 1, name: "x".repeat(1000), tags: ["a", "b", "c"] };
// deno-lint-ignore require-await -- an async function is what the engine caches here
const fn = async (i: number) => ({ ...value, id: i });

const off = {
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
  monitoring: { prometheus: false },
} as const;
const variants: Record<string, CacheOptions<[number]>> = {
  "off": off,
  "reliability on": { monitoring: { prometheus: false } },
  "all on (+metrics, +fail-safe)": { staleTtl: 60 },
};
const KEYS = 100;
const fns = new Map<string, (i: number) => Promise<unknown>>();
for (const [label, o] of Object.entries(variants)) {
  const f = cache(fn, {
    name: "bench.engrel",
    ttl: 300, // the bench keys expire by themselves on the shared Redis
    backend,
    l1: false,
    stampede: false,
    ...o,
  });
  for (let i = 0; i < KEYS; i++) await f(i); // store (same keys for every variant)
  fns.set(label, f);
}

// Warm-up (JIT, connection) of every variant before any timing, round-robin.
for (let round = 0; round < 20; round++) {
  for (const f of fns.values()) await Promise.all(Array.from({ length: KEYS }, (_, i) => f(i)));
}

let n = 0;
for (const [label, f] of fns) {
  Deno.bench({
    name: `L2 hit, 1 caller: ${label}`,
    group: "one caller",
    baseline: label === "off",
    fn: async () => {
      await f(n++ % KEYS);
    },
  });
  Deno.bench({
    name: `L2 hit, 100 concurrent: ${label}`,
    group: "100 concurrent",
    baseline: label === "off",
    fn: async () => {
      const ps: Promise<unknown>[] = [];
      for (let i = 0; i < 100; i++) ps.push(f(i));
      await Promise.all(ps);
    },
  });
}
