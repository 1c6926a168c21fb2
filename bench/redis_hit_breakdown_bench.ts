// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * Where an L2 hit's time goes against the raw client, on a private redis-server: 100 concurrent
 * hits of the goals' 1 KB record (`bench/_goals_values.ts`), L1 off, paired rounds (every variant
 * once per round, rotated order, median of per-round ratios against raw node-redis `GET` +
 * msgpackr `unpack` with the per-command timeout off), with this process's CPU per call.
 *
 * Variants: the engine bare (no breaker, adaptive timeout, backpressure, stats or metrics; the
 * envelope with integrity on), the defaults with integrity off (no envelope: the std serializer's
 * bytes as they are), and the defaults (what the goal row of `bench/goals_bench.ts` measures,
 * with an adaptive-timeout floor of 2 s so that a loaded host does not open the breaker). The
 * differences between them are the envelope's share and the guards' and metrics' share.
 *
 * `deno run -A --lock=deno.dev.lock bench/redis_hit_breakdown_bench.ts [rounds]`
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { createClient } from "redis";
import { Packr } from "msgpackr";
import { cache, RedisBackend } from "../mod.ts";
import { record } from "./_goals_values.ts";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";
import { freePort } from "./_goals_env.ts";
import { startRedisServer } from "../tests/_redis_server.ts";

const ROUNDS = Number(Deno.args[0] ?? 300);
const N = 100;
const server = await startRedisServer(await freePort());
const backend = new RedisBackend({ url: server.url, keyPrefix: "breakdown:" });
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const quiet = { collectStats: false, prometheus: false, structuredLogging: false };
const patient = { timeout: { min: 2, initial: 2, max: 5 } };
const make = (name: string, o: Record<string, unknown>) =>
  cache(async (i: number) => record(i), { name, backend, l1: false, ttl: 600, ...o });
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const raw = createClient({ url: server.url, commandOptions: { timeout: 0 } })
  .withTypeMapping({ 36: Buffer });
raw.on("error", () => {});
await raw.connect();
await Promise.all(Array.from({ length: N }, (_, i) => raw.set(`raw:${i}`, packr.pack(record(i)))));

const variants: [string, (i: number) => Promise<unknown>][] = [
  ["raw GET + unpack (baseline)", (i) => raw.get(`raw:${i}`).then((b) => packr.unpack(b!))],
  ["engine bare (envelope, no guards or metrics)", make("bare", { ...bare, monitoring: quiet })],
  [
    "defaults, integrity off (no envelope)",
    make("noenv", { ...patient, integrityChecking: false }),
  ],
  ["defaults", make("defaults", patient)],
];
const batch = (f: (i: number) => Promise<unknown>) => {
  const ps = new Array(N);
  for (let i = 0; i < N; i++) ps[i] = f(i);
  return Promise.all(ps);
};
for (const [, f] of variants) for (let r = 0; r < 10; r++) await batch(f);
const cpu = variants.map(() => 0);
const t = await pairedRounds(
  variants.map(([name, f], v) => ({
    name,
    run: async () => {
      const c = process.cpuUsage();
      await batch(f);
      const d = process.cpuUsage(c);
      cpu[v] += d.user + d.system;
    },
  })),
  { rounds: ROUNDS, warmup: 0 },
);
console.log(`${ROUNDS} rounds of ${N} concurrent L2 hits, 1 KB record, L1 off`);
console.table(variants.map(([name], v) => {
  const s = spread(roundRatios(t[v], t[0]));
  return {
    variant: name,
    "µs/call": (spread(t[v]).median * 1000 / N).toFixed(2),
    "÷ raw": `${s.median.toFixed(2)} [${s.q1.toFixed(2)}–${s.q3.toFixed(2)}]`,
    "CPU µs/call (client)": (cpu[v] / ROUNDS / N).toFixed(2),
  };
}));
await backend.close();
await raw.quit();
await server.stop();
