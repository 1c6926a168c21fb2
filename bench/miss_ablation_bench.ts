// deno-lint-ignore-file no-explicit-any require-await -- node-redis types, loosely; an async function that computes at once
/**
 * Where a miss's client CPU goes, by ablation: `cache(fn)` misses (L1 + Redis, 100 concurrent new
 * keys per batch) with the defaults and with one feature off at a time, against raw node-redis
 * `GET` + msgpackr `pack` + `SET PX`, paired in one process (`_paired.ts`, the process's CPU time
 * as the clock). Each row is the median of per-round ratios against the defaults: what turning
 * that one feature off saves. With the goals bench's patient timeouts.
 *
 * `deno run -A --lock=deno.dev.lock bench/miss_ablation_bench.ts [rounds=30] [batches=5]`
 *
 * @module
 */
import { cache } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";
import {
  cpuMs,
  missRecord as record,
  PATIENT_TIMEOUTS as patient,
  rawMiss,
} from "./_miss_shape.ts";

const url = "redis://127.0.0.1:6379";
const pfx = `ablate:${Date.now()}:`;
const rounds = Number(Deno.args[0] ?? 30);
const batches = Number(Deno.args[1] ?? 5);
const N = 100;

const VARIANTS: [string, Record<string, unknown>][] = [
  ["defaults", {}],
  ["l1: false", { l1: false }],
  ["stampede off", { stampede: { enabled: false } }],
  ["integrity off", { integrityChecking: false }],
  ["no invalidation bus", { l1: { invalidation: false } }],
  ["monitoring off", {
    monitoring: { collectStats: false, prometheus: false, structuredLogging: false },
  }],
  ["guards off", { circuitBreaker: false, timeout: false, backpressure: false }],
];
const backends: RedisBackend[] = [];
const fns = VARIANTS.map(([, opts], i) => {
  const backend = new RedisBackend({ url, keyPrefix: `${pfx}${i}:` });
  backends.push(backend);
  return cache(async (k: number) => record(k), {
    name: `ablate.${i}`,
    backend,
    ttl: 20,
    ...patient,
    ...opts,
  } as any);
});
const raw = await rawMiss(url, pfx);
let fresh = 0;
const batch = (f: (i: number) => Promise<unknown>) => async () => {
  for (let b = 0; b < batches; b++) {
    const ps = [];
    for (let i = 0; i < N; i++) ps.push(f(fresh++));
    await Promise.all(ps);
  }
};
const variants = [
  ...VARIANTS.map(([name], i) => ({ name, run: batch(fns[i] as any) })),
  { name: "raw", run: batch(raw.miss) },
];
const times = await pairedRounds(variants, { rounds, warmup: 5, now: cpuMs });
const per = (t: number[]) => (spread(t).median * 1000) / (batches * N);
console.log(`| variant | client CPU µs/miss | ratio to defaults [q1–q3] |`);
console.log(`| --- | --- | --- |`);
for (let v = 0; v < variants.length; v++) {
  const s = spread(roundRatios(times[v], times[0]));
  console.log(
    `| ${variants[v].name} | ${per(times[v]).toFixed(1)} | ${s.median.toFixed(3)} [${
      s.q1.toFixed(3)
    }–${s.q3.toFixed(3)}] |`,
  );
}
await raw.close();
for (const b of backends) await b.close();
Deno.exit(0);
