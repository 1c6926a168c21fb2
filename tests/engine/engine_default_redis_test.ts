// Default backend selection with a Redis URL in the environment: a child process (the runtime
// running this test) calls `cache(fn)` without `backend`. With `CACHEKIT_REDIS_URL` (or, failing
// that, `REDIS_URL`) pointing at the shared Redis, the function uses L1 + Redis: the entry lands in
// Redis under the protocol key, a second process answers from it, and repeat calls are L1 hits.
// With neither variable, the file backend is used and nothing reaches Redis. Each run uses its own
// namespace and deletes its keys. In CI a missing Redis is a failure, not a skip.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
const CHILD = `
import process from "node:process";
import { cache, closeDefaultBackend } from "${MOD}";
const ns = process.argv[process.argv.length - 1];
let runs = 0;
async function square(n) { runs++; return { n, sq: n * n, pid: process.pid }; }
// The first read of a fresh process includes connecting; on a loaded host that can outlast the
// default 1 s adaptive timeout, and a timed-out read is a miss (fail-open), not the hit asserted.
const f = cache(square, {
  name: "default_redis.square",
  namespace: ns,
  ttl: 60,
  timeout: { initial: 30, max: 30 },
});
const v = await f(12);
await f(12);
console.log(JSON.stringify({ v, runs, info: f.cacheInfo(), backend: f.getHealthStatus().backend }));
await closeDefaultBackend();
`;

interface ChildResult {
  v: { n: number; sq: number; pid: number };
  runs: number;
  info: { misses: number; l1Hits: number; l2Hits: number };
  backend: string;
}

function runChild(ns: string, vars: Record<string, string>, fileDir: string): ChildResult {
  const env: Record<string, string | undefined> = {
    ...process.env,
    CACHEKIT_FILE_CACHE_DIR: fileDir,
  };
  delete env.CACHEKIT_REDIS_URL;
  delete env.REDIS_URL;
  Object.assign(env, vars);
  const scriptDir = mkdtempSync(join(tmpdir(), "ck-default-redis-child-"));
  try {
    const script = join(scriptDir, "child.mjs");
    writeFileSync(script, CHILD);
    const cmd = runtimeCommand(script, [ns], DENO_JSON);
    const r = spawnSync(cmd.bin, cmd.args, { env, encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split("\n").pop()!);
  } finally {
    rmSync(scriptDir, { recursive: true, force: true });
  }
}

test(
  "default backend: CACHEKIT_REDIS_URL / REDIS_URL select L1 + Redis; without them the file backend",
  async () => {
    const ns = `cktest_default_${crypto.randomUUID().slice(0, 8)}`;
    const dir = mkdtempSync(join(tmpdir(), "ck-default-redis-"));
    const redis = createClient({ url: SHARED_REDIS_URL });
    redis.on("error", () => {});
    await redis.connect();
    const keys = async () => {
      const out: string[] = [];
      for await (const b of redis.scanIterator({ MATCH: `t:default:ns:${ns}:*`, COUNT: 1000 })) {
        out.push(...b);
      }
      return out;
    };
    try {
      // Neither variable: the file backend, nothing in Redis.
      const none = runChild(ns, {}, dir);
      assert.equal(none.backend, "file");
      assert.equal(none.runs, 1);
      assert.deepEqual(await keys(), []);

      // CACHEKIT_REDIS_URL (REDIS_URL pointing elsewhere loses): Redis, behind L1.
      const first = runChild(ns, {
        CACHEKIT_REDIS_URL: SHARED_REDIS_URL,
        REDIS_URL: "redis://127.0.0.1:1",
      }, dir);
      assert.equal(first.backend, "redis");
      assert.equal(first.runs, 1);
      assert.equal(first.info.l1Hits, 1, "the repeat call is an L1 hit");
      assert.notEqual(first.v.pid, none.v.pid);
      const stored = await keys();
      assert.equal(stored.length, 1, `one entry in Redis: ${stored}`);
      assert.match(stored[0], new RegExp(`^t:default:ns:${ns}:func:default_redis\\.square:args:`));
      const ttl = await redis.ttl(stored[0]);
      assert.ok(ttl > 50 && ttl <= 60, `TTL ${ttl}`);

      // REDIS_URL alone: the same Redis, so another process answers from the first one's entry.
      const second = runChild(ns, { REDIS_URL: SHARED_REDIS_URL }, dir);
      assert.equal(second.backend, "redis");
      assert.equal(second.runs, 0, `answered from Redis: ${JSON.stringify(second.info)}`);
      assert.equal(second.info.l2Hits, 1);
      assert.deepEqual(second.v, first.v);
    } finally {
      const left = await keys();
      if (left.length > 0) await redis.del(left);
      redis.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
