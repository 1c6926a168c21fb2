// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Group invalidation on the shared Redis (127.0.0.1:6379) from a process that wraps nothing: a
 * child (`_fixtures/group_invalidation_worker.ts`, run with this runtime) whose only call is
 * `invalidateTags`, `clearFunction` or `clearNamespace` deletes this process's L2 entries of every
 * tenant (tenants the child never saw) and evicts this process's L1 through the invalidation bus.
 * And a value is never stored without its tag index, even when the tag write fails.
 * Keys are under a unique namespace per run; the shared server is never flushed.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";
import { cache, RedisBackend, withTenant } from "../../mod.ts";

const WORKER = siblingModule(import.meta.url, "../_fixtures/group_invalidation_worker.ts");
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await sleep(10);
  }
  return cond();
}

/**
 * Run the worker with `CACHEKIT_REDIS_URL` set; resolves its stderr (warnings of a failed
 * invalidation, for the assertion messages) once it printed `{"ok":true}`.
 */
function child(cfg: Record<string, string>): Promise<string> {
  const cmd = runtimeCommand(WORKER, [JSON.stringify(cfg)], DENO_JSON);
  const env: Record<string, string | undefined> = {
    ...process.env,
    CACHEKIT_REDIS_URL: SHARED_REDIS_URL,
  };
  delete env.REDIS_URL;
  const proc = spawn(cmd.bin, cmd.args, { stdio: ["ignore", "pipe", "pipe"], env });
  let out = "";
  let err = "";
  proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
  proc.stderr!.setEncoding("utf8").on("data", (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    proc.on("close", (code) => {
      if (code === 0 && out.includes('"ok":true')) resolve(err);
      else reject(new Error(`worker exited ${code}: ${out}${err}`));
    });
  });
}

test(
  "redis: a process that wraps nothing invalidates tags, a function and a namespace of every tenant",
  async () => {
    const ns = `grp-${crypto.randomUUID().slice(0, 8)}`;
    const raw = createClient({ url: SHARED_REDIS_URL });
    await raw.connect();
    // The default backend's configuration (no key prefix, the default channel), as the child's.
    const backend = new RedisBackend({ url: SHARED_REDIS_URL });
    const keys = async () => {
      const out: string[] = [];
      let cursor = "0";
      do {
        const [next, batch] = await raw.sendCommand([
          "SCAN",
          cursor,
          "MATCH",
          `t:*:ns:${ns}:*`,
          "COUNT",
          "1000",
        ]) as [string, string[]];
        cursor = String(next);
        out.push(...batch.map(String));
      } while (cursor !== "0");
      return out.sort();
    };
    try {
      let n = 0;
      const opts = { namespace: ns, ttl: 60, l1: { invalidation: true }, backend, ...bare };
      const f = cache(async (id: number) => ({ id, n: ++n }), {
        ...opts,
        name: "group.f",
        tags: (id: number) => [`${ns}:user:${id}`],
      });
      const g = cache(async (id: number) => ({ id, n: ++n }), { ...opts, name: "group.g" });
      for (const t of ["x", "y"]) {
        await withTenant(t, () => f(1));
        await withTenant(t, () => g(1));
      }
      await withTenant("x", () => f(2));
      assert.equal((await keys()).length, 5);
      assert.equal(f.cacheInfo().size, 3);
      assert.equal(g.cacheInfo().size, 2);
      await sleep(100); // this process's bus subscription is established

      const tagsErr = await child({ op: "tags", arg: `${ns}:user:1` });
      assert.equal((await keys()).length, 3, `f(1) of tenants x and y deleted in Redis ${tagsErr}`);
      assert.ok(await until(() => f.cacheInfo().size === 1, 2000), "f(1) evicted from L1");
      assert.equal(g.cacheInfo().size, 2);

      const fnErr = await child({ op: "function", arg: "group.g", namespace: ns });
      const left = await keys();
      assert.equal(left.length, 1, `only f(2) of x is left: ${left} ${fnErr}`);
      assert.ok(left[0].startsWith(`t:x:ns:${ns}:func:group.f:`));
      assert.ok(await until(() => g.cacheInfo().size === 0, 2000), "g evicted from L1");
      assert.equal(f.cacheInfo().size, 1);

      const nsErr = await child({ op: "namespace", arg: ns });
      assert.deepEqual(await keys(), [], nsErr);
      assert.ok(await until(() => f.cacheInfo().size === 0, 2000), "f evicted from L1");
      const before = n;
      await withTenant("x", () => f(2));
      assert.equal(n, before + 1, "recomputed: nothing left in L1 or L2");
    } finally {
      for (const k of await keys().catch(() => [])) await raw.del(k);
      await backend.close();
      await raw.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "redis: a value is never stored without its tags (a failing tag write stores nothing)",
  async () => {
    const prefix = uniquePrefix("settags");
    const raw = createClient({ url: SHARED_REDIS_URL });
    await raw.connect();
    const backend = new RedisBackend({ url: SHARED_REDIS_URL, keyPrefix: prefix });
    try {
      // A tag set key of the wrong type: the tag write fails (WRONGTYPE) after nothing else did.
      await raw.set(`${prefix}cachekit:tag:bad`, "not a set");
      let n = 0;
      const f = cache(async (id: number) => ({ id, n: ++n }), {
        name: "group.badtag",
        ttl: 60,
        tags: () => ["bad"],
        backend,
        ...bare,
      });
      assert.equal((await f(1)).n, 1, "the call still answers");
      const stored = await raw.keys(`${prefix}t:*`);
      assert.deepEqual(stored, [], "no value stored without its tags");

      const tags = backend.capabilities.tags!;
      await assert.rejects(tags.setWithTags!("k", new Uint8Array([1]), 60, ["ok", "bad"]));
      assert.equal(await backend.exists("k"), false, "the value was not stored");

      // With a good tag, value and tag go in together.
      await tags.setWithTags!("k2", new Uint8Array([2]), 60, ["ok"]);
      assert.deepEqual(await tags.invalidateTags(["ok"]), ["k2"]);
      assert.equal(await backend.exists("k2"), false);
    } finally {
      await backend.deleteByPrefix("").catch(() => 0);
      await backend.close();
      await raw.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
