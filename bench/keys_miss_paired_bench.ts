/**
 * Client CPU per miss of `cache(fn)` on Redis (100 concurrent calls of new keys, a 1 KB record,
 * the stampede lock on: the shape of the profiled miss), paired against the same library at an
 * earlier commit loaded in the same process (`--base=DIR`, see `keys_paired_bench.ts` for laying
 * one out): every round runs both, in alternating order, and the per-round ratio of client CPU
 * (`process.cpuUsage`) is reported as a median with quartiles. Needs Redis at
 * `redis://127.0.0.1:6379` (keys under a `bench:keys-miss:<time>:` prefix, 20 s TTL).
 *
 * Run: `deno run -A --lock=deno.dev.lock bench/keys_miss_paired_bench.ts [rounds] --base=DIR`
 *
 * @module
 */
import { formatSpread, pairedRounds, roundRatios, spread, type Variant } from "./_paired.ts";
import * as current from "../mod.ts";
import { cpuMs, missRecord as record } from "./_miss_shape.ts";

const positional = Deno.args.filter((a) => !a.startsWith("--"));
const baseDir = Deno.args.find((a) => a.startsWith("--base="))?.slice("--base=".length);
const rounds = Number(positional[0] ?? 60);
const url = "redis://127.0.0.1:6379";
const N = 100;

type Lib = typeof current;
const libs: { name: string; lib: Lib }[] = [{ name: "after", lib: current }];
if (baseDir !== undefined) {
  const href = new URL(`${baseDir.replace(/\/$/, "")}/mod.ts`, `file://${Deno.cwd()}/`).href;
  libs.unshift({ name: `before (${baseDir})`, lib: await import(href) as Lib });
}
const stamp = Date.now();
let fresh = 0;
const variants: Variant[] = libs.map(({ name, lib }, k) => {
  const backend = new lib.RedisBackend({ url, keyPrefix: `bench:keys-miss:${stamp}:${k}:` });
  const f = lib.cache(async (i: number) => {
    await Promise.resolve();
    return record(i);
  }, { name: `bench.keys.miss${k}`, backend, ttl: 20 });
  return {
    name,
    run: () => {
      const ps = new Array(N);
      for (let i = 0; i < N; i++) ps[i] = f(fresh++);
      return Promise.all(ps);
    },
  };
});
const t = await pairedRounds(variants, { rounds, warmup: 20, now: cpuMs });
console.log(`client CPU per miss, ${N} concurrent new keys, ${rounds} rounds`);
for (let v = 0; v < variants.length; v++) {
  const us = spread(t[v]).median * 1000 / N;
  const ratio = formatSpread(spread(roundRatios(t[v], t[0])));
  console.log(`  ${variants[v].name.padEnd(36)} ${us.toFixed(1)} µs CPU/miss  ${ratio}`);
}
Deno.exit(0);
