/**
 * Child process for `tests/engine/engine_refresh_process_test.ts`: one application instance with
 * its own `RedisBackend` (the shared Redis, the test's key prefix and invalidation channel) and its
 * own L1, running one scenario on its own and printing its outcome as one JSON line on stdout:
 *
 * 1. barrier `ready`, then one call of the cached function (a cold key: the stampede lock lets one
 *    process of all compute it); with the bus on, a process that did not compute waits for the
 *    event of that cold write, which evicts the copy it filled from L2 when it comes after it (a
 *    loaded host), and then fills its L1 again;
 * 2. wait until its entry's eager refresh point (`eagerRefresh` × `ttl`) has passed;
 * 3. barrier `go`, then one call (a hit past the point: answered with the current value, and a
 *    background refresh);
 * 4. calls until the answer is the refreshed value (through the invalidation bus and L2, or the
 *    refresh's check of L2 under the lock), then `{"first":…,"hit":…,"last":…,"pid":…}`.
 *
 * Barriers are Redis keys (`INCR`, then polling until every process arrived), so all processes
 * make the step-3 call at the same moment whatever their start-up time. The function counts its
 * runs with a raw node-redis `INCR` (never through the cache under test), and a refresh (run ≥ 2)
 * lasts `slowMs`, so the other processes try the lock while it is held.
 *
 * Usage: `<runtime> eager_refresh_worker.ts '<json config>'`.
 *
 * @module
 */
import process from "node:process";
import { createClient } from "redis";
import { cache, RedisBackend } from "../../mod.ts";

interface Config {
  url: string;
  prefix: string;
  channel: string;
  counterKey: string;
  barrierKey: string;
  processes: number;
  ttl: number;
  eagerRefresh: number;
  bus: boolean;
  slowMs: number;
}

const cfg = JSON.parse(process.argv[process.argv.length - 1]) as Config;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const backend = new RedisBackend({
  url: cfg.url,
  keyPrefix: cfg.prefix,
  invalidationChannel: cfg.channel,
});
const raw = createClient({ url: cfg.url });
raw.on("error", () => {});
await raw.connect();

/** Every process arrives at `name` before any goes on. */
async function barrier(name: string): Promise<void> {
  const key = `${cfg.barrierKey}:${name}`;
  await raw.incr(key);
  const end = Date.now() + 30_000;
  while (Number(await raw.get(key)) < cfg.processes) {
    if (Date.now() > end) throw new Error(`barrier ${name}: not every process arrived`);
    await sleep(1);
  }
}

type Result = { id: number; run: number };
let computedHere = false;
const f = cache(async (id: number): Promise<Result> => {
  computedHere = true;
  const run = Number(await raw.incr(cfg.counterKey));
  await raw.rPush(`${cfg.counterKey}:log`, `run ${run} pid ${process.pid} at ${Date.now()}`);
  if (run >= 2) await sleep(cfg.slowMs);
  return { id, run };
}, {
  name: "proc.eager",
  namespace: "proc",
  ttl: cfg.ttl,
  eagerRefresh: cfg.eagerRefresh,
  backend,
  l1: { swrEnabled: false, invalidation: cfg.bus },
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
});

// Events from the other processes, seen by a second handler on the backend's subscription: the
// engine's handler gets each one in the same turn, so once one is counted here, the engine applied it.
let events = 0;
await backend.subscribe(() => events++);

try {
  await barrier("ready");
  const first = await f(1);
  let stored = Date.now();
  if (cfg.bus && !computedHere) {
    // The cold write's event (the only event before `go`) may reach this process after it filled
    // its L1 from L2, and evict that copy: then the entry would come due a refresh point after the
    // refill, not at `go`. Wait for the event, and fill L1 again if it was evicted.
    const end = Date.now() + 30_000;
    while (events === 0) {
      if (Date.now() > end) throw new Error("the cold write's invalidation event never came");
      await sleep(5);
    }
    if (f.cacheInfo().size === 0) {
      await f(1);
      stored = Date.now();
    }
  }
  // The entry's refresh point is at most `eagerRefresh` × `ttl` after it was stored.
  await sleep(cfg.eagerRefresh * cfg.ttl * 1000 - (Date.now() - stored) + 20);
  const before = { ...f.cacheInfo() };
  await barrier("go");
  const go = Date.now();
  const hit = await f(1);
  let last = hit;
  let calls = 1;
  const end = Date.now() + 30_000;
  while (last.run === first.run && Date.now() < end) {
    await sleep(10);
    last = await f(1);
    calls++;
  }
  const info = f.cacheInfo();
  // What the calls after the barrier were (for a failing test's message).
  const trace = {
    calls,
    ms: Date.now() - go,
    go,
    l1Hits: info.l1Hits - before.l1Hits,
    l2Hits: info.l2Hits - before.l2Hits,
    misses: info.misses - before.misses,
  };
  process.stdout.write(
    JSON.stringify({ first: first.run, hit: hit.run, last: last.run, pid: process.pid, trace }) +
      "\n",
  );
} finally {
  await backend.close();
  raw.destroy();
}
process.exit(0);
