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
import { errMessage, recordFailure, recordSuccess } from "./_status.ts";
import { decodeStored, isPrimitive } from "./_stored.ts";
import { l2Ttl } from "./_ttl.ts";

/** One L2 read in this many is timed for `l2AvgLatencyMs` (a power of two; the first is). */
const LATENCY_SAMPLE = 8;

/** What an L2 read found. */
export interface L2Hit {
  /** The decoded value. */
  value: unknown;
  /** The serialized payload for L1, or `null` when L1 keeps the value itself (or the document). */
  payload: Uint8Array | null;
  /** The bytes as stored (what a secure L1 keeps). */
  stored: Uint8Array;
  /** Fail-safe: past its logical expiry (`metadata.fresh_until`): not a hit, only a fallback. */
  stale: boolean;
  /** Logical expiry, ms since the epoch, or `null`. */
  freshUntil: number | null;
}

/**
 * Read the call's entry from L2: `null` on a miss, an unreadable entry, or a failure (then
 * `io.failed` is set).
 */
export async function readL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io?: { failed: boolean },
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
    bytes = await b.get(ctx.backendKey, eng.l2Opts);
    recordSuccess(eng);
  } catch (e) {
    recordFailure(eng, "get", e);
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
  if (eng.collectStats) {
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
  // L1 keeps the payload bytes the value was decoded from (a copy), not a second serialization.
  const fillL1 = eng.l1 !== null && eng.cipher === null && !eng.config.l1.storeReferences &&
    !eng.config.interop;
  const keep = fillL1 ? { payload: null as Uint8Array | null } : undefined;
  try {
    value = decodeStored(eng, bytes, ctx.protoKey, ctx.tenant ?? "default", meta, keep);
    // Only a decryption is asynchronous: a plain entry is answered without another hop.
    if (value instanceof Promise) value = await value;
  } catch (e) {
    eng.log.warn("{identity}: unreadable L2 entry {key} treated as a miss: {error}", {
      identity: eng.identity,
      key: ctx.backendKey,
      error: errMessage(e),
    });
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
      recordFailure(eng, "expire", e);
    }
  }
  let payload: Uint8Array | null = null;
  if (
    eng.l1 !== null && eng.cipher === null && !isPrimitive(value) &&
    !eng.config.l1.storeReferences
  ) {
    payload = eng.config.interop ? bytes : keep?.payload ?? eng.serializer.serialize(value);
  }
  return { value, payload, stored: bytes, stale, freshUntil: meta.freshUntil };
}

/** Write the call's stored form to L2 (never rejects: a failure is recorded). */
export async function writeL2(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  stored: Uint8Array,
): Promise<void> {
  try {
    const ttl = ctx.ttl === undefined ? eng.l2Ttl : l2Ttl(eng.config, ctx.ttl);
    await setTagged(b, ctx.backendKey, stored, ttl, ctx.tags, eng.l2Opts);
    recordSuccess(eng);
    eng.series?.write(stored.byteLength);
    trackWrite(eng, ctx);
    publish(eng, b, { level: "key", targets: [ctx.backendKey], reason: "write" });
  } catch (e) {
    recordFailure(eng, "set", e);
  }
}
