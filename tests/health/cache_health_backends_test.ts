// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The process-wide health report (`checkCacheHealth`, `cacheHealthHandler`): each backend listed
// once with the functions that use it, the functions without the backend's components, and pool
// figures read from the Redis client, absent (never made up) for the memory and file backends.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { until } from "../_timing.ts";
import {
  freePort,
  redisServerTestOptions,
  sharedRedisTestOptions,
  startRedisServer,
  uniquePrefix,
} from "../_redis_server.ts";
import {
  type BackendHealthEntry,
  cache,
  cacheHealthHandler,
  checkCacheHealth,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";

function entryOf(backends: BackendHealthEntry[], identity: string): BackendHealthEntry[] {
  return backends.filter((b) => b.functions.includes(identity));
}

test(
  "health: two live functions of one name are listed once under their backend",
  async () => {
    const shared = new MemoryBackend();
    try {
      const opts = { ttl: 60, backend: shared, name: "hb.dup.same" };
      const a = cache(async (n: number) => n + 1, opts);
      const b = cache(async (n: number) => n + 1, opts);
      await a(1);
      await b(2);
      const report = await checkCacheHealth("ping");
      const mem = entryOf(report.backends, "hb.dup.same");
      assert.equal(mem.length, 1);
      assert.deepEqual(mem[0].functions.filter((f) => f === "hb.dup.same"), ["hb.dup.same"]);
      // Each live function still has its own entry in `functions`.
      assert.equal(report.functions.filter((f) => f.identity === "hb.dup.same").length, 2);
    } finally {
      await shared.close();
    }
  },
  { sanitize: false },
);

test(
  "health: a backend shared by functions is listed once, with its functions",
  async () => {
    const shared = new MemoryBackend();
    const dir = mkdtempSync(join(tmpdir(), "ck-health-"));
    const file = new FileBackend({ directory: dir });
    try {
      const opts = { ttl: 60, backend: shared };
      const a = cache.production(async (n: number) => n + 1, { ...opts, name: "hb.shared.a" });
      const b = cache.production(async (n: number) => n + 2, { ...opts, name: "hb.shared.b" });
      const c = cache.production(async (n: number) => n + 3, {
        ttl: 60,
        backend: file,
        name: "hb.file.c",
      });
      await a(1);
      await b(1);
      await c(1);
      const res = await cacheHealthHandler()(new Request("http://x/health?level=full"));
      const report = await res.json();
      const backends: BackendHealthEntry[] = report.backends;

      const mem = entryOf(backends, "hb.shared.a");
      assert.equal(mem.length, 1, "the shared backend is listed once");
      assert.deepEqual(mem[0].functions.filter((f) => f.startsWith("hb.")), [
        "hb.shared.a",
        "hb.shared.b",
      ]);
      assert.equal(mem[0].type, "memory");
      assert.equal(mem[0].status, "healthy");
      assert.equal(typeof mem[0].latencyMs, "number");
      assert.equal(mem[0].components.backend?.status, "healthy");
      assert.equal(mem[0].components.circuitBreaker?.details?.state, "closed");
      assert.ok(mem[0].components.timeout, "full: adaptive timeout");
      assert.equal(mem[0].components.pool, undefined, "memory measures no pool: none reported");

      const fileEntry = entryOf(backends, "hb.file.c");
      assert.equal(fileEntry.length, 1);
      assert.equal(fileEntry[0].type, "file");
      assert.deepEqual(fileEntry[0].functions.filter((f) => f.startsWith("hb.")), ["hb.file.c"]);
      assert.equal(fileEntry[0].components.pool, undefined, "file measures no pool");

      const ids = backends.map((x) => x.id);
      assert.equal(new Set(ids).size, ids.length, "backend ids are unique");
      for (const id of ["hb.shared.a", "hb.shared.b", "hb.file.c"]) {
        const fn = report.functions.find((f: { identity: string }) => f.identity === id);
        assert.ok(fn, id);
        assert.equal(fn.backendId, (id === "hb.file.c" ? fileEntry : mem)[0].id);
        assert.deepEqual(Object.keys(fn.components).sort(), ["l1"], `${id}: its own components`);
        assert.equal(fn.details, undefined, `${id}: backend details are under backends`);
        assert.equal(fn.components.l1.details.entries, 1);
      }
      assert.ok(report.components.l1, "the L1 total");
      assert.equal(report.components.backend, undefined, "no backend component at the top");
      assert.ok(report.components.metrics, "full: the metrics summary, once, at the top");
      assert.equal(mem[0].components.metrics, undefined);

      // One function's own check still reports its backend's components.
      const own = await a.checkHealth("basic");
      assert.equal(own.components.backend?.status, "healthy");
      assert.equal(own.components.pool, undefined);
    } finally {
      await shared.close();
      await file.close();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { sanitize: false },
);

test(
  "health: Redis pool figures come from the client (connections, pending and in-flight)",
  async () => {
    const clientName = `ck-pool-${crypto.randomUUID().slice(0, 8)}`;
    const backend = new RedisBackend({
      url: "redis://127.0.0.1:6379",
      keyPrefix: uniquePrefix("health-pool"),
      clientName,
    });
    const admin = createClient({ url: "redis://127.0.0.1:6379" });
    await admin.connect();
    /** Connections the server sees under our client name (main and `:sub`). */
    const serverSide = async () =>
      String(await admin.sendCommand(["CLIENT", "LIST"])).split("\n")
        .filter((l) => new RegExp(`name=${clientName}(:sub)? `).test(l)).length;
    try {
      const before = await backend.healthCheck();
      assert.ok(before.pool, "pool figures");
      assert.equal(typeof before.pool.connections, "number");
      const f = cache.production(async (n: number) => ({ n }), {
        name: "hb.redis.pool",
        ttl: 60,
        backend,
      });
      await f(1);
      // The production preset listens on the invalidation bus: a second (subscriber) connection.
      assert.ok(await until(async () => (await serverSide()) === 2, 10_000), "both connected");
      // The call's invalidation event (PUBLISH) is sent without being awaited: let it land.
      let probe = await backend.healthCheck();
      await until(async () => {
        probe = await backend.healthCheck();
        return probe.pool?.pendingCommands === 0 && probe.pool?.inFlightOperations === 0;
      }, 10_000);
      assert.equal(probe.pool?.connections, await serverSide(), "what the server sees");
      assert.equal(probe.pool?.pendingCommands, 0, `nothing queued: ${JSON.stringify(probe.pool)}`);
      assert.equal(probe.pool?.inFlightOperations, 0, JSON.stringify(probe.pool));

      const report = await checkCacheHealth("basic");
      const entries = entryOf(report.backends, "hb.redis.pool");
      assert.equal(entries.length, 1);
      assert.equal(entries[0].type, "redis");
      assert.deepEqual(Object.keys(entries[0].components.pool?.details ?? {}).sort(), [
        "connections",
        "inFlightOperations",
        "pendingCommands",
      ]);
      assert.equal(entries[0].components.pool?.details?.connections, 2);
      assert.equal((await new MemoryBackend().healthCheck()).pool, undefined);
    } finally {
      await backend.close();
      await admin.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "health: a hung Redis shows its queued commands and in-flight operations (read, not guessed)",
  async () => {
    const redis = await startRedisServer(await freePort());
    const backend = new RedisBackend({ url: redis.url, keyPrefix: uniquePrefix("health-hung") });
    try {
      await backend.set("k", new Uint8Array([1]));
      redis.pause(); // SIGSTOP: the socket stays open, nothing is answered
      const gets = Array.from(
        { length: 5 },
        () => backend.get("k", { timeoutMs: 30_000 }).catch(() => null),
      );
      const probe = await backend.healthCheck(); // its PING times out (2 s)
      assert.equal(probe.healthy, false);
      assert.deepEqual(probe.pool, {
        connections: 1,
        // The five concurrent GETs went out as one MGET (`backends/_redis_batch.ts`); it and the
        // PING wait unanswered in node-redis's queue.
        pendingCommands: 2,
        inFlightOperations: 5, // the GETs, still within their deadline
      });
      redis.resume();
      await Promise.all(gets);
      const after = await backend.healthCheck();
      assert.equal(after.healthy, true);
      assert.deepEqual(after.pool, { connections: 1, pendingCommands: 0, inFlightOperations: 0 });
    } finally {
      redis.resume();
      await backend.close();
      await redis.stop();
    }
  },
  { ...redisServerTestOptions, sanitize: false },
);
