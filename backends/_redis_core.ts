/**
 * The core of {@linkcode RedisBackend}: the connection state every capability shares (driver,
 * key prefix, deadlines, in-flight count, closing) and the value operations on it (get, set,
 * delete, exists; chunked values through `_redis_chunked_io.ts`, the plain write's op in
 * `_redis_set_op.ts`). The capability files (`_redis_keys.ts`, `_redis_locks.ts`,
 * `_redis_tags.ts`, `_redis_bus.ts`, `_redis_streams.ts`) hold a `RedisCore` and go through
 * {@linkcode RedisCore.run}, so every command gets the same deadline, error mapping and
 * close-awareness whichever capability sends it (a batched `get`, the hot path, is one object that
 * gives the same guarantees: `_redis_get_op.ts`; so is `run` itself with a deadline, no signal and a
 * ready connection, and the plain write and the lease's attempt, two per locked miss:
 * `_redis_run_op.ts`). Its members are public for those files only: the class is internal, and
 * `RedisBackend` exposes none of them.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import type { OperationOptions } from "./types.ts";
import { fromBuffer, RedisDriver, toBuffer } from "./_redis_driver.ts";
import { isClientClosed, TLS_HINT, toBackendError } from "./_redis_errors.ts";
import { closedError } from "./_common.ts";
import { type Deadline, DeadlineQueue } from "./_redis_deadlines.ts";
import {
  chunkKey,
  decodeManifest,
  DEL_SCRIPT,
  hasMagic,
  isLeaseMarker,
  LEASE_PREFIX,
  MAGIC_STR,
  RETIRE_CHUNKS_SCRIPT,
  SET_SCRIPT,
} from "./_redis_chunks.ts";
import type { Resolved } from "./_redis_options.ts";
import type { BatchKind } from "./_redis_batch.ts";
import { batchedGet, getBatch, type GetEntry } from "./_redis_get_op.ts";
import { type SettleHook, settleHookOf } from "./_settle_hook.ts";
import { runOp } from "./_redis_run_op.ts";
import { PlainSetOp, setPlain, type Unlocker } from "./_redis_set_op.ts";
import { readChunked, writeChunked } from "./_redis_chunked_io.ts";

export type { Unlocker } from "./_redis_set_op.ts";

/** TTL seconds as milliseconds (0 = no expiry); a `permanent` BackendError when invalid. */
export function ttlToMs(ttlSeconds: number | null | undefined, operation: string): number {
  if (ttlSeconds === null || ttlSeconds === undefined || ttlSeconds === 0) return 0;
  if (typeof ttlSeconds !== "number" || !Number.isFinite(ttlSeconds) || ttlSeconds < 0) {
    throw new BackendError(
      `Invalid TTL ${String(ttlSeconds)} for ${operation}: expected a number of seconds >= 0 ` +
        `(0 or null = no expiry).`,
      { kind: "permanent", backend: "redis", operation },
    );
  }
  return Math.max(1, Math.round(ttlSeconds * 1000));
}

export function checkKey(key: unknown, operation: string): asserts key is string {
  if (typeof key !== "string") {
    throw new BackendError(`Invalid key for ${operation}: expected a string, got ${typeof key}.`, {
      kind: "permanent",
      backend: "redis",
      operation,
    });
  }
}

export function checkTags(tags: unknown, operation: string): asserts tags is readonly string[] {
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
    throw new BackendError(`Invalid tags for ${operation}: expected an array of strings.`, {
      kind: "permanent",
      backend: "redis",
      operation,
    });
  }
}

/** Operation state shared with long operations so they can stop after their deadline. */
export interface OpState {
  expired: boolean;
}

/** Connection state and value operations shared by the Redis capabilities. */
export class RedisCore {
  /** Prefix of every key. */
  readonly keyPrefix: string;
  /** Values larger than this many bytes are chunked. */
  readonly chunkSizeBytes: number;
  /** Whether the driver talks to a Redis Cluster. */
  readonly isCluster: boolean;
  /** The driver (connections, scripts, pub/sub). */
  readonly driver: RedisDriver;
  /** The endpoint as shown in messages and health details (never the password). */
  readonly endpoint: string;
  /** Deadline of an operation whose call gives none (0 = none). */
  readonly opTimeoutMs: number;
  /** How long a replaced or deleted chunked value stays readable. */
  readonly graceMs: number;
  /** Set once `close()` started: new operations fail as `permanent`. */
  closing: Promise<void> | undefined;
  readonly #connectTimeoutMs: number;
  /** Whether the connections use TLS (failures while connecting then hint at `rediss://`). */
  readonly #tls: boolean;
  readonly #queues = new Map<number, DeadlineQueue>();
  readonly #getBatch: BatchKind<GetEntry>;
  #inFlight = 0;
  #drained: (() => void) | undefined;

  /** Build the driver from validated options; nothing connects yet. */
  constructor(r: Resolved) {
    this.keyPrefix = r.keyPrefix;
    this.chunkSizeBytes = r.chunkSize;
    this.endpoint = r.endpoint;
    this.opTimeoutMs = r.opTimeoutMs;
    this.#connectTimeoutMs = r.driver.connectTimeoutMs;
    this.#tls = r.driver.tls !== false;
    this.graceMs = r.graceMs;
    this.driver = new RedisDriver(r.driver);
    this.isCluster = this.driver.cluster;
    this.#getBatch = getBatch(this.driver);
  }

  // ---------------------------------------------------------------- plumbing

  full(key: string): string {
    return this.keyPrefix + key;
  }

  closedError(operation: string): BackendError {
    return closedError("redis", operation);
  }

  /** The shared deadline queue of a timeout value. */
  #deadlines(ms: number): DeadlineQueue {
    let q = this.#queues.get(ms);
    if (!q) {
      if (this.#queues.size >= 64) {
        // Many ad-hoc timeout values (adaptive timeouts): drop the queues with nothing pending.
        for (const [ms, idle] of this.#queues) {
          if (idle.empty) {
            idle.dispose();
            this.#queues.delete(ms);
          }
        }
      }
      q = new DeadlineQueue(ms);
      this.#queues.set(ms, q);
    }
    return q;
  }

  /**
   * The deadline queue of an operation that can run as one op (`_redis_run_op.ts`): open, a
   * deadline, no caller's signal, connected; else `undefined` (it goes through
   * {@linkcode RedisCore.run}'s general path).
   */
  opQueue(opts: OperationOptions | undefined): DeadlineQueue | undefined {
    const ms = opts?.timeoutMs ?? this.opTimeoutMs;
    return ms > 0 && opts?.signal === undefined && this.closing === undefined &&
        this.driver.isReady
      ? this.#deadlines(ms)
      : undefined;
  }

  /**
   * Any failure as a `BackendError` (with a TLS hint on a failed TLS handshake). A client closed
   * under an operation is `closed` only once this backend's `close()` ran: node-redis also closes
   * clients by itself (a cluster node's, on a topology change), and then it is `transient`.
   */
  error(e: unknown, operation: string): BackendError {
    if (this.closing !== undefined && isClientClosed(e)) return this.closedError(operation);
    return toBackendError(e, operation, "redis", this.#tls);
  }

  #aborted(operation: string, signal: AbortSignal | undefined): BackendError {
    return new BackendError(`Redis ${operation} aborted.`, {
      kind: "timeout",
      backend: "redis",
      operation,
      cause: signal?.reason,
    });
  }

  /**
   * The first connection (loading node-redis, TCP/TLS, handshake), bounded by `connectTimeoutMs`
   * and the caller's signal: not by the operation's deadline, which starts once connected. An
   * adaptive timeout (1 s cold) would otherwise fail the first operation of a process whenever the
   * driver import and the connection take longer than that.
   */
  #firstConnect(operation: string, signal: AbortSignal | undefined): Promise<void> {
    const ms = this.#connectTimeoutMs;
    const queue = this.#deadlines(ms);
    return new Promise<void>((resolve, reject) => {
      let done = false;
      const finish = (err?: BackendError) => {
        if (done) return;
        done = true;
        queue.remove(deadline);
        signal?.removeEventListener("abort", onAbort);
        if (err === undefined) resolve();
        else reject(err);
      };
      const onAbort = () => finish(this.#aborted(operation, signal));
      const deadline = queue.add(() =>
        finish(
          new BackendError(
            `Redis ${operation} failed: connecting to ${this.endpoint} timed out after ${ms} ms ` +
              `(connectTimeoutMs).${this.#tls ? TLS_HINT : ""}`,
            { kind: "timeout", backend: "redis", operation },
          ),
        )
      );
      signal?.addEventListener("abort", onAbort, { once: true });
      this.driver.ready().then(() => finish(), (e) => finish(this.error(e, operation)));
    });
  }

  /**
   * Run `fn` (connected) under the operation's deadline; every failure becomes a BackendError.
   * `hook`: the guard's settle hook (`_settle_hook.ts`), taken when the operation runs as one
   * `RunOp` (`_redis_run_op.ts`: a deadline, no signal, connected): pass it only where the promise
   * returned is the caller's outcome (no work that could change it is chained after).
   */
  run<T>(
    operation: string,
    opts: OperationOptions | undefined,
    fn: (state: OpState) => Promise<T>,
    hook?: SettleHook,
  ): Promise<T> {
    if (this.closing) return Promise.reject(this.closedError(operation));
    const timeoutMs = opts?.timeoutMs ?? this.opTimeoutMs;
    const signal = opts?.signal;
    if (timeoutMs > 0 && signal === undefined && this.driver.isReady) {
      // The common case: one object is the deadline, the state and the settlement.
      return runOp(
        this,
        operation,
        this.#deadlines(timeoutMs),
        opts?.startedAt,
        hook?.hooked === false ? hook : undefined,
        fn,
      );
    }
    if (signal?.aborted) {
      return Promise.reject(
        new BackendError(`Redis ${operation} aborted before it started.`, {
          kind: "timeout",
          backend: "redis",
          operation,
          cause: signal.reason,
        }),
      );
    }
    if (!this.driver.isReady && !this.driver.connectedOnce) {
      // Connecting has its own bound; the operation's deadline counts from the connection.
      const { startedAt: _, ...rest } = opts ?? {};
      return this.track(
        this.#firstConnect(operation, signal).then(() => this.run(operation, rest, fn)),
      );
    }
    const state: OpState = { expired: false };
    let p: Promise<T>;
    try {
      // A command that waited for the connection past its deadline is not sent late: its caller
      // has its error, and a write abandoned during an outage must not land after it (over a
      // newer value, or after an invalidation retried on reconnection).
      p = this.driver.isReady ? fn(state) : this.driver.ready().then(() => {
        if (state.expired) throw new Error("deadline passed while waiting for the connection");
        return fn(state);
      });
    } catch (e) {
      p = Promise.reject(e);
    }
    if (!(timeoutMs > 0) && !signal) {
      return this.track(p.then(undefined, (e) => {
        throw this.error(e, operation);
      }));
    }
    // Counted in flight as `track` does, settled here rather than by one more `then` on `out`.
    this.started();
    return new Promise<T>((resolve, reject) => {
      let done = false;
      let deadline: Deadline | undefined;
      let queue: DeadlineQueue | undefined;
      const fail = (err: BackendError) => {
        if (done) return;
        done = true;
        state.expired = true;
        if (deadline) queue!.remove(deadline);
        signal?.removeEventListener("abort", onAbort);
        this.settled();
        reject(err);
      };
      const onAbort = () => fail(this.#aborted(operation, signal));
      if (timeoutMs > 0) {
        queue = this.#deadlines(timeoutMs);
        deadline = queue.add(() => fail(this.timeoutError(operation, timeoutMs)), opts?.startedAt);
      }
      signal?.addEventListener("abort", onAbort, { once: true });
      p.then((v) => {
        if (done) return;
        done = true;
        if (deadline) queue!.remove(deadline);
        signal?.removeEventListener("abort", onAbort);
        this.settled();
        resolve(v);
      }, (e) => fail(this.error(e, operation)));
    });
  }

  /**
   * Count `p` as in flight until it settles, so `close()` lets operations already started finish
   * (e.g. the lock release or invalidation event a caller fired without awaiting just before).
   */
  track<T>(p: Promise<T>): Promise<T> {
    this.started();
    p.then(this.settled, this.settled);
    return p;
  }

  /** Operations this backend started and that have not settled yet (answered, failed or timed out). */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** An operation counted in flight by {@linkcode track} or {@linkcode started} settled. */
  readonly settled = (): void => {
    if (--this.#inFlight !== 0) return;
    // Idle: the connection no longer keeps the process alive (see RedisDriver.hold).
    this.driver.hold(false);
    this.#drained?.();
  };

  // ---------------------------------------------------------------- values

  /** The bytes stored under `key`, or `null`. A chunked value is read whole (or is a miss). */
  get(key: string, opts?: OperationOptions): Promise<Uint8Array | null> {
    checkKey(key, "get");
    const full = this.full(key);
    const batch = this.driver.batch;
    const ms = opts?.timeoutMs ?? this.opTimeoutMs;
    if (
      batch !== undefined && ms > 0 && opts?.signal === undefined && this.closing === undefined &&
      this.driver.isReady
    ) {
      const hook = settleHookOf(opts);
      if (hook !== undefined) hook.hooked = true;
      return batchedGet(
        this,
        full,
        this.#deadlines(ms),
        batch,
        this.#getBatch,
        opts?.startedAt,
        hook,
      );
    }
    return this.run(
      "get",
      opts,
      () => this.#getRaw(full).then(this.#whole(full)),
      settleHookOf(opts),
    );
  }

  /** The timeout failure of `operation` after `ms` (see {@linkcode GetOp}). */
  timeoutError(operation: string, ms: number): BackendError {
    return new BackendError(
      `Redis ${operation} timed out after ${ms} ms (${this.endpoint}).`,
      { kind: "timeout", backend: "redis", operation },
    );
  }

  /** An operation not passed to {@linkcode track} started (see {@linkcode settled}). */
  started(): void {
    if (this.#inFlight++ === 0) this.driver.hold(true);
  }

  /** The reply of `GET full`, sent in the connection's batch when there is one. */
  #getRaw(full: string): Promise<Uint8Array | null> {
    const batch = this.driver.batch;
    if (batch === undefined) {
      return this.driver.send(full, true, ["GET", full], true) as Promise<Uint8Array | null>;
    }
    return new Promise((resolve, reject) => {
      batch.add(this.#getBatch, { full, resolve, reject } as GetEntry);
    });
  }

  /** The value a `GET full` reply stands for (a chunked one read whole). */
  #whole(full: string): (v: Uint8Array | null) => Uint8Array | null | Promise<Uint8Array | null> {
    return (v) => {
      if (v === null || v === undefined) return null;
      const bytes = fromBuffer(v);
      return hasMagic(bytes) ? this.readChunked(full, bytes, 1) : bytes;
    };
  }

  /** See `readChunked` (`_redis_chunked_io.ts`): the whole value a manifest describes. */
  readChunked(full: string, manifest: Uint8Array, retries: number): Promise<Uint8Array | null> {
    return readChunked(this, full, manifest, retries);
  }

  /**
   * Store `value` under `key` (chunked above `chunkSizeBytes`); `ttlSeconds` 0/null = no expiry.
   * `hook`: the guard's settle hook, from a caller that returns this promise as its outcome. With
   * `unlocker`, the write takes the place of the stampede lease of `token` on `key`, surely still
   * in Redis until `aliveUntil`: a failed write releases it before it fails (`_redis_lease.ts`),
   * and one that finds the lease gone withdraws itself (`leasedReply` in `_redis_set_op.ts`).
   */
  set(
    key: string,
    value: Uint8Array,
    ttlSeconds?: number | null,
    opts?: OperationOptions,
    hook?: SettleHook,
    unlocker?: Unlocker,
    token?: string,
    aliveUntil = 0,
  ): Promise<void> {
    const op = this.#plainSetOp(key, value, ttlSeconds, opts, hook);
    if (op !== undefined) {
      // The common case: one op is the deadline, the settlement and the reply's handling (and
      // the release of the lease on failure, before the hook is called: as the guard's `then`
      // would see it).
      if (unlocker !== undefined) op.underLease(unlocker, key, token!, aliveUntil);
      op.write();
      return op.promise as Promise<void>;
    }
    if (unlocker === undefined) return this.#set(key, value, ttlSeconds, opts, hook);
    // The marker goes before the failure is known (a waiter must not wait out the lease).
    return this.#set(key, value, ttlSeconds, opts, undefined, aliveUntil).then(
      undefined,
      (e) =>
        unlocker.unlock(key, token!).then(() => {
          throw e;
        }, () => {
          throw e;
        }),
    );
  }

  /**
   * A plain write (`SET … GET`) as one op, started, or `undefined` when it cannot be one: no
   * deadline, a caller's signal, not connected or closing, a value to chunk, or invalid arguments
   * (then {@linkcode RedisCore.set}'s general path reports them).
   */
  #plainSetOp(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    opts: OperationOptions | undefined,
    hook: SettleHook | undefined,
  ): PlainSetOp | undefined {
    if (
      typeof key !== "string" || !(value instanceof Uint8Array) ||
      value.length > this.chunkSizeBytes || hasMagic(value)
    ) return undefined;
    const queue = this.opQueue(opts);
    if (queue === undefined) return undefined;
    let ttlMs: number;
    try {
      ttlMs = ttlToMs(ttlSeconds, "set");
    } catch {
      return undefined;
    }
    const op = new PlainSetOp(
      this,
      queue,
      hook?.hooked === false ? hook : undefined,
      this.full(key),
      value,
      ttlMs,
    );
    op.start(opts?.startedAt);
    return op;
  }

  /**
   * {@linkcode RedisCore.set} through {@linkcode RedisCore.run}; with `leaseUntil`, the write
   * takes the place of a stampede lease (`setPlain` in `_redis_set_op.ts`).
   */
  #set(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    opts: OperationOptions | undefined,
    hook?: SettleHook,
    leaseUntil?: number,
  ): Promise<void> {
    try {
      checkKey(key, "set");
      if (!(value instanceof Uint8Array)) {
        throw new BackendError(`Invalid value for set: expected a Uint8Array.`, {
          kind: "permanent",
          backend: "redis",
          operation: "set",
        });
      }
      const ttlMs = ttlToMs(ttlSeconds, "set");
      const full = this.full(key);
      if (value.length <= this.chunkSizeBytes && !hasMagic(value)) {
        return this.run(
          "set",
          opts,
          () => setPlain(this, full, value, ttlMs, leaseUntil),
          hook,
        );
      }
      const size = this.chunkSizeBytes;
      return this.run("set", opts, (state) => {
        const chunks = Array.from(
          { length: Math.max(1, Math.ceil(value.length / size)) },
          (_, i) => value.subarray(i * size, (i + 1) * size),
        );
        return writeChunked(this, full, chunks, ttlMs, state, 8);
      }, hook);
    } catch (e) {
      return Promise.reject(toBackendError(e, "set"));
    }
  }

  /**
   * `SET … GET` failed with `e`: a key holding another type (`WRONGTYPE`) is overwritten by the
   * Lua path, as a plain `SET` would; any other failure is thrown.
   */
  setOverOtherType(e: unknown, full: string, value: Uint8Array, ttlMs: number): Promise<void> {
    if (!(e instanceof Error && e.message.startsWith("WRONGTYPE"))) throw e;
    return this.driver.eval(SET_SCRIPT, [full], [
      MAGIC_STR,
      toBuffer(value),
      String(ttlMs),
      String(this.graceMs),
    ]).then(() => {});
  }

  /**
   * After a write replaced `old` under `full`: retire its chunks if it was a manifest. Not an async
   * function: a miss under the lease in the key replaces its own marker on every write, and that
   * needs no promise (`undefined` when there is nothing to retire).
   */
  retireReplaced(full: string, old: Uint8Array): Promise<void> | undefined {
    if (!hasMagic(old)) return undefined;
    const m = decodeManifest(fromBuffer(old), full);
    if (!m) return undefined;
    const keys = Array.from({ length: m.n }, (_, i) => chunkKey(m.b, m.g, i));
    return this.driver.eval(RETIRE_CHUNKS_SCRIPT, keys, [String(this.graceMs)]).then(() => {});
  }

  /** Remove `key` (a chunked value's chunks follow after the grace period). Resolves whether it existed. */
  delete(key: string, opts?: OperationOptions): Promise<boolean> {
    checkKey(key, "delete");
    const full = this.full(key);
    return this.run("delete", opts, async () => {
      const n = await this.driver.eval(DEL_SCRIPT, [full], [MAGIC_STR, String(this.graceMs)]);
      return Number(n) > 0;
    });
  }

  /**
   * Whether `key` exists: holds a value, not a lease marker (`_redis_lease.ts`: a value being
   * computed is absent). `EXISTS` and the key's first bytes, in one round trip.
   */
  exists(key: string, opts?: OperationOptions): Promise<boolean> {
    checkKey(key, "exists");
    const full = this.full(key);
    return this.run("exists", opts, async () => {
      const [n, head] = await Promise.all([
        this.driver.send(full, true, ["EXISTS", full]),
        this.driver.send(full, true, ["GETRANGE", full, "0", String(LEASE_PREFIX.length - 1)], true)
          .catch(() => null), // another type: not a marker
      ]);
      if (Number(n) === 0) return false;
      return !(head instanceof Uint8Array && isLeaseMarker(head));
    });
  }

  /** Let operations already started finish (each has its deadline; 1 s at most). */
  async drain(): Promise<void> {
    if (this.#inFlight === 0) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await new Promise<void>((resolve) => {
      this.#drained = resolve;
      timer = setTimeout(resolve, 1000);
    });
    clearTimeout(timer);
    this.#drained = undefined;
  }

  /** Close the connections and the deadline timers (after {@linkcode RedisCore.drain}). */
  async shutdown(): Promise<void> {
    await this.driver.close();
    for (const q of this.#queues.values()) q.dispose();
    this.#queues.clear();
  }
}
