/**
 * The L2 backend contract.
 *
 * A backend stores opaque bytes under string keys. The engine never asks which concrete class it
 * holds: optional features are advertised in {@linkcode Backend.capabilities}, so Redis, Redis
 * Cluster, the file and memory backends, and third-party stores drop in without engine changes.
 * Every failure is a {@linkcode BackendError} with a `kind`.
 *
 * @example A minimal third-party backend
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Backend, BackendHealth } from "@cachekit/core/backends";
 *
 * const store = new Map<string, Uint8Array>();
 * const tiny: Backend = {
 *   type: "tiny",
 *   capabilities: {},
 *   get: (key) => Promise.resolve(store.get(key) ?? null),
 *   set: (key, value) => { store.set(key, value); return Promise.resolve(); },
 *   delete: (key) => Promise.resolve(store.delete(key)),
 *   exists: (key) => Promise.resolve(store.has(key)),
 *   healthCheck: (): Promise<BackendHealth> =>
 *     Promise.resolve({ healthy: true, latencyMs: 0, backendType: "tiny" }),
 * };
 * await tiny.set("k", new Uint8Array([1]));
 * assert.equal((await tiny.get("k"))?.length, 1);
 * ```
 *
 * @module
 */

export type { BackendErrorKind } from "../errors.ts";
export { BackendError } from "../errors.ts";

/** Per-call options every backend accepts; honoured when `capabilities.timeouts` is true. */
export interface OperationOptions {
  /** Abort the operation (the promise rejects with a `BackendError` of kind `timeout`). */
  signal?: AbortSignal;
  /** Deadline for this one operation, in milliseconds. */
  timeoutMs?: number;
  /**
   * When the caller started the operation, as `performance.now()` read it: `timeoutMs` counts from
   * there. For callers that read the clock anyway (a guard timing the call), so the backend need
   * not read it again; backends may ignore it.
   */
  startedAt?: number;
}

/** Result of {@linkcode Backend.healthCheck}. */
export interface BackendHealth {
  /** Whether the backend answered correctly. */
  healthy: boolean;
  /** Round-trip time of the probe, in milliseconds. */
  latencyMs: number;
  /** Backend type, e.g. `"redis"`. */
  backendType: string;
  /** Backend-specific details (directory, entry count, error message, …). */
  details?: Record<string, unknown>;
  /**
   * Connection figures read from the backend's client at the probe (e.g. Redis: `connections`,
   * `pendingCommands`, `inFlightOperations`). Absent when the backend has no connections or does
   * not know them: health reports show only what a backend measured, never an estimate.
   */
  pool?: Readonly<Record<string, number>>;
}

/** TTL inspection and refresh. */
export interface TtlCapability {
  /**
   * Remaining time to live in seconds (fractional allowed): `null` when the key does not exist,
   * `Infinity` when it never expires.
   */
  ttl(key: string, opts?: OperationOptions): Promise<number | null>;
  /** Set a new TTL on an existing key. Resolves `false` when the key does not exist. */
  expire(key: string, ttlSeconds: number, opts?: OperationOptions): Promise<boolean>;
}

/** A held distributed lock. Release it exactly once (or let `await using` do it). */
export interface LockHandle extends AsyncDisposable {
  /** The lock's key. */
  readonly key: string;
  /** Random owner token; only its holder can release the lock. */
  readonly token: string;
  /** Release if still owned. Resolves `false` when the lease had already expired or moved on. */
  release(): Promise<boolean>;
}

/** Options of {@linkcode LockCapability.acquire}. */
export interface LockOptions {
  /** Lease: the lock frees itself this many ms after acquisition if the owner dies. */
  leaseMs: number;
  /** How long to wait for a held lock before giving up (0 = try once). */
  waitMs: number;
  /** Abort waiting. */
  signal?: AbortSignal;
}

/** Distributed (cross-process) locking, used for stampede protection. */
export interface LockCapability {
  /** Acquire the lock named `key`; resolves `null` if it could not be had within `waitMs`. */
  acquire(key: string, opts: LockOptions): Promise<LockHandle | null>;
}

/** Options of one {@linkcode FetchLockCapability.fetchOrLock} attempt. */
export interface FetchLockOptions extends OperationOptions {
  /**
   * The attempt is the call's first read (no plain `get` before it): a guard counts it as a `get`
   * rather than a `lock`, so that a call counts one read.
   */
  read?: boolean;
  /**
   * Take the lock whether or not a value is stored (the caller read one that is logically stale
   * and means to replace it): the attempt then resolves `true` or `false`, never bytes.
   */
  lockOnly?: boolean;
}

/**
 * The stampede lock of a miss in one round trip per step: read (again, after a read missed) or
 * else take the key's lock, in one step ({@linkcode FetchLockCapability.fetchOrLock}: no holder can
 * store the value and release the lock in between); store the computed value and release the lock
 * in another ({@linkcode FetchLockCapability.setAndUnlock}). The lock is the key's own (the backend
 * names it; on a Redis Cluster it lives in the key's slot) and is owned by a token the caller
 * chooses, unique per call. Without this capability the engine composes the same steps from
 * `lock.acquire`, `get`, `set` and the handle's release.
 */
export interface FetchLockCapability {
  /**
   * One attempt: the bytes stored under `key` when there are any (the lock is then not touched);
   * otherwise `true` when the key's lock was free and is now held by `token` for `leaseMs`, or
   * `false` when another token holds it.
   */
  fetchOrLock(
    key: string,
    token: string,
    leaseMs: number,
    opts?: FetchLockOptions,
  ): Promise<Uint8Array | boolean>;
  /**
   * Store `value` under `key` (with its `tags`, as `setWithTags` does), then release the key's lock
   * if `token` still holds it, in one round trip where the store allows (Redis: the two commands
   * pipelined). A lock held by another token (this one's lease ran out) is left alone. Rejects
   * when the store failed; a failed release is left to the lease. `leaseUntil` (`Date.now()` ms),
   * when given: the lock was taken late enough that its lease cannot run out before then, so a
   * backend that finds its lock gone earlier knows it was deleted (an invalidation), not expired,
   * and may withdraw the value (the Redis lease in the key does).
   */
  setAndUnlock(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[] | null,
    token: string,
    opts?: OperationOptions,
    leaseUntil?: number,
  ): Promise<void>;
  /** Release the key's lock if `token` holds it; resolves whether it did. */
  unlock(key: string, token: string, opts?: OperationOptions): Promise<boolean>;
  /**
   * The same lock with its lease stored in the key itself while the value is computed (Redis: a
   * marker every read of the backend takes for absent), for keys that only this library reads
   * (not interop keys, which other implementations lock at `<key>:lock`). A lock taken over a
   * stored value (`lockOnly`) still goes to the key's separate lock.
   */
  readonly inKey?: FetchLockCapability;
}

/** Deleting many keys at once, for namespace and whole-cache clearing. */
export interface PrefixCapability {
  /** Delete every key that starts with `prefix` (`""` = everything this backend owns). Resolves the count. */
  deleteByPrefix(prefix: string, opts?: OperationOptions): Promise<number>;
  /**
   * Delete every key `t:{segment}:{prefix}…`, whatever the tenant segment (any run of characters
   * without `:`, the engine's `t:{tenant}:` key layout). Resolves the count. Lets a namespace or
   * function be cleared for every tenant, including tenants the clearing process never saw; without
   * it the engine deletes `t:{tenant}:{prefix}` for the tenants it knows only.
   */
  deleteByTenantPrefix?(prefix: string, opts?: OperationOptions): Promise<number>;
}

/**
 * Whether `key` is `t:{segment}:{prefix}…` for some tenant segment (no `:` in it): the match of
 * {@linkcode PrefixCapability.deleteByTenantPrefix}, for a backend that implements it by scanning
 * its keys (the memory, file and Redis backends use it too, and the engine for its L1).
 *
 * @param key A stored key.
 * @param prefix The prefix after the tenant segment.
 * @returns Whether `deleteByTenantPrefix(prefix)` deletes `key`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { underAnyTenant } from "@cachekit/core/backends";
 *
 * assert.equal(underAnyTenant("t:acme:ns:app:func:f", "ns:app:"), true);
 * assert.equal(underAnyTenant("ns:app:func:f", "ns:app:"), false); // no tenant segment
 * assert.equal(underAnyTenant("t:acme:ns:other:func:f", "ns:app:"), false);
 * ```
 */
export function underAnyTenant(key: string, prefix: string): boolean {
  if (!key.startsWith("t:")) return false;
  const end = key.indexOf(":", 2);
  return end > 2 && key.startsWith(prefix, end + 1);
}

/** Tag index: which keys carry which tags, for group invalidation. */
export interface TagCapability {
  /** Record that `key` carries `tags` (the index entry may expire with the key, `ttlSeconds`). */
  addTags(key: string, tags: readonly string[], ttlSeconds?: number | null): Promise<void>;
  /** Delete every key carrying any of `tags`, and the index entries. Resolves the keys deleted. */
  invalidateTags(tags: readonly string[]): Promise<string[]>;
  /**
   * Store `value` under `key` and record its `tags` as one step: `invalidateTags` can never miss a
   * stored value because the tag write failed after the value write (a crash, a closed or lost
   * connection). Redis: one Lua script; memory: one synchronous step; file: the index records are
   * written before the value. Without it the engine calls `addTags` before `set`.
   */
  setWithTags?(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[],
    opts?: OperationOptions,
  ): Promise<void>;
}

/** An L1 invalidation event sent between instances. `sender` lets an instance ignore its own. */
export interface InvalidationEvent {
  /** What to evict: one key, every key with a prefix (namespace), tagged keys, or everything. */
  level: "key" | "prefix" | "tags" | "all";
  /**
   * Keys, prefixes or tags, depending on `level` (empty for `all`). A `prefix` target
   * `t:*:{rest}` stands for `{rest}` under every tenant segment (`t:{segment}:{rest}`).
   */
  targets: string[];
  /** Instance id of the sender. */
  sender: string;
  /**
   * Why, for `key` events: `"write"` (a computed value was stored: drop stale L1 copies, but work
   * in flight elsewhere is as fresh and stays valid), `"set"` (a value was stored on purpose, by a
   * cache object's `set` or a forced refresh: drop stale L1 copies, and work that started before
   * must not store its result over it) or `"delete"` (the entry was invalidated: work that started
   * before must not store its result). Absent, or a reason this version does not know: treated as
   * `"delete"`.
   */
  reason?: "write" | "set" | "delete";
}

/**
 * Cross-instance L1 invalidation (Redis pub/sub). Best effort: events sent while disconnected are
 * lost, so a bus that can tell says when its subscription is down ({@linkcode subscriptionUp}) and
 * when it is back (`onGap`): the subscriber then drops what the missed events could have evicted.
 */
export interface InvalidationCapability {
  /** This instance's id, used as `sender`. */
  readonly instanceId: string;
  /** Broadcast an event to every other instance. */
  publish(event: Omit<InvalidationEvent, "sender">): Promise<void>;
  /**
   * Receive events from other instances (own events are filtered out). Returns an unsubscribe
   * function. `onGap`, when given, is called each time the subscription is back after it was lost
   * (events published in between were missed): the engine then clears its L1. `onDown`, when
   * given, is called when the subscription is lost (a bus that cannot lose it never calls it).
   */
  subscribe(
    handler: (event: InvalidationEvent) => void,
    onGap?: () => void,
    onDown?: () => void,
  ): Promise<() => Promise<void>>;
  /**
   * `false` while a subscription made by `subscribe` is down (its events are being lost); `true`
   * otherwise. Optional: a bus without it is taken as always up. Health reports `degraded` while
   * it is `false`.
   */
  readonly subscriptionUp?: boolean;
}

/** Optional features of a backend, discoverable without `instanceof`. */
export interface BackendCapabilities {
  /** TTL inspection/refresh (`refreshTtlOnGet`). */
  ttl?: TtlCapability;
  /** Distributed locks (cross-process stampede protection). */
  lock?: LockCapability;
  /** Read-or-lock and write-and-unlock in one round trip each (a stampede-protected miss). */
  fetchLock?: FetchLockCapability;
  /** Honours `OperationOptions` (`timeoutMs`, `signal`). */
  timeouts?: boolean;
  /** Prefix deletion (namespace clear, `cacheClear`). */
  prefix?: PrefixCapability;
  /** Tag index (group invalidation). */
  tags?: TagCapability;
  /** Cross-instance L1 invalidation bus. */
  invalidation?: InvalidationCapability;
}

/** The L2 store contract. Values are opaque bytes (protocol envelope, possibly encrypted). */
export interface Backend {
  /** Short type name used in health, metrics and errors: `"memory"`, `"file"`, `"redis"`, … */
  readonly type: string;
  /** Optional features; see {@linkcode BackendCapabilities}. */
  readonly capabilities: BackendCapabilities;
  /**
   * Whether the store is on this host (memory, file, Redis on a loopback address), so its latency
   * is small and steady: a guard's cold adaptive timeout then starts at its `min` rather than at
   * `initial` (meant for a remote store whose latency is unknown). Default: remote.
   */
  readonly local?: boolean;
  /** The bytes stored under `key`, or `null` when absent or expired. */
  get(key: string, opts?: OperationOptions): Promise<Uint8Array | null>;
  /** Store `value` under `key`; `ttlSeconds` null/undefined/0 = no expiry. */
  set(
    key: string,
    value: Uint8Array,
    ttlSeconds?: number | null,
    opts?: OperationOptions,
  ): Promise<void>;
  /** Remove `key`; resolves whether it existed. */
  delete(key: string, opts?: OperationOptions): Promise<boolean>;
  /** Whether `key` exists (and is not expired). */
  exists(key: string, opts?: OperationOptions): Promise<boolean>;
  /** Probe the backend. Never throws: failures are reported as `healthy: false`. */
  healthCheck(): Promise<BackendHealth>;
  /**
   * Release connections, timers and handles. Idempotent. Operations after it reject with a
   * `BackendError` of kind `closed` (not retried, no console notice: the application closed it).
   */
  close?(): Promise<void>;
}
