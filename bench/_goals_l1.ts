/**
 * The in-process goals of issue 14: awaited L1 hits (the ~1 KB record under the default copy and
 * under `l1.copy: "freeze"`, the 10 KB list and the 100 KB page), the primitive hit
 * `cache(fn)(42)`, and the memory an L1 entry of a 1 KB record takes, each against its peer in one
 * process (bentocache's default `getOrSet`, lru-cache `get`).
 *
 * `l1.copy` is probed, not assumed: a build that refuses the option, or accepts it but does not
 * return one frozen reference, gets `n/a` rows.
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { LRUCache } from "npm:lru-cache@^11.2.0";
import { cache, type CacheOptions, RedisBackend } from "../mod.ts";
import { formatMs, pairedRounds, spread } from "./_paired.ts";
import { bentoDefault, fullGc, type GoalsEnv } from "./_goals_env.ts";
import { type GoalRow, invalidIf, pairedRow } from "./_goals_rows.ts";
import { type GoalRecord, record, recordList, recordPage, RECORDS_PER } from "./_goals_values.ts";

const loadRecord = async (id: number): Promise<GoalRecord> => {
  await Promise.resolve();
  return record(id);
};

/** `n` awaited calls of `get` on the same key. */
const awaited = (n: number, get: () => unknown) => async () => {
  for (let i = 0; i < n; i++) await get();
};

/**
 * Whether `l1.copy: "freeze"` is honoured: the option accepted, two hits returning one reference,
 * deeply frozen. Returns the cached function, or why not.
 */
async function probeFreeze(
  name: string,
): Promise<{ fn: (id: number) => Promise<GoalRecord> } | { why: string }> {
  let f;
  try {
    // Cast: `copy` is not in `L1Options` on builds before issue 14.
    const l1 = { copy: "freeze" } as unknown as CacheOptions<[number]>["l1"];
    f = cache(loadRecord, { name, backend: null, l1 });
  } catch (e) {
    console.log(`l1.copy probe: ${String((e as Error).message).split("\n")[0]}`);
    return { why: "`l1.copy` refused" };
  }
  await f(1);
  const a = await f(1);
  const b = await f(1);
  if (a !== b) return { why: "`l1.copy` accepted, hits return copies" };
  if (!Object.isFrozen(a) || !Object.isFrozen(a.address) || !Object.isFrozen(a.tags)) {
    return { why: "`l1.copy` accepted, value not deeply frozen" };
  }
  return { fn: f };
}

/** Check that the default copy is a copy: a caller's mutation never reaches the next caller. */
async function checkDefaultCopies(f: (id: number) => Promise<GoalRecord>): Promise<string | null> {
  await f(999);
  const a = await f(999);
  a.name = "mutated";
  a.tags.push("mutated");
  const b = await f(999);
  return a === b || b.name === "mutated" || b.tags.includes("mutated")
    ? "the default L1 hit returned a shared value"
    : null;
}

/** Row 1: awaited L1 hits of the 1 KB record; the same path with a Redis L2; under "freeze". */
export async function l1RecordRows(env: GoalsEnv): Promise<GoalRow[]> {
  const ops = 200;
  const ours = cache(loadRecord, { name: `goals.l1.record.${env.id}`, backend: null });
  const backend = new RedisBackend({ url: env.url, keyPrefix: `goals:l1:${env.id}:` });
  const oursL2 = cache(loadRecord, {
    name: `goals.l1.record.l2.${env.id}`,
    backend,
    ...env.guards,
  });
  const freeze = await probeFreeze(`goals.l1.record.freeze.${env.id}`);
  const copyProblem = await checkDefaultCopies(ours);
  if (copyProblem) console.warn(`warning: ${copyProblem}`);
  const bento = bentoDefault(`goals-l1-${env.id}`);
  const bentoFactory = () => loadRecord(1);
  const lru = new LRUCache<number, GoalRecord>({ max: 10_000 });
  lru.set(1, record(1));
  // The same with our default TTL (1 h): lru-cache then checks expiry on `get` with a reading of
  // `performance.now()` it keeps for up to 1 ms (`ttlResolution`, retired by a timer), where our
  // hit reads `Date.now()` every time (`bench/MEASUREMENTS.md`, "The clock of the L1 hit").
  const lruTtl = new LRUCache<number, GoalRecord>({ max: 10_000, ttl: 3_600_000 });
  lruTtl.set(1, record(1));
  await ours(1);
  await oursL2(1);
  await bento.getOrSet({ key: "u1", factory: bentoFactory, ttl: "1h" });

  const variants = [
    { name: "ours", run: awaited(ops, () => ours(1)) },
    { name: "ours+L2", run: awaited(ops, () => oursL2(1)) },
    {
      name: "bento",
      run: awaited(ops, () => bento.getOrSet({ key: "u1", factory: bentoFactory, ttl: "1h" })),
    },
    { name: "lru", run: awaited(ops, () => lru.get(1)) },
    { name: "lru ttl", run: awaited(ops, () => lruTtl.get(1)) },
  ];
  if ("fn" in freeze) variants.push({ name: "freeze", run: awaited(ops, () => freeze.fn(1)) });
  const t = await pairedRounds(variants, { rounds: env.rounds.l1Record });
  const extraMisses = ours.cacheInfo().misses - 2 + oursL2.cacheInfo().misses - 1;
  const path = "L1 hit, 1 KB record, awaited";
  const rows = [
    invalidIf(
      pairedRow(
        {
          path,
          variant: "`cache(fn)` defaults, `backend: null`",
          peer: "bentocache `getOrSet` default (memory L1, JSON)",
          kind: "speedup",
        },
        t[0],
        t[2],
        ops,
        { kind: "min", value: 3 },
      ),
      extraMisses,
      "misses in the L1 hit calls",
    ),
    pairedRow(
      {
        path,
        variant: "defaults + Redis L2 (check: same L1 path)",
        peer: "`cache(fn)` defaults, no L2",
        kind: "time",
      },
      t[1],
      t[0],
      ops,
      { kind: "max", value: 1.1 },
    ),
    pairedRow(
      { path, variant: '`l1: { copy: "freeze" }`', peer: "lru-cache `get`, awaited", kind: "time" },
      "fn" in freeze ? t[5] : null,
      t[3],
      ops,
      { kind: "max", value: 2 },
      "why" in freeze ? `on this build: ${freeze.why}` : undefined,
    ),
    pairedRow(
      {
        path,
        variant: '`l1: { copy: "freeze" }`',
        peer: "lru-cache `get` with the same TTL (1 h), awaited",
        kind: "time",
      },
      "fn" in freeze ? t[5] : null,
      t[4],
      ops,
      null,
      "why" in freeze ? `on this build: ${freeze.why}` : undefined,
    ),
  ];
  await bento.disconnect();
  await backend.close();
  return rows;
}

/** Row 1, larger values: awaited L1 hits of the 10 KB list (info) and the 100 KB page (goal). */
export async function l1LargeRows(env: GoalsEnv): Promise<GoalRow[]> {
  const list = cache(async (n: number) => {
    await Promise.resolve();
    return recordList(RECORDS_PER.kb10, n);
  }, { name: `goals.l1.list.${env.id}`, backend: null });
  const page = cache(async (n: number) => {
    await Promise.resolve();
    return recordPage(n, RECORDS_PER.kb100);
  }, { name: `goals.l1.page.${env.id}`, backend: null });
  const bento = bentoDefault(`goals-l1l-${env.id}`);
  const listFactory = () => recordList(RECORDS_PER.kb10, 0);
  const pageFactory = () => recordPage(0, RECORDS_PER.kb100);
  const bList = () => bento.getOrSet({ key: "list", factory: listFactory, ttl: "1h" });
  const bPage = () => bento.getOrSet({ key: "page", factory: pageFactory, ttl: "1h" });
  await list(0);
  await page(0);
  await bList();
  await bPage();
  const listOps = 50;
  const pageOps = 10;
  const t = await pairedRounds([
    { name: "ours list", run: awaited(listOps, () => list(0)) },
    { name: "bento list", run: awaited(listOps, bList) },
    { name: "ours page", run: awaited(pageOps, () => page(0)) },
    { name: "bento page", run: awaited(pageOps, bPage) },
  ], { rounds: env.rounds.l1Large, beforeRound: fullGc });
  await bento.disconnect();
  const peer = "bentocache `getOrSet` default (JSON L1)";
  return [
    pairedRow(
      {
        path: "L1 hit, 10 KB list, awaited",
        variant: "`cache(fn)` defaults",
        peer,
        kind: "speedup",
      },
      t[0],
      t[1],
      listOps,
      null,
    ),
    pairedRow(
      {
        path: "L1 hit, 100 KB page, awaited",
        variant: "`cache(fn)` defaults",
        peer,
        kind: "speedup",
      },
      t[2],
      t[3],
      pageOps,
      { kind: "min", value: 1 },
    ),
  ];
}

/** Row 6: the primitive hit `cache(fn)(42)` against bentocache (goal) and lru-cache (info). */
export async function primitiveRows(env: GoalsEnv): Promise<GoalRow[]> {
  const compute = async (n: number): Promise<number> => {
    await Promise.resolve();
    return n * 2;
  };
  const ours = cache(compute, { name: `goals.prim.${env.id}`, backend: null });
  const bento = bentoDefault(`goals-prim-${env.id}`);
  const bentoFactory = () => compute(42);
  const lru = new LRUCache<number, number>({ max: 10_000 });
  lru.set(42, 84);
  await ours(42);
  await bento.getOrSet({ key: "k42", factory: bentoFactory, ttl: "1h" });
  const ops = 2000;
  const t = await pairedRounds([
    { name: "ours", run: awaited(ops, () => ours(42)) },
    {
      name: "bento",
      run: awaited(ops, () => bento.getOrSet({ key: "k42", factory: bentoFactory, ttl: "1h" })),
    },
    { name: "lru", run: awaited(ops, () => lru.get(42)) },
  ], { rounds: env.rounds.primitive });
  await bento.disconnect();
  const path = "L1 hit, number, awaited `cache(fn)(42)`";
  const oursUs = spread(t[0]).median / ops * 1000;
  const abs: GoalRow = {
    ...pairedRow(
      {
        path,
        variant: "`cache(fn)` defaults: µs per hit",
        peer: "(absolute, noisy)",
        kind: "time",
      },
      t[0],
      t[0],
      ops,
      null,
    ),
    ratio: { median: oursUs, q1: spread(t[0]).q1 / ops * 1000, q3: spread(t[0]).q3 / ops * 1000 },
    unit: " µs",
    targetText: "≈ 0.19 µs (≤ 0.25 µs)",
    result: oursUs <= 0.25 ? "pass" : "fail",
    perOp: formatMs(spread(t[0]).median / ops),
  };
  return [
    pairedRow(
      {
        path,
        variant: "`cache(fn)` defaults",
        peer: "bentocache `getOrSet` default",
        kind: "speedup",
      },
      t[0],
      t[1],
      ops,
      { kind: "min", value: 3 },
    ),
    abs,
    pairedRow(
      { path, variant: "`cache(fn)` defaults", peer: "lru-cache `get`, awaited", kind: "time" },
      t[0],
      t[2],
      ops,
      null,
    ),
  ];
}

const ENTRIES = 10_000;
const heapBytes = () => {
  const m = Deno.memoryUsage();
  return m.heapUsed + m.external;
};
async function settledHeap(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    fullGc();
    await new Promise((r) => setTimeout(r, 0));
  }
  return heapBytes();
}

/** Bytes retained by what `fill` builds, per entry (heapUsed + external, after full GCs). */
async function bytesPerEntry(fill: () => Promise<unknown>): Promise<number> {
  const before = await settledHeap();
  let held: unknown = await fill();
  const after = await settledHeap();
  if (held === undefined) throw new Error("nothing held");
  held = undefined;
  return (after - before) / ENTRIES;
}

/**
 * Row 5: memory per L1 entry of 1 KB records (10,000 entries, `cache(fn)` defaults, no L2)
 * against lru-cache holding the same objects, measured in alternating order `reps` times.
 */
export async function memoryRows(env: GoalsEnv): Promise<GoalRow[]> {
  if ((globalThis as { gc?: unknown }).gc === undefined) {
    console.warn("warning: run with --v8-flags=--expose-gc for the memory row");
  }
  const ours: number[] = [];
  const lru: number[] = [];
  const estimate: number[] = [];
  for (let rep = 0; rep < env.rounds.memoryReps; rep++) {
    const runOurs = async () => {
      let f: ReturnType<typeof cache<[number], Promise<GoalRecord>>> | undefined;
      ours.push(
        await bytesPerEntry(async () => {
          f = cache(loadRecord, { name: `goals.mem.${env.id}.${rep}`, backend: null });
          for (let i = 0; i < ENTRIES; i++) await f(i);
          return f;
        }),
      );
      const info = f!.cacheInfo();
      if (info.size !== ENTRIES) console.warn(`warning: L1 holds ${info.size} entries`);
      estimate.push(info.bytes / ENTRIES);
      await f!.cacheClear();
    };
    const runLru = async () => {
      lru.push(
        await bytesPerEntry(() => {
          const c = new LRUCache<number, GoalRecord>({ max: ENTRIES });
          for (let i = 0; i < ENTRIES; i++) c.set(i, record(i));
          return Promise.resolve(c);
        }),
      );
    };
    if (rep % 2 === 0) {
      await runOurs();
      await runLru();
    } else {
      await runLru();
      await runOurs();
    }
  }
  const kb = (b: number) => `${(b / 1024).toFixed(2)} KB`;
  const ratios = ours.map((o, i) => o / lru[i]);
  const r = spread(ratios);
  const target = { kind: "max", value: 1 } as const;
  console.log(
    `memory per entry: ours ${ours.map(kb).join(", ")}; lru-cache ${lru.map(kb).join(", ")};` +
      ` ours' cacheInfo().bytes per entry ${estimate.map(kb).join(", ")}`,
  );
  return [{
    path: "memory per L1 entry, 1 KB records (10k, after GC)",
    variant: "`cache(fn)` defaults (heapUsed + external)",
    peer: "lru-cache holding the objects",
    kind: "size",
    ratio: r,
    target,
    result: r.median <= target.value ? "pass" : "fail",
    perOp: `${kb(spread(ours).median)} / ${kb(spread(lru).median)}`,
  }];
}
