/**
 * The stampede lock of a call's L2 entry: which `fetchLock` capability a backend offers (its own,
 * one round trip per step, or one composed here from `get`, `lock.acquire`, `set` and the
 * handle's release, so the call flow has one path), the owner token of a call, and the wait while
 * another process holds the lock (the attempt repeated with a jittered backoff).
 *
 * Separate from `_l2.ts`, which reads and writes an entry once; the wait is `_lock_wait.ts`.
 *
 * @module
 */
import type {
  Backend,
  FetchLockCapability,
  FetchLockOptions,
  LockCapability,
  LockHandle,
  OperationOptions,
} from "../backends/types.ts";
import { setTagged } from "./_backend.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { recordFailure } from "./_status.ts";

/** One call's claim on its entry's lock, shared by the read, the wait and the write. */
export interface LockAttempt {
  /** The capability the attempts go through. */
  readonly fl: FetchLockCapability;
  /** The call's owner token. */
  readonly token: string;
  /** The lease, ms. */
  readonly leaseMs: number;
  /** Options of the attempts: {@linkcode LOCK_ONLY} once the stored value is known to be stale. */
  opts: FetchLockOptions | undefined;
  /** Whether this call holds the lock. */
  held: boolean;
  /** Whether the last attempt found the lock held by another. */
  busy: boolean;
  /** Whether the lock was released (or handed to the write that releases it). */
  released: boolean;
  /**
   * Once held: until when (`Date.now()` ms) its lease cannot have run out ({@linkcode leaseHeld});
   * the write in its place passes it on (`setAndUnlock`'s `leaseUntil`).
   */
  until: number;
}

/** Options of the attempts that only take the lock (over a stale value). */
export const LOCK_ONLY: FetchLockOptions = Object.freeze({ lockOnly: true });
/** Options of an attempt that is the call's first read (counted as one). */
export const READ: FetchLockOptions = Object.freeze({ read: true });

/** The options of `lk`'s next attempt, with the engine's per-call options (metric labels). */
export function lockOpts(eng: Engine, lk: LockAttempt): FetchLockOptions | undefined {
  const base = eng.l2Opts;
  if (base === undefined) return lk.opts;
  return lk.opts === undefined ? base : { ...base, ...lk.opts };
}

/**
 * Whether the call's first read should be `fl`'s read-or-lock (`fl` is `b`'s own, and misses
 * dominate). The engine keeps a score of its recent first reads (`Engine.firstReads`): +1 for a
 * miss, -1 for a hit, within [-4, 4]. While it is positive (mostly misses, and at first: an empty
 * L2), the first read of a call is the backend's read-or-lock script, so a miss costs two commands
 * (script, then write with the release) as an unprotected `GET` + `SET` does; otherwise a plain
 * `GET`, since the script costs a hit 1.4–1.7× a `GET` (CPU of client and server at 100 concurrent
 * callers), and a miss then takes three. The score is a field of the engine, not a `WeakMap`
 * entry: every call with the lock reads it and writes it.
 */
export function firstReadLocks(eng: Engine, b: Backend, fl: FetchLockCapability): boolean {
  const own = b.capabilities.fetchLock;
  return own !== undefined && (own === fl || own.inKey === fl) && eng.firstReads > 0;
}

/** Record whether a call's first read missed (see {@linkcode firstReadLocks}). */
export function noteFirstRead(eng: Engine, missed: boolean): void {
  const v = eng.firstReads;
  eng.firstReads = missed ? (v < 4 ? v + 1 : 4) : (v > -4 ? v - 1 : -4);
}

// Tokens: a random per-process prefix and a counter (unique, and cheaper than a UUID per read).
const TOKEN_PREFIX = Array.from(
  crypto.getRandomValues(new Uint8Array(8)),
  (b) => b.toString(16).padStart(2, "0"),
).join("") + ":";
let sequence = 0;

/** A fresh claim for one call over `fl`; `first`: its first attempt is the call's first read. */
export function lockAttempt(fl: FetchLockCapability, leaseMs: number, first: boolean): LockAttempt {
  return {
    fl,
    token: TOKEN_PREFIX + (++sequence).toString(36),
    leaseMs,
    opts: first ? READ : undefined,
    held: false,
    busy: false,
    released: false,
    until: 0,
  };
}

/**
 * An attempt of `lk` answered `r`: whether it holds the lock now, and, if so, until when its lease
 * surely runs (read once the attempt answered, a little later than the lock was taken: 2 % of the
 * lease, at least 10 ms, is kept off for that and for the clocks' rates).
 */
export function leaseHeld(lk: LockAttempt, r: unknown): boolean {
  lk.held = r === true;
  if (lk.held) lk.until = Date.now() + lk.leaseMs - Math.max(10, lk.leaseMs / 50);
  return lk.held;
}

const composed = new WeakMap<Backend, FetchLockCapability>();

/**
 * The backend's `fetchLock` capability (with `inKey`: its lease-in-the-key form when it has one,
 * for a function whose keys only this library reads, i.e. not in interop mode), else one composed
 * from its `lock` capability, else `null` (no cross-process lock).
 */
export function fetchLockOf(b: Backend, inKey = false): FetchLockCapability | null {
  const caps = b.capabilities;
  if (caps.fetchLock !== undefined) {
    return (inKey ? caps.fetchLock.inKey : undefined) ?? caps.fetchLock;
  }
  if (caps.lock === undefined) return null;
  let fl = composed.get(b);
  if (fl === undefined) composed.set(b, fl = new ComposedFetchLock(b, caps.lock));
  return fl;
}

/**
 * `fetchLock` from separate calls, for backends without their own (memory, file, third party):
 * `lock.acquire` on `key + ":lock"` (one try), then `get` (a holder may have stored the value and
 * released the lock since the caller's read missed; a value found releases the lock), then `set`
 * and the release.
 */
class ComposedFetchLock implements FetchLockCapability {
  readonly #b: Backend;
  readonly #lock: LockCapability;
  readonly #handles = new Map<string, LockHandle>();

  constructor(b: Backend, lock: LockCapability) {
    this.#b = b;
    this.#lock = lock;
  }

  async fetchOrLock(
    key: string,
    _token: string,
    leaseMs: number,
    opts?: FetchLockOptions,
  ): Promise<Uint8Array | boolean> {
    const h = await this.#lock.acquire(key + ":lock", { leaseMs, waitMs: 0 });
    if (opts?.lockOnly === true) return this.#keep(_token, h);
    let v: Uint8Array | null;
    try {
      v = await this.#b.get(key, opts);
    } catch (e) {
      h?.release().catch(() => {});
      throw e;
    }
    if (v === null) return this.#keep(_token, h);
    h?.release().catch(() => {});
    return v;
  }

  #keep(token: string, h: LockHandle | null): boolean {
    if (h === null) return false;
    this.#handles.set(token, h);
    return true;
  }

  async setAndUnlock(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[] | null,
    token: string,
    opts?: OperationOptions,
  ): Promise<void> {
    await setTagged(this.#b, key, value, ttlSeconds ?? null, tags, opts);
    await this.unlock(key, token);
  }

  unlock(_key: string, token: string): Promise<boolean> {
    const h = this.#handles.get(token);
    if (h === undefined) return Promise.resolve(false);
    this.#handles.delete(token);
    return h.release();
  }
}

/**
 * Release the call's lock unless it was (the write that stores the value releases it), once a
 * background refresh of the key (soft timeout) landed: it keeps the lock until then.
 */
export function releaseLock(eng: Engine, ctx: KeyCtx, lk: LockAttempt): void {
  const release = () => {
    if (lk.released) return;
    lk.released = true;
    lk.fl.unlock(ctx.backendKey, lk.token).catch((e) => recordFailure(eng, "unlock", e, ctx));
  };
  // A computation that went on in the background (soft or hard timeout) keeps it until it lands.
  const bg = eng.failsafe?.pending(ctx.l1Key) ?? eng.lateWork.get(ctx.l1Key);
  if (bg === undefined) release();
  else bg.then(release, release);
}
