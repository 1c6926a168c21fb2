/**
 * An in-process L2 backend, for tests and single-process use.
 *
 * Bounded by entry count and bytes (LRU eviction), TTL checked on read, and every optional
 * capability of the contract: TTL inspection/refresh, locks (in-process only), prefix deletion,
 * tags and per-operation timeouts. Values are copied in and out, so callers never share the stored
 * bytes. Hand-written rather than `lru-cache`: the backend needs prefix scans, tag indexes and
 * byte accounting of its own, and its data set is small by purpose.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryBackend } from "@cachekit/core/backends";
 *
 * const backend = new MemoryBackend({ maxEntries: 1000 });
 * await backend.set("user:1", new TextEncoder().encode("Ada"), 60);
 * assert.equal(new TextDecoder().decode((await backend.get("user:1"))!), "Ada");
 * const ttl = (await backend.capabilities.ttl.ttl("user:1"))!;
 * assert.ok(ttl > 55 && ttl <= 60);
 * ```
 *
 * @module
 */

import { BackendError, CacheConfigError } from "../errors.ts";
import {
  checkLockOptions,
  checkTtl,
  closedError,
  localCapabilities,
  lockAborted,
  withDeadline,
} from "./_common.ts";
import { underAnyTenant } from "./types.ts";
import type {
  Backend,
  BackendHealth,
  LockCapability,
  LockHandle,
  LockOptions,
  OperationOptions,
  PrefixCapability,
  TagCapability,
  TtlCapability,
} from "./types.ts";

/** Options of {@linkcode MemoryBackend}. */
export interface MemoryBackendOptions {
  /** Most entries kept; the least recently used go first. Default: unbounded. */
  maxEntries?: number;
  /** Most bytes kept (values plus key lengths); LRU eviction. Default: unbounded. */
  maxBytes?: number;
  /** Largest value accepted; larger `set`s reject with a `permanent` error. Default: unbounded. */
  maxValueBytes?: number;
  /** Clock in Unix ms (tests inject a fake one). Default: `Date.now`. */
  now?: () => number;
}

/** The capabilities a {@linkcode MemoryBackend} always has. */
export interface MemoryBackendCapabilities {
  /** TTL inspection and refresh. */
  readonly ttl: TtlCapability;
  /** In-process locks with leases (they do not exclude other processes). */
  readonly lock: LockCapability;
  /** Honours `timeoutMs` and `signal` (operations are instant; an aborted signal rejects). */
  readonly timeouts: true;
  /** Prefix deletion (also under every tenant segment). */
  readonly prefix: Required<PrefixCapability>;
  /** Tag index (`setWithTags` stores a value and its tags in one step). */
  readonly tags: Required<TagCapability>;
}

interface Entry {
  value: Uint8Array;
  expiresAt: number; // 0 = never
  size: number;
}

const TYPE = "memory";
/** Tag-index pairs tolerated before the first sweep of pairs whose entry is gone. */
const TAG_SWEEP_MIN = 1024;

function fail(operation: string, message: string): BackendError {
  return new BackendError(message, { kind: "permanent", backend: TYPE, operation });
}

function checkKey(operation: string, key: unknown): asserts key is string {
  if (typeof key !== "string") throw fail(operation, `key must be a string, got ${typeof key}`);
}

function checkTags(operation: string, tags: readonly string[]): void {
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
    throw fail(operation, "tags must be an array of strings");
  }
}

function checkOptionInt(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isSafeInteger(v) && v > 0)) {
    throw new CacheConfigError(`MemoryBackend.${name}`, v, "an integer > 0");
  }
}

/**
 * An in-process {@linkcode Backend}: LRU-bounded map of bytes with TTLs, locks, prefixes and tags.
 *
 * @example Locks and tags
 * ```ts
 * import assert from "node:assert/strict";
 * import { MemoryBackend } from "@cachekit/core/backends";
 *
 * const b = new MemoryBackend();
 * await b.set("a", new Uint8Array([1]));
 * await b.capabilities.tags.addTags("a", ["users"]);
 * assert.deepEqual(await b.capabilities.tags.invalidateTags(["users"]), ["a"]);
 *
 * await using lock = await b.capabilities.lock.acquire("job", { leaseMs: 1000, waitMs: 0 });
 * assert.notEqual(lock, null);
 * ```
 */
export class MemoryBackend implements Backend {
  /** Always `"memory"`. */
  readonly type: string = TYPE;
  /** TTL, lock, prefix, tags and timeouts. */
  readonly capabilities: MemoryBackendCapabilities;
  /** Always `true`: the store is in this process (a guard's cold adaptive timeout is its `min`). */
  readonly local: boolean = true;

  readonly #entries = new Map<string, Entry>();
  readonly #tags = new Map<string, Set<string>>();
  /** (tag, key) pairs in `#tags`, and the count at which stale pairs are swept out. */
  #tagPairs = 0;
  #tagSweepAt = TAG_SWEEP_MIN;
  readonly #locks = new Map<string, { token: string; expiresAt: number }>();
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #maxValueBytes: number;
  readonly #now: () => number;
  #bytes = 0;
  #closed = false;

  /**
   * Create an empty backend.
   *
   * @param options Bounds and clock; see {@linkcode MemoryBackendOptions}.
   */
  constructor(options: MemoryBackendOptions = {}) {
    checkOptionInt("maxEntries", options.maxEntries);
    checkOptionInt("maxBytes", options.maxBytes);
    checkOptionInt("maxValueBytes", options.maxValueBytes);
    this.#maxEntries = options.maxEntries ?? Infinity;
    this.#maxBytes = options.maxBytes ?? Infinity;
    this.#maxValueBytes = options.maxValueBytes ?? Infinity;
    this.#now = options.now ?? Date.now;
    this.capabilities = localCapabilities({
      run: (operation, opts, fn) => this.#op(operation, opts, fn),
      ttl: (key) => this.#ttl(key),
      expire: (key, ttlSeconds) => this.#expire(key, ttlSeconds),
      acquire: (key, opts) => this.#acquire(key, opts),
      deleteByPrefix: (prefix) => this.#deleteByPrefix(prefix),
      deleteByTenantPrefix: (prefix) => this.#deleteByTenantPrefix(prefix),
      setWithTags: (key, value, ttlSeconds, tags) => {
        checkTags("set", tags);
        this.#set(key, value, ttlSeconds);
        this.#addTags(key, tags, ttlSeconds);
      },
      addTags: (key, tags, ttlSeconds) => this.#addTags(key, tags, ttlSeconds),
      invalidateTags: (tags) => this.#invalidateTags(tags),
    });
  }

  /** Number of live entries (expired ones not yet removed are counted until touched). */
  get size(): number {
    return this.#entries.size;
  }

  /** Bytes held (values plus key lengths). */
  get bytes(): number {
    return this.#bytes;
  }

  #op<T>(
    operation: string,
    opts: OperationOptions | undefined,
    fn: () => T | Promise<T>,
  ): Promise<T> {
    if (this.#closed) return Promise.reject(closedError(TYPE, operation));
    return withDeadline(TYPE, operation, opts, () => {
      try {
        return Promise.resolve(fn());
      } catch (e) {
        return Promise.reject(e);
      }
    });
  }

  #live(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt !== 0 && this.#now() >= e.expiresAt) {
      this.#remove(key, e);
      return undefined;
    }
    return e;
  }

  #remove(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#bytes -= e.size;
  }

  /** The bytes under `key` (a copy), or `null`. */
  get(key: string, opts?: OperationOptions): Promise<Uint8Array | null> {
    return this.#op("get", opts, () => {
      checkKey("get", key);
      const e = this.#live(key);
      if (e === undefined) return null;
      this.#entries.delete(key); // LRU: move to the most recent end
      this.#entries.set(key, e);
      return e.value.slice();
    });
  }

  /** Store a copy of `value` under `key` with an optional TTL in seconds. */
  set(
    key: string,
    value: Uint8Array,
    ttlSeconds?: number | null,
    opts?: OperationOptions,
  ): Promise<void> {
    return this.#op("set", opts, () => this.#set(key, value, ttlSeconds));
  }

  #set(key: string, value: Uint8Array, ttlSeconds: number | null | undefined): void {
    checkKey("set", key);
    if (!(value instanceof Uint8Array)) throw fail("set", "value must be a Uint8Array");
    checkTtl(TYPE, "set", ttlSeconds);
    if (value.length > this.#maxValueBytes) {
      throw fail(
        "set",
        `value of ${value.length} bytes exceeds maxValueBytes (${this.#maxValueBytes})`,
      );
    }
    const old = this.#entries.get(key);
    if (old !== undefined) this.#remove(key, old);
    const entry: Entry = {
      value: value.slice(),
      expiresAt: ttlSeconds ? this.#now() + ttlSeconds * 1000 : 0,
      size: value.length + key.length,
    };
    this.#entries.set(key, entry);
    this.#bytes += entry.size;
    this.#evict();
  }

  #evict(): void {
    while (this.#entries.size > this.#maxEntries || this.#bytes > this.#maxBytes) {
      const oldest = this.#entries.keys().next();
      if (oldest.done) break;
      this.#remove(oldest.value, this.#entries.get(oldest.value)!);
    }
  }

  /** Remove `key`; whether it existed (unexpired). */
  delete(key: string, opts?: OperationOptions): Promise<boolean> {
    return this.#op("delete", opts, () => {
      checkKey("delete", key);
      const e = this.#live(key);
      if (e === undefined) return false;
      this.#remove(key, e);
      return true;
    });
  }

  /** Whether `key` exists and has not expired. */
  exists(key: string, opts?: OperationOptions): Promise<boolean> {
    return this.#op("exists", opts, () => {
      checkKey("exists", key);
      return this.#live(key) !== undefined;
    });
  }

  /** Always healthy while open; details: entries, bytes, bounds and tag-index size. */
  healthCheck(): Promise<BackendHealth> {
    const t0 = performance.now();
    const details = {
      entries: this.#entries.size,
      bytes: this.#bytes,
      maxEntries: this.#maxEntries,
      maxBytes: this.#maxBytes,
      tagIndexPairs: this.#tagPairs,
      closed: this.#closed,
    };
    return Promise.resolve({
      healthy: !this.#closed,
      latencyMs: performance.now() - t0,
      backendType: TYPE,
      details,
    });
  }

  /** Drop all data; later operations reject with a `BackendError` of kind `closed`. Idempotent. */
  close(): Promise<void> {
    this.#closed = true;
    this.#entries.clear();
    this.#clearTags();
    this.#locks.clear();
    this.#bytes = 0;
    return Promise.resolve();
  }

  #ttl(key: string): number | null {
    checkKey("ttl", key);
    const e = this.#live(key);
    if (e === undefined) return null;
    return e.expiresAt === 0 ? Infinity : (e.expiresAt - this.#now()) / 1000;
  }

  #expire(key: string, ttlSeconds: number): boolean {
    checkKey("expire", key);
    checkTtl(TYPE, "expire", ttlSeconds);
    const e = this.#live(key);
    if (e === undefined) return false;
    e.expiresAt = ttlSeconds ? this.#now() + ttlSeconds * 1000 : 0;
    return true;
  }

  #deleteByPrefix(prefix: string): number {
    if (typeof prefix !== "string") throw fail("deleteByPrefix", "prefix must be a string");
    const n = this.#deleteWhere((key) => key.startsWith(prefix));
    if (prefix === "") this.#clearTags();
    return n;
  }

  #deleteByTenantPrefix(prefix: string): number {
    if (typeof prefix !== "string") throw fail("deleteByTenantPrefix", "prefix must be a string");
    return this.#deleteWhere((key) => underAnyTenant(key, prefix));
  }

  /** Remove every entry whose key matches; resolves how many were live. */
  #deleteWhere(match: (key: string) => boolean): number {
    let n = 0;
    for (const [key, e] of [...this.#entries]) {
      if (!match(key)) continue;
      const live = e.expiresAt === 0 || this.#now() < e.expiresAt;
      this.#remove(key, e);
      if (live) n++;
    }
    return n;
  }

  #addTags(key: string, tags: readonly string[], ttlSeconds?: number | null): void {
    checkKey("addTags", key);
    checkTtl(TYPE, "addTags", ttlSeconds);
    checkTags("addTags", tags);
    for (const tag of tags) {
      let keys = this.#tags.get(tag);
      if (keys === undefined) this.#tags.set(tag, keys = new Set());
      if (!keys.has(key)) {
        keys.add(key);
        this.#tagPairs++;
      }
    }
    if (this.#tagPairs > this.#tagSweepAt) this.#sweepTags();
  }

  /**
   * Drop index pairs whose entry was evicted, expired or deleted since it was tagged (the index
   * would otherwise grow without bound under eviction). Amortized: the next sweep waits until the
   * index has doubled.
   */
  #sweepTags(): void {
    let pairs = 0;
    for (const [tag, keys] of this.#tags) {
      for (const key of keys) if (this.#live(key) === undefined) keys.delete(key);
      if (keys.size === 0) this.#tags.delete(tag);
      pairs += keys.size;
    }
    this.#tagPairs = pairs;
    this.#tagSweepAt = Math.max(TAG_SWEEP_MIN, 2 * pairs);
  }

  #clearTags(): void {
    this.#tags.clear();
    this.#tagPairs = 0;
    this.#tagSweepAt = TAG_SWEEP_MIN;
  }

  #invalidateTags(tags: readonly string[]): string[] {
    const deleted: string[] = [];
    for (const tag of tags) {
      const keys = this.#tags.get(tag);
      if (keys === undefined) continue;
      this.#tags.delete(tag);
      this.#tagPairs -= keys.size;
      for (const key of keys) {
        const e = this.#live(key);
        if (e !== undefined) {
          this.#remove(key, e);
          deleted.push(key);
        }
      }
    }
    return deleted;
  }

  #tryLock(key: string, leaseMs: number): LockHandle | null {
    const now = this.#now();
    const held = this.#locks.get(key);
    if (held !== undefined && now < held.expiresAt) return null;
    const token = crypto.randomUUID();
    const lease = { token, expiresAt: now + leaseMs };
    this.#locks.set(key, lease);
    let released = false;
    const release = (): Promise<boolean> => {
      if (released) return Promise.resolve(false);
      released = true;
      const current = this.#locks.get(key);
      if (current !== lease) return Promise.resolve(false);
      this.#locks.delete(key);
      return Promise.resolve(this.#now() < lease.expiresAt);
    };
    return { key, token, release, [Symbol.asyncDispose]: async () => void (await release()) };
  }

  async #acquire(key: string, opts: LockOptions): Promise<LockHandle | null> {
    checkKey("lock", key);
    checkLockOptions(TYPE, opts);
    const deadline = Date.now() + opts.waitMs;
    let pause = 1;
    for (;;) {
      if (this.#closed) throw closedError(TYPE, "lock"); // before or during the wait
      if (opts.signal?.aborted) throw lockAborted(TYPE);
      const handle = this.#tryLock(key, opts.leaseMs);
      if (handle !== null) return handle;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await new Promise((r) => setTimeout(r, Math.min(left, pause)));
      pause = Math.min(pause * 2, 20);
    }
  }
}
