/**
 * The Redis goals of issue 14, on the bench's own `redis-server`: the L2 hit with L1 off (100
 * concurrent 1 KB records; 1 MB and 10 MB values in MB/s), the miss + write of 100 concurrent new
 * keys with the stampede lock on, and the throughput of 50 workers at 90 % hits over 10,000 keys
 * with L1 + Redis. Peers in the same process: raw node-redis (`GET` + msgpackr `unpack`, `GET` +
 * `pack` + `SET PX`, per-command timeout off) and bentocache configured the same way.
 *
 * Our variants run with the defaults (integrity on, circuit breaker, adaptive timeout,
 * backpressure, stats and Prometheus metrics on), only `l1` set where the goal says.
 *
 * @module
 */
import { cache, RedisBackend } from "../mod.ts";
import { pairedRounds } from "./_paired.ts";
import { bentoL2, bentoTiered, fullGc, type GoalsEnv } from "./_goals_env.ts";
import { type GoalRow, invalidIf, pairedRow } from "./_goals_rows.ts";
import { type GoalRecord, record, recordList, RECORDS_PER } from "./_goals_values.ts";

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

function newBackend(env: GoalsEnv, tag: string): RedisBackend {
  return new RedisBackend({
    url: env.url,
    keyPrefix: `goals:${tag}:${env.id}:`,
    invalidationChannel: `goals:${tag}:${env.id}:inv`,
  });
}

/** Row 2: L2 hit, L1 off, 100 concurrent 1 KB records: ours (defaults) vs raw and bentocache. */
export async function l2HitRows(env: GoalsEnv): Promise<GoalRow[]> {
  const backend = newBackend(env, "l2");
  let computed = 0;
  const ours = cache(async (i: number) => {
    computed++;
    return await loadRecord(i);
  }, { name: `goals.l2.${env.id}`, backend, l1: false, ...env.guards });
  const c = ours.config;
  console.log(
    `L2 hit row, ours: integrity ${c.integrityChecking}, breaker ${c.circuitBreaker.enabled}, ` +
      `adaptive timeout ${c.timeout.enabled} (floor ${c.timeout.min} s), backpressure ${c.backpressure.enabled}, stats ` +
      `${c.monitoring.collectStats}, Prometheus ${c.monitoring.prometheus}, stampede ` +
      `${c.stampede.enabled}, wire ${c.wire}`,
  );
  const rawKey = (i: number) => `goals:raw:${env.id}:${i}`;
  const bento = bentoL2(env, `goals-l2-${env.id}`);
  const bentoGet = (i: number) =>
    bento.getOrSet({ key: `u${i}`, factory: () => loadRecord(i), ttl: "1h" });
  await concurrent(N, (i) => ours(i))();
  await concurrent(N, (i) => env.raw.set(rawKey(i), env.packr.pack(record(i))))();
  await concurrent(N, bentoGet)();
  computed = 0;
  const rawGet = (i: number) => env.raw.get(rawKey(i)).then((b) => env.packr.unpack(b!));
  const t = await pairedRounds([
    { name: "ours", run: concurrent(N, (i) => ours(i)) },
    { name: "raw", run: concurrent(N, rawGet) },
    { name: "bento", run: concurrent(N, bentoGet) },
  ], { rounds: env.rounds.l2Hit, warmup: 20 });
  const calls = (env.rounds.l2Hit + 20) * N;
  const { l2Errors } = ours.cacheInfo();
  if (computed > 0) {
    console.log(`L2 hit row: ${computed} misses; health ${JSON.stringify(ours.getHealthStatus())}`);
  }
  const missed = `misses of ${calls.toLocaleString("en-US")} hit calls (${l2Errors} L2 errors)`;
  await bento.disconnect();
  await backend.close();
  const path = "Redis L2 hit, L1 off, 100 concurrent, 1 KB record";
  const variant = "`cache(fn, { l1: false })`, defaults";
  return [
    invalidIf(
      pairedRow(
        {
          path,
          variant,
          peer: "raw node-redis `GET` + msgpackr `unpack` (timeout off)",
          kind: "time",
        },
        t[0],
        t[1],
        N,
        { kind: "max", value: 1.2 },
      ),
      computed,
      missed,
    ),
    invalidIf(
      pairedRow(
        { path, variant, peer: "bentocache `getOrSet`, Redis L2 only", kind: "time" },
        t[0],
        t[2],
        N,
        null,
      ),
      computed,
      missed,
    ),
  ];
}

/** Row 2, large values: L2 hit of a 1 MB and a 10 MB list, L1 off, ours' MB/s ÷ raw's. */
export async function l2LargeRows(env: GoalsEnv): Promise<GoalRow[]> {
  const backend = newBackend(env, "l2big");
  const rows: GoalRow[] = [];
  const sizes = [
    { label: "1 MB", count: RECORDS_PER.mb1, ops: 2, rounds: env.rounds.l2Mb1 },
    { label: "10 MB", count: RECORDS_PER.mb10, ops: 1, rounds: env.rounds.l2Mb10 },
  ];
  for (const { label, count, ops, rounds } of sizes) {
    let computed = 0;
    const ours = cache(async (n: number) => {
      computed++;
      await Promise.resolve();
      return recordList(count, n);
    }, { name: `goals.l2big.${count}.${env.id}`, backend, l1: false, ...env.guards });
    const bytes = env.packr.pack(recordList(count, 0));
    const rawKey = `goals:rawbig:${env.id}:${count}`;
    await env.raw.set(rawKey, bytes);
    await ours(0);
    computed = 0;
    const seq = (get: () => Promise<unknown>) => async () => {
      for (let i = 0; i < ops; i++) await get();
    };
    const t = await pairedRounds([
      { name: "ours", run: seq(() => ours(0)) },
      { name: "raw", run: seq(() => env.raw.get(rawKey).then((b) => env.packr.unpack(b!))) },
    ], { rounds, warmup: 2, beforeRound: fullGc });
    const { l2Errors } = ours.cacheInfo();
    await env.raw.del(rawKey);
    await ours.cacheClear();
    const mb = (bytes.length / 1e6).toFixed(1);
    rows.push(invalidIf(
      pairedRow(
        {
          path: `Redis L2 hit, L1 off, ${label} list (${mb} MB as MessagePack), MB/s`,
          variant: "`cache(fn, { l1: false })`, defaults",
          peer: "raw `GET` + msgpackr `unpack` (timeout off)",
          kind: "speedup",
        },
        t[0],
        t[1],
        ops,
        { kind: "min", value: 0.85 },
      ),
      computed,
      `misses of ${((rounds + 2) * ops)} hit calls (${l2Errors} L2 errors)`,
    ));
  }
  await backend.close();
  return rows;
}

/** Row 3: miss + write, 100 concurrent new keys, stampede lock on. */
export async function missRows(env: GoalsEnv): Promise<GoalRow[]> {
  const backend = newBackend(env, "miss");
  const ours = cache(loadRecord, { name: `goals.miss.${env.id}`, backend, ttl: 20, ...env.guards });
  const oursNoL1 = cache(loadRecord, {
    name: `goals.miss.nol1.${env.id}`,
    backend,
    ttl: 20,
    l1: false,
    ...env.guards,
  });
  const bento = bentoTiered(env, `goals-miss-${env.id}`);
  let fresh = 0;
  const rawMiss = (i: number) => {
    const key = `goals:rawmiss:${env.id}:${i}`;
    return env.raw.get(key).then((b) =>
      b ??
        env.raw.set(key, env.packr.pack(record(i)), { expiration: { type: "PX", value: 20_000 } })
    );
  };
  const batch = (get: (i: number) => Promise<unknown>) => () => {
    const base = fresh;
    fresh += N;
    return concurrent(N, (i) => get(base + i))();
  };
  const t = await pairedRounds([
    { name: "ours", run: batch((i) => ours(i)) },
    { name: "raw", run: batch(rawMiss) },
    {
      name: "bento",
      run: batch((i) => bento.getOrSet({ key: `m${i}`, factory: () => loadRecord(i), ttl: "20s" })),
    },
    { name: "ours no L1", run: batch((i) => oursNoL1(i)) },
  ], { rounds: env.rounds.miss, warmup: 10 });
  const info = ours.cacheInfo();
  const notMissed = info.hits + info.l2Errors;
  await bento.disconnect();
  await backend.close();
  const path = "miss + write, 100 concurrent new keys, stampede lock on";
  const variant = "`cache(fn)` defaults, L1 + Redis";
  return [
    invalidIf(
      pairedRow(
        { path, variant, peer: "raw `GET` + msgpackr `pack` + `SET PX`", kind: "time" },
        t[0],
        t[1],
        N,
        { kind: "max", value: 1.5 },
      ),
      notMissed,
      "hits or L2 errors in the miss calls",
    ),
    invalidIf(
      pairedRow(
        { path, variant, peer: "bentocache `getOrSet`, L1 + Redis L2 + bus", kind: "speedup" },
        t[0],
        t[2],
        N,
        { kind: "min", value: 1 },
      ),
      notMissed,
      "hits or L2 errors in the miss calls",
    ),
    pairedRow(
      {
        path,
        variant: "`cache(fn, { l1: false })`",
        peer: "raw `GET` + `pack` + `SET PX`",
        kind: "time",
      },
      t[3],
      t[1],
      N,
      null,
    ),
  ];
}

const KEYS = 10_000;
const WORKERS = 50;
const OPS = 2_000;

/** A deterministic op sequence: 90 % one of the KEYS hot keys, 10 % a new key (-1). */
function opSequence(seed: number): Int32Array {
  const ops = new Int32Array(OPS);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < OPS; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) / 2 ** 32;
    ops[i] = u < 0.1 ? -1 : Math.floor(((s >>> 0) % 1_000_003) / 1_000_003 * KEYS);
  }
  return ops;
}

/** Row 4: 50 workers, 90 % hits over 10k keys, L1 + Redis, ours vs bentocache. */
export async function throughputRows(env: GoalsEnv): Promise<GoalRow[]> {
  const backend = newBackend(env, "tp");
  const ours = cache(loadRecord, { name: `goals.tp.${env.id}`, backend, ttl: 600, ...env.guards });
  const bento = bentoTiered(env, `goals-tp-${env.id}`);
  const bentoGet = (i: number) =>
    bento.getOrSet({ key: `t${i}`, factory: () => loadRecord(i), ttl: "10m" });
  for (let from = 0; from < KEYS; from += N) {
    await concurrent(N, (i) => ours(from + i))();
    await concurrent(N, (i) => bentoGet(from + i))();
  }
  let fresh = KEYS;
  const sequences = [opSequence(1), opSequence(2), opSequence(3), opSequence(4)];
  // Each variant's k-th batch runs sequence k % 4: both variants see the same keys in a round.
  const workload = (get: (i: number) => Promise<unknown>) => {
    let calls = 0;
    return async () => {
      const ops = sequences[calls++ % sequences.length];
      let next = 0;
      const worker = async () => {
        while (next < ops.length) {
          const k = ops[next++];
          await get(k < 0 ? fresh++ : k);
        }
      };
      const ws = new Array(WORKERS);
      for (let w = 0; w < WORKERS; w++) ws[w] = worker();
      await Promise.all(ws);
    };
  };
  const oursRun = workload((i) => ours(i));
  const bentoRun = workload(bentoGet);
  const t = await pairedRounds([
    { name: "ours", run: oursRun },
    { name: "bento", run: bentoRun },
  ], { rounds: env.rounds.throughput, warmup: 3 });
  const info = ours.cacheInfo();
  const hitRatio = info.hits / Math.max(1, info.hits + info.misses);
  console.log(
    `throughput row: ours ${info.l1Hits} L1 hits, ${info.l2Hits} L2 hits, ${info.misses} misses ` +
      `(${(hitRatio * 100).toFixed(1)} % hits, counting the ${KEYS} pre-fills as misses), ` +
      `${info.l2Errors} L2 errors`,
  );
  if (info.l2Errors > 0) {
    console.log(`throughput row health: ${JSON.stringify(ours.getHealthStatus())}`);
  }
  await bento.disconnect();
  await backend.close();
  return [
    invalidIf(
      pairedRow(
        {
          path: "throughput, 90 % hits over 10k keys, 50 workers, L1 + Redis",
          variant: "`cache(fn)` defaults",
          peer: "bentocache `getOrSet`, L1 (10k items) + Redis L2 + bus",
          kind: "speedup",
        },
        t[0],
        t[1],
        OPS,
        { kind: "min", value: 1.5 },
      ),
      info.l2Errors,
      "L2 errors (the guards skipped Redis)",
    ),
  ];
}
