/**
 * The in-process L1 cache: a `Map` in LRU order, bounded by entry count and by bytes, with expiry
 * checked on read.
 *
 * Hand-written rather than `lru-cache` because the engine's hit path reads the entry fields
 * directly (expiry, refresh point, stored form) in one lookup, and because LRU promotion is
 * skipped for entries already among the most recently used eighth (a hit on a hot key then costs
 * one `Map.get`, no re-insertion). Eviction order is exact for the older seven eighths, which is
 * where eviction happens.
 *
 * Sizes: an entry counts its stored bytes (the serialized value) plus its key length plus
 * {@linkcode L1_ENTRY_OVERHEAD} bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { L1Cache } from "./l1.ts";
 *
 * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10 });
 * l1.set("k", L1Cache.entry(42, null, 3, 60_000));
 * assert.equal(l1.get("k")?.value, 42);
 * assert.equal(l1.size, 1);
 * ```
 *
 * @module
 */

/** Fixed per-entry byte overhead counted against `maxBytes`. */
export const L1_ENTRY_OVERHEAD = 64;

/** One L1 entry. Fields are read directly by the engine's hit path. */
export interface L1Entry {
  /** The value when stored by reference (primitives, `storeReferences`), else `undefined`. */
  value: unknown;
  /** Serialized bytes (deserialized on every hit), or `null` when `value` is the value. */
  bytes: Uint8Array | null;
  /** Bytes counted against the limit. */
  size: number;
  /** Expiry, ms since the epoch. */
  expiresAt: number;
  /**
   * Fail-safe: the expired entry is kept (not served as a hit) until this time, ms since the epoch,
   * so the engine can serve it when the function fails. Equals `expiresAt` when fail-safe is off.
   */
  staleUntil: number;
  /** Stale-while-revalidate point, ms since the epoch (`Infinity`: never). */
  refreshAt: number;
  /** L2 key of the entry (for cross-instance invalidation), or `null`. */
  backendKey: string | null;
  /** Tags of the entry, or `null`. */
  tags: readonly string[] | null;
  /** Engine data for entries whose `bytes` are sealed (encrypted), else `null`. */
  sealed: unknown;
  /** A background refresh is running. */
  refreshing: boolean;
  /** LRU clock stamp (managed by {@linkcode L1Cache}). */
  stamp: number;
  /** Map key (managed by {@linkcode L1Cache}). */
  key: unknown;
}

/** Limits of an {@linkcode L1Cache}. */
export interface L1Limits {
  /** Upper bound of counted bytes. */
  maxBytes: number;
  /** Upper bound of entries. */
  maxEntries: number;
}

/**
 * LRU map with byte and entry bounds. Keys are numbers or strings (the engine's argument keys).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { L1Cache } from "./l1.ts";
 * const l1 = new L1Cache({ maxBytes: 200, maxEntries: 100 });
 * l1.set("a", L1Cache.entry(undefined, new Uint8Array(100), 0, 60_000));
 * l1.set("b", L1Cache.entry(undefined, new Uint8Array(100), 0, 60_000));
 * assert.equal(l1.has("a"), false);
 * assert.ok(l1.has("b"));
 * ```
 */
export class L1Cache {
  /** The entries, least recently used first. Read-only for callers. */
  readonly map: Map<unknown, L1Entry> = new Map();
  /** Counted bytes. */
  bytes = 0;
  /** Limits. */
  readonly limits: L1Limits;
  #clock = 0;

  /**
   * Create an empty cache.
   *
   * @param limits Byte and entry bounds.
   */
  constructor(limits: L1Limits) {
    this.limits = { maxBytes: limits.maxBytes, maxEntries: limits.maxEntries };
  }

  /**
   * Build an entry.
   *
   * @param value Value stored by reference (or `undefined` with `bytes`).
   * @param bytes Serialized form, or `null`.
   * @param size Serialized size when `bytes` is `null` (for accounting).
   * @param ttlMs Lifetime in milliseconds.
   * @param refreshAfterMs Stale-while-revalidate point in ms from now (`Infinity`: off).
   * @returns A new entry.
   */
  static entry(
    value: unknown,
    bytes: Uint8Array | null,
    size: number,
    ttlMs: number,
    refreshAfterMs: number = Infinity,
  ): L1Entry {
    const now = Date.now();
    return {
      value,
      bytes,
      size: (bytes ? bytes.byteLength : size) + L1_ENTRY_OVERHEAD,
      expiresAt: now + ttlMs,
      staleUntil: now + ttlMs,
      refreshAt: now + refreshAfterMs,
      backendKey: null,
      tags: null,
      sealed: null,
      refreshing: false,
      stamp: 0,
      key: undefined,
    };
  }

  /** Number of entries. */
  get size(): number {
    return this.map.size;
  }

  /** Whether a live (unexpired) entry exists. */
  has(key: unknown): boolean {
    return this.get(key) !== undefined;
  }

  /**
   * The live entry for `key` (promoted in LRU order), or `undefined`. Expired entries are removed,
   * except those still within their fail-safe window (`staleUntil`), which stay for {@linkcode stale}.
   */
  get(key: unknown, now: number = Date.now()): L1Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      if (e.staleUntil <= now) this.delete(key);
      return undefined;
    }
    this.touch(e);
    return e;
  }

  /**
   * The expired entry kept for fail-safe serving (`expiresAt <= now < staleUntil`), or `undefined`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { L1Cache } from "./l1.ts";
   * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10 });
   * const e = L1Cache.entry(42, null, 3, 0);
   * e.staleUntil = e.expiresAt + 60_000;
   * l1.set("k", e);
   * assert.equal(l1.get("k"), undefined);
   * assert.equal(l1.stale("k")?.value, 42);
   * ```
   */
  stale(key: unknown, now: number = Date.now()): L1Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined || e.expiresAt > now) return undefined;
    if (e.staleUntil <= now) {
      this.delete(key);
      return undefined;
    }
    return e;
  }

  /** Promote `e` to most recently used unless it is already among the newest eighth. */
  touch(e: L1Entry): void {
    if (this.#clock - e.stamp > this.map.size >>> 3) {
      this.map.delete(e.key);
      e.stamp = ++this.#clock;
      this.map.set(e.key, e);
    }
  }

  /**
   * Store `entry` under `key`, evicting least recently used entries over the limits. An entry
   * larger than `maxBytes` is not stored. Returns whether it was stored.
   */
  set(key: unknown, entry: L1Entry): boolean {
    const keySize = typeof key === "string" ? key.length : 8;
    entry.size += keySize;
    const old = this.map.get(key);
    if (old !== undefined) {
      this.map.delete(key);
      this.bytes -= old.size;
    }
    if (entry.size > this.limits.maxBytes) return false;
    entry.key = key;
    entry.stamp = ++this.#clock;
    this.map.set(key, entry);
    this.bytes += entry.size;
    if (this.bytes > this.limits.maxBytes || this.map.size > this.limits.maxEntries) this.#evict();
    return true;
  }

  /** Remove `key`; returns whether it existed. */
  delete(key: unknown): boolean {
    const e = this.map.get(key);
    if (e === undefined) return false;
    this.map.delete(key);
    this.bytes -= e.size;
    return true;
  }

  /** Remove every entry matching `pred`; returns the count. */
  deleteWhere(pred: (e: L1Entry) => boolean): number {
    let n = 0;
    for (const e of [...this.map.values()]) {
      if (pred(e)) {
        this.delete(e.key);
        n++;
      }
    }
    return n;
  }

  /** Remove everything. */
  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }

  #evict(): void {
    const { maxBytes, maxEntries } = this.limits;
    for (const [k, e] of this.map) {
      if (this.bytes <= maxBytes && this.map.size <= maxEntries) break;
      this.map.delete(k);
      this.bytes -= e.size;
    }
  }
}
