/**
 * A narrow layer over node-redis that hides the difference between one Redis server and a Redis
 * Cluster from {@linkcode RedisBackend}. Internal.
 *
 * node-redis only accepts `string | Buffer` arguments, so byte values cross this boundary as
 * zero-copy `Buffer` views ({@linkcode toBuffer}) and come back as plain `Uint8Array` views
 * ({@linkcode fromBuffer}); Node's `Buffer` API is used nowhere else in the library.
 *
 * node-redis is loaded with a dynamic `import()` on the first connect ({@linkcode loadRedis}), not
 * when this module is imported: the package root re-exports `RedisBackend`, and loading node-redis
 * costs more than the rest of the package together (measured under Deno: importing `mod.ts` took
 * ~240 ms with node-redis loaded statically, ~75 ms without it). Programs that never connect to
 * Redis never load it.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { toBackendError } from "./_redis_errors.ts";
import { bytesToHex as toHex } from "@noble/hashes/utils.js";
import { closedError, unrefTimer } from "./_common.ts";
import { CommandBatch } from "./_redis_batch.ts";

/** A command argument as node-redis accepts it. */
export type RedisArg = string | Buffer;

/** Socket-level TLS settings (passed to `node:tls`). */
export interface RedisTlsSettings {
  /** PEM CA certificate(s) to trust (e.g. a private CA). */
  ca?: string | string[];
  /** PEM client certificate (mutual TLS). */
  cert?: string;
  /** PEM client private key (mutual TLS). */
  key?: string;
  /** Verify the server certificate (default `true`). */
  rejectUnauthorized?: boolean;
  /** SNI / certificate host name to expect, when it differs from the host connected to. */
  servername?: string;
}

/** Everything the driver needs to connect. */
export interface DriverConfig {
  host: string;
  port: number;
  tls: false | RedisTlsSettings;
  username?: string;
  password?: string;
  db: number;
  connectTimeoutMs: number;
  /** `CLIENT SETNAME` of the connections (the subscriber connection gets `<name>:sub`). */
  clientName?: string;
  /** Cluster root nodes (`host`/`port`); when set, a cluster client is made. */
  clusterNodes?: { host: string; port: number }[];
}

/** A Lua script with its lazily computed SHA-1. */
export class LuaScript {
  readonly source: string;
  #sha: Promise<string> | undefined;
  /** The SHA-1 once computed, so a script call need not wait on a promise for it. */
  known: string | undefined;
  constructor(source: string) {
    this.source = source;
  }
  /** Hex SHA-1 of the source (as `EVALSHA` wants it), computed with WebCrypto once. */
  sha(): Promise<string> {
    return this.#sha ??= crypto.subtle.digest("SHA-1", new TextEncoder().encode(this.source))
      .then((d) => this.known = toHex(new Uint8Array(d)));
  }
}

/** Zero-copy `Buffer` view of bytes, for node-redis arguments. */
export function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Plain `Uint8Array` view of a reply `Buffer` (no copy). */
export function fromBuffer(buf: Uint8Array): Uint8Array {
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// deno-lint-ignore no-explicit-any
type AnyClient = any;

/** The two factories this layer uses from node-redis (a type-only import: erased at runtime). */
type RedisModule = Pick<typeof import("redis"), "createClient" | "createCluster">;

let redisModule: Promise<RedisModule> | undefined;

/** node-redis, imported once on first use (a failed import is retried by the next connect). */
export function loadRedis(): Promise<RedisModule> {
  return redisModule ??= import("redis").catch((e) => {
    redisModule = undefined;
    throw e;
  });
}

const BINARY = { typeMapping: { 36: Buffer } } as const; // RESP_TYPES.BLOB_STRING = 36 ('$')

/**
 * node-redis ≥ 5 arms an `AbortSignal.timeout(5000)` per command by default; `RedisBackend` enforces
 * its own per-operation deadlines (one shared timer per timeout value, `_redis_deadlines.ts`), so
 * that second timer is turned off: under Deno it cost a fifth of a pipelined GET (a timer plus an
 * eagerly built `DOMException` per command).
 */
const NO_COMMAND_TIMEOUT = { timeout: 0 } as const;

function tlsSocket(tls: false | RedisTlsSettings): Record<string, unknown> {
  if (tls === false) return { tls: false };
  const out: Record<string, unknown> = { tls: true };
  for (const k of ["ca", "cert", "key", "rejectUnauthorized", "servername"] as const) {
    if (tls[k] !== undefined) out[k] = tls[k];
  }
  return out;
}

function reconnectStrategy(retries: number): number {
  // 0, 50, 100, … 500 ms, plus up to 50 ms of jitter so many clients do not stampede a restart.
  return Math.min(retries * 50, 500) + Math.floor(Math.random() * 50);
}

/**
 * One connection (plus a lazily made subscriber connection) to a single Redis server, or a node-redis
 * cluster client. All replies of `send(…, binary = true)` have bulk strings as `Buffer`.
 */
export class RedisDriver {
  readonly cluster: boolean;
  readonly #config: DriverConfig;
  /** Made on the first {@linkcode RedisDriver.ready} (once node-redis is loaded). */
  #client: AnyClient | undefined;
  #loading: Promise<void> | undefined;
  #sub: AnyClient | undefined;
  #subConnecting: Promise<void> | undefined;
  #connecting: Promise<void> | undefined;
  #closed = false;
  /** The last connection attempt failed and no `ready` followed it (fail fast while down). */
  #attemptFailed: unknown = undefined;
  #waiters = new Set<{ ok: () => void; fail: (e: unknown) => void }>();
  /** Listeners per channel for the subscriber connection. */
  #channels = new Map<string, (message: string) => void>();
  /** Whether a `SUBSCRIBE` on the subscriber connection ever succeeded (later readies are gaps). */
  #subscribedOnce = false;
  /**
   * Called when the subscriber connection is back (its channels resubscribed) after it was lost:
   * messages published in between were missed. Set by the backend.
   */
  onSubscriberGap: (() => void) | undefined;
  /**
   * Called once when the subscriber connection is lost (messages published from now on are missed
   * until {@linkcode RedisDriver.onSubscriberGap}). Set by the backend.
   */
  onSubscriberDown: (() => void) | undefined;
  /** The subscriber connection was lost and {@linkcode RedisDriver.onSubscriberDown} told so. */
  #subLost = false;
  /** Whether the main connection keeps the process alive (operations in flight); see `hold`. */
  #held = false;
  /** Socket options of the single-server connections (the subscriber's are derived from them). */
  #socket: Record<string, unknown> = {};
  /** Pending reconnect timers of idle connections (see `#strategy`). */
  #retryTimers = new Set<ReturnType<typeof setTimeout>>();

  constructor(config: DriverConfig) {
    this.#config = config;
    this.cluster = config.clusterNodes !== undefined;
    if (!this.cluster) this.#batch = new CommandBatch();
  }

  /** Create the (unconnected) client from the loaded node-redis module. */
  #create({ createClient, createCluster }: RedisModule): void {
    const config = this.#config;
    const socket = {
      ...tlsSocket(config.tls),
      connectTimeout: config.connectTimeoutMs,
      reconnectStrategy,
    };
    if (config.clusterNodes) {
      this.#client = createCluster({
        rootNodes: config.clusterNodes.map((n) => ({ socket: { host: n.host, port: n.port } })),
        defaults: {
          socket,
          ...(config.clientName !== undefined ? { name: config.clientName } : {}),
          ...(config.username !== undefined ? { username: config.username } : {}),
          ...(config.password !== undefined ? { password: config.password } : {}),
        },
        useReplicas: false,
        commandOptions: NO_COMMAND_TIMEOUT,
      });
    } else {
      this.#socket = { host: config.host, port: config.port, ...socket };
      this.#client = createClient({
        socket: { ...this.#socket, reconnectStrategy: this.#strategy(() => this.#client, true) },
        ...(config.clientName !== undefined ? { name: config.clientName } : {}),
        ...(config.username !== undefined ? { username: config.username } : {}),
        ...(config.password !== undefined ? { password: config.password } : {}),
        database: config.db,
        disableOfflineQueue: true,
        commandOptions: NO_COMMAND_TIMEOUT,
      });
      // Idle connections never keep the process alive; `hold(true)` refs it while work is in flight.
      if (!this.#held) this.#client.unref();
    }
    this.#watch(this.#client, true);
  }

  /**
   * The reconnect strategy of a single-server connection. node-redis waits between attempts on a
   * timer that keeps the process alive, so while Redis is down a script would never end. That is
   * right while operations wait for the connection (each bounded by its deadline), so then
   * node-redis retries. An idle connection (the main one with nothing in flight, the subscriber
   * always) gives node-redis up instead and is reconnected from an unref'd timer on the same
   * schedule; node-redis resubscribes its channels on that connect as on its own.
   */
  #strategy(client: () => AnyClient, main: boolean): (retries: number) => number | false {
    let attempts = 0;
    let watched = false;
    return () => {
      const c = client();
      if (!watched && c !== undefined) {
        watched = true;
        c.on("ready", () => (attempts = 0));
      }
      const delay = reconnectStrategy(attempts++);
      if (this.#closed) return false;
      if (main && this.#held) return delay;
      const timer = setTimeout(() => {
        this.#retryTimers.delete(timer);
        if (this.#closed || c.isOpen) return;
        const p = c.connect().then(() => {});
        p.catch(() => {}); // the failure reaches the error listener; the strategy retries
        if (main) this.#connecting = p.catch(() => {});
        else this.#subConnecting = p;
      }, delay);
      unrefTimer(timer);
      this.#retryTimers.add(timer);
      return false;
    };
  }

  /**
   * Whether the main connection keeps the process alive. The backend holds it while operations
   * are in flight (each bounded by its deadline) and releases it when idle, so a script that cached
   * a few calls exits at its end instead of waiting on an open socket. No-op on a cluster client
   * (node-redis gives it no `ref`/`unref`).
   */
  hold(on: boolean): void {
    if (this.#held === on) return;
    this.#held = on;
    if (this.cluster || this.#client === undefined) return;
    if (on) this.#client.ref();
    else this.#client.unref();
  }

  #watch(client: AnyClient, main: boolean): void {
    let wasReady = false;
    client.on("error", (err: unknown) => {
      if (!main) return; // the subscriber reconnects by itself; its errors are not op failures
      if (!wasReady) {
        this.#attemptFailed = err;
        for (const w of this.#waiters) w.fail(err);
        this.#waiters.clear();
      }
    });
    if (!main || this.cluster) return;
    client.on("ready", () => {
      wasReady = true;
      this.#connectedOnce = true;
      this.#attemptFailed = undefined;
      for (const w of this.#waiters) w.ok();
      this.#waiters.clear();
    });
    client.on("end", () => (wasReady = false));
    client.on("reconnecting", () => (wasReady = false));
  }

  /** Whether the main connection was ever ready (`false` until the first connect completes). */
  get connectedOnce(): boolean {
    return this.#connectedOnce;
  }
  #connectedOnce = false;

  /** Whether commands can be sent right now without waiting. */
  get isReady(): boolean {
    if (this.cluster) return this.#connecting !== undefined && this.#clusterUp;
    return this.#client?.isReady === true;
  }
  #clusterUp = false;

  /**
   * Connect if not yet connected and wait until commands can be sent. Rejects fast (with the
   * connection error) when the server is known to be unreachable.
   */
  ready(): Promise<void> {
    if (this.#closed) return Promise.reject(closedError("redis", "connect"));
    if (this.#client === undefined) {
      this.#loading ??= loadRedis().then((mod) => {
        if (this.#client === undefined) this.#create(mod);
      }, (e) => {
        this.#loading = undefined;
        throw e;
      });
      return this.#loading.then(() => this.ready());
    }
    if (this.cluster) {
      if (!this.#connecting) {
        this.#connecting = this.#client.connect().then(
          () => {
            this.#clusterUp = true;
            this.#connectedOnce = true;
          },
          (err: unknown) => {
            this.#connecting = undefined;
            throw err;
          },
        );
      }
      return this.#connecting!;
    }
    if (this.#client.isReady) return Promise.resolve();
    if (
      !this.#connecting || (!this.#client.isOpen && this.#attemptFailed === undefined)
    ) {
      // First use, or a connection that dropped while idle and waits for its retry timer.
      this.#connecting = this.#client.connect().then(() => {}, () => {});
    } else if (this.#attemptFailed !== undefined) {
      return Promise.reject(this.#attemptFailed);
    }
    return new Promise((ok, fail) => this.#waiters.add({ ok, fail }));
  }

  /**
   * The batch of concurrent operations collected on the connection (`_redis_batch.ts`), or
   * `undefined` on a cluster, which is never batched (its keys live on several nodes).
   */
  get batch(): CommandBatch | undefined {
    return this.#batch;
  }
  #batch: CommandBatch | undefined;

  /**
   * Send one command, after the batch waiting to go out (so commands keep the order their
   * operations started in). `key` routes it on a cluster; `binary` returns bulk strings as
   * `Buffer`.
   */
  send(
    key: string | undefined,
    readonly: boolean,
    args: RedisArg[],
    binary = false,
  ): Promise<unknown> {
    if (this.#batch?.pending) this.#batch.flush();
    return this.sendNow(key, readonly, args, binary);
  }

  /** {@linkcode RedisDriver.send} without flushing the batch first: how a batch goes out. */
  sendNow(
    key: string | undefined,
    readonly: boolean,
    args: RedisArg[],
    binary = false,
  ): Promise<unknown> {
    if (this.cluster) {
      return this.#client.sendCommand(key, readonly, args, binary ? BINARY : undefined);
    }
    return this.#client.sendCommand(args, binary ? BINARY : undefined);
  }

  /**
   * Run a Lua script by `EVALSHA`, loading it with `EVAL` on `NOSCRIPT` (a server restarted or
   * `SCRIPT FLUSH`ed). Once the script's SHA-1 is known, the command goes out without a promise
   * hop: a script on the hot path (the stampede-protected read) costs what a plain command does.
   */
  eval(
    script: LuaScript,
    keys: string[],
    args: RedisArg[],
    binary = false,
  ): Promise<unknown> {
    if (this.#batch?.pending) this.#batch.flush();
    return this.evalNow(script, keys, args, binary);
  }

  /**
   * {@linkcode RedisDriver.eval} without flushing the batch first: how a batch goes out. A
   * script's SHA-1 not known yet is computed first (a promise hop, once per script); callers
   * on the hot path compute it beforehand (`LuaScript.sha`).
   */
  evalNow(
    script: LuaScript,
    keys: string[],
    args: RedisArg[],
    binary = false,
  ): Promise<unknown> {
    const sha = script.known;
    if (sha === undefined) {
      return script.sha().then(() => this.evalNow(script, keys, args, binary));
    }
    const tail = [String(keys.length), ...keys, ...args];
    return this.sendNow(keys[0], false, ["EVALSHA", sha, ...tail], binary).catch((err) => {
      if (err instanceof Error && err.message.startsWith("NOSCRIPT")) {
        return this.sendNow(keys[0], false, ["EVAL", script.source, ...tail], binary);
      }
      throw err;
    });
  }

  /** One raw command sender per master (for `SCAN`, which is per node). */
  async masters(): Promise<((args: RedisArg[]) => Promise<unknown>)[]> {
    if (!this.cluster) return [(args) => this.#client.sendCommand(args)];
    const out: ((args: RedisArg[]) => Promise<unknown>)[] = [];
    for (const m of this.#client.masters) {
      const c = await this.#client.nodeClient(m);
      out.push((args) => c.sendCommand(args));
    }
    return out;
  }

  /** `PUBLISH` a message (on a cluster it reaches every node's subscribers). */
  async publish(channel: string, message: string): Promise<void> {
    if (this.#batch?.pending) this.#batch.flush();
    if (this.cluster) await this.#client.publish(channel, message);
    else await this.#client.sendCommand(["PUBLISH", channel, message]);
  }

  /** Listen on `channel` with a dedicated subscriber connection (resubscribed after reconnects). */
  async subscribe(channel: string, listener: (message: string) => void): Promise<void> {
    if (this.#closed) throw closedError("redis", "subscribe");
    this.#channels.set(channel, listener);
    if (this.cluster) {
      await this.ready();
      await this.#client.subscribe(channel, listener);
      return;
    }
    if (!this.#sub) {
      this.#sub = this.#client.duplicate({
        socket: { ...this.#socket, reconnectStrategy: this.#strategy(() => this.#sub, false) },
        disableOfflineQueue: false,
        ...(this.#config.clientName !== undefined
          ? { name: `${this.#config.clientName}:sub` }
          : {}),
      });
      this.#watch(this.#sub, false);
      // node-redis emits `ready` once the reconnected socket has resubscribed every channel.
      this.#sub.on("ready", () => {
        this.#subLost = false;
        if (this.#subscribedOnce && this.#channels.size > 0) this.onSubscriberGap?.();
      });
      const lost = () => {
        if (this.#subLost || this.#closed || !this.#subscribedOnce || this.#channels.size === 0) {
          return;
        }
        this.#subLost = true;
        this.onSubscriberDown?.();
      };
      this.#sub.on("end", lost);
      this.#sub.on("reconnecting", lost);
      this.#sub.on("error", lost);
      this.#sub.unref(); // listening for invalidations never keeps the process alive
      this.#subConnecting = this.#sub.connect().then(() => {});
    } else if (!this.#sub.isOpen) {
      // Given up after a failed first connect and not yet retried: try again now.
      this.#subConnecting = this.#sub.connect().then(() => {});
    }
    await this.#subConnecting;
    await this.#sub.subscribe(channel, listener);
    this.#subscribedOnce = true;
  }

  /**
   * Whether the subscriber connection is up: `false` while it is lost (messages published now are
   * missed), `true` when up or when nothing is subscribed. Always `true` on a cluster, whose
   * node-redis client hides its per-node subscriber connections.
   */
  get subscriberUp(): boolean {
    if (this.cluster || this.#sub === undefined || !this.#subscribedOnce) return true;
    return this.#channels.size === 0 || this.#sub.isReady === true;
  }

  /**
   * Connection figures read from node-redis now: `connections` open and ready (the main connection
   * and the subscriber one; on a cluster, the master nodes' clients), and `pendingCommands`, the
   * commands written or waiting for their reply in those connections' queues. `pendingCommands` is
   * absent when node-redis does not expose its queue (it reads the client's `_getQueue()`, which
   * node-redis marks internal): never estimated.
   */
  poolStats(): { connections: number; pendingCommands?: number } {
    const clients: AnyClient[] = [];
    if (this.cluster) {
      for (const node of (this.#client?.masters ?? []) as { client?: AnyClient }[]) {
        if (node.client !== undefined) clients.push(node.client);
      }
    } else {
      if (this.#client !== undefined) clients.push(this.#client);
      if (this.#sub !== undefined) clients.push(this.#sub);
    }
    let connections = 0;
    let pending: number | undefined = 0;
    for (const c of clients) {
      if (c.isReady === true) connections++;
      const n = pendingOf(c);
      pending = n === undefined || pending === undefined ? undefined : pending + n;
    }
    return pending === undefined ? { connections } : { connections, pendingCommands: pending };
  }

  /** Stop listening on `channel`. */
  async unsubscribe(channel: string): Promise<void> {
    const listener = this.#channels.get(channel);
    if (!listener) return;
    this.#channels.delete(channel);
    if (this.cluster) {
      if (this.#client?.isOpen) await this.#client.unsubscribe(channel, listener);
    } else if (this.#sub?.isOpen) {
      await this.#sub.unsubscribe(channel, listener);
    }
  }

  /** Close every connection; waits briefly for in-flight replies, then drops the sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#batch?.flush(); // operations already started go out before the connection closes
    this.#closed = true;
    for (const w of this.#waiters) w.fail(closedError("redis", "connect"));
    this.#waiters.clear();
    for (const t of this.#retryTimers) clearTimeout(t);
    this.#retryTimers.clear();
    // A client made after this point (node-redis still loading) is never connected: ready() refuses.
    const clients = [this.#sub, this.#client].filter((c) => c !== undefined);
    await Promise.all(clients.map((c) => shutdown(c, this.cluster && c === this.#client)));
    // Let a connect() that was still retrying settle (its retry timer ends within ~0.5 s), so no
    // timer outlives close().
    await this.#subConnecting?.catch(() => {});
    await this.#connecting?.catch(() => {});
  }
}

/** The commands queued in `client` (node-redis's `_getQueue().pendingCount`), if it tells. */
function pendingOf(client: AnyClient): number | undefined {
  try {
    const n = typeof client._getQueue === "function" ? client._getQueue()?.pendingCount : undefined;
    return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

async function shutdown(client: AnyClient, cluster: boolean): Promise<void> {
  const ready = cluster ? client.isOpen : client.isReady;
  if (ready) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      Promise.resolve(client.close()).then(() => true, () => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 1000))),
    ]);
    clearTimeout(timer);
    if (closed) return;
  }
  try {
    if (client.isOpen) client.destroy();
  } catch {
    // already closed
  }
}

/** Map any driver failure to a `BackendError` (re-exported for the backend). */
export { toBackendError };
