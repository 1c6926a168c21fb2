/**
 * One call's L2 read and write: the backend round trip, the stored form decoded (an unreadable
 * entry is a miss and is deleted), key rotation, the TTL refresh on read, and the bookkeeping
 * (statistics, metrics, the failure record, the write's announcement on the invalidation bus).
 *
 * Separate from the call flow, which decides when to read and write; this file only does it.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { setTagged } from "./_backend.ts";
import type { Engine } from "./_engine.ts";
import { publish, trackWrite } from "./_invalidation.ts";
import type { KeyCtx } from "./_keys.ts";
import { l2TtlOf } from "./_call_options.ts";
import { type LockAttempt, lockOpts } from "./_l2_lock.ts";
import { errMessage, recordFailure, recordSuccess } from "./_status.ts";
import { decodeStored } from "./_stored.ts";
import { emit } from "./_events.ts";
import { callLogger } from "./_call_log.ts";
import { l2Ttl } from "./_ttl.ts";

/** One L2 read in this many is timed for `l2AvgLatencyMs` (a power of two; the first is). */
const LATENCY_SAMPLE = 8;

/** What an L2 read found. */
export interface L2Hit {
  /** The decoded value (fresh: nothing else holds it; L1 keeps a copy or freezes it). */
  value: unknown;
  /** The bytes as stored (what a secure L1 keeps). */
  stored: Uint8Array;
  /** Fail-safe: past its logical expiry (`metadata.fresh_until`): not a hit, only a fallback. */
  stale: boolean;
  /** Logical expiry, ms since the epoch, or `null`. */
  freshUntil: number | null;
}

/**
 * Read the call's entry from L2: `null` on a miss, an unreadable entry, or a failure (then
 * `io.failed` is set). With `lk`, the read is a `fetchLock` attempt that also takes the entry's
 * stampede lock on a miss, in the same round trip (`lk.held`, or `lk.busy` when another holds
 * it); counted as a read only when it is the call's first.
 */
export async function readL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io?: { failed: boolean },
  lk?: LockAttempt,
): Promise<L2Hit | null> {
  let bytes: Uint8Array | null;
  // The clock is read only for `cacheInfo().l2AvgLatencyMs` (monitoring.collectStats), and only
  // on every LATENCY_SAMPLE-th read: a clock read is a runtime call that costs as much as the
  // rest of an L2 hit's bookkeeping, and a sampled mean is as good for the average. Reads are
  // counted as they start (`l2Reads` counts them as they end: 100 concurrent reads would all
  // see the same count and all be timed, or none).
  const timed = eng.collectStats && (eng.l2Started++ & (LATENCY_SAMPLE - 1)) === 0;
  const t0 = timed ? performance.now() : 0;
  try {
    if (lk === undefined) bytes = await b.get(ctx.backendKey, eng.l2Opts);
    else {
      const r = await lk.fl.fetchOrLock(ctx.backendKey, lk.token, lk.leaseMs, lockOpts(eng, lk));
      bytes = typeof r === "boolean" ? null : r;
      lk.held = r === true;
      lk.busy = r === false;
    }
    recordSuccess(eng);
  } catch (e) {
    recordFailure(eng, "get", e, ctx);
    if (io !== undefined) io.failed = true;
    return null;
  }
  let from: string | null = null; // key rotation: found under a previous key's tenant segment
  if (bytes === null && eng.secure?.rotating) {
    ({ bytes, from } = await eng.secure.findPrevious(
      b,
      ctx.backendKey,
      ctx.tenant ?? "default",
    ));
  }
  // A lock attempt after the call's first read is not counted as a read again (one per call).
  const counted = lk === undefined || lk.opts?.read === true;
  if (eng.collectStats && counted) {
    eng.stats.l2Reads++;
    if (timed) {
      eng.stats.l2Timed++;
      eng.stats.l2ReadMs += performance.now() - t0;
    }
  }
  // Counted per call at its outcome (`countHit` / `compute` in `_call.ts`), not per read here.
  if (bytes === null) return null;
  let value: unknown;
  const meta = { freshUntil: null as number | null };
  try {
    value = decodeStored(eng, bytes, ctx.protoKey, ctx.tenant ?? "default", meta);
    // Only a decryption is asynchronous: a plain entry is answered without another hop.
    if (value instanceof Promise) value = await value;
  } catch (e) {
    callLogger(eng, ctx, "l2").warn(
      "{identity}: unreadable L2 entry {backendKey} treated as a miss: {error}",
      {
        identity: eng.identity,
        backendKey: ctx.backendKey,
        error: errMessage(e),
      },
    );
    b.delete(ctx.backendKey).catch(() => {});
    return null;
  }
  if (eng.secure?.rotating) {
    eng.secure.migrate(b, bytes, from, ctx.backendKey, {
      tenant: ctx.tenant ?? "default",
      protoKey: ctx.protoKey,
      tags: ctx.tags,
      ttl: eng.config.ttl,
      wire: eng.config.wire,
    });
  }
  const stale = meta.freshUntil !== null && meta.freshUntil <= Date.now();
  if (
    !stale && eng.config.refreshTtlOnGet && eng.config.ttl !== null && b.capabilities.ttl
  ) {
    try {
      const left = await b.capabilities.ttl.ttl(ctx.backendKey);
      if (
        left !== null && left !== Infinity &&
        left < eng.l2Ttl! * eng.config.ttlRefreshThreshold
      ) {
        await b.capabilities.ttl.expire(ctx.backendKey, eng.l2Ttl!);
      }
    } catch (e) {
      recordFailure(eng, "expire", e, ctx);
    }
  }
  return { value, stored: bytes, stale, freshUntil: meta.freshUntil };
}

/**
 * Write the call's stored form to L2 (never rejects: a failure is recorded). With `lk` held, the
 * write also releases the stampede lock, in the same round trip where the backend can.
 */
export async function writeL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  stored: Uint8Array,
  lk?: LockAttempt | null,
): Promise<void> {
  const t0 = eng.listening ? performance.now() : 0;
  const unlock = lk != null && lk.held && !lk.released;
  const call = ctx.call;
  try {
    // An entry with its own TTL (adaptive caching, a key-based call's `ttl`) is written with it,
    // and a key-based call's `staleTtl` sets its stale window.
    const ttl = call === undefined
      ? ctx.ttl === undefined ? eng.l2Ttl : l2Ttl(eng.config, ctx.ttl)
      : l2TtlOf(eng, ctx);
    if (!unlock) await setTagged(b, ctx.backendKey, stored, ttl, ctx.tags, eng.l2Opts);
    else {
      lk.released = true;
      await lk.fl.setAndUnlock(ctx.backendKey, stored, ttl, ctx.tags, lk.token, eng.l2Opts);
    }
    recordSuccess(eng);
    if (eng.listening) emit(eng, "set", "l2", performance.now() - t0, ctx.protoKey);
    eng.series?.write(stored.byteLength);
    trackWrite(eng, ctx, b.capabilities.tags === undefined);
    if (call?.skipBus !== true) {
      publish(eng, b, { level: "key", targets: [ctx.backendKey], reason: "write" });
    }
  } catch (e) {
    recordFailure(eng, "set", e, ctx);
    // The lock may still be held: release it (the lease frees it anyway).
    if (unlock) lk.fl.unlock(ctx.backendKey, lk.token).catch(() => {});
  }
}
