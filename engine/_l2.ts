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
import type { StaleValue } from "./_failsafe.ts";
import { joinerCopy } from "./_inflight.ts";
import { publish, trackWrite } from "./_invalidation.ts";
import { beginWriteBack, endWriteBack } from "./_write_marks.ts";
import type { KeyCtx } from "./_keys.ts";
import { l2TtlOf } from "./_call_options.ts";
import { leaseHeld, type LockAttempt, lockOpts } from "./_l2_lock.ts";
import { errMessage, recordFailure, recordSuccess } from "./_status.ts";
import { decodeStored } from "./_stored.ts";
import { emit } from "./_events.ts";
import { callLogger } from "./_call_log.ts";
import { l2Ttl } from "./_ttl.ts";
import { watchMeter } from "./_otel_metrics.ts";
import { consoleMessage } from "../health/internal.ts";
import { envConfig } from "../config/env.ts";
import { UnknownMasterKeyError } from "../protocol/internal.ts";

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
  /**
   * The engine's `writes.seq` when the read that found it started: L1 is filled with it only if no
   * write of its key, here or announced by another instance, was noted since (`_write_marks.ts`).
   */
  seq: number;
}

/** The fail-safe's view of a stale L2 `hit`: the fallback of the call that read it. */
export function l2Stale(eng: Engine, hit: L2Hit): StaleValue {
  // Read more than once (the factory's `ctx.stale`, then the callers it is served to): each read
  // its own copy unless `l1.copy` is "none", as an L1 stale entry's reads are.
  const v = hit.value;
  const read = eng.config.l1.copy === "none" ? () => v : () => joinerCopy(v);
  return { source: "l2", expiredAt: hit.freshUntil ?? NaN, read };
}

/**
 * Read the call's entry from L2: `null` on a miss, an unreadable entry, or a failure (then
 * `io.failed` is set). With `lk`, the read is a `fetchLock` attempt that also takes the entry's
 * stampede lock on a miss, in the same round trip (`lk.held`, or `lk.busy` when another holds
 * it); counted as a read only when it is the call's first.
 *
 * The steps around the round trip are {@linkcode readStart}, {@linkcode readFailed} and
 * {@linkcode gotL2}: `load` (`_call.ts`) runs them itself around a plain `GET`, so that an L2 hit
 * awaits the backend's promise directly (one promise and one hop fewer per call than through
 * this function).
 */
export async function readL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io?: { failed: boolean },
  lk?: LockAttempt,
): Promise<L2Hit | null> {
  const seq = eng.writes.seq;
  const t0 = readStart(eng);
  let bytes: Uint8Array | null;
  try {
    if (lk === undefined) bytes = await b.get(ctx.backendKey, eng.l2Opts);
    else {
      const r = await lk.fl.fetchOrLock(ctx.backendKey, lk.token, lk.leaseMs, lockOpts(eng, lk));
      bytes = typeof r === "boolean" ? null : r;
      leaseHeld(lk, r);
      lk.busy = r === false;
    }
  } catch (e) {
    return readFailed(eng, ctx, io, e) ?? null;
  }
  // A lock attempt after the call's first read is not counted as a read again (one per call).
  return gotL2(eng, b, ctx, bytes, t0, seq, lk === undefined || lk.opts?.read === true);
}

/**
 * An L2 read starts: its start time when it is timed, else -1. The clock is read only for
 * `cacheInfo().l2AvgLatencyMs` (monitoring.collectStats), and only on every LATENCY_SAMPLE-th
 * read: a clock read is a runtime call that costs as much as the rest of an L2 hit's bookkeeping,
 * and a sampled mean is as good for the average. Reads are counted as they start (`l2Reads`
 * counts them as they end: 100 concurrent reads would all see the same count and all be timed,
 * or none).
 */
export function readStart(eng: Engine): number {
  return eng.collectStats && (eng.l2Started++ & (LATENCY_SAMPLE - 1)) === 0
    ? performance.now()
    : -1;
}

/** The L2 read failed: recorded, and `io.failed` set. */
export function readFailed(
  eng: Engine,
  ctx: KeyCtx,
  io: { failed: boolean } | undefined,
  e: unknown,
): undefined {
  recordFailure(eng, "get", e, ctx);
  if (io !== undefined) io.failed = true;
}

/**
 * The rest of an L2 read once the backend answered `bytes` (read from `t0`, see
 * {@linkcode readStart}; `seq`: the engine's `writes.seq` when it started, see
 * {@linkcode L2Hit.seq}; `counted`: counted as a read): the success recorded, the entry decoded
 * (an unreadable one is a miss and is deleted). Synchronous for a plain entry; a promise only
 * when a step is asynchronous (key rotation, decryption, the TTL refresh on read).
 */
export function gotL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  bytes: Uint8Array | null,
  t0: number,
  seq: number,
  counted = true,
): L2Hit | null | Promise<L2Hit | null> {
  recordSuccess(eng);
  watchMeter(); // an SDK registered since (`_otel_metrics.ts`): here, not on the L1 hit's path
  // Key rotation: found under a previous key's tenant segment.
  if (bytes === null && eng.secure?.rotating) return readRotated(eng, b, ctx, t0, seq, counted);
  countRead(eng, t0, counted);
  // Counted per call at its outcome (`countHit` in `_metrics.ts`, `compute` in `_call.ts`), not
  // per read here.
  if (bytes === null) return null;
  return decodeL2(eng, b, ctx, bytes, null, seq);
}

async function readRotated(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  t0: number,
  seq: number,
  counted: boolean,
): Promise<L2Hit | null> {
  const { bytes, from } = await eng.secure!.findPrevious(
    b,
    ctx.backendKey,
    ctx.tenant ?? "default",
  );
  countRead(eng, t0, counted);
  if (bytes === null) return null;
  return await decodeL2(eng, b, ctx, bytes, from, seq);
}

function countRead(eng: Engine, t0: number, counted: boolean): void {
  if (!eng.collectStats || !counted) return;
  eng.stats.l2Reads++;
  if (t0 >= 0) {
    eng.stats.l2Timed++;
    eng.stats.l2ReadMs += performance.now() - t0;
  }
}

/**
 * Decode the entry (`from`: the key it was found under by key rotation, else null; `seq`: see
 * {@linkcode L2Hit.seq}).
 */
function decodeL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  bytes: Uint8Array,
  from: string | null,
  seq: number,
): L2Hit | null | Promise<L2Hit | null> {
  let value: unknown;
  const meta = { freshUntil: null as number | null };
  try {
    value = decodeStored(eng, bytes, ctx.protoKey, ctx.tenant ?? "default", meta);
  } catch (e) {
    return unreadable(eng, b, ctx, e);
  }
  // Only a decryption is asynchronous: a plain entry is answered without another hop.
  if (value instanceof Promise) {
    return value.then(
      (v) => hitOf(eng, b, ctx, bytes, from, v, meta.freshUntil, seq),
      (e) => unreadable(eng, b, ctx, e),
    );
  }
  return hitOf(eng, b, ctx, bytes, from, value, meta.freshUntil, seq);
}

/** An unreadable entry: a miss, logged, and deleted. */
function unreadable(eng: Engine, b: Backend, ctx: KeyCtx, e: unknown): null {
  if (e instanceof UnknownMasterKeyError) {
    // Instances with different master keys overwrite each other's entries: say so without set-up.
    consoleMessage(
      "master-key",
      `${eng.identity}: an L2 entry was encrypted under a master key this process does not ` +
        `have (its key fingerprint matches neither encryption.masterKey / CACHEKIT_MASTER_KEY ` +
        `nor encryption.previousKeys). Every instance sharing this cache needs the same master ` +
        `key; after a rotation, list the old key in previousKeys. Such entries are misses: the ` +
        `function runs and its result replaces them.`,
      envConfig().consoleNotices,
    );
  }
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

function hitOf(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  bytes: Uint8Array,
  from: string | null,
  value: unknown,
  freshUntil: number | null,
  seq: number,
): L2Hit | Promise<L2Hit> {
  if (eng.secure?.rotating) rotate(eng, b, ctx, bytes, from, seq);
  const stale = freshUntil !== null && freshUntil <= Date.now();
  const hit: L2Hit = { value, stored: bytes, stale, freshUntil, seq };
  if (
    !stale && eng.config.refreshTtlOnGet && eng.config.ttl !== null && b.capabilities.ttl
  ) {
    return refreshTtl(eng, b, ctx).then(() => hit);
  }
  return hit;
}

/**
 * Key rotation: the entry just read (at `seq`, from `from` or its own key) rewritten under the
 * current master key and segment, in the background (`SecureKeys.migrate`), unless its key changed
 * meanwhile. Until the rewrite ends the key counts among `eng.expiring`, as under a cache object's
 * `expire`: a write of it here (`supersede`: `set`, `f.refresh`) or one another instance
 * announces moves the epoch, and so does an invalidation; a write noted since the read
 * (`_write_marks.ts`) counts too. Then the old value is not written back over the newer state.
 */
function rotate(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  bytes: Uint8Array,
  from: string | null,
  seq: number,
): void {
  const key = ctx.backendKey;
  const epoch = eng.epoch;
  beginWriteBack(eng, key);
  void eng.secure!.migrate(b, bytes, from, key, {
    tenant: ctx.tenant ?? "default",
    protoKey: ctx.protoKey,
    tags: ctx.tags,
    ttl: eng.config.ttl,
    wire: eng.config.wire,
    unchanged: () => eng.epoch === epoch && eng.writes.mayFill(key, seq),
  }).finally(() => endWriteBack(eng, key));
}

/** `refreshTtlOnGet`: the entry's TTL renewed when less than the threshold of it is left. */
async function refreshTtl(eng: Engine, b: Backend, ctx: KeyCtx): Promise<void> {
  try {
    const left = await b.capabilities.ttl!.ttl(ctx.backendKey);
    if (
      left !== null && left !== Infinity &&
      left < eng.l2Ttl! * eng.config.ttlRefreshThreshold
    ) {
      await b.capabilities.ttl!.expire(ctx.backendKey, eng.l2Ttl!);
    }
  } catch (e) {
    recordFailure(eng, "expire", e, ctx);
  }
}

/**
 * Write the call's stored form to L2 (never rejects: a failure is recorded). With `lk` held, the
 * write also releases the stampede lock, in the same round trip where the backend can.
 */
export function writeL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  stored: Uint8Array,
  lk?: LockAttempt | null,
): Promise<void> {
  const t0 = eng.listening ? performance.now() : 0;
  const unlock = lk != null && lk.held && !lk.released;
  const call = ctx.call;
  const failed = (e: unknown): void => {
    recordFailure(eng, "set", e, ctx);
    // The lock may still be held: release it (the lease frees it anyway).
    if (unlock) lk.fl.unlock(ctx.backendKey, lk.token).catch(() => {});
  };
  let write: Promise<void>;
  try {
    // An entry with its own TTL (adaptive caching, a key-based call's `ttl`) is written with it,
    // and a key-based call's `staleTtl` sets its stale window.
    const ttl = call === undefined
      ? ctx.ttl === undefined ? eng.l2Ttl : l2Ttl(eng.config, ctx.ttl)
      : l2TtlOf(eng, ctx);
    if (!unlock) write = setTagged(b, ctx.backendKey, stored, ttl, ctx.tags, eng.l2Opts);
    else {
      lk.released = true;
      const opts = eng.l2Opts;
      write = lk.fl.setAndUnlock(ctx.backendKey, stored, ttl, ctx.tags, lk.token, opts, lk.until);
    }
    // A computed value (a miss's, a refresh's), against invalidations heard after it was issued
    // (`_late_writes.ts`).
    if (eng.lateWrites !== null && ctx.supersedes !== "set") {
      eng.lateWrites.note(ctx.backendKey, ctx.tags, stored, performance.now());
    }
  } catch (e) {
    failed(e);
    return Promise.resolve();
  }
  // Not an async function: one `then` on the backend's promise (a write on every miss). Tracked
  // until it lands: an invalidation deletes after it (`writesLanded` in `_invalidation.ts`).
  const pending = eng.l2Writes;
  const landed: Promise<void> = write.then(() => {
    pending.delete(landed);
    try {
      recordSuccess(eng);
      if (eng.listening) emit(eng, "set", "l2", performance.now() - t0, ctx.protoKey);
      eng.series?.write(stored.byteLength);
      trackWrite(eng, b, ctx);
      if (call?.skipBus !== true) {
        // A write on purpose stops work in flight elsewhere; a computed value does not.
        const reason = ctx.supersedes === undefined ? "write" : "set";
        publish(eng, b, { level: "key", targets: [ctx.backendKey], reason });
      }
    } catch (e) {
      failed(e);
    }
  }, (e) => {
    pending.delete(landed);
    failed(e);
  });
  pending.add(landed);
  return landed;
}
