// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * What the fail-safe throttle and the auto-recovery queue cost the paths they sit on, paired
 * against another build (`--base=<checkout>/mod.ts`, e.g. main before this change) in the same
 * process: every variant once per round, rotated; the median of the per-round ratios with its
 * quartiles (`bench/_paired.ts`).
 *
 * - `L2 hit, L1 off` (a `MemoryBackend`, guards off): every call reads L2 and records the success,
 *   which now also nudges the recovery queue (one comparison while nothing is pending).
 * - `async miss, fail-safe on` (`staleTtl`, new keys): the miss now asks the throttle first and
 *   picks the newest stale value.
 * - `sync L1-only miss, fail-safe on`: the synchronous twin.
 *
 * `deno run -A bench/recovery_bench.ts [rounds] --base=/path/to/checkout/mod.ts`
 *
 * @module
 */
import { cache, MemoryBackend } from "../mod.ts";
import {
  formatMs,
  formatSpread,
  markdownTable,
  pairedRounds,
  roundRatios,
  spread,
} from "./_paired.ts";

const positional = Deno.args.filter((a) => !a.startsWith("--"));
const basePath = Deno.args.find((a) => a.startsWith("--base="))?.slice("--base=".length);
const ROUNDS = Number(positional[0] ?? 31);
const base: typeof import("../mod.ts") | null = basePath === undefined
  ? null
  : await import(basePath.startsWith("/") ? `file://${basePath}` : basePath);
const BATCH = 2000;
const bare = {
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
  stampede: false,
  monitoring: { collectStats: false, prometheus: false },
} as const;
const big = { maxEntries: 100_000, maxBytes: 1e9 };
let key = 0;

type Build = { name: string; mod: typeof import("../mod.ts") };
const builds: Build[] = [{ name: "this build", mod: { cache, MemoryBackend } as never }];
if (base !== null) builds.push({ name: "other build (--base)", mod: base });

interface Row {
  name: string;
  /** The function of one build; `hit`: the same key every call, else new keys per round. */
  make(b: Build, i: number): (n: number) => unknown;
  async: boolean;
  hit: boolean;
}

const rows: Row[] = [
  {
    name: "L2 hit, L1 off (memory)",
    async: true,
    hit: true,
    make: (b, i) =>
      b.mod.cache(async (n: number) => ({ n, s: "x".repeat(64) }), {
        name: `bench.recovery.hit.${i}`,
        backend: new b.mod.MemoryBackend(),
        ttl: 600,
        l1: false,
        ...bare,
      }),
  },
  {
    name: "async miss, fail-safe on (memory)",
    async: true,
    hit: false,
    make: (b, i) =>
      b.mod.cache(async (n: number) => ({ n }), {
        name: `bench.recovery.miss.${i}`,
        backend: new b.mod.MemoryBackend(),
        ttl: 600,
        staleTtl: 600,
        l1: big,
        ...bare,
      }),
  },
  {
    name: "sync L1-only miss, fail-safe on",
    async: false,
    hit: false,
    make: (b, i) =>
      b.mod.cache((n: number) => ({ n }), {
        name: `bench.recovery.sync.${i}`,
        backend: null,
        ttl: 600,
        staleTtl: 600,
        l1: big,
      }),
  },
];

const table: string[][] = [];
for (const row of rows) {
  const fns = builds.map((b, i) => row.make(b, i));
  if (row.hit) { for (const f of fns) await f(-1); }
  const variants = fns.map((f, i) => ({
    name: builds[i].name,
    run: row.async
      ? async () => {
        for (let j = 0; j < BATCH; j++) await f(row.hit ? -1 : key + j);
      }
      : () => {
        for (let j = 0; j < BATCH; j++) f(key + j);
      },
  }));
  const next = () => void (key += BATCH);
  const times = await pairedRounds(variants, { rounds: ROUNDS, beforeRound: next });
  for (let v = 0; v < variants.length; v++) {
    const per = spread(times[v]).median / BATCH;
    const ratio = v === 0 ? "1 (baseline)" : formatSpread(spread(roundRatios(times[v], times[0])));
    table.push([row.name, variants[v].name, formatMs(per), ratio]);
  }
  if (variants.length > 1) {
    table.push([
      row.name,
      "this build / other build",
      "",
      formatSpread(spread(roundRatios(times[0], times[1]))),
    ]);
  }
}
console.log(`${Deno.build.os} ${Deno.version.deno}, ${ROUNDS} rounds of ${BATCH} calls\n`);
console.log(markdownTable(["workload", "variant", "per call (median)", "ratio [q1–q3]"], table));
