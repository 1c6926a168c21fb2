/**
 * Private `redis-server` processes for tests: start one on a loopback port (with any extra
 * arguments), stop, pause (SIGSTOP/SIGCONT) or kill it by pid, and build a 3-master Redis Cluster.
 * Each server gets its own temporary `--dir`, no persistence, and is bound to 127.0.0.1.
 *
 * Always stop what you start in a `finally` (`await server.stop()` / `await cluster.stop()`); the
 * handles are also `AsyncDisposable` for `await using`.
 *
 * Ports: tests pick free loopback ports at run time ({@linkcode freePort}, and
 * {@linkcode freeClusterPorts} for a cluster), never fixed numbers, so test files, runtimes and
 * checkouts running beside each other do not meet on a port. They are below the system's ephemeral
 * range, which outgoing connections take their local ports from: with every runtime's files
 * running at once, hundreds of connections a second would otherwise be able to take a test's port
 * between choosing it and the server's bind, or while a killed server waits for its restart.
 *
 * Also: the shared Redis at 127.0.0.1:6379 ({@linkcode SHARED_REDIS_URL}), whether it answers
 * ({@linkcode SHARED_REDIS_UNAVAILABLE}), and `ignore` options that skip outside CI only.
 *
 * @module
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createClient } from "redis";
import { IN_CI } from "./_harness.ts";

/** The redis-server binary. */
export const REDIS_SERVER: string = "redis-server";
/** The redis-cli binary. */
export const REDIS_CLI: string = "redis-cli";

/** The shared Redis every test may use (unique key prefixes; never FLUSHALL/FLUSHDB it). */
export const SHARED_REDIS_URL: string = "redis://127.0.0.1:6379";

function probeBinaries(): string | null {
  for (const bin of [REDIS_SERVER, REDIS_CLI]) {
    const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
    if (r.error || r.status !== 0) return `${bin} not found; apt-get install redis-server`;
  }
  return null;
}

function probeShared(): string | null {
  const r = spawnSync(REDIS_CLI, ["-h", "127.0.0.1", "-p", "6379", "PING"], {
    encoding: "utf8",
    timeout: 3000,
  });
  if (r.error) return `redis-cli unavailable (${r.error.message})`;
  if (r.stdout.trim() !== "PONG") {
    return `no Redis answers at 127.0.0.1:6379 (${(r.stdout + r.stderr).trim()})`;
  }
  return null;
}

/** Why private servers cannot be started here, or `null`. */
export const REDIS_SERVER_UNAVAILABLE: string | null = probeBinaries();
/** Why the shared Redis cannot be used here, or `null`. */
export const SHARED_REDIS_UNAVAILABLE: string | null = REDIS_SERVER_UNAVAILABLE ?? probeShared();

function skipOutsideCi(reason: string | null): { ignore: boolean; ignoreReason?: string } {
  return reason && !IN_CI ? { ignore: true, ignoreReason: reason } : { ignore: false };
}

/** `ignore` options for tests that need private redis-server processes (skip only outside CI). */
export const redisServerTestOptions: { ignore: boolean; ignoreReason?: string } = skipOutsideCi(
  REDIS_SERVER_UNAVAILABLE,
);
/** `ignore` options for tests that need the shared Redis (skip only outside CI). */
export const sharedRedisTestOptions: { ignore: boolean; ignoreReason?: string } = skipOutsideCi(
  SHARED_REDIS_UNAVAILABLE,
);

/** A unique key prefix for one test run, so parallel test files never collide on shared Redis. */
export function uniquePrefix(label: string): string {
  return `test:${label}:${crypto.randomUUID().slice(0, 8)}:`;
}

/** Run redis-cli against a port; resolves its trimmed stdout (rejects on a non-zero exit). */
export function redisCli(port: number, args: string[], timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(REDIS_CLI, ["-h", "127.0.0.1", "-p", String(port), ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    let err = "";
    p.stdout!.on("data", (d) => (out += d));
    p.stderr!.on("data", (d) => (err += d));
    const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
    p.on("close", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out.trim());
      else reject(new Error(`redis-cli ${args.join(" ")} exited ${code}: ${err || out}`));
    });
  });
}

/**
 * The keys matching `pattern` on 127.0.0.1:`port`, by `SCAN … COUNT 1000`: a few hundred round trips
 * even when another program filled the server with hundreds of thousands of keys (`redis-cli
 * --scan` asks for 10 keys per round trip, and took over 10 s on the shared Redis then).
 */
export async function scanKeys(port: number, pattern: string): Promise<string[]> {
  const client = createClient({ url: `redis://127.0.0.1:${port}` });
  client.on("error", () => {});
  await client.connect();
  try {
    const keys: string[] = [];
    let cursor = "0";
    do {
      const [next, batch] = await client.sendCommand(
        ["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"],
      ) as [unknown, unknown[]];
      cursor = String(next);
      for (const k of batch) keys.push(String(k));
    } while (cursor !== "0");
    return keys;
  } finally {
    client.destroy();
  }
}

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A running private redis-server. */
export interface RedisServer extends AsyncDisposable {
  /** Its port on 127.0.0.1. */
  readonly port: number;
  /** Its process id. */
  readonly pid: number;
  /** Its working directory (removed by `stop`). */
  readonly dir: string;
  /** `redis://127.0.0.1:<port>` (no credentials). */
  readonly url: string;
  /** SIGTERM, wait for exit (SIGKILL after 3 s), remove the directory. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL right now (a crash); waits for the exit. The directory stays until `stop`. */
  kill(): Promise<void>;
  /** SIGSTOP: the server stops answering but keeps its sockets (a hung server). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
  /** Whether the process has exited. */
  readonly exited: boolean;
}

/**
 * Start `redis-server` on 127.0.0.1:`port` with `extraArgs` (e.g. `["--requirepass", "pw"]`) and
 * wait until it answers PING (5 s at most). Pass `{ ping: false }` when the arguments make PING
 * need credentials; the start then waits for the port to accept connections.
 */
export async function startRedisServer(
  port: number,
  extraArgs: string[] = [],
  options: { ping?: boolean; dir?: string } = {},
): Promise<RedisServer> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), `cachekit-redis-${port}-`));
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    dir,
    "--logfile",
    join(dir, "redis.log"),
    "--daemonize",
    "no",
    ...extraArgs,
  ];
  const child: ChildProcess = spawn(REDIS_SERVER, args, { stdio: "ignore" });
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.once("exit", () => {
      exited = true;
      resolve();
    });
    child.once("error", () => {
      exited = true;
      resolve();
    });
  });
  let stopped: Promise<void> | undefined;
  const signal = (sig: "SIGTERM" | "SIGKILL" | "SIGSTOP" | "SIGCONT") => {
    if (!exited) {
      try {
        process.kill(child.pid!, sig);
      } catch { /* already gone */ }
    }
  };
  const server: RedisServer = {
    port,
    pid: child.pid ?? -1,
    dir,
    url: `redis://127.0.0.1:${port}`,
    get exited() {
      return exited;
    },
    stop() {
      stopped ??= (async () => {
        signal("SIGCONT");
        signal("SIGTERM");
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([exit, new Promise<void>((r) => (timer = setTimeout(r, 3000)))]);
        clearTimeout(timer);
        if (!exited) {
          signal("SIGKILL");
          await exit;
        }
        if (!options.dir) rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
    async kill() {
      signal("SIGCONT");
      signal("SIGKILL");
      await exit;
    },
    pause() {
      signal("SIGSTOP");
    },
    resume() {
      signal("SIGCONT");
    },
    [Symbol.asyncDispose]() {
      return this.stop();
    },
  };
  try {
    const deadline = Date.now() + 5000;
    while (true) {
      if (exited) {
        let log = "";
        try {
          log = readFileSync(join(dir, "redis.log"), "utf8").trim().split("\n").slice(-3).join(
            "\n",
          );
        } catch { /* no log */ }
        throw new Error(`redis-server on port ${port} exited at start:\n${log}`);
      }
      const ok = options.ping === false
        ? await portOpen(port)
        : await redisCli(port, ["PING"], 2000).then((r) => r === "PONG", () => false);
      if (ok) break;
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
      await delay(20);
    }
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

async function portOpen(port: number): Promise<boolean> {
  const { connect } = await import("node:net");
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      s.destroy();
      resolve(false);
    });
  });
}

/** A running private Redis Cluster. */
export interface RedisClusterHandle extends AsyncDisposable {
  /** The master servers. */
  readonly nodes: RedisServer[];
  /** `"127.0.0.1:<port>"` of every master, for `cluster.rootNodes`. */
  readonly rootNodes: string[];
  /** Stop every node and remove their directories. */
  stop(): Promise<void>;
}

/** The first port of the system's ephemeral range (Linux: `ip_local_port_range`; else 32768). */
function ephemeralStart(): number {
  try {
    const low = Number(
      readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").split(/\s+/)[0],
    );
    if (Number.isInteger(low) && low > 0) return low;
  } catch { /* not Linux */ }
  return 32768;
}

/** Ports below this are never the local port of an outgoing connection. */
const EPHEMERAL_START = ephemeralStart();

/** The lowest port the helpers choose. */
const PORT_FLOOR = 10000;

/** A random port in [`PORT_FLOOR`, `end`). */
function randomPort(end: number): number {
  return PORT_FLOOR + Math.floor(Math.random() * (end - PORT_FLOOR));
}

/**
 * A free TCP port on 127.0.0.1 below the system's ephemeral range (see the module notes): a random
 * one that we could bind. Nothing listens on it when this resolves, and no outgoing connection
 * takes it, so a test can start a server there (`startRedisServer(await freePort())`), restart one
 * on it later, or use it as an address where nothing answers (a refused connection). Where the
 * ephemeral range leaves no room below it, the system chooses (listen on port 0).
 */
export async function freePort(): Promise<number> {
  if (EPHEMERAL_START - PORT_FLOOR >= 1000) {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = randomPort(EPHEMERAL_START);
      if (await portFree(port)) return port;
    }
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether nothing listens on 127.0.0.1:`port` (we can bind it ourselves). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * `n` consecutive loopback ports, each free together with its Redis Cluster bus port (+10000),
 * from a random base, the bus ports too below the system's ephemeral range (else 20000–29999): so
 * that test runs beside each other (or beside another program) do not meet on fixed ports, and no
 * outgoing connection takes one.
 */
export async function freeClusterPorts(n: number): Promise<number[]> {
  const end = EPHEMERAL_START - 10000 - n >= PORT_FLOOR + 1000 ? EPHEMERAL_START - 10000 - n : 0;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = end ? randomPort(end) : 20000 + Math.floor(Math.random() * (10000 - n));
    const ports = Array.from({ length: n }, (_, i) => base + i);
    const free = await Promise.all(
      ports.flatMap((p) => [portFree(p), portFree(p + 10000)]),
    );
    if (free.every(Boolean)) return ports;
  }
  throw new Error(`no ${n} free consecutive loopback ports (with their cluster bus ports) found`);
}

/**
 * Start a Redis Cluster of `ports.length` masters (at least 3, no replicas) with `redis-cli
 * --cluster create … --cluster-yes`, and wait until every node reports `cluster_state:ok`.
 */
export async function startRedisCluster(
  ports: number[],
  extraArgs: string[] = [],
): Promise<RedisClusterHandle> {
  if (ports.length < 3) throw new Error("a Redis Cluster needs at least 3 masters");
  const nodes: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
  };
  try {
    for (const port of ports) {
      nodes.push(
        await startRedisServer(port, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `nodes-${port}.conf`,
          "--cluster-node-timeout",
          "2000",
          ...extraArgs,
        ]),
      );
    }
    await redisCli(ports[0], [
      "--cluster",
      "create",
      ...ports.map((p) => `127.0.0.1:${p}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes",
    ], 30_000);
    const deadline = Date.now() + 10_000;
    for (const port of ports) {
      while (true) {
        const info = await redisCli(port, ["CLUSTER", "INFO"]).catch(() => "");
        if (info.includes("cluster_state:ok")) break;
        if (Date.now() > deadline) throw new Error(`cluster node ${port} never reached state ok`);
        await delay(50);
      }
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    nodes,
    rootNodes: ports.map((p) => `127.0.0.1:${p}`),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
