// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * What adaptive caching costs a miss, paired (every variant once per round, rotated; the median of
 * the per-round ratios against the row's baseline, with quartiles):
 *
 * - `sync L1-only miss` (a synchronous function, `backend: null`, new keys): baseline the plain
 *   miss. Rows: the same with `ttl` as a function and `cacheIf`; the function calling
 *   `cacheContext().setTtl()`. A synchronous computation's context costs two assignments.
 * - `async memory miss` (an async function, a `MemoryBackend` L2, stampede lock and guards off, new
 *   keys): baseline the plain miss, which runs the function in an `AsyncLocalStorage` context (so
 *   that `cacheContext()` answers after an `await`). Rows: the options and the context call as
 *   above; and the plain miss with a second, empty `AsyncLocalStorage.run` around each call: what
 *   one run adds to a miss, i.e. what the factory context added to it.
 * - `L1 hit`: the factory context is not on the hit path; the plain hit against the hit of a
 *   function with the adaptive options, for the record.
 *
 * With `--base=<path of another checkout's mod.ts>` (e.g. main before this change), each row also
 * has the plain miss of that build, in the same rounds: the ratio of this build's plain miss to it
 * is what this build added to a miss.
 *
 * `deno run -A bench/factory_context_bench.ts [rounds] [--base=/path/to/checkout/mod.ts]`
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { cache, cacheContext, MemoryBackend } from "../mod.ts";
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
// The other build, if any (a dynamic import: its path is known at run time only).
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

type Row = { name: string; fns: { name: string; f: (n: number) => unknown }[]; async: boolean };

const als = new AsyncLocalStorage<number>();
const plainAsync = cache(async (n: number) => ({ n }), {
  name: "bench.fc.async.plain",
  backend: new MemoryBackend(),
  ttl: 600,
  l1: big,
  ...bare,
});
const plainAsync2 = cache(async (n: number) => ({ n }), {
  name: "bench.fc.async.plain2",
  backend: new MemoryBackend(),
  ttl: 600,
  l1: big,
  ...bare,
});
const rows: Row[] = [
  {
    name: "sync L1-only miss",
    async: false,
    fns: [
      {
        name: "plain",
        f: cache((n: number) => ({ n }), { name: "bench.fc.sync.plain", backend: null, l1: big }),
      },
      {
        name: "ttl function + cacheIf",
        f: cache((n: number) => ({ n }), {
          name: "bench.fc.sync.opts",
          backend: null,
          l1: big,
          ttl: (v) => (v.n % 2 === 0 ? 60 : 120),
          cacheIf: (v) => v.n >= 0,
        }),
      },
      {
        name: "cacheContext().setTtl",
        f: cache((n: number) => {
          cacheContext().setTtl(60);
          return { n };
        }, { name: "bench.fc.sync.ctx", backend: null, l1: big }),
      },
    ],
  },
  {
    name: "async memory miss",
    async: true,
    fns: [
      { name: "plain", f: plainAsync },
      {
        name: "ttl function + cacheIf",
        f: cache(async (n: number) => ({ n }), {
          name: "bench.fc.async.opts",
          backend: new MemoryBackend(),
          l1: big,
          ttl: (v) => (v.n % 2 === 0 ? 60 : 120),
          cacheIf: (v) => v.n >= 0,
          ...bare,
        }),
      },
      {
        name: "cacheContext().setTtl",
        f: cache(async (n: number) => {
          cacheContext().setTtl(60);
          return { n };
        }, {
          name: "bench.fc.async.ctx",
          backend: new MemoryBackend(),
          ttl: 600,
          l1: big,
          ...bare,
        }),
      },
      {
        name: "plain + one more AsyncLocalStorage.run",
        f: (n: number) => als.run(n, plainAsync2, n),
      },
    ],
  },
];

const hitPlain = cache(async (n: number) => ({ n }), { name: "bench.fc.hit.plain", backend: null });
const hitOpts = cache(async (n: number) => ({ n }), {
  name: "bench.fc.hit.opts",
  backend: null,
  ttl: () => 60,
  cacheIf: () => true,
});
await hitPlain(1);
await hitOpts(1);

if (base !== null) {
  rows[0].fns.push({
    name: "plain, other build (--base)",
    f: base.cache((n: number) => ({ n }), { name: "bench.fc.sync.base", backend: null, l1: big }),
  });
  rows[1].fns.push({
    name: "plain, other build (--base)",
    f: base.cache(async (n: number) => ({ n }), {
      name: "bench.fc.async.base",
      backend: new base.MemoryBackend(),
      ttl: 600,
      l1: big,
      ...bare,
    }),
  });
}

const table: string[][] = [];
for (const row of rows) {
  const variants = row.fns.map(({ name, f }) => ({
    name,
    run: row.async
      ? async () => {
        for (let i = 0; i < BATCH; i++) await f(key + i);
      }
      : () => {
        for (let i = 0; i < BATCH; i++) f(key + i);
      },
  }));
  // Each round calls new keys (the same ones for every variant, each in its own cache).
  const next = () => void (key += BATCH);
  const times = await pairedRounds(variants, { rounds: ROUNDS, beforeRound: next });
  for (let v = 0; v < variants.length; v++) {
    const per = spread(times[v]).median / BATCH;
    const ratio = v === 0 ? "1 (baseline)" : formatSpread(spread(roundRatios(times[v], times[0])));
    table.push([row.name, variants[v].name, formatMs(per), ratio]);
  }
  if (base !== null) {
    const last = variants.length - 1;
    table.push([
      row.name,
      "this build's plain miss / the other build's",
      "",
      formatSpread(spread(roundRatios(times[0], times[last]))),
    ]);
  }
}
{
  const variants = [hitPlain, hitOpts].map((f, i) => ({
    name: i === 0 ? "plain" : "ttl function + cacheIf",
    run: async () => {
      for (let j = 0; j < BATCH * 10; j++) await f(1);
    },
  }));
  const times = await pairedRounds(variants, { rounds: ROUNDS });
  table.push([
    "L1 hit (async, L1 only)",
    "plain",
    formatMs(spread(times[0]).median / BATCH / 10),
    "1 (baseline)",
  ]);
  table.push([
    "L1 hit (async, L1 only)",
    variants[1].name,
    formatMs(spread(times[1]).median / BATCH / 10),
    formatSpread(spread(roundRatios(times[1], times[0]))),
  ]);
}
console.log(`${Deno.build.os} ${Deno.version.deno}, ${ROUNDS} rounds of ${BATCH} calls\n`);
console.log(markdownTable(["workload", "variant", "per call (median)", "ratio [q1–q3]"], table));
