/**
 * The Redis L2 hit of this tree against another tree of the package, in one process (paired
 * rounds: every variant once per round, rotated order, median of per-round ratios [quartiles]),
 * with this process's CPU per call. 100 concurrent hits of the goals' 1 KB record
 * (`bench/_goals_values.ts`), L1 off, the defaults with an adaptive-timeout floor of 2 s (as the
 * goal rows' `--patient-timeouts`), on a private redis-server; both faces: `cache(fn)` and
 * `createCache().getOrSet`, and raw node-redis `GET` + msgpackr `unpack` (timeout off) as the
 * common peer. The other tree is imported from its own `mod.ts` (e.g. `git archive <commit> | tar
 * -x -C /tmp/before`, with a `node_modules` link to this tree's).
 *
 * `deno run -A --lock=deno.dev.lock bench/redis_hit_ab_bench.ts <other tree> [rounds]`
 *
 * @module
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { createClient } from "redis";
import { Packr } from "msgpackr";
import * as after from "../mod.ts";
import { record } from "./_goals_values.ts";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";
import { freePort } from "./_goals_env.ts";
import { startRedisServer } from "../tests/_redis_server.ts";

type Mod = typeof after;
if (Deno.args[0] === undefined) {
  console.error("usage: redis_hit_ab_bench.ts <other tree> [rounds]");
  Deno.exit(2);
}
const before: Mod = await import(pathToFileURL(resolve(Deno.args[0], "mod.ts")).href);
const ROUNDS = Number(Deno.args[1] ?? 1000);
const N = 100;
const server = await startRedisServer(await freePort());
const patient = { timeout: { min: 2, initial: 2, max: 5 } };
const load = async (i: number) => {
  await Promise.resolve();
  return record(i);
};
const backends: { close(): Promise<void> }[] = [];
const backendOf = (m: Mod, tag: string) => {
  const b = new m.RedisBackend({ url: server.url, keyPrefix: `ab:${tag}:` });
  backends.push(b);
  return b;
};
const fnOf = (m: Mod, tag: string) =>
  m.cache(load, { name: `ab.${tag}`, backend: backendOf(m, tag), l1: false, ttl: 600, ...patient });
const objOf = (m: Mod, tag: string) => {
  const c = m.createCache({
    name: `abo.${tag}`,
    backend: backendOf(m, tag),
    l1: false,
    ttl: 600,
    ...patient,
  });
  return (i: number) => c.getOrSet(`u${i}`, () => load(i));
};
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const raw = createClient({ url: server.url, commandOptions: { timeout: 0 } })
  .withTypeMapping({ 36: Buffer });
raw.on("error", () => {});
await raw.connect();
await Promise.all(Array.from({ length: N }, (_, i) => raw.set(`raw:${i}`, packr.pack(record(i)))));

const variants: [string, (i: number) => Promise<unknown>][] = [
  ["raw GET + unpack", (i) => raw.get(`raw:${i}`).then((b) => packr.unpack(b!))],
  ["other cache()", fnOf(before, "b")],
  ["this cache()", fnOf(after, "a")],
  ["other getOrSet", objOf(before, "bo")],
  ["this getOrSet", objOf(after, "ao")],
];
const batch = (f: (i: number) => Promise<unknown>) => {
  const ps = new Array(N);
  for (let i = 0; i < N; i++) ps[i] = f(i);
  return Promise.all(ps);
};
for (const [, f] of variants) for (let r = 0; r < 20; r++) await batch(f);
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
const ratio = (a: number, b: number) => {
  const s = spread(roundRatios(t[a], t[b]));
  return `${s.median.toFixed(3)} [${s.q1.toFixed(3)}–${s.q3.toFixed(3)}]`;
};
console.log(`${ROUNDS} rounds of ${N} concurrent L2 hits, 1 KB record, L1 off`);
console.table(variants.map(([name], v) => ({
  variant: name,
  "÷ raw": v === 0 ? "1" : ratio(v, 0),
  "this ÷ other": v === 2 ? ratio(2, 1) : v === 4 ? ratio(4, 3) : "",
  "CPU µs/call (client)": (cpu[v] / ROUNDS / N).toFixed(2),
})));
for (const b of backends) await b.close();
await raw.quit();
await server.stop();
