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
 * Sizes (`maxBytes`, `cacheInfo().bytes`): an entry counts an estimate of the heap its value
 * holds, plus its key's length, plus {@linkcode L1_ENTRY_OVERHEAD} bytes for the entry object (9
 * fields) and its slot in the `Map`'s hash table. The engine's index by backend key (with remote
 * invalidation only) shares the backend key string and is not counted, nor is the promise a
 * shared entry makes on its first asynchronous hit ({@linkcode sharedAnswer}, ~40 bytes). The
 * value's estimate comes from the walk that checks, when the value is stored, that it can be
 * copied (`_l1_copy.ts` `vet`): V8 64-bit sizes, rounded: an object or array 24 bytes plus 8 per
 * property or element, a string 16 plus its length, a number that is not a small integer 16, a
 * `Date` 48, a `Uint8Array` 160 plus its length, a `Map` 80 plus 24 per entry; frozen time values
 * and primitives shared with the caller's value count their size too. A value kept as bytes (serialized or sealed) counts
 * their length. `tests/engine/l1_memory_test.ts` checks the estimate against a measured heap delta.
 *
 * Times in an entry (`expiresAt`, `refreshAt`) are whole milliseconds since the cache's
 * {@linkcode L1Cache.base}, not since the epoch, so that they are small integers, which V8 keeps
 * inside the entry object: a `Date.now()`-sized number is a separate 16-byte heap number per field
 * per entry. The base moves forward ("rebase": every entry's times shifted, one pass) when the
 * clock gets {@linkcode L1_REBASE_MS} past it, so the times stay small in a process that runs for
 * months. A time that still does not fit (a TTL of weeks) is stored as an ordinary number: correct,
 * 16 bytes more for that entry only, since the number fields are generalized once at load (see
 * the `Entry` class) so that one such entry never makes V8 box the fields of every entry. Rounding the
 * expiry up to a whole millisecond changes nothing, as the clock it is compared with is whole
 * milliseconds too. Without stale-while-revalidate the refresh point is the expiry itself (a hit
 * is before the expiry, so it never refreshes), which keeps it a small integer as well.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { L1_SHARED, L1Cache } from "./l1.ts";
 *
 * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10 });
 * l1.set("k", l1.entry(42, L1_SHARED, 0, 60_000));
 * assert.equal(l1.get("k")?.value, 42);
 * assert.equal(l1.size, 1);
 * ```
 *
 * @module
 */

/**
 * Fixed per-entry byte overhead counted against `maxBytes` (see the module's size model): the
 * entry object (a 24-byte header and 9 fields of 8 bytes) and its share of the `Map`'s hash table
 * (about 48 bytes: 3 slots, a bucket and the table's growth slack).
 */
export const L1_ENTRY_OVERHEAD: number = 144;

/**
 * How far past {@linkcode L1Cache.base} the clock may get before the base moves (2^29 ms, about
 * 6.2 days): entries' times then stay below 2^30, a small integer in V8 on every build.
 */
export const L1_REBASE_MS: number = 2 ** 29;

/** The entry's `value` is the answer itself: primitives, `"none"`, `"freeze"` (frozen). */
export const L1_SHARED: number = 0;
/** The entry's `value` is copied on every hit (`"clone"`; `"freeze"` of a `Date`, `Map`, …). */
export const L1_CLONE: number = 1;
/** The entry's `value` is the serialized payload, deserialized on every hit (outside the copy space). */
export const L1_BYTES: number = 2;
/** The entry's `value` is a {@linkcode SealedValue} (encrypted L1), decrypted on every hit. */
export const L1_SEALED: number = 3;
/** How an entry's `value` becomes what a hit returns. */
export type L1Kind = typeof L1_SHARED | typeof L1_CLONE | typeof L1_BYTES | typeof L1_SEALED;

/** What an encrypted L1 entry keeps: the stored document and what opening it again needs. */
export interface SealedValue {
  /** The stored bytes (encrypted). */
  bytes: Uint8Array;
  /** The call's protocol key (checked by the AAD). */
  protoKey: string;
  /** The call's tenant (`"default"` without one). */
  tenant: string;
}

/**
 * One L1 entry. Fields are read directly by the engine's hit path. Kept slim (every entry pays for
 * each field): the fail-safe window is the cache's `staleMs` (an entry with its own, from a
 * key-based call's `staleTtl`, has it in a side table: `L1Cache.setStaleMs`), a running refresh
 * is marked in the engine's side table, what a sealed entry needs sits in its value, the key is
 * the `Map`'s, and times are small integers (see the module doc).
 */
export interface L1Entry {
  /** What {@linkcode L1Entry.kind} says: the value, its serialized payload, or a sealed value. */
  value: unknown;
  /** How `value` becomes a hit's answer: {@linkcode L1_SHARED}, `_CLONE`, `_BYTES`, `_SEALED`. */
  kind: L1Kind;
  /** Bytes counted against the limit. */
  size: number;
  /** Expiry, ms since the cache's {@linkcode L1Cache.base}. */
  expiresAt: number;
  /**
   * Stale-while-revalidate point, ms since the cache's {@linkcode L1Cache.base}; at or past
   * `expiresAt` when stale-while-revalidate is off (a hit never reaches it).
   */
  refreshAt: number;
  /** L2 key of the entry (for cross-instance invalidation), or `null`. */
  backendKey: string | null;
  /** Tags of the entry, or `null`. */
  tags: readonly string[] | null;
  /** LRU clock stamp (managed by {@linkcode L1Cache}). */
  stamp: number;
  /**
   * The fulfilled promise of `value` that asynchronous hits of a {@linkcode L1_SHARED} entry
   * return, made by the first of them ({@linkcode sharedAnswer}), else `null`.
   */
  answer: Promise<unknown> | null;
}

/**
 * Every entry is an instance of this class, so all entries share one V8 hidden class (an object
 * literal site can start a second one, whose fields V8 then types on their own).
 */
class Entry implements L1Entry {
  value: unknown;
  kind: L1Kind;
  size: number;
  expiresAt: number;
  refreshAt: number;
  backendKey: string | null = null;
  tags: readonly string[] | null = null;
  stamp: number;
  answer: Promise<unknown> | null = null;
  constructor(
    value: unknown,
    kind: L1Kind,
    size: number,
    expiresAt: number,
    refreshAt: number,
    stamp: number,
  ) {
    this.value = value;
    this.kind = kind;
    this.size = size;
    this.expiresAt = expiresAt;
    this.refreshAt = refreshAt;
    this.stamp = stamp;
  }
}
// Generalize the number fields once, at load: built first with `null` there, the hidden class
// holds them as "any value", so a small integer stays inside the entry and a number that is not
// one (a far expiry) costs only its own entry a heap number. Left to V8, the first entry's small
// integers would make the fields "small integer only", and one later fraction or large number
// would turn them into "double" for every entry: a 16-byte box per field per entry.
new Entry(null, null as never, null as never, null as never, null as never, null as never);

/**
 * What an asynchronous hit of the {@linkcode L1_SHARED} entry `e` returns: one fulfilled promise
 * of its value, made on the first such hit and kept in the entry, so that a hit allocates nothing
 * (awaiting it takes the same one microtask as awaiting a fresh `Promise.resolve(e.value)`, and
 * every caller gets the same value, as before).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { L1_SHARED, L1Cache, sharedAnswer } from "./l1.ts";
 *
 * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10 });
 * const e = l1.entry(Object.freeze({ id: 1 }), L1_SHARED, 0, 60_000);
 * assert.equal(sharedAnswer(e), sharedAnswer(e));
 * assert.equal(await sharedAnswer(e), e.value);
 * ```
 */
export function sharedAnswer(e: L1Entry): Promise<unknown> {
  return e.answer ?? (e.answer = Promise.resolve(e.value));
}

/** `now + ms` rounded up to a whole millisecond (the clock is whole milliseconds). */
function timeAt(now: number, ms: number): number {
  return Math.ceil(now + ms);
}

/** Limits of an {@linkcode L1Cache}. */
export interface L1Limits {
  /** Upper bound of counted bytes. */
  maxBytes: number;
  /** Upper bound of entries. */
  maxEntries: number;
  /**
   * Fail-safe: an expired entry is kept (not served as a hit) this many ms past its expiry, so
   * the engine can serve it when the function fails. Default 0.
   */
  staleMs?: number;
}

/**
 * LRU map with byte and entry bounds. Keys are numbers or strings (the engine's argument keys).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { L1_BYTES, L1Cache } from "./l1.ts";
 * const l1 = new L1Cache({ maxBytes: 600, maxEntries: 100 });
 * l1.set("a", l1.entry(new Uint8Array(200), L1_BYTES, 200, 60_000));
 * l1.set("b", l1.entry(new Uint8Array(200), L1_BYTES, 200, 60_000));
 * assert.equal(l1.has("a"), false);
 * assert.ok(l1.has("b"));
 * ```
 */
export class L1Cache {
  /** The entries, least recently used first. Read-only for callers. */
  readonly map: Map<unknown, L1Entry> = new Map();
  /** Counted bytes. */
  bytes = 0;
  /**
   * Time zero of the entries' times, ms since the epoch: an entry is live while its `expiresAt`
   * is above `Date.now() - base` (what {@linkcode L1Cache.now} returns). Moves forward on a
   * rebase, with every entry's times.
   */
  base: number;
  /**
   * When the wrapper's inlined hit (`cache.ts`) last answered, ms since {@linkcode L1Cache.base},
   * or `null`: the hits' share of `cacheInfo().lastOperationAt`. Kept here as a small integer, as
   * entries' times are, because a `Date.now()`-sized number written to a field costs a new heap
   * number on every hit. Moves with the base on a rebase.
   */
  lastHit: number | null = null;
  /** Limits. */
  readonly limits: L1Limits;
  #clock = 0;
  readonly #wall: () => number;

  /**
   * Create an empty cache.
   *
   * @param limits Byte and entry bounds.
   * @param wall The wall clock, ms since the epoch (tests pass a fake one; the engine's hit path
   * reads `Date.now()` itself).
   */
  constructor(limits: L1Limits, wall: () => number = Date.now) {
    this.limits = { maxBytes: limits.maxBytes, maxEntries: limits.maxEntries };
    this.staleMs = limits.staleMs ?? 0;
    this.#wall = wall;
    this.base = wall();
  }

  /** Fail-safe window past expiry, ms (see {@linkcode L1Limits.staleMs}). */
  readonly staleMs: number;

  /**
   * The fail-safe windows of the entries that have their own (a key-based call's `staleTtl`),
   * ms: a side table, so that every other entry pays nothing for it. Read only for an expired
   * entry, never on a hit.
   */
  readonly #ownStale = new WeakMap<L1Entry, number>();
  #anyOwnStale = false;

  /**
   * Give `e` its own fail-safe window, `ms` past its expiry, instead of {@linkcode staleMs} (a
   * key-based call's `staleTtl`).
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { L1_SHARED, L1Cache } from "./l1.ts";
   * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10, staleMs: 60_000 });
   * const e = l1.entry(42, L1_SHARED, 0, 0);
   * l1.setStaleMs(e, 0);
   * l1.set("k", e);
   * assert.equal(l1.staleMsOf(e), 0);
   * assert.equal(l1.stale("k"), undefined);
   * ```
   */
  setStaleMs(e: L1Entry, ms: number): void {
    if (ms === this.staleMs) {
      if (this.#anyOwnStale) this.#ownStale.delete(e);
      return;
    }
    this.#ownStale.set(e, ms);
    this.#anyOwnStale = true;
  }

  /** The fail-safe window of `e`, ms past its expiry: its own, else {@linkcode staleMs}. */
  staleMsOf(e: L1Entry): number {
    return this.#anyOwnStale ? this.#ownStale.get(e) ?? this.staleMs : this.staleMs;
  }

  /**
   * The clock in the entries' time: ms since {@linkcode L1Cache.base}. Rebases first when the
   * clock is {@linkcode L1_REBASE_MS} past the base.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { L1Cache, L1_REBASE_MS } from "./l1.ts";
   *
   * let wall = 1_700_000_000_000;
   * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10 }, () => wall);
   * assert.equal(l1.now(), 0);
   * wall += L1_REBASE_MS; // about 6 days later: the base moves to now
   * assert.equal(l1.now(), 0);
   * assert.equal(l1.base, wall);
   * ```
   */
  now(): number {
    const t = this.#wall() - this.base;
    return t < L1_REBASE_MS ? t : this.#rebase(t);
  }

  /** Move the base `by` ms forward, and every entry's times with it; returns the new now (0). */
  #rebase(by: number): number {
    this.base += by;
    if (this.lastHit !== null) this.lastHit -= by;
    for (const e of this.map.values()) {
      e.expiresAt -= by;
      e.refreshAt -= by;
    }
    return 0;
  }

  /**
   * Build an entry for this cache (its times are in this cache's time: see the module doc).
   *
   * @param value The entry's value (see `kind`).
   * @param kind How `value` becomes a hit's answer.
   * @param size Estimated heap bytes of `value` (see the module's size model).
   * @param ttlMs Lifetime in milliseconds.
   * @param refreshAfterMs Stale-while-revalidate point in ms from now (`Infinity`: off).
   * @returns A new entry.
   */
  entry(
    value: unknown,
    kind: L1Kind,
    size: number,
    ttlMs: number,
    refreshAfterMs: number = Infinity,
  ): L1Entry {
    const now = this.now();
    const expiresAt = timeAt(now, ttlMs);
    const refreshAt = refreshAfterMs < ttlMs ? timeAt(now, refreshAfterMs) : expiresAt;
    return new Entry(value, kind, size + L1_ENTRY_OVERHEAD, expiresAt, refreshAt, 0);
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
   * except those still within their fail-safe window ({@linkcode staleMsOf}), which stay for
   * {@linkcode stale}.
   */
  get(key: unknown, now: number = this.now()): L1Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined) return undefined;
    if (e.expiresAt <= now) {
      if (e.expiresAt + this.staleMsOf(e) <= now) this.delete(key);
      return undefined;
    }
    this.touch(key, e);
    return e;
  }

  /**
   * The expired entry kept for fail-safe serving (`expiresAt <= now < expiresAt + staleMsOf(e)`),
   * or `undefined`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { L1_SHARED, L1Cache } from "./l1.ts";
   * const l1 = new L1Cache({ maxBytes: 1024, maxEntries: 10, staleMs: 60_000 });
   * l1.set("k", l1.entry(42, L1_SHARED, 0, 0));
   * assert.equal(l1.get("k"), undefined);
   * assert.equal(l1.stale("k")?.value, 42);
   * ```
   */
  stale(key: unknown, now: number = this.now()): L1Entry | undefined {
    const e = this.map.get(key);
    if (e === undefined || e.expiresAt > now) return undefined;
    if (e.expiresAt + this.staleMsOf(e) <= now) {
      this.delete(key);
      return undefined;
    }
    return e;
  }

  /** Promote `e` (the entry of `key`) to most recently used unless it is among the newest eighth. */
  touch(key: unknown, e: L1Entry): void {
    if (this.#clock - e.stamp > this.map.size >>> 3) {
      this.map.delete(key);
      e.stamp = ++this.#clock;
      this.map.set(key, e);
    }
  }

  /**
   * Make `e` expired and past its fail-safe window, so that the next read of its key removes it
   * (for a caller that holds the entry but not its key; `bytes` keeps counting it until then).
   */
  expire(e: L1Entry): void {
    e.expiresAt = e.refreshAt = -Infinity;
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
    for (const [k, e] of [...this.map]) {
      if (pred(e)) {
        this.delete(k);
        n++;
      }
    }
    return n;
  }

  /** Remove everything. */
  clear(): void {
    this.map.clear();
    this.#oldest = undefined;
    this.bytes = 0;
  }

  /**
   * The map's entries from the oldest on, kept across evictions: a fresh `for…of` would walk
   * over every entry deleted since the map last rehashed (V8 leaves them as holes), which made
   * each eviction of a full 10,000-entry L1 cost ~15 µs instead of ~0.2 µs. Everything before its
   * position was deleted or moved to the end (`touch`), so its next entry is the oldest.
   */
  #oldest: Iterator<[unknown, L1Entry]> | undefined;

  #evict(): void {
    const { maxBytes, maxEntries } = this.limits;
    while (this.map.size > 0 && (this.bytes > maxBytes || this.map.size > maxEntries)) {
      let next = this.#oldest?.next();
      if (next === undefined || next.done === true) {
        this.#oldest = this.map.entries();
        next = this.#oldest.next();
        if (next.done === true) return;
      }
      const [k, e] = next.value;
      // An entry the iterator passed was deleted or moved on; this one may have been replaced.
      if (this.map.get(k) !== e) continue;
      this.map.delete(k);
      this.bytes -= e.size;
    }
  }
}
