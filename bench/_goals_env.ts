/**
 * What the goals bench (`bench/goals_bench.ts`) runs against: its own `redis-server` on a free
 * loopback port (started by the bench, stopped by pid at the end: other helpers' tests share the
 * Redis on 6379, so the bench never flushes or fills that one), the raw node-redis client of the
 * baselines, the bentocache configurations of the peers, and the round counts of a full and a
 * `--quick` run.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createServer } from "node:net";
// deno-lint-ignore no-import-prefix
import { BentoCache, bentostore } from "npm:bentocache@^1.6.1";
// deno-lint-ignore no-import-prefix
import { memoryDriver } from "npm:bentocache@^1.6.1/drivers/memory";
// deno-lint-ignore no-import-prefix
import { redisBusDriver, redisDriver } from "npm:bentocache@^1.6.1/drivers/redis";
// bentocache's Redis driver imports ioredis as a peer dependency; importing it here puts it in
// the module graph (and in deno.dev.lock) so that the peer resolves.
// deno-lint-ignore no-import-prefix
import "npm:ioredis@^5.8.0";
import { createClient } from "redis";
import { Packr } from "msgpackr";
import { startRedisServer } from "../tests/_redis_server.ts";

/** Round counts of one run (full or `--quick`). */
export interface Rounds {
  primitive: number;
  l1Record: number;
  l1Large: number;
  l2Hit: number;
  l2Mb1: number;
  l2Mb10: number;
  miss: number;
  throughput: number;
  memoryReps: number;
}

/** Full run: about 2–3 minutes on the shared 2-core host (load 10). */
export const FULL: Rounds = {
  primitive: 500,
  l1Record: 500,
  l1Large: 200,
  l2Hit: 1000,
  l2Mb1: 80,
  l2Mb10: 25,
  miss: 600,
  throughput: 160,
  memoryReps: 3,
};

/** `--quick`: about 20 s on a quiet host, 40–50 s at load 10; wider quartiles. */
export const QUICK: Rounds = {
  primitive: 150,
  l1Record: 150,
  l1Large: 40,
  l2Hit: 300,
  l2Mb1: 20,
  l2Mb10: 6,
  miss: 120,
  throughput: 40,
  memoryReps: 2,
};

/** A full GC when run with `--v8-flags=--expose-gc` (as `deno task bench:goals` does). */
export const fullGc: () => void = (globalThis as { gc?: () => void }).gc ?? (() => {});

/** A free TCP port on 127.0.0.1 (bound once and released: free a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A raw node-redis client as the baselines use it: Buffer replies, per-command timeout off. */
export type RawClient = ReturnType<typeof rawClientType>;
function rawClientType(url: string) {
  return createClient({ url, commandOptions: { timeout: 0 } }).withTypeMapping({ 36: Buffer });
}

/** Everything the sections share. */
export interface GoalsEnv {
  /** The private server's URL. */
  url: string;
  host: string;
  port: number;
  /** A unique id of this run (key prefixes, function names). */
  id: string;
  /** Raw client: node-redis, per-command timeout off (the fastest way to use it). */
  raw: RawClient;
  /** msgpackr as the raw baseline uses it (plain objects). */
  packr: Packr;
  rounds: Rounds;
  /**
   * Spread into the options of every Redis-backed variant of ours: `{}` (the defaults), or with
   * `--patient-timeouts` an adaptive-timeout floor of 2 s. The guards stay on and cost the same
   * (a deadline is armed either way); only their verdict changes: on a host starved of CPU (load
   * 10 on 2 cores) the default floor for a local backend, 100 ms, times out, the breaker opens and
   * Redis is skipped, which the rows then report as `invalid`.
   */
  guards: { timeout?: { min: number; initial: number; max: number } };
  /** Stop the server and close the raw client. */
  close(): Promise<void>;
}

/** Start the private server and the raw client. */
export async function startEnv(quick: boolean, patientTimeouts = false): Promise<GoalsEnv> {
  const port = await freePort();
  const server = await startRedisServer(port);
  const raw = rawClientType(server.url);
  raw.on("error", () => {});
  await raw.connect();
  return {
    url: server.url,
    host: "127.0.0.1",
    port,
    id: crypto.randomUUID().slice(0, 8),
    raw,
    packr: new Packr({ useRecords: false, mapsAsObjects: true }),
    rounds: quick ? QUICK : FULL,
    guards: patientTimeouts ? { timeout: { min: 2, initial: 2, max: 5 } } : {},
    async close() {
      raw.destroy();
      await server.stop();
    },
  };
}

/** bentocache's default: one memory L1 (JSON serialization, 1000 items), nothing else. */
export function bentoDefault(prefix: string): BentoCache<{ m: ReturnType<typeof bentostore> }> {
  return new BentoCache({
    default: "m",
    prefix,
    stores: { m: bentostore().useL1Layer(memoryDriver({})) },
  });
}

/** bentocache with Redis only (no L1): the peer of an L2 hit with L1 off. */
export function bentoL2(
  env: GoalsEnv,
  prefix: string,
): BentoCache<{ r: ReturnType<typeof bentostore> }> {
  return new BentoCache({
    default: "r",
    prefix,
    stores: {
      r: bentostore().useL2Layer(redisDriver({ connection: { host: env.host, port: env.port } })),
    },
  });
}

/**
 * bentocache configured as our defaults with Redis: memory L1 of 10,000 entries (our
 * `l1.maxEntries` default), Redis L2, and the Redis bus that keeps other instances' L1 in step
 * (ours: `l1.invalidation`, on by default).
 */
export function bentoTiered(
  env: GoalsEnv,
  prefix: string,
): BentoCache<{ t: ReturnType<typeof bentostore> }> {
  const connection = { host: env.host, port: env.port };
  return new BentoCache({
    default: "t",
    prefix,
    stores: {
      t: bentostore()
        .useL1Layer(memoryDriver({ maxItems: 10_000 }))
        .useL2Layer(redisDriver({ connection }))
        .useBus(redisBusDriver({ connection })),
    },
  });
}
