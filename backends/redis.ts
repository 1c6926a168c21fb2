/**
 * `RedisBackend`: the L2 backend on Redis or Redis Cluster, with every optional capability of the
 * backend contract (TTL, locks, prefix deletion, tags, cross-instance invalidation, per-operation
 * timeouts) and chunked, streamable large values.
 *
 * ## Client
 * Built on [node-redis](https://github.com/redis/node-redis) (`redis` v6, the Redis project's own
 * client): it runs unchanged on Deno, Bun and Node through `node:net`/`node:tls`, speaks RESP3,
 * multiplexes every concurrent command over one pipelined connection (no pool needed: Redis is
 * single-threaded per connection and pipelining beats a pool for small values), and knows Redis
 * Cluster (slot routing, `MOVED`/`ASK`, topology refresh). Measured on this machine under Deno
 * against ioredis 5 on the same GET of 6 bytes: 100 concurrent callers 6–7 µs/op (node-redis) vs
 * 10–15 µs/op (ioredis); one caller at a time ~130 µs vs ~100 µs round trip (loopback, shared host).
 * Concurrency is what a cache sees, so node-redis. It needs `Buffer` arguments; the conversion is
 * zero-copy and confined to an internal module, so callers only ever see `Uint8Array`. The
 * backend's own overhead over a raw node-redis `GET` is small (`bench/redis_bench.ts`: 100
 * concurrent 1 KiB gets 1.1–1.4× the raw client, one caller at a time 1.0–1.1×): deadlines share
 * one timer per timeout value instead of arming a timer per command, and node-redis's own
 * per-command timeout (an `AbortSignal.timeout(5000)` per command by default since v5, ~2 µs each
 * under Deno) is turned off, since these deadlines replace it. node-redis is imported
 * dynamically when a backend first connects, so importing the package (which re-exports this
 * module) does not load it: `import "@cachekit/core"` took ~240 ms under Deno with it loaded
 * eagerly, ~100 ms without.
 *
 * ## Keys
 * The value of key `k` is stored under `keyPrefix + k`, byte for byte (a plain Redis string, so a
 * value written by another client under the same key — e.g. Python's `redis` — reads back
 * identical, and the other way round). Internal keys, all under the prefix or hashing with their
 * value's key: `<keyPrefix>cachekit:tag:<tag>` (tag sets), `{<keyPrefix><k>}:__ck:<gen>:<i>`
 * (chunks of large values), and lock keys are whatever name the caller passes to `acquire`
 * (prefixed).
 *
 * ## Large values
 * Values larger than `chunkSizeBytes` (default 50 MiB, cachekit-py's `MAX_CHUNK_SIZE_MB`) are split
 * into chunks stored under a fresh random generation id, then a Lua script atomically checks every
 * chunk is present, swaps a small manifest in under the value's key, gives the chunks the value's
 * TTL and retires the previous generation after a grace period (`chunkGraceMs`, default 10 s).
 * Chunks of a generation never change, so a reader gets the whole value or a miss, never a mix of
 * two writes. The chunk keys carry a hash tag of the value's key, so on a cluster they live in the
 * value's slot. {@linkcode RedisBackend.getStream} and {@linkcode RedisBackend.setStream} move big
 * values one chunk at a time (Web Streams) instead of copying them whole; a stream that outlives
 * the grace period of a value replaced under it errors rather than mixing generations.
 *
 * ## Invalidation bus
 * Channel `cachekit:invalidation` (option `invalidationChannel`), ordinary `PUBLISH`/`SUBSCRIBE`
 * (on a cluster, published to every node). Each message is UTF-8 JSON:
 * `{"v":1,"level":"key"|"prefix"|"tags"|"all","targets":[string…],"sender":"<instance id>"}`,
 * plus `"reason":"write"|"set"|"delete"` on `key` events when the publisher gives one —
 * `targets` holds keys, prefixes or tags (logical keys, without `keyPrefix`; empty for `all`; a
 * prefix `t:*:{rest}` stands for `{rest}` under every tenant segment `t:{segment}:`). A
 * subscriber ignores messages from its own `instanceId` and anything that is not a valid event.
 * The subscriber uses its own connection, made on the first `subscribe`, and resubscribes after
 * reconnecting; delivery is best effort (events published while it is disconnected are lost).
 * Since the lost events cannot be known, a subscriber whose connection comes back is told so
 * (`subscribe`'s `onGap`: the engine clears the L1 of every function on the bus), and
 * `subscriptionUp` is `false` while it is down (health reports `degraded`). Not on a cluster,
 * whose client hides its subscriber connections.
 *
 * ## Locks
 * `SET <prefix><name> <random token> NX PX <leaseMs>`; release is a Lua compare-and-delete, so only
 * the owner can release, and a crashed owner's lock frees itself when the lease ends. A waiter
 * retries with jittered exponential backoff (2 ms doubling to 50 ms) until `waitMs`.
 *
 * ## Process lifetime
 * A script that used the backend ends by itself at its last line, without `close()`: the connection
 * keeps the process alive only while operations are in flight (each bounded by its deadline, so a
 * write to a hung server is abandoned at `operationTimeoutMs`), the subscriber connection and the
 * deadline timers never do, and an idle connection that lost the server retries from timers that
 * do not either. (Not on a cluster: node-redis's cluster client cannot be unref'd.) `close()` still
 * lets operations already started finish first, for up to 1 s.
 *
 * ## Errors and timeouts
 * Writes of plain values are `SET … [PX ttl] GET`; when the replaced value was a chunk manifest, its
 * chunks are retired. Deletes, TTL changes and chunk commits are Lua scripts.
 *
 * Every failure is a `BackendError`: connection refused/reset, `LOADING`, `BUSY`, `TRYAGAIN`,
 * `CLUSTERDOWN` → `transient`; a missed deadline → `timeout`; `WRONGPASS`/`NOAUTH`/`NOPERM` →
 * `authentication`; `OOM`, `WRONGTYPE`, other error replies and invalid arguments → `permanent`;
 * an operation after `close()` → `closed`.
 * Each operation has a deadline (`operationTimeoutMs`, default 5000; per call `timeoutMs` or an
 * `AbortSignal`). A command already sent cannot be taken back: a write that timed out may still have
 * been applied (a chunked write checks its deadline before committing). While the server is known to
 * be unreachable, operations fail fast instead of queueing.
 *
 * @example Round trip against the local Redis
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { RedisBackend } from "@cachekit/core/backends";
 *
 * await using backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: "demo:" });
 * await backend.set("greeting", new TextEncoder().encode("hello"), 60);
 * assert.equal(new TextDecoder().decode((await backend.get("greeting"))!), "hello");
 * ```
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type {
  Backend,
  BackendCapabilities,
  BackendHealth,
  InvalidationEvent,
  LockHandle,
  LockOptions,
  OperationOptions,
} from "./types.ts";
import { BackendError } from "./types.ts";
import type { RedisTlsSettings } from "./_redis_driver.ts";
import { parseRedisUrl, type RedisConnectionInfo, redisUrlFromEnvironment } from "./redis_url.ts";
import { isLoopback, type RedisBackendOptions, resolveOptions } from "./_redis_options.ts";
import { RedisCore } from "./_redis_core.ts";
import { settleHookOf } from "./_settle_hook.ts";
import { RedisPrefix, RedisTtl } from "./_redis_keys.ts";
import { RedisLocks } from "./_redis_locks.ts";
import { RedisFetchLock } from "./_redis_fetch_lock.ts";
import { RedisTags } from "./_redis_tags.ts";
import { RedisBus } from "./_redis_bus.ts";
import { getStream, setStream } from "./_redis_streams.ts";

export { parseRedisUrl };
export type { RedisBackendOptions, RedisConnectionInfo, RedisTlsSettings };
export { DEFAULT_CHUNK_SIZE_BYTES, DEFAULT_INVALIDATION_CHANNEL } from "./_redis_options.ts";

/**
 * Redis (or Redis Cluster) L2 backend. Construction never connects: the first operation does, and
 * reconnects happen by themselves. Close it with `await backend.close()` or `await using`.
 *
 * @example L1 + Redis through the engine (see the module doc for the rest)
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { RedisBackend } from "@cachekit/core/backends";
 *
 * const backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: "app:" });
 * await backend.set("k", new Uint8Array([1, 2, 3]), 30);
 * assert.deepEqual(await backend.get("k"), new Uint8Array([1, 2, 3]));
 * const ttl = await backend.capabilities.ttl?.ttl("k");
 * assert.ok(ttl !== undefined && ttl !== null && ttl > 25 && ttl <= 30);
 * await backend.close();
 * ```
 */
export class RedisBackend implements Backend, AsyncDisposable {
  /** `"redis"`. */
  readonly type: string = "redis";
  /** TTL, locks, timeouts, prefix deletion, tags and the invalidation bus. */
  readonly capabilities: BackendCapabilities;
  /** This instance's id: the `sender` of the events it publishes. */
  readonly instanceId: string;
  /** Prefix of every key. */
  readonly keyPrefix: string;
  /** Values larger than this many bytes are chunked. */
  readonly chunkSizeBytes: number;
  /** The invalidation bus channel. */
  readonly invalidationChannel: string;
  /** Whether this backend talks to a Redis Cluster. */
  readonly isCluster: boolean;
  /**
   * Whether the server (every cluster root node) is on a loopback address (`127.0.0.0/8`, `::1`,
   * `localhost`): a guard's cold adaptive timeout is then its `min` instead of `initial`.
   */
  readonly local: boolean;

  readonly #core: RedisCore;
  readonly #ttl: RedisTtl;
  readonly #locks: RedisLocks;
  readonly #prefix: RedisPrefix;
  readonly #tags: RedisTags;
  readonly #bus: RedisBus;

  /**
   * Configure a backend. Nothing connects until the first operation.
   *
   * @param options Connection and behaviour; see {@linkcode RedisBackendOptions}. Invalid options
   * throw `CacheConfigError` here (never on first use).
   */
  constructor(options: RedisBackendOptions = {}) {
    const r = resolveOptions(options);
    const core = new RedisCore(r);
    this.#core = core;
    this.keyPrefix = core.keyPrefix;
    this.chunkSizeBytes = core.chunkSizeBytes;
    this.invalidationChannel = r.channel;
    this.isCluster = core.isCluster;
    this.local = (r.driver.clusterNodes ?? [r.driver]).every((n) => isLoopback(n.host));
    this.#ttl = new RedisTtl(core);
    this.#locks = new RedisLocks(core);
    this.#prefix = new RedisPrefix(core);
    this.#tags = new RedisTags(core);
    this.#bus = new RedisBus(core, r.channel);
    this.instanceId = this.#bus.instanceId;
    this.capabilities = {
      ttl: this.#ttl,
      lock: this.#locks,
      fetchLock: new RedisFetchLock(core, this.#tags),
      timeouts: true,
      prefix: this.#prefix,
      tags: this.#tags,
      invalidation: this.#bus,
    };
  }

  /**
   * A backend configured from `CACHEKIT_REDIS_URL` (else `REDIS_URL`), with `options` for the
   * rest. Throws `CacheConfigError` when neither variable is set or the URL is invalid.
   *
   * @example
   * ```ts ignore
   * import { RedisBackend } from "@cachekit/core/backends";
   * await using backend = RedisBackend.fromEnv({ keyPrefix: "app:" });
   * ```
   */
  static fromEnv(options: Omit<RedisBackendOptions, "url"> = {}): RedisBackend {
    const url = redisUrlFromEnvironment();
    if (url === null) {
      throw new CacheConfigError(
        "CACHEKIT_REDIS_URL",
        undefined,
        "a redis:// or rediss:// URL in CACHEKIT_REDIS_URL or REDIS_URL",
      );
    }
    return new RedisBackend({ ...options, url });
  }

  // ---------------------------------------------------------------- Backend (the hot path: direct)

  /** The bytes stored under `key`, or `null`. A chunked value is read whole (or is a miss). */
  get(key: string, opts?: OperationOptions): Promise<Uint8Array | null> {
    return this.#core.get(key, opts);
  }

  /** Store `value` under `key` (chunked above `chunkSizeBytes`); `ttlSeconds` 0/null = no expiry. */
  set(
    key: string,
    value: Uint8Array,
    ttlSeconds?: number | null,
    opts?: OperationOptions,
  ): Promise<void> {
    return this.#core.set(key, value, ttlSeconds, opts, settleHookOf(opts));
  }

  /** Remove `key` (a chunked value's chunks follow after the grace period). Resolves whether it existed. */
  delete(key: string, opts?: OperationOptions): Promise<boolean> {
    return this.#core.delete(key, opts);
  }

  /** Whether `key` exists. */
  exists(key: string, opts?: OperationOptions): Promise<boolean> {
    return this.#core.exists(key, opts);
  }

  /**
   * Connect now and check the server answers, instead of on the first operation: the fail-fast
   * start-up check. Rejects with a {@linkcode BackendError} whose `kind` says what is wrong
   * (`authentication` for a wrong password or ACL user, `transient` for an unreachable server,
   * `timeout`); the cache itself never needs it and keeps answering from the function either way.
   *
   * @example
   * ```ts ignore
   * import { BackendError, RedisBackend } from "@cachekit/core";
   * const backend = new RedisBackend({ url: "redis://:wrong@127.0.0.1:6379" });
   * try {
   *   await backend.connect();
   * } catch (e) {
   *   if (e instanceof BackendError && e.kind === "authentication") console.error(e.message);
   * }
   * ```
   */
  async connect(): Promise<void> {
    // Connecting is bounded by connectTimeoutMs, then the PING by operationTimeoutMs.
    const core = this.#core;
    const reply = await core.run(
      "connect",
      undefined,
      () => core.driver.send(undefined, true, ["PING"]),
    );
    if (reply !== "PONG") {
      throw new BackendError(`Redis at ${core.endpoint} answered PING with ${String(reply)}.`, {
        kind: "unknown",
        backend: "redis",
        operation: "connect",
      });
    }
  }

  /** `PING` the server; never throws. */
  async healthCheck(): Promise<BackendHealth> {
    const core = this.#core;
    const t0 = performance.now();
    const details: Record<string, unknown> = {
      endpoint: core.endpoint,
      cluster: this.isCluster,
      keyPrefix: this.keyPrefix,
      chunkSizeBytes: this.chunkSizeBytes,
      instanceId: this.instanceId,
    };
    try {
      const reply = await core.run(
        "healthCheck",
        { timeoutMs: Math.min(core.opTimeoutMs || 2000, 2000) },
        () => core.driver.send(undefined, true, ["PING"]),
      );
      const latencyMs = performance.now() - t0;
      return {
        healthy: reply === "PONG",
        latencyMs,
        backendType: this.type,
        details,
        pool: { ...core.driver.poolStats(), inFlightOperations: core.inFlight },
      };
    } catch (e) {
      const err = core.error(e, "healthCheck");
      details.error = err.message;
      details.kind = err.kind;
      return {
        healthy: false,
        latencyMs: performance.now() - t0,
        backendType: this.type,
        details,
        pool: { ...core.driver.poolStats(), inFlightOperations: core.inFlight },
      };
    }
  }

  /**
   * Close every connection; idempotent. Operations already started finish first (up to 1 s), new
   * ones, and pending lock waits, reject with a `BackendError` of kind `closed`.
   */
  close(): Promise<void> {
    const core = this.#core;
    core.closing ??= (async () => {
      this.#bus.clear();
      await core.drain();
      await this.#bus.settled();
      await core.shutdown();
    })();
    return core.closing;
  }

  /** `await using backend = new RedisBackend(…)` closes it at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---------------------------------------------------------------- streams

  /**
   * Read a value as a stream of chunks, without assembling it: `null` on a miss. If the value is
   * replaced or deleted and its grace period ends while the stream is being read, the stream errors
   * with a `transient` BackendError (it never mixes two values).
   *
   * @example
   * ```ts ignore
   * import assert from "node:assert/strict";
   * import { RedisBackend } from "@cachekit/core/backends";
   *
   * await using backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: "demo:" });
   * await backend.set("big", new Uint8Array(3 << 20), 60);
   * const stream = await backend.getStream("big");
   * let length = 0;
   * if (stream) for await (const piece of stream) length += piece.length;
   * assert.equal(length, 3 << 20);
   * ```
   */
  getStream(key: string, opts?: OperationOptions): Promise<ReadableStream<Uint8Array> | null> {
    return getStream(this.#core, key, opts);
  }

  /**
   * Store a value from a stream, one chunk in memory at a time: small results are stored plain,
   * larger ones chunked and committed atomically at the end (a stream that errors stores nothing).
   * `timeoutMs`/`signal` apply to each Redis command, not to the whole stream.
   *
   * @example
   * ```ts ignore
   * const res = await fetch("https://example.com/big.bin");
   * await backend.setStream("big", res.body!, 3600);
   * ```
   */
  setStream(
    key: string,
    stream: ReadableStream<Uint8Array>,
    ttlSeconds?: number | null,
    opts?: OperationOptions,
  ): Promise<void> {
    return setStream(this.#core, key, stream, ttlSeconds, opts);
  }

  // ------------------------------------------ capabilities, also callable on the backend itself

  /** Remaining TTL in seconds: `null` when absent, `Infinity` when it never expires. */
  ttl(key: string, opts?: OperationOptions): Promise<number | null> {
    return this.#ttl.ttl(key, opts);
  }

  /** Set a new TTL (0 = no expiry) on `key` and, for a chunked value, on its chunks. */
  expire(key: string, ttlSeconds: number, opts?: OperationOptions): Promise<boolean> {
    return this.#ttl.expire(key, ttlSeconds, opts);
  }

  /**
   * Acquire the lock `name` (stored at `keyPrefix + name`) with a lease; waits up to `waitMs`,
   * retrying with jittered backoff. Resolves `null` when not acquired in time; rejects with a
   * `closed` BackendError when the backend is closed (before or during the wait), and with a
   * `timeout` one when `signal` aborts the wait.
   */
  acquire(name: string, opts: LockOptions): Promise<LockHandle | null> {
    return this.#locks.acquire(name, opts);
  }

  /**
   * Delete every key under `keyPrefix + prefix` (`""` = everything this backend owns), scanning
   * every master of a cluster. Resolves the number of values deleted. `timeoutMs` applies to each
   * round trip.
   */
  deleteByPrefix(prefix: string, opts?: OperationOptions): Promise<number> {
    return this.#prefix.deleteByPrefix(prefix, opts);
  }

  /**
   * Delete every key `keyPrefix + "t:{segment}:" + prefix…`, whatever the tenant segment (SCAN
   * `MATCH` on every master, then an exact check that the segment has no `:`). Resolves the
   * number of values deleted.
   */
  deleteByTenantPrefix(prefix: string, opts?: OperationOptions): Promise<number> {
    return this.#prefix.deleteByTenantPrefix(prefix, opts);
  }

  /** Record that `key` carries `tags`; each tag set lives at least as long as its members. */
  addTags(key: string, tags: readonly string[], ttlSeconds?: number | null): Promise<void> {
    return this.#tags.addTags(key, tags, ttlSeconds);
  }

  /**
   * Store `value` under `key` and add it to its tag sets in one Lua script (tag sets first, then
   * the value), so the value is never stored without its tags. On a cluster the tag sets live in
   * other slots than the value, and a value larger than `chunkSizeBytes` is committed in several
   * steps: there the tags are added before the value is written and again after it (an
   * `invalidateTags` that ran in between would otherwise leave the new value untagged).
   */
  setWithTags(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[],
    opts?: OperationOptions,
  ): Promise<void> {
    return this.#tags.setWithTags(key, value, ttlSeconds, tags, opts);
  }

  /** Delete every key carrying any of `tags`, and the tag sets. Resolves the keys that existed. */
  invalidateTags(tags: readonly string[]): Promise<string[]> {
    return this.#tags.invalidateTags(tags);
  }

  /** Broadcast an invalidation event to the other instances. */
  publish(event: Omit<InvalidationEvent, "sender">): Promise<void> {
    return this.#bus.publish(event);
  }

  /**
   * Receive the other instances' events (own events and malformed messages are dropped). The first
   * subscription opens the subscriber connection. Resolves an unsubscribe function. `onGap` is
   * called when the subscriber connection is back (resubscribed) after it was lost: the events
   * published meanwhile were missed.
   */
  subscribe(
    handler: (event: InvalidationEvent) => void,
    onGap?: () => void,
  ): Promise<() => Promise<void>> {
    return this.#bus.subscribe(handler, onGap);
  }

  /**
   * `false` while the subscriber connection is lost (events published now are missed; see
   * `subscribe`'s `onGap`), else `true`. Not tracked on a cluster (always `true`).
   */
  get subscriptionUp(): boolean {
    return this.#bus.subscriptionUp;
  }
}
