/**
 * The cross-process side of a background refresh (L1 stale-while-revalidate and `eagerRefresh`):
 * the key's stampede lock, taken without waiting, so that N processes whose entries of a hot key
 * come due together refresh it once; the check, under that lock, for a value another process
 * stored since this one's entry was made (then it is taken, aged as stored, instead of a
 * recomputation); and the pause before a refresh that found the lock taken tries again.
 *
 * Separate from the call flow (`_call.ts` `refresh` decides what runs and stores the result).
 * Hand-written: which value is newer rests on this engine's L1 entry times and the L2 entry's
 * remaining TTL, which no library knows about.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { type L2Hit, readL2 } from "./_l2.ts";
import {
  fetchLockOf,
  leaseHeld,
  LOCK_ONLY,
  type LockAttempt,
  lockAttempt,
  lockOpts,
} from "./_l2_lock.ts";
import { storeL1 } from "./_l1_store.ts";
import { recordFailure } from "./_status.ts";
import { l1TtlMs, l2Ttl } from "./_ttl.ts";
import type { L1Entry } from "./l1.ts";

/** {@linkcode claimRefresh}: another process holds the key's lock (it is refreshing). */
export const BUSY: unique symbol = Symbol("busy");

/**
 * Take the key's stampede lock for a refresh, without waiting: the lock a miss takes (the
 * backend's `fetchLock`, or one composed from its `lock`), so a refresh and a miss of one key
 * exclude each other too; only the lock (`lockOnly`: the stored value is the one being replaced).
 * Resolves the held claim, which the write of the result releases (`setAndUnlock`: one round trip
 * on Redis), else {@linkcode releaseClaim}; {@linkcode BUSY} when another process holds the lock;
 * `null` when no lock applies (stampede protection off, a backend without locks, or the lock
 * failed: the refresh then runs anyway, as a miss does).
 */
export async function claimRefresh(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
): Promise<LockAttempt | typeof BUSY | null> {
  const st = eng.config.stampede;
  const fl = st.enabled ? fetchLockOf(b) : null;
  if (fl === null) return null;
  const lk = lockAttempt(fl, st.lease * 1000, false);
  lk.opts = LOCK_ONLY;
  try {
    const r = await fl.fetchOrLock(ctx.backendKey, lk.token, lk.leaseMs, lockOpts(eng, lk));
    leaseHeld(lk, r);
    lk.busy = r === false;
  } catch (e) {
    recordFailure(eng, "lock", e);
    return null;
  }
  return lk.held ? lk : BUSY;
}

/** Release a refresh's claim unless the write of its result did (a failure is recorded). */
export function releaseClaim(eng: Engine, ctx: KeyCtx, lk: LockAttempt): void {
  if (lk.released) return;
  lk.released = true;
  lk.fl.unlock(ctx.backendKey, lk.token).catch((e) => recordFailure(eng, "unlock", e));
}

/** Age of an entry at which a refresh comes due at the earliest, ms (jitter included). */
function dueAge(eng: Engine): number {
  const swr = eng.swrMs * (1 - eng.config.l1.swrJitter);
  return swr < eng.eagerMs ? swr : eng.eagerMs;
}

/** A value another process stored since an entry was made: what it is and when it was written. */
export interface NewerValue {
  /** The L2 read. */
  hit: L2Hit;
  /** When it was written, ms since the epoch (from its remaining TTL). */
  writtenAt: number;
}

/**
 * How long after an entry was made an L2 write still counts as the entry's own, ms (L1 is filled
 * just before L2 is written; the write time read back from the TTL is late by a read's latency).
 * Small on purpose: an own write slower than this is taken back aged (see {@linkcode takeNewer}),
 * so it is due at once and the next hit recomputes, which costs a few round trips; another
 * process's write within this window after the entry was made (read from L2 just before that
 * process refreshed) is not recognised, which costs a second computation.
 */
const OWN_WRITE_MS = 50;

/**
 * The value another process stored since `e` was made (found under the lock: someone refreshed),
 * or `null` (recompute). The L2 entry's write time is read from its remaining TTL (one `PTTL` on
 * Redis; the value is read only when it is newer); one written within {@linkcode OWN_WRITE_MS} (a
 * quarter of the refresh point if that is shorter) after `e` was made counts as `e`'s own. A
 * backend without TTL inspection, a function without a TTL or with a `ttl` function cannot tell:
 * the refresh recomputes. (A TTL set by `setTtl` is read as the configured one: a misjudged write
 * time costs a recomputation or a few round trips, never a wrong value, since what is taken is what
 * L2 holds.)
 */
export async function newerInL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  e: L1Entry,
): Promise<NewerValue | null> {
  const cap = b.capabilities.ttl;
  // The call's own TTL (a cache object's `ttl` option) when it has one, else the configured one.
  const ttl = ctx.ttl === undefined ? eng.l2Ttl : l2Ttl(eng.config, ctx.ttl);
  const l2TtlMs = ttl === null ? null : ttl * 1000;
  const life = ctx.ttl === undefined ? eng.l1TtlMs : l1TtlMs(eng.config, ctx.ttl);
  // A `ttl` function gives entries TTLs of their own: the write time cannot be read back.
  if (cap === undefined || l2TtlMs === null || eng.config.ttlFn !== null) return null;
  let left: number | null;
  try {
    left = await cap.ttl(ctx.backendKey, eng.l2Opts);
  } catch (err) {
    recordFailure(eng, "ttl", err);
    return null;
  }
  if (left === null || left === Infinity) return null;
  const writtenAt = Date.now() - (l2TtlMs - left * 1000);
  // Entry times count from the L1's base (`l1.ts`).
  const madeAt = eng.l1!.base + e.expiresAt - life;
  if (writtenAt <= madeAt + Math.min(OWN_WRITE_MS, dueAge(eng) / 4)) return null;
  const hit = await readL2(eng, b, ctx);
  return hit !== null && !hit.stale ? { hit, writtenAt } : null;
}

/**
 * Put the newer value in L1 in place of `e`, aged as the L2 entry is: its refresh point and expiry
 * count from when it was written, not from now (a value that is itself due is refreshed at the
 * next hit, and L1 does not outlive L2 by the time it sat there).
 */
export function takeNewer(eng: Engine, ctx: KeyCtx, newer: NewerValue): void {
  storeL1(eng, ctx, newer.hit.value, null, newer.hit.stored);
  const n = eng.l1?.map.get(ctx.l1Key);
  // Whole milliseconds: entry times are small integers (`l1.ts`).
  const age = Math.floor(Date.now() - newer.writtenAt);
  if (n === undefined || age <= 0) return;
  n.refreshAt -= age;
  n.expiresAt -= age;
}

/**
 * Another process holds the key's lock (it is refreshing, or computing a miss): `e` stays served,
 * and the refresh is tried again after an eighth of the refresh point (10 ms to 1 s, at most the
 * lease). By then the other process's write has usually evicted `e` (invalidation bus) or is found
 * under the lock by {@linkcode newerInL2}; a holder that died frees the lock when its lease ends.
 */
export function postpone(eng: Engine, e: L1Entry): void {
  const lease = eng.config.stampede.lease * 1000;
  const ms = Math.min(Math.max(dueAge(eng) / 8, 10), 1000, lease);
  if (eng.l1 !== null) e.refreshAt = eng.l1.now() + Math.ceil(ms); // the L1's time (`l1.ts`)
  eng.log.debug("{identity}: refresh left to the lock holder; retry in {ms} ms", {
    identity: eng.identity,
    ms: Math.round(ms),
  });
}

/** {@linkcode prepareRefresh}: nothing is left to compute. */
export const SKIP: unique symbol = Symbol("skip");

/**
 * The cross-process steps of a background refresh of `e` before it computes: the key's lock
 * ({@linkcode claimRefresh}); taken by another process → {@linkcode postpone} and {@linkcode SKIP};
 * held → a value another process stored since `e` was made ({@linkcode newerInL2}) is taken
 * ({@linkcode takeNewer}, unless an invalidation (`epoch`), a new entry or a write of the key came
 * meanwhile), the lock
 * released, and {@linkcode SKIP}. Otherwise the claim (or `null` without a lock) for the store of
 * the result, whose write releases it (else {@linkcode releaseClaim}).
 */
export async function prepareRefresh(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  e: L1Entry,
  epoch: number,
): Promise<LockAttempt | null | typeof SKIP> {
  const claim = await claimRefresh(eng, b, ctx);
  if (claim === BUSY) {
    postpone(eng, e);
    return SKIP;
  }
  const newer = ctx.call?.skipL2Read === true ? null : await newerInL2(eng, b, ctx, e);
  if (newer === null) return claim;
  // Not over an invalidation (`epoch`), a new entry, or a write of the key made (here, or
  // announced by another instance) while the read that found it was in flight: a cache object's
  // `expire` leaves `e` in place, expired (`_write_marks.ts`).
  if (
    eng.epoch === epoch && eng.l1?.map.get(ctx.l1Key) === e &&
    eng.writes.mayFill(ctx.backendKey, newer.hit.seq)
  ) takeNewer(eng, ctx, newer);
  if (claim !== null) releaseClaim(eng, ctx, claim);
  return SKIP;
}
