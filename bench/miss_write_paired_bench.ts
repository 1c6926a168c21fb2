// deno-lint-ignore-file no-explicit-any require-await -- node-redis types, loosely; an async function that computes at once
/**
 * Client CPU per miss (L1 + Redis, defaults, stampede lock on, 100 concurrent new keys per batch)
 * of this tree against another tree of the package (a copy of `main`, say), and raw node-redis
 * `GET` + msgpackr `pack` + `SET PX`, paired in one process (`_paired.ts`, with the process's CPU
 * time as the clock): every round runs a batch of each, the ratios are taken within the round.
 * With the adaptive-timeout floor of the goals bench's `--patient-timeouts`.
 *
 * `OTHER_TREE=/path/to/main-copy deno run -A --lock=deno.dev.lock bench/miss_write_paired_bench.ts [rounds=40] [batches=10]`
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

const other = Deno.env.get("OTHER_TREE");
if (other === undefined) throw new Error("set OTHER_TREE to the root of the tree to compare with");
const otherMod = await import(`${other}/mod.ts`);
const otherRedis = await import(`${other}/backends/redis.ts`);

const url = "redis://127.0.0.1:6379";
const pfx = `mwpair:${Date.now()}:`;
const bThis = new RedisBackend({ url, keyPrefix: pfx + "this:" });
const bOther = new otherRedis.RedisBackend({ url, keyPrefix: pfx + "other:" });
const fThis = cache(async (i: number) => record(i), {
  name: "missw.this",
  backend: bThis,
  ttl: 20,
  ...patient,
} as any);
const fOther = otherMod.cache(async (i: number) => record(i), {
  name: "missw.other",
  backend: bOther,
  ttl: 20,
  ...patient,
});
const raw = await rawMiss(url, pfx);
let fresh = 0;
const rounds = Number(Deno.args[0] ?? 40);
const batches = Number(Deno.args[1] ?? 10);
const batch = (f: (i: number) => unknown) => async () => {
  for (let b = 0; b < batches; b++) {
    const ps = [];
    for (let i = 0; i < 100; i++) ps.push(f(fresh++));
    await Promise.all(ps);
  }
};
const [tOther, tThis, tRaw] = await pairedRounds([
  { name: "other", run: batch(fOther) },
  { name: "this", run: batch(fThis) },
  { name: "raw", run: batch(raw.miss) },
], { rounds, warmup: 3, now: cpuMs });
const per = (t: number[]) => (spread(t).median * 1000 / (batches * 100)).toFixed(1);
const fmt = (s: { median: number; q1: number; q3: number }) =>
  `${s.median.toFixed(3)} [${s.q1.toFixed(3)}–${s.q3.toFixed(3)}]`;
console.log(
  `client CPU µs per miss (median of rounds): other ${per(tOther)}, this ${per(tThis)}, raw ${
    per(tRaw)
  }`,
);
console.log(
  `this ÷ other ${fmt(spread(roundRatios(tThis, tOther)))}; other ÷ raw ${
    fmt(spread(roundRatios(tOther, tRaw)))
  }; this ÷ raw ${fmt(spread(roundRatios(tThis, tRaw)))}`,
);
await bThis.close();
await bOther.close();
await raw.close();
Deno.exit(0);
