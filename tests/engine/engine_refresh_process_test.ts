/**
 * Eager refresh across real processes on the shared Redis (127.0.0.1:6379): 4 children
 * (`_fixtures/eager_refresh_worker.ts`, run with the runtime running this file: Deno, Bun or
 * Node), each an application instance with its own `RedisBackend` and L1, hit one hot key past its
 * eager refresh point at the same moment (a barrier of Redis keys, not sleeps). The function's
 * runs are counted with a raw Redis `INCR`: the key is computed once cold and refreshed exactly
 * once, by whichever process took the key's lock; the other three keep answering the current value
 * and then pick up the refreshed one, with the invalidation bus (an eviction, then an L2 hit) and
 * without it (the refresh finds the newer value in L2 under the lock). Keys carry a unique prefix
 * per run; the shared server is never flushed. In CI a missing Redis is a failure, not a skip.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import { onExit, runtimeCommand, siblingModule } from "../_runtime.ts";
import { withDeadline } from "../_timing.ts";

const WORKER = siblingModule(import.meta.url, "../_fixtures/eager_refresh_worker.ts");
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
const PROCESSES = 4;

// Children still alive when the test process ends (a test that never reached its finally).
const alive = new Set<number>();
onExit(() => {
  for (const pid of alive) {
    try {
      process.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  }
});

interface Outcome {
  first: number;
  hit: number;
  last: number;
  pid: number;
}

/** Run one worker to its end; resolves its outcome line (rejects with its stderr otherwise). */
function runWorker(config: Record<string, unknown>): { done: Promise<Outcome>; kill: () => void } {
  const cmd = runtimeCommand(WORKER, [JSON.stringify(config)], DENO_JSON);
  const proc = spawn(cmd.bin, cmd.args, { stdio: ["ignore", "pipe", "pipe"] });
  const pid = proc.pid!;
  alive.add(pid);
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (d: string) => (out += d));
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (d: string) => (err += d));
  const done = new Promise<Outcome>((resolve, reject) => {
    proc.on("close", (code) => {
      alive.delete(pid);
      const line = out.trim().split("\n").pop() ?? "";
      if (code !== 0 || line === "") {
        reject(new Error(`worker ${pid} exited ${code}; stdout: ${out}; stderr: ${err}`));
      } else resolve(JSON.parse(line) as Outcome);
    });
  });
  const kill = () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      try {
        process.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  };
  return { done, kill };
}

async function scenario(bus: boolean): Promise<void> {
  const id = `ckeager-${bus ? "bus" : "nobus"}-${crypto.randomUUID().slice(0, 8)}`;
  const config = {
    url: SHARED_REDIS_URL,
    prefix: `test:${id}:`,
    channel: `test:${id}:inv`,
    counterKey: `test:${id}:runs`,
    barrierKey: `test:${id}:barrier`,
    processes: PROCESSES,
    // The refresh point: 5 % of 60 s = 3 s after the value is stored. Long enough that a refresh
    // found in L2 by a process that was slow to try again is not itself due (it would be
    // recomputed), short enough for a test.
    ttl: 60,
    eagerRefresh: 0.05,
    bus,
    slowMs: 300,
  };
  const redis = createClient({ url: SHARED_REDIS_URL });
  redis.on("error", () => {});
  await redis.connect();
  const workers = Array.from({ length: PROCESSES }, () => runWorker(config));
  try {
    const outcomes = await withDeadline(
      Promise.all(workers.map((w) => w.done)),
      "4 workers",
      90_000,
    );
    const runs = Number(await redis.get(config.counterKey));
    const log = await redis.lRange(`${config.counterKey}:log`, 0, -1);
    const seen = `runs: ${log.join(", ")}; outcomes: ${JSON.stringify(outcomes)}`;
    assert.equal(runs, 2, `one cold computation and exactly one refresh (${seen})`);
    for (const o of outcomes) {
      assert.equal(o.first, 1, `the cold value (${seen})`);
      assert.equal(o.hit, 1, `the hit past the refresh point answered the current value (${seen})`);
      assert.equal(o.last, 2, `every process picked up the refreshed value (${seen})`);
    }
  } finally {
    for (const w of workers) w.kill();
    await Promise.allSettled(workers.map((w) => w.done));
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `test:${id}:*`, COUNT: 1000 })) {
      keys.push(...batch);
    }
    if (keys.length > 0) await redis.del(keys);
    redis.destroy();
  }
}

test(
  "eager refresh: 4 processes hitting a hot key past its refresh point at once refresh it once (invalidation bus on)",
  () => scenario(true),
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "eager refresh: 4 processes refresh once without the bus (the others find the newer value in L2 under the lock)",
  () => scenario(false),
  { ...sharedRedisTestOptions, sanitize: false },
);
