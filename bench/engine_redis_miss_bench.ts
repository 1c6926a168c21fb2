// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * The stampede-protected miss and the L2 hit that shares its first round trip, on a private Redis,
 * paired: every variant once per round in a rotated order, the median of the
 * per-round ratios against the raw baseline (the machine's speed drifts between rows measured
 * seconds apart; ratios taken within one round do not).
 *
 * - `l2-hit-100`: 100 concurrent reads of stored keys, L1 off. Baseline: raw node-redis `GET` +
 *   msgpackr unpack (per-command timeout off). Rows: the raw client sending the engine's
 *   read-or-lock script by `EVALSHA` instead of `GET` (what the script would cost a hit if the first
 *   read were the script: why it is a plain `GET`), and the engine (interop mode: the same plain
 *   msgpack bytes) with the stampede lock on and off, bare and with the default guards.
 * - `miss-set-100`: 100 concurrent calls on new keys, L1 off. Baseline: raw `GET` (miss) + msgpackr
 *   pack + `SET PX`. Rows: the engine with the lock on (read-or-lock, compute, store-and-unlock),
 *   the same backend without `fetchLock` (the engine composes it: the five steps of a miss before),
 *   with the lock off, with the default guards and wire; bentocache `getOrSet` with L1 + Redis L2.
 *   Native mode (not interop): the lease in the key, the `<key>:lock` scripts, the lock off.
 * - `miss-set-1`: the same, one call at a time (latency: where the round trips of a miss count).
 *
 * `deno run -A --lock=deno.dev.lock bench/engine_redis_miss_bench.ts [rounds]` prints both tables,
 * with the wall-time ratios and the CPU time per call (this process + the redis-server; the
 * server's part in its own column), which
 * holds when other processes load the machine. Runs its own redis-server on a free loopback port.
 */
import { Buffer } from "node:buffer";
import process from "node:process";
import { createClient } from "redis";
import { Packr, Unpackr } from "msgpackr";
// deno-lint-ignore no-import-prefix
import { BentoCache, bentostore } from "npm:bentocache@^1.6.1";
// deno-lint-ignore no-import-prefix
import { memoryDriver } from "npm:bentocache@^1.6.1/drivers/memory";
// deno-lint-ignore no-import-prefix
import { redisDriver } from "npm:bentocache@^1.6.1/drivers/redis";
// deno-lint-ignore no-import-prefix
import "npm:ioredis@^5.8.0";
import { type Backend, cache, RedisBackend } from "../mod.ts";
import { freePort } from "./_goals_env.ts";

const FETCH_LOCK = `
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return v end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`;
// A private redis-server, so that its CPU time is this bench's alone (see `cpu` below).
const PORT = await freePort();
const server = new Deno.Command("redis-server", {
  args: ["--port", String(PORT), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
  stdout: "null",
  stderr: "null",
}).spawn();
const URL = `redis://127.0.0.1:${PORT}`;
for (let i = 0; i < 100; i++) {
  const ok = await Deno.connect({ port: PORT }).then((c) => (c.close(), true), () => false);
  if (ok) break;
  await new Promise((r) => setTimeout(r, 50));
}
const id = crypto.randomUUID().slice(0, 8);
const prefix = `bench:miss:${id}:`;
const N = 100;
const ROUNDS = Number(Deno.args[0] ?? 200);
const TTL = 10;
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const quiet = { collectStats: false, prometheus: false, structuredLogging: false };

const record = (i: number) => ({
  id: i,
  name: `user ${i}`,
  email: `user${i}@example.com`,
  roles: ["reader", "writer"],
  active: true,
  score: 12.5 + i,
  created: "2024-05-01T12:00:00Z",
  bio: "x".repeat(300),
});
async function getUser(i: number) {
  return record(i);
}

const backend = new RedisBackend({ url: URL, keyPrefix: prefix });
const raw = createClient({ url: URL, commandOptions: { timeout: 0 } })
  .withTypeMapping({ 36: Buffer });
raw.on("error", () => {});
await raw.connect();
const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const sha = String(await raw.sendCommand(["SCRIPT", "LOAD", FETCH_LOCK]));

const opts = (name: string, extra: Record<string, unknown>) => ({
  interop: { namespace: `b${id}`, operation: name },
  ttl: TTL,
  backend,
  l1: false as const,
  monitoring: quiet,
  ...bare,
  ...extra,
});
const hitLock = cache(getUser, opts("user", {}));
const hitNoLock = cache(getUser, opts("user", { stampede: false }));
const hitDefaults = cache(getUser, {
  interop: { namespace: `b${id}`, operation: "user" },
  ttl: TTL,
  backend,
  l1: false,
});
await Promise.all(Array.from({ length: N }, (_, i) => hitLock(i)));
const hitKeys: string[] = [];
for await (const b of raw.scanIterator({ MATCH: `${prefix}b${id}:user:*`, COUNT: 1000 })) {
  hitKeys.push(...b.map(String).filter((k) => !k.endsWith(":lock")));
}
if (hitKeys.length !== N) throw new Error(`bench setup: ${hitKeys.length} keys`);

const all = (f: (i: number) => Promise<unknown>) => {
  const ps = new Array(N);
  for (let i = 0; i < N; i++) ps[i] = f(i);
  return Promise.all(ps);
};
const unpack = (b: unknown) => unpackr.unpack(b as Uint8Array);

const hitRows: [string, () => Promise<unknown>][] = [
  ["raw GET + unpack (baseline)", () => all((i) => raw.get(hitKeys[i]).then(unpack))],
  ["raw EVALSHA read-or-lock + unpack", () =>
    all((i) =>
      raw.sendCommand([
        "EVALSHA",
        sha,
        "2",
        hitKeys[i],
        `{${hitKeys[i]}}:lock`,
        "tok",
        "30000",
        "0",
      ]).then(unpack)
    )],
  ["engine, lock on", () => all(hitLock)],
  ["engine, lock off", () => all(hitNoLock)],
  ["engine, lock on, default guards/stats/metrics", () => all(hitDefaults)],
];

let fresh = 1_000_000;
const missLock = cache(getUser, opts("miss", {}));
const missNoLock = cache(getUser, opts("missnl", { stampede: false }));
// The same backend without `fetchLock`: the engine composes the lock from `get`, `lock.acquire`,
// `set` and the release: `GET`, `SET NX`, `GET`, `SET`, release, the steps of a miss before it.
const { fetchLock: _, ...composedCaps } = backend.capabilities;
const composedBackend: Backend = {
  type: "redis",
  capabilities: composedCaps,
  local: true,
  get: (k, o) => backend.get(k, o),
  set: (k, v, t, o) => backend.set(k, v, t, o),
  delete: (k, o) => backend.delete(k, o),
  exists: (k, o) => backend.exists(k, o),
  healthCheck: () => backend.healthCheck(),
};
const missComposed = cache(getUser, { ...opts("missc", {}), backend: composedBackend });
// Native mode (not interop): the lease in the key (`SET … NX PX … GET`, then a plain `SET`), and
// the same function over the backend without `fetchLock.inKey` (the `<key>:lock` scripts, as
// native mode used before).
const native = (name: string, extra: Record<string, unknown>) => ({
  name,
  namespace: `b${id}`,
  ttl: TTL,
  backend,
  l1: false as const,
  monitoring: quiet,
  ...bare,
  ...extra,
});
const fl = backend.capabilities.fetchLock!;
const scriptLockBackend: Backend = {
  ...composedBackend,
  capabilities: {
    ...backend.capabilities,
    fetchLock: {
      fetchOrLock: (k, t, l, o) => fl.fetchOrLock(k, t, l, o),
      setAndUnlock: (k, v, ttl, tags, t, o) => fl.setAndUnlock(k, v, ttl, tags, t, o),
      unlock: (k, t, o) => fl.unlock(k, t, o),
    },
  },
};
const missNative = cache(getUser, native("bench.miss.native", {}));
const missNativeScripts = cache(getUser, {
  ...native("bench.miss.nativescripts", {}),
  backend: scriptLockBackend,
});
const missNativeNoLock = cache(getUser, native("bench.miss.nativenl", { stampede: false }));
const missDefaults = cache(getUser, {
  name: "bench.miss.defaults",
  namespace: `b${id}`,
  ttl: TTL,
  backend,
  l1: false,
});
const bento = new BentoCache({
  default: "c",
  prefix: `${prefix}bento`,
  stores: {
    c: bentostore()
      .useL1Layer(memoryDriver({ maxSize: "50mb" }))
      .useL2Layer(redisDriver({ connection: { host: "127.0.0.1", port: PORT } })),
  },
});
const missRows: [string, () => Promise<unknown>][] = [
  ["raw GET + pack + SET PX (baseline)", () =>
    all(async () => {
      const k = `${prefix}raw:${fresh++}`;
      await raw.get(k);
      await raw.set(k, packr.pack(record(fresh)), {
        expiration: { type: "PX", value: TTL * 1000 },
      });
    })],
  ["engine, lock on", () => all(() => missLock(fresh++))],
  ["engine, lock on, composed (the five steps before)", () => all(() => missComposed(fresh++))],
  ["engine, lock off", () => all(() => missNoLock(fresh++))],
  ["engine, lock on, default wire/guards/stats/metrics", () => all(() => missDefaults(fresh++))],
  ["engine native, lock on (lease in the key)", () => all(() => missNative(fresh++))],
  ["engine native, lock on (<key>:lock scripts)", () => all(() => missNativeScripts(fresh++))],
  ["engine native, lock off", () => all(() => missNativeNoLock(fresh++))],
  ["bentocache getOrSet, L1 + Redis L2", () =>
    all(() => {
      const i = fresh++;
      return bento.getOrSet({ key: `k${i}`, factory: () => getUser(i), ttl: TTL * 1000 });
    })],
];

/** CPU seconds the redis-server has used so far (`INFO cpu`). */
async function serverCpu(): Promise<number> {
  const info = String(await raw.sendCommand(["INFO", "cpu"]));
  const num = (k: string) => Number(new RegExp(`${k}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return num("used_cpu_user") + num("used_cpu_sys");
}
const clientCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * Paired wall time (median of per-round ratios), and CPU time per call (this process plus the
 * redis-server, summed over every round of a variant): the CPU figure does not move with the
 * load other processes put on the machine, which the wall time does.
 */
async function paired(title: string, rows: [string, () => Promise<unknown>][], rounds: number) {
  for (let w = 0; w < 20; w++) for (const [, f] of rows) await f();
  const times = rows.map(() => [] as number[]);
  const cpu = rows.map(() => 0);
  const server = rows.map(() => 0);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < rows.length; k++) {
      const v = (k + r) % rows.length;
      const s0 = await serverCpu();
      const c0 = clientCpu();
      const t0 = performance.now();
      await rows[v][1]();
      times[v].push(performance.now() - t0);
      const c1 = clientCpu();
      const s1 = await serverCpu();
      cpu[v] += c1 - c0 + s1 - s0;
      server[v] += s1 - s0;
    }
  }
  const q = (a: number[], f: number) =>
    [...a].sort((x, y) => x - y)[Math.floor(f * (a.length - 1))];
  const unit = title.startsWith("miss-set-1 ") ? "calls in a row" : "concurrent calls";
  console.log(`${title}, paired over ${rounds} rounds of ${N} ${unit}:`);
  console.table(rows.map(([name], v) => {
    const ratio = times[v].map((t, r) => t / times[0][r]);
    return {
      variant: name,
      "µs/call (median)": (q(times[v], 0.5) * 1000 / N).toFixed(2),
      "÷ baseline (median [q1, q3])": `${q(ratio, 0.5).toFixed(2)} [${q(ratio, 0.25).toFixed(2)}, ${
        q(ratio, 0.75).toFixed(2)
      }]`,
      "CPU µs/call": (cpu[v] * 1e6 / rounds / N).toFixed(2),
      "of which server": (server[v] * 1e6 / rounds / N).toFixed(2),
      "CPU ÷ baseline": (cpu[v] / cpu[0]).toFixed(2),
    };
  }));
}

/** The miss rows with one call at a time (N calls in a row): latency, where round trips count. */
const one = (rows: [string, () => Promise<unknown>][]) =>
  rows.map(([name]) => {
    const f = missOne[name];
    return [name, async () => {
      for (let i = 0; i < N; i++) await f();
    }] as [string, () => Promise<unknown>];
  });
const missOne: Record<string, () => Promise<unknown>> = {
  "raw GET + pack + SET PX (baseline)": async () => {
    const k = `${prefix}raw:${fresh++}`;
    await raw.get(k);
    await raw.set(k, packr.pack(record(fresh)), { expiration: { type: "PX", value: TTL * 1000 } });
  },
  "engine, lock on": () => missLock(fresh++),
  "engine, lock on, composed (the five steps before)": () => missComposed(fresh++),
  "engine, lock off": () => missNoLock(fresh++),
  "engine, lock on, default wire/guards/stats/metrics": () => missDefaults(fresh++),
  "engine native, lock on (lease in the key)": () => missNative(fresh++),
  "engine native, lock on (<key>:lock scripts)": () => missNativeScripts(fresh++),
  "engine native, lock off": () => missNativeNoLock(fresh++),
  "bentocache getOrSet, L1 + Redis L2": () => {
    const i = fresh++;
    return bento.getOrSet({ key: `k${i}`, factory: () => getUser(i), ttl: TTL * 1000 });
  },
};

await paired("l2-hit-100", hitRows, ROUNDS);
await paired("miss-set-100", missRows, ROUNDS);
await paired("miss-set-1 (one call at a time)", one(missRows), Math.ceil(ROUNDS / 4));

await bento.disconnectAll();
await backend.close();
raw.destroy();
server.kill("SIGTERM");
await server.status;
