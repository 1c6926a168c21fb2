/**
 * The process-level measurement of decompression bombs: plants a 2 MiB envelope whose LZ4
 * block expands to 511 MiB (declaring 512 MiB) under a cached function's key, reads it through
 * `cache()` `reads` times (planting it again before each read, as a writer to a shared cache
 * could), and prints `{"peakGrowthBytes": n, "misses": m}`: how much the peak resident set grew
 * over the reads (Linux `VmHWM`; elsewhere the largest sampled `rss`).
 *
 * Run: `deno run -A tests/_fixtures/limits_bomb_worker.ts [reads] [maxValueSize]`
 *
 * @module
 */
import { readFileSync } from "node:fs";
import process from "node:process";
import { type Backend, cache, MemoryBackend } from "../../mod.ts";
import { bombEnvelope } from "./lz4_bomb.ts";

function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) * 1024;
  } catch { /* not Linux */ }
  return process.memoryUsage().rss;
}

const reads = Number(process.argv[2] ?? 10);
const maxValueSize = process.argv[3] === undefined ? undefined : Number(process.argv[3]);
const inner = new MemoryBackend();
let key = "";
const backend: Backend = {
  type: inner.type,
  capabilities: inner.capabilities,
  get: (k, o) => inner.get(k, o),
  set: (k, v, t, o) => {
    key = k;
    return inner.set(k, v, t, o);
  },
  delete: (k, o) => inner.delete(k, o),
  exists: (k, o) => inner.exists(k, o),
  healthCheck: () => inner.healthCheck(),
};
let runs = 0;
const f = cache(async (id: number) => {
  await Promise.resolve();
  return { id, runs: ++runs };
}, {
  name: "limits.worker",
  ttl: 60,
  backend,
  l1: false,
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
  ...(maxValueSize === undefined ? {} : { maxValueSize }),
});
await f(1);
const bomb = bombEnvelope(511 * 1024 * 1024, 512 * 1024 * 1024);
const before = peakRss();
let peak = before;
for (let i = 0; i < reads; i++) {
  await inner.set(key, bomb, 60);
  await f(1);
  peak = Math.max(peak, peakRss());
}
console.log(JSON.stringify({ peakGrowthBytes: peak - before, misses: runs - 1 }));
