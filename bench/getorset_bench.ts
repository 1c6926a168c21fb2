/**
 * `createCache(...).getOrSet` against bentocache `getOrSet` and cacheable `getOrSet`, on the same
 * workloads, paired (`bench/_paired.ts`: every variant in one process, one batch each per round in a
 * rotated order, the median of the per-round ratios with the quartiles):
 *
 * - **L1 hit** of a ~1 KB record (100 keys per batch): ours L1 only (`backend: null`, `l1.copy`
 *   default `"clone"`: each hit gets its own copy), bentocache's default memory L1 (JSON), cacheable's
 *   default in-memory store. Goal: at least 3× faster than bentocache.
 * - **L2 hit on Redis, L1 off** (100 concurrent): ours (defaults, `l1: false`) against a raw
 *   node-redis `GET` + msgpackr `unpack` (goal: at most 1.2× its time) and bentocache Redis-only.
 * - **Miss plus set** (100 concurrent misses on new keys): L1 only, the three of them; and L1 +
 *   Redis, ours against bentocache (L1 + Redis + bus) and a raw `SET` + `pack`.
 *
 * Redis: its own `redis-server` on a free loopback port (`bench/_goals_env.ts`), stopped at the
 * end. Run: `deno run -A --lock=deno.dev.lock --v8-flags=--expose-gc bench/getorset_bench.ts`
 * (`--quick`: fewer rounds). The module does nothing when imported (`deno bench` skips it).
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { Cacheable } from "npm:cacheable@^2.5.0";
import {
  bentoDefault,
  bentoL2,
  bentoTiered,
  fullGc,
  type GoalsEnv,
  startEnv,
} from "./_goals_env.ts";
import { type GoalRecord, record } from "./_goals_values.ts";
import { type GoalRow, pairedRow, rowCells, TABLE_HEADER } from "./_goals_rows.ts";
import { markdownTable, pairedRounds } from "./_paired.ts";
import { cache, createCache, RedisBackend } from "../mod.ts";

const N = 100;
const loadRecord = async (id: number): Promise<GoalRecord> => {
  await Promise.resolve();
  return record(id);
};
/** `n` concurrent calls `get(i)`, i = 0..n-1. */
const concurrent = (n: number, get: (i: number) => Promise<unknown>) => () => {
  const ps = new Array(n);
  for (let i = 0; i < n; i++) ps[i] = get(i);
  return Promise.all(ps);
};
/** `n` sequential calls `get(i)`. */
const sequential = (n: number, get: (i: number) => Promise<unknown>) => async () => {
  for (let i = 0; i < n; i++) await get(i);
};

async function l1HitRows(env: GoalsEnv, rounds: number): Promise<GoalRow[]> {
  const ours = createCache({ name: `bench.l1.${env.id}`, backend: null, ttl: 3600 });
  const bento = bentoDefault(`gs-l1-${env.id}`);
  const cacheable = new Cacheable();
  const oursGet = (i: number) => ours.getOrSet(`u${i}`, () => loadRecord(i));
  const bentoGet = (i: number) =>
    bento.getOrSet({ key: `u${i}`, factory: () => loadRecord(i), ttl: "1h" });
  const cacheableGet = (i: number) =>
    cacheable.getOrSet(`u${i}`, () => loadRecord(i), { ttl: "1h" });
  await sequential(N, oursGet)();
  await sequential(N, bentoGet)();
  await sequential(N, cacheableGet)();
  const t = await pairedRounds([
    { name: "ours", run: sequential(N, oursGet) },
    { name: "bento", run: sequential(N, bentoGet) },
    { name: "cacheable", run: sequential(N, cacheableGet) },
  ], { rounds, warmup: 20, beforeRound: fullGc });
  if (ours.cacheInfo().misses !== N) throw new Error("L1 hit row: ours missed");
  await bento.disconnect();
  const path = "L1 hit, 1 KB record, 100 keys";
  const variant = "`createCache({ backend: null }).getOrSet`";
  return [
    pairedRow(
      { path, variant, peer: "bentocache `getOrSet` (memory L1, default)", kind: "speedup" },
      t[0],
      t[1],
      N,
      { kind: "min", value: 3 },
    ),
    pairedRow(
      { path, variant, peer: "cacheable `getOrSet` (default memory)", kind: "speedup" },
      t[0],
      t[2],
      N,
      null,
    ),
  ];
}

async function l2HitRows(env: GoalsEnv, rounds: number): Promise<GoalRow[]> {
  const backend = new RedisBackend({ url: env.url, keyPrefix: `gs:${env.id}:` });
  const ours = createCache({
    name: `bench.l2.${env.id}`,
    backend,
    l1: false,
    ttl: 3600,
    ...env.guards,
  });
  const rawKey = (i: number) => `gs:raw:${env.id}:${i}`;
  const bento = bentoL2(env, `gs-l2-${env.id}`);
  const oursGet = (i: number) => ours.getOrSet(`u${i}`, () => loadRecord(i));
  const bentoGet = (i: number) =>
    bento.getOrSet({ key: `u${i}`, factory: () => loadRecord(i), ttl: "1h" });
  const rawGet = (i: number) => env.raw.get(rawKey(i)).then((b) => env.packr.unpack(b!));
  // The function face on the same engine and backend: what the key-based face adds, if anything.
  const fn = cache(loadRecord, {
    name: `bench.l2fn.${env.id}`,
    backend,
    l1: false,
    ttl: 3600,
    ...env.guards,
  });
  await concurrent(N, oursGet)();
  await concurrent(N, (i) => env.raw.set(rawKey(i), env.packr.pack(record(i))))();
  await concurrent(N, bentoGet)();
  await concurrent(N, fn)();
  const t = await pairedRounds([
    { name: "ours", run: concurrent(N, oursGet) },
    { name: "raw", run: concurrent(N, rawGet) },
    { name: "bento", run: concurrent(N, bentoGet) },
    { name: "cache(fn)", run: concurrent(N, fn) },
  ], { rounds, warmup: 20 });
  const misses = ours.cacheInfo().misses - N;
  await bento.disconnect();
  await backend.close();
  const path = "Redis L2 hit, L1 off, 100 concurrent, 1 KB record";
  const variant = "`createCache({ l1: false }).getOrSet`, defaults";
  const note = misses > 0 ? `${misses} misses in hit rounds (guards gave up on L2?)` : undefined;
  return [
    pairedRow(
      { path, variant, peer: "raw node-redis `GET` + msgpackr `unpack`", kind: "time" },
      t[0],
      t[1],
      N,
      { kind: "max", value: 1.2 },
      note,
    ),
    pairedRow(
      { path, variant, peer: "bentocache `getOrSet`, Redis L2 only", kind: "time" },
      t[0],
      t[2],
      N,
      null,
      note,
    ),
    pairedRow(
      { path, variant, peer: "`cache(fn, { l1: false })`, same backend", kind: "time" },
      t[0],
      t[3],
      N,
      null,
      note,
    ),
  ];
}

async function missRows(env: GoalsEnv, rounds: number): Promise<GoalRow[]> {
  let round = 0;
  const fresh = () => `r${round++}`;
  // L1 only: the three libraries.
  const ours = createCache({ name: `bench.miss.${env.id}`, backend: null, ttl: 3600 });
  const bento = bentoDefault(`gs-miss-${env.id}`);
  const cacheable = new Cacheable();
  const batch = (get: (k: string, i: number) => Promise<unknown>) => () => {
    const r = fresh();
    return concurrent(N, (i) => get(`${r}:${i}`, i))();
  };
  const t = await pairedRounds([
    { name: "ours", run: batch((k, i) => ours.getOrSet(k, () => loadRecord(i))) },
    {
      name: "bento",
      run: batch((k, i) => bento.getOrSet({ key: k, factory: () => loadRecord(i), ttl: "1h" })),
    },
    {
      name: "cacheable",
      run: batch((k, i) => cacheable.getOrSet(k, () => loadRecord(i), { ttl: "1h" })),
    },
  ], { rounds, warmup: 10, beforeRound: fullGc });
  await bento.disconnect();
  // L1 + Redis.
  const backend = new RedisBackend({ url: env.url, keyPrefix: `gs:m:${env.id}:` });
  const oursR = createCache({ name: `bench.missr.${env.id}`, backend, ttl: 3600, ...env.guards });
  const bentoR = bentoTiered(env, `gs-missr-${env.id}`);
  const tr = await pairedRounds([
    { name: "ours", run: batch((k, i) => oursR.getOrSet(k, () => loadRecord(i))) },
    {
      name: "bento",
      run: batch((k, i) => bentoR.getOrSet({ key: k, factory: () => loadRecord(i), ttl: "1h" })),
    },
    {
      name: "raw",
      run: batch((k, i) =>
        loadRecord(i).then((v) =>
          env.raw.set(`gs:raw:m:${k}`, env.packr.pack(v), { PX: 3_600_000 })
        )
      ),
    },
  ], { rounds, warmup: 10 });
  await bentoR.disconnect();
  await backend.close();
  const p1 = "miss + set, L1 only, 100 concurrent new keys";
  const p2 = "miss + set, L1 + Redis, 100 concurrent new keys";
  const v1 = "`createCache({ backend: null }).getOrSet`";
  const v2 = "`createCache({ backend: redis }).getOrSet`, defaults";
  return [
    pairedRow(
      { path: p1, variant: v1, peer: "bentocache `getOrSet` (memory L1)", kind: "speedup" },
      t[0],
      t[1],
      N,
      null,
    ),
    pairedRow(
      { path: p1, variant: v1, peer: "cacheable `getOrSet` (memory)", kind: "speedup" },
      t[0],
      t[2],
      N,
      null,
    ),
    pairedRow(
      { path: p2, variant: v2, peer: "bentocache `getOrSet`, L1 + Redis + bus", kind: "speedup" },
      tr[0],
      tr[1],
      N,
      null,
    ),
    pairedRow(
      { path: p2, variant: v2, peer: "raw `SET PX` + msgpackr `pack`", kind: "time" },
      tr[0],
      tr[2],
      N,
      null,
    ),
  ];
}

async function main(): Promise<void> {
  const quick = Deno.args.includes("--quick");
  const env = await startEnv(quick, Deno.args.includes("--patient-timeouts"));
  const rows: GoalRow[] = [];
  try {
    for (
      const [name, f, rounds] of [
        ["L1 hit", l1HitRows, quick ? 150 : 500],
        ["L2 hit", l2HitRows, quick ? 300 : 1000],
        ["miss + set", missRows, quick ? 100 : 400],
      ] as const
    ) {
      const got = await f(env, rounds);
      console.log(`${name}:`);
      for (const r of got) console.log(`  ${rowCells(r).join(" | ")}`);
      rows.push(...got);
    }
  } finally {
    await env.close();
  }
  console.log("\n" + markdownTable(TABLE_HEADER, rows.map(rowCells)));
}

if (import.meta.main) await main();
