/**
 * The call flow of a cached function, the only engine file a call enters from `cache.ts`: the
 * L1 lookup the wrapper could not do itself, single flight, the L2 read (`_l2.ts`), the stampede
 * lock, the computation with its fail-safe, the store into L1 and L2, and the background refresh.
 *
 * The L1 hit of the common case (a cheap key, no tenant) is not here: `cache.ts` inlines it in
 * the wrapper; its twin, for calls under a tenant or with a key the wrapper cannot build, is
 * `hitL1` below. Each entry point comes in two explicit forms: `missAsync`/`missSync` after the
 * wrapper looked L1 up and missed, `lookupAsync`/`lookupSync` when L1 was not looked up yet.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { ValueTooLargeError } from "../protocol/stored_value.ts";
import type { ArgKey } from "./_argkey.ts";
import type { Engine } from "./_engine.ts";
import type { StaleValue } from "./_failsafe.ts";
import type { Flight } from "./_flight.ts";
import { optionArgs } from "./_call_options.ts";
import { lateWork, withTimeouts } from "./_hard_timeout.ts";
import {
  entryOf,
  FactoryCall,
  factoryCall,
  hitEntry,
  invoke,
  invokeSync,
} from "./_factory_context.ts";
import { callTenant, fastKey, keyContext, type KeyCtx, tenantL1Key } from "./_keys.ts";
import { gotL2, type L2Hit, l2Stale, readFailed, readStart } from "./_l2.ts";
import {
  fetchLockOf,
  firstReadLocks,
  LOCK_ONLY,
  type LockAttempt,
  lockAttempt,
  noteFirstRead,
  releaseLock,
} from "./_l2_lock.ts";
import { attemptTraced, readTraced, waitTraced } from "./_call_traced.ts";
import { waitFallback, waitWithin } from "./_lock_timeout.ts";
import { L1_CLONE, L1_SEALED, L1_SHARED, type L1Entry, sharedAnswer } from "./l1.ts";
import { copyValue } from "./_l1_copy.ts";
import { decodePayload, storeL1 } from "./_l1_store.ts";
import { prepareRefresh, releaseClaim, SKIP } from "./_refresh.ts";
import { errMessage } from "./_status.ts";
import { isPrimitive } from "./_stored.ts";
import * as record from "./_call_record.ts";
import type { CallRecord } from "./_call_record.ts";
import { emit } from "./_events.ts";
import { callLogger } from "./_call_log.ts";
import { answerOf, l1Payload, warnTooLarge } from "./_answer.ts";
import { keyFailed, keyFailedAsync } from "./_key_failed.ts";
import { watchMeter } from "./_otel_metrics.ts";
import { countHit } from "./_metrics.ts";
import { store } from "./_store.ts";
import { isThenable } from "./_thenable.ts";

/**
 * Synchronous call (L1-only configuration, synchronous function) whose L1 entry the caller has
 * already looked up, and missed. Its twin {@linkcode lookupSync} looks it up first.
 */
export function missSync(
  eng: Engine,
  self: unknown,
  args: unknown[],
  fast: ArgKey | undefined,
  rec: CallRecord | null = null,
): unknown {
  let ctx: KeyCtx;
  try {
    ctx = keyContext(eng, self, args, fast, callTenant(eng, args));
  } catch (e) {
    return keyFailed(eng, self, args, e, rec);
  }
  return computeSync(eng, self, args, ctx, true, rec);
}

/**
 * Synchronous call not looked up in L1 yet (a tenant applies, or the cheap key is not the L1 key):
 * L1 under the call's tenant, then the miss.
 */
export function lookupSync(
  eng: Engine,
  self: unknown,
  args: unknown[],
  fast: ArgKey | undefined,
  rec: CallRecord | null = null,
): unknown {
  let ctx: KeyCtx;
  try {
    const tenant = callTenant(eng, args);
    if (fast !== undefined && eng.l1 !== null) {
      const e = eng.l1.get(tenantL1Key(fast, tenant));
      if (e !== undefined) return hitL1(eng, e, self, args, rec);
    }
    ctx = keyContext(eng, self, args, fast, tenant);
  } catch (e) {
    return keyFailed(eng, self, args, e, rec);
  }
  if (fast === undefined && eng.l1 !== null) {
    const e = eng.l1.get(ctx.l1Key);
    if (e !== undefined) return hitL1(eng, e, self, args, rec);
  }
  return computeSync(eng, self, args, ctx, true, rec);
}

/**
 * A synchronous miss: single flight, run the function, store its result in L1. `join: false`
 * (a forced refresh) computes even when a call of the key is in flight.
 */
export function computeSync(
  eng: Engine,
  self: unknown,
  args: unknown[],
  ctx: KeyCtx,
  join = true,
  rec: CallRecord | null = null,
): unknown {
  const p = join ? eng.inflight.get(ctx.l1Key) : undefined;
  if (p !== undefined) return record.join(eng, p, rec);
  const held = join ? eng.failsafe?.held(ctx.l1Key) : null;
  if (held) return eng.failsafe!.reuse(held, rec); // within failSafeThrottle after a failure
  if (rec !== null) record.recordMiss(eng, rec);
  if (eng.collectStats) {
    eng.stats.misses++;
    eng.stats.last = Date.now();
  }
  watchMeter();
  eng.series?.miss(eng.l1 !== null, false, false);
  const epoch = eng.epoch;
  const fs = eng.failsafe;
  let result: unknown;
  const fc = factoryCall(fs?.l1Stale(ctx.l1Key) ?? null) as FactoryCall; // L1 only: never sealed
  if (fs === null) result = record.callFn(rec, invokeSync, fc, eng.fn, self, args);
  else {
    try {
      result = record.callFn(rec, invokeSync, fc, eng.fn, self, args);
    } catch (e) {
      return fs.fallback(ctx.l1Key, e, rec, ctx);
    }
  }
  if (isThenable(result)) {
    eng.returnsPromise = true;
    let settled = Promise.resolve(result).then((v) =>
      eng.epoch === epoch ? storeDecided(eng, ctx, fc, v, args, rec) : v
    );
    if (fs !== null) settled = settled.catch((e) => fs.fallback(ctx.l1Key, e, rec, ctx));
    eng.inflight.track(ctx.l1Key, settled, undefined, rec);
    return settled;
  }
  return storeDecided(eng, ctx, fc, result, args, rec);
}

/** {@linkcode storeLocal} under the entry the result gets (`_factory_context.ts`), if any. */
function storeDecided(
  eng: Engine,
  ctx: KeyCtx,
  fc: FactoryCall,
  value: unknown,
  args: unknown[],
  rec: CallRecord | null,
): unknown {
  const entry = entryOf(eng, ctx, fc, value, args);
  return entry === null ? record.skipped(rec, value) : storeLocal(eng, entry, value, rec);
}

/**
 * Answer from an L1 entry (counts, starts a stale-while-revalidate refresh when due). Twin of the
 * L1 hit inlined in `cache.ts`'s wrapper: a change to one is a change to both.
 */
function hitL1(
  eng: Engine,
  e: L1Entry,
  self: unknown,
  args: unknown[],
  rec: CallRecord | null,
): unknown {
  if (rec !== null) record.recordL1Hit(eng, rec, e);
  countHit(eng, true);
  if (e.refreshAt <= eng.l1!.now()) refresh(eng, e, self, args);
  if (e.kind === L1_SHARED) return eng.returnsPromise ? sharedAnswer(e) : e.value;
  return hitValue(eng, e, self, args, rec);
}

/**
 * The answer of an L1 entry that is not the shared value itself (`_l1_store.ts`): a copy, a
 * decoding of its payload, or a decryption.
 */
export function hitValue(
  eng: Engine,
  e: L1Entry,
  self: unknown,
  args: unknown[],
  rec: CallRecord | null = null,
): unknown {
  if (e.kind === L1_CLONE) {
    const v = copyValue(e.value);
    return eng.returnsPromise ? Promise.resolve(v) : v;
  }
  if (e.kind !== L1_SEALED) {
    const v = decodePayload(eng, e.value as Uint8Array);
    return eng.returnsPromise ? Promise.resolve(v) : v;
  }
  return (eng.entryValue(e) as Promise<unknown>).catch(() => {
    eng.l1?.expire(e);
    return missAsync(eng, self, args, fastKey(eng, self, args), rec);
  });
}

/** Store a synchronous miss's `value` in L1; returns what the caller gets (see answerOf). */
function storeLocal(eng: Engine, ctx: KeyCtx, value: unknown, rec: CallRecord | null): unknown {
  let payload: Uint8Array | null = null;
  let answer = value;
  // Primitives skip the serializer, except the ones it may change (as the async path does).
  const mayChange = !isPrimitive(value) || typeof value === "bigint" || Object.is(value, -0);
  if (mayChange && eng.config.l1.copy !== "none") {
    try {
      payload = l1Payload(eng, value);
      answer = answerOf(eng, value, payload);
    } catch (e) {
      record.uncachedBy(rec, e);
      if (e instanceof ValueTooLargeError) warnTooLarge(eng, e, ctx);
      else if (!eng.config.safeMode) throw e;
      else {
        callLogger(eng, ctx, "source").warn("{identity}: value not cacheable: {error}", {
          identity: eng.identity,
          error: errMessage(e),
        });
      }
      return value;
    }
  }
  if (eng.listening) emit(eng, "set", "l1", null, ctx.protoKey);
  return storeL1(eng, ctx, answer, payload, null);
}

/**
 * Asynchronous call whose L1 entry the caller has already looked up, and missed: single flight,
 * L2, stampede lock, compute, store. Its twin {@linkcode lookupAsync} looks L1 up first.
 */
export function missAsync(
  eng: Engine,
  self: unknown,
  args: unknown[],
  fast: ArgKey | undefined,
  rec: CallRecord | null = null,
): Promise<unknown> {
  let ctx: KeyCtx;
  try {
    const tenant = callTenant(eng, args);
    if (fast !== undefined) {
      const p = eng.inflight.get(tenantL1Key(fast, tenant));
      if (p !== undefined) return record.join(eng, p, rec);
    }
    ctx = keyContext(eng, self, args, fast, tenant);
  } catch (e) {
    return keyFailedAsync(eng, self, args, e, rec);
  }
  const p = eng.inflight.get(ctx.l1Key);
  if (p !== undefined) return record.join(eng, p, rec);
  return lead(eng, self, args, ctx, undefined, rec);
}

/** Start the shared call of `ctx` (single flight): its flight, and a record once watched. */
function lead(
  eng: Engine,
  self: unknown,
  args: unknown[],
  ctx: KeyCtx,
  flight: Flight | undefined,
  rec: CallRecord | null,
): Promise<unknown> {
  if (flight !== undefined) ctx.call = { flight }; // a call with a signal (`_flight.ts`)
  const r = rec ?? (eng.inflight.watched ? new record.CallRecord() : null);
  const shared = load(eng, self, args, ctx, r);
  eng.inflight.track(ctx.l1Key, shared, flight, r, ctx.backendKey);
  return shared;
}

/**
 * Asynchronous call not looked up in L1 yet (a tenant applies, or the cheap key is not the L1
 * key): single flight, L1 under the call's tenant, then as {@linkcode missAsync}. A call with a
 * signal passes the `flight` a computation it starts belongs to; an observed call its record.
 */
export function lookupAsync(
  eng: Engine,
  self: unknown,
  args: unknown[],
  fast: ArgKey | undefined,
  flight?: Flight,
  rec: CallRecord | null = null,
): Promise<unknown> {
  let ctx: KeyCtx;
  try {
    const tenant = callTenant(eng, args);
    if (fast !== undefined) {
      const lk = tenantL1Key(fast, tenant);
      const p = eng.inflight.get(lk);
      if (p !== undefined) return record.join(eng, p, rec);
      if (eng.l1 !== null) {
        const e = eng.l1.get(lk);
        if (e !== undefined) return hitL1(eng, e, self, args, rec) as Promise<unknown>;
      }
    }
    ctx = keyContext(eng, self, args, fast, tenant);
  } catch (e) {
    return keyFailedAsync(eng, self, args, e, rec);
  }
  const p = eng.inflight.get(ctx.l1Key);
  if (p !== undefined) return record.join(eng, p, rec);
  if (fast === undefined && eng.l1 !== null) {
    const e = eng.l1.get(ctx.l1Key);
    if (e !== undefined) return hitL1(eng, e, self, args, rec) as Promise<unknown>;
  }
  return lead(eng, self, args, ctx, flight, rec);
}

/**
 * An asynchronous miss in L1: the L2 read, with the stampede lock on the backend's read-or-lock
 * (`fetchLock`: the value, or else the lock, in one round trip) while this function's reads mostly
 * miss, else a plain `GET` followed on a miss by the read-or-lock (the call's timeouts bound a
 * wait for another holder's lock: `_lock_timeout.ts`); the compute; the store that releases the
 * lock in one more round trip. Key-based calls enter here too (`_object_ops.ts`).
 */
export async function load(
  eng: Engine,
  self: unknown,
  args: unknown[],
  ctx: KeyCtx,
  rec: CallRecord | null = null,
): Promise<unknown> {
  // Within failSafeThrottle after a failure answered from stale: that value again, without a call
  // of the function. An engine with an L1 answers it before reading L2, as its L1 copies (a write
  // by another instance ends the window through the bus, as it evicts them); without an L1, L2 is
  // read first, as on every call, so that a value written since ends the window.
  const fs = eng.failsafe;
  if (fs !== null && eng.l1 !== null) {
    const held = fs.held(ctx.l1Key);
    if (held) return await fs.reuse(held, rec);
  }
  // An optional dependency of the serializer (apache-arrow), loaded at the first call that needs
  // it; a failure (not installed) rejects the call with the serializer's error, which says what
  // to install, and the next call tries again.
  if (!eng.serializerReady) {
    await eng.serializer.prepare!();
    eng.serializerReady = true;
  }
  const epoch = eng.epoch;
  const resolved = eng.backend();
  const b = resolved instanceof Promise ? await resolved : resolved;
  if (b === null) return await compute(eng, self, args, ctx, null, epoch, null, true, null, rec);
  if (eng.unsubscribe === null) eng.subscribe(b);
  // A key-based call that skips reading L2 (`skipL2Read`): no read, no lock; the write still goes.
  if (ctx.call?.skipL2Read === true) {
    const held = fs !== null && eng.l1 === null ? fs.held(ctx.l1Key) : null; // see above
    if (held) return await fs!.reuse(held, rec);
    return await compute(eng, self, args, ctx, b, epoch, null, true, null, rec);
  }
  const io = { failed: false };
  const st = eng.config.stampede;
  // A computation still running in the background (soft or hard timeout) is joined, not locked.
  const fl = st.enabled && eng.failsafe?.pending(ctx.l1Key) === undefined &&
      lateWork(eng, ctx.l1Key) === undefined
    ? fetchLockOf(b, eng.config.interop === null)
    : null;
  // The first read: the read-or-lock script while this function's reads mostly miss, else `GET`.
  let lk = fl !== null && firstReadLocks(eng, b, fl)
    ? lockAttempt(fl, st.lease * 1000, true)
    : null;
  const tr = rec === null ? null : rec.trace;
  let hit: L2Hit | null | Promise<L2Hit | null> = null;
  if (lk === null && tr === null) {
    // A plain read: readL2's steps, the backend's promise awaited here (one hop fewer per hit).
    // A write of the key noted from now on (here, or another instance's heard on the bus): no L1
    // fill from this read (`_write_marks.ts`).
    const seq = eng.writes.seq;
    const t0 = readStart(eng);
    let bytes: Uint8Array | null | undefined;
    try {
      bytes = await b.get(ctx.backendKey, eng.l2Opts);
    } catch (e) {
      bytes = readFailed(eng, ctx, io, e);
    }
    if (bytes !== undefined) hit = gotL2(eng, b, ctx, bytes, t0, seq);
    if (hit instanceof Promise) hit = await hit;
  } else hit = await readTraced(tr, eng, b, ctx, io, lk ?? undefined);
  let stale: StaleValue | null = null;
  let joined = false;
  if (fl !== null && !io.failed) {
    noteFirstRead(eng, hit === null || hit.stale);
    // L2 failing (error, open circuit, backpressure): no stampede lock.
    if (lk === null ? hit === null || hit.stale : lk.busy || (hit !== null && hit.stale)) {
      lk ??= lockAttempt(fl, st.lease * 1000, false);
      lk.opts = hit !== null ? LOCK_ONLY : undefined; // stale: replaced under the lock
      const read = lk.busy ? null : await attemptTraced(tr, eng, b, ctx, io, lk);
      const waited = lk.busy;
      // The call's timeouts bound a wait for another holder as a computation (`_lock_timeout.ts`).
      const fb = waited ? waitFallback(eng, ctx, hit && l2Stale(eng, hit)) : undefined;
      if (fb !== undefined) {
        const l = lk;
        return await waitWithin(eng, b, ctx, io, l, fb, rec, (h) => {
          if (h !== null && !h.stale) return l2Answer(eng, args, ctx, h, epoch, true, rec);
          const kept = fs !== null && eng.l1 === null ? fs.held(ctx.l1Key) : null; // see above
          if (kept) return fs!.reuse(kept, rec);
          const s = h && l2Stale(eng, h);
          const held = l.held ? l : null;
          return compute(eng, self, args, ctx, b, epoch, s, !io.failed, held, rec, false);
        });
      }
      if (lk.busy) {
        hit = await waitTraced(tr, eng, b, ctx, io, lk, st.wait * 1000);
        joined = true; // another process's computation, read after its lock
      } else if (read !== null) hit = read;
      // Whoever held the lock over the stale entry may have stored a fresh value meanwhile.
      if (waited && lk.opts === LOCK_ONLY && !io.failed) {
        hit = await readTraced(tr, eng, b, ctx, io);
      }
    }
  }
  if (hit !== null && !hit.stale) {
    if (lk?.held) releaseLock(eng, ctx, lk);
    return l2Answer(eng, args, ctx, hit, epoch, joined, rec);
  }
  if (hit !== null) stale = l2Stale(eng, hit);
  const held = fs !== null && eng.l1 === null ? fs.held(ctx.l1Key) : null; // see above
  if (held) {
    if (lk?.held) releaseLock(eng, ctx, lk);
    return await fs!.reuse(held, rec);
  }
  // Without the lock (no lock capability, a wait that ran out, L2 failing): a failing L2 does not
  // hold up the answer with the write (a call costs at most one L2 timeout).
  if (lk === null || !lk.held) {
    return await compute(eng, self, args, ctx, b, epoch, stale, !io.failed, null, rec);
  }
  try {
    return await compute(eng, self, args, ctx, b, epoch, stale, !io.failed, lk, rec);
  } finally {
    // Unless the write released it; a computation that went on in the background (soft or hard
    // timeout) keeps the lock until it lands.
    releaseLock(eng, ctx, lk);
  }
}

/**
 * The answer of a fresh L2 `hit` (`joined`: read after another holder's lock), kept in L1 unless
 * an invalidation (`epoch`) came since the call started or a write of the key (here, or another
 * instance's heard on the bus: `hit.seq`, `_write_marks.ts`) since the read that found it.
 */
function l2Answer(
  eng: Engine,
  args: unknown[],
  ctx: KeyCtx,
  hit: L2Hit,
  epoch: number,
  joined: boolean,
  rec: CallRecord | null,
): unknown {
  if (eng.failsafe !== null) eng.failsafe.release(ctx.l1Key); // a fresh value ends a throttle window
  if (rec !== null) record.recordL2Hit(eng, rec, hit.freshUntil, joined ? "joined" : "hit");
  countHit(eng, false, hit.stored.byteLength);
  if (eng.epoch !== epoch || eng.l1 === null) return hit.value; // no L1: no entry to make
  if (!eng.writes.mayFill(ctx.backendKey, hit.seq)) return hit.value;
  const entry = hitEntry(eng, ctx, hit.value, hit.freshUntil, optionArgs(ctx, args));
  return storeL1(eng, entry, hit.value, null, hit.stored);
}

/**
 * Run the function for a call that missed (counted here), in its factory context, under the
 * fail-safe and the call's timeouts (`timed` false: without them, which already bound the wait
 * for another holder's lock that this computation follows), and store the result as the context
 * and the options decide. Exported for the forced refresh (`_controls.ts`).
 */
export function compute(
  eng: Engine,
  self: unknown,
  args: unknown[],
  ctx: KeyCtx,
  b: Backend | null,
  epoch: number,
  stale: StaleValue | null,
  awaitWrite: boolean,
  lk: LockAttempt | null,
  rec: CallRecord | null = null,
  timed = true,
): Promise<unknown> {
  // Not async (no frame of its own); its callers are, so a throw here still rejects their call.
  if (rec !== null) record.recordMiss(eng, rec);
  if (eng.collectStats) {
    eng.stats.misses++;
    eng.stats.last = Date.now();
  }
  watchMeter();
  if (eng.metrics !== null) {
    // One `get` for the call however many reads `load` made; `awaitWrite` is false exactly when
    // the call's L2 read failed (see `load`).
    eng.series!.miss(eng.l1 !== null, b !== null, !awaitWrite);
  }
  const fs = eng.failsafe;
  const fallback = fs === null ? null : fs.newest(stale, ctx.l1Key);
  const call = ctx.call;
  const run = async () => {
    // A promise only when a sealed stale value must be decrypted: no microtask turn otherwise.
    const made = factoryCall(fallback);
    const fc = made instanceof Promise ? await made : made;
    if (call?.flight !== undefined) fc.signal = call.flight.signal; // cancellation (`_flight.ts`)
    const value = await record.callFn(rec, invoke, fc, eng.fn, self, args);
    // Not stored (skip, cacheIf, TTL 0): a lock held is released by the caller (`load`).
    const entry = entryOf(eng, ctx, fc, value, optionArgs(ctx, args));
    if (entry === null) return record.skipped(rec, value);
    return await store(eng, entry, value, b, epoch, awaitWrite, lk, rec);
  };
  // `timed` false: the timeouts already bound the wait this computation follows (`load`).
  return timed ? withTimeouts(eng, ctx, run, fallback, rec) : run();
}

/**
 * Background refresh of `e` (L1 stale-while-revalidate, `eagerRefresh`), one at a time per entry.
 * With an L2 it takes the key's stampede lock without waiting (`_refresh.ts`): N processes refresh
 * a hot key once. One that finds the lock taken keeps serving `e` and tries later; one that finds,
 * under the lock, a value another process stored since `e` was made takes it instead of
 * recomputing. The result is stored in L1 and L2 and announced on the bus, as a miss's is; a
 * refresh that ends after an invalidation (or after `e` was replaced or evicted) stores nothing.
 */
export function refresh(eng: Engine, e: L1Entry, self: unknown, args: unknown[]): void {
  if (eng.refreshing.has(e)) return;
  eng.refreshing.add(e);
  const epoch = eng.epoch;
  queueMicrotask(() => {
    void (async () => {
      let claim: LockAttempt | null = null;
      let ctx: KeyCtx | undefined;
      try {
        const tenant = callTenant(eng, args);
        ctx = keyContext(eng, self, args, fastKey(eng, self, args), tenant);
        const b = eng.returnsPromise ? await eng.backendAsync() : null;
        if (b !== null) {
          // Across processes: the key's lock, or another's newer value (`_refresh.ts`).
          const c = await prepareRefresh(eng, b, ctx, e, epoch);
          if (c === SKIP) return;
          claim = c;
        }
        const fc = new FactoryCall();
        const value = await invoke(fc, eng.fn, self, args);
        if (eng.epoch === epoch && eng.l1?.map.get(ctx.l1Key) === e) {
          const entry = entryOf(eng, ctx, fc, value, args);
          // The write releases the claim (one script on Redis); otherwise `finally` does.
          if (entry !== null) await store(eng, entry, value, b, epoch, true, claim);
        }
      } catch (err) {
        callLogger(eng, ctx ?? null, "source").warn(
          "{identity}: background refresh failed: {error}",
          {
            identity: eng.identity,
            error: errMessage(err),
          },
        );
      } finally {
        if (claim !== null) releaseClaim(eng, ctx!, claim);
        eng.refreshing.delete(e);
      }
    })();
  });
}
