/**
 * Child process for `tests/engine/engine_redis_process_test.ts`: one "application instance" with its own
 * `RedisBackend` (shared Redis, the test's key prefix and invalidation channel) and its own L1,
 * driven by JSON commands on stdin, answering JSON lines on stdout.
 *
 * The cached function counts its executions with a raw node-redis `INCR` (never through the cache
 * under test) and announces each start with an `{"event":"computing"}` line, so the parent knows
 * which process owns the stampede lock before killing it.
 *
 * Usage: `<runtime> engine_redis_worker.ts '<json config>'`, then commands, one per line:
 * - `{"seq":1,"op":"setup","name":…,"lease":…,"wait":…,"sleepMs":…}` → `{"seq":1}`
 * - `{"seq":2,"op":"calls","n":1000,"arg":1}` → `{"seq":2,"values":[…distinct JSON…],"ms":…}`
 * - `{"seq":3,"op":"size"}` → `{"seq":3,"size":…,"info":{…}}`
 * - `{"seq":4,"op":"watch"}` → `{"seq":4}` at once, later `{"event":"evicted","watch":4,"t":…}`
 *   when the function's L1 is empty (polled every millisecond)
 * - `{"seq":5,"op":"invalidate"|"clear"|"write","arg":1}` → `{"seq":5,"t0":…,"t1":…}`
 *   (`write`: a fresh instance of the same function, with an empty L1, computes and stores)
 * - `{"seq":6,"op":"exit"}` closes everything and exits 0.
 *
 * Times (`t`, `t0`, `t1`) are wall-clock milliseconds with sub-millisecond precision
 * (`performance.timeOrigin + performance.now()`), comparable between processes on one machine.
 *
 * @module
 */
import process from "node:process";
import { createInterface } from "node:readline";
import { createClient } from "redis";
import { cache, type CachedFunction, RedisBackend } from "../../mod.ts";

interface Config {
  url: string;
  prefix: string;
  channel: string;
  counterKey: string;
  clientName: string;
}

interface Command {
  seq: number;
  op: string;
  name?: string;
  lease?: number;
  wait?: number;
  sleepMs?: number;
  n?: number;
  arg?: number;
}

const cfg = JSON.parse(process.argv[process.argv.length - 1]) as Config;
const now = () => performance.timeOrigin + performance.now();
const out = (o: unknown) => process.stdout.write(JSON.stringify(o) + "\n");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const backend = new RedisBackend({
  url: cfg.url,
  keyPrefix: cfg.prefix,
  invalidationChannel: cfg.channel,
  clientName: cfg.clientName,
});
const counter = createClient({ url: cfg.url });
counter.on("error", () => {});
await counter.connect();

let options: Record<string, unknown> = {};
let sleepMs = 0;
type Result = { id: number; run: number; pid: number };
async function work(id: number): Promise<Result> {
  const run = Number(await counter.incr(cfg.counterKey));
  out({ event: "computing", run });
  await sleep(sleepMs);
  return { id, run, pid: process.pid };
}
let f: CachedFunction<[number], Promise<Result>>;

async function handle(c: Command): Promise<void> {
  switch (c.op) {
    case "setup": {
      sleepMs = c.sleepMs ?? 0;
      options = {
        name: c.name,
        namespace: "proc",
        ttl: 60,
        backend,
        l1: { invalidation: true },
        stampede: { lease: c.lease ?? 30, wait: c.wait ?? 5 },
        circuitBreaker: false,
        timeout: false,
        backpressure: false,
      };
      f = cache(work, options);
      out({ seq: c.seq });
      return;
    }
    case "calls": {
      const t0 = performance.now();
      const res = await Promise.all(Array.from({ length: c.n ?? 1 }, () => f(c.arg ?? 1)));
      const values = [...new Set(res.map((r) => JSON.stringify(r)))];
      out({ seq: c.seq, values, ms: performance.now() - t0 });
      return;
    }
    case "size":
      out({ seq: c.seq, size: f.cacheInfo().size, info: f.cacheInfo() });
      return;
    case "watch": {
      out({ seq: c.seq });
      while (f.cacheInfo().size !== 0) await sleep(1);
      out({ event: "evicted", watch: c.seq, t: now() });
      return;
    }
    case "invalidate":
    case "clear":
    case "write": {
      const t0 = now();
      if (c.op === "invalidate") await f.invalidate(c.arg ?? 1);
      else if (c.op === "clear") await f.cacheClear();
      else await cache(work, options)(c.arg ?? 1);
      out({ seq: c.seq, t0, t1: now() });
      return;
    }
    case "exit":
      await backend.close();
      counter.destroy();
      process.exit(0);
  }
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const c = JSON.parse(line) as Command;
  handle(c).catch((e) => out({ seq: c.seq, error: String(e?.stack ?? e) }));
});
