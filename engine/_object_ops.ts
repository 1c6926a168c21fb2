/**
 * The operations of a key-based cache (`createCache`) on the engine: `getOrSet` enters the
 * engine's own miss path (`load` in `_call.ts`: single flight, L2, stampede lock, fail-safe,
 * timeouts, store, bus) with the engine's function a trampoline `(factory, ctx) => factory(ctx)`;
 * `get`, `set`, `has`, `expire` and the deletions are the small entry points the function face
 * has no use for, built on the same steps (`readL2`, `store`, the invalidation helpers).
 *
 * Separate from `_call.ts` so that the function face's hot path stays as it is; the key-based
 * face pays for its per-call options and its flight (cancellation) only on its own calls.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type { CacheEntryOptions } from "../config/options.ts";
import { load } from "./_call.ts";
import { store } from "./_store.ts";
import { countHit } from "./_metrics.ts";
import type { CallOptions } from "./_call_options.ts";
import type { Backend } from "../backends/types.ts";
import { type CallRecord, join, recordL1Hit, recordL2Hit } from "./_call_record.ts";
import { entryOf, FactoryCall, hitEntry, invoke } from "./_factory_context.ts";
import { cacheContext, type FactoryContext } from "../factory_context.ts";
import type { Engine } from "./_engine.ts";
import { checkSignal, Flight, flightOf, waitFor } from "./_flight.ts";
import {
  bump,
  deleteEntry,
  invalidateTagsLocal,
  publish,
  supersede,
  writesLanded,
} from "./_invalidation.ts";
import { invalidateTagsEverywhere } from "./_group_invalidation.ts";
import { beginWriteBack, endWriteBack } from "./_write_marks.ts";
import type { KeyCtx } from "./_keys.ts";
import type { ArgKey } from "./_argkey.ts";
import { readL2 } from "./_l2.ts";
import type { LockAttempt } from "./_l2_lock.ts";
import { prepareRefresh, releaseClaim, SKIP } from "./_refresh.ts";
import { storeL1 } from "./_l1_store.ts";
import { objectKeyCtx, objectL1Key } from "./_object_keys.ts";
import { errMessage, recordFailure } from "./_status.ts";
import { L1_SHARED, type L1Entry } from "./l1.ts";

/** A `getOrSet` factory as the engine calls it (its context: `factory_context.ts`). */
export type ObjectFactory = (ctx: FactoryContext) => unknown;

/**
 * The trampoline every key-based cache's engine runs as its function: `compute` calls it inside
 * the computation's factory context (`_factory_context.ts` `invoke`), which the factory receives;
 * its decisions (`setTtl`, `setTags`, `skip`) and signal are the engine's as for a function.
 */
export function trampoline(factory: ObjectFactory): unknown {
  return factory(cacheContext());
}

function seconds(name: string, v: unknown, allowNull: boolean, positive: boolean): void {
  if (v === undefined || (allowNull && v === null)) return;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || (positive && v === 0)) {
    throw new CacheConfigError(
      name,
      v,
      `a number of seconds ${positive ? "> 0" : ">= 0"}${allowNull ? " or null" : ""}`,
    );
  }
}

function checkTags(tags: unknown): readonly string[] | null {
  if (tags === undefined) return null;
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
    throw new CacheConfigError("tags", tags, "an array of tag strings");
  }
  return tags as readonly string[];
}

/** The engine's {@linkcode CallOptions} of `o` for `key` (checked). */
export function callOptions(
  key: string,
  o: CacheEntryOptions | undefined,
): CallOptions {
  const call: CallOptions = { key };
  if (o === undefined || o === null) return call;
  seconds("ttl", o.ttl, true, true);
  seconds("staleTtl", o.staleTtl, false, false);
  seconds("softTimeout", o.softTimeout, false, false);
  seconds("hardTimeout", o.hardTimeout, false, false);
  if (
    o.hardTimeout !== undefined && o.softTimeout !== undefined && o.hardTimeout > 0 &&
    o.softTimeout >= o.hardTimeout
  ) {
    throw new CacheConfigError(
      "softTimeout",
      o.softTimeout,
      `a soft timeout below the hard timeout (${o.hardTimeout} s)`,
    );
  }
  checkSignal(o.signal);
  if (o.staleTtl !== undefined) call.staleTtl = o.staleTtl;
  if (o.softTimeout !== undefined) call.softMs = o.softTimeout * 1000;
  if (o.hardTimeout !== undefined) call.hardMs = o.hardTimeout * 1000;
  if (o.skipL1Write) call.skipL1Write = true;
  if (o.skipL2Read) call.skipL2Read = true;
  if (o.skipL2Write) call.skipL2Write = true;
  if (o.skipBus) call.skipBus = true;
  return call;
}

/** The key context of one call of a key-based cache (its options checked, unless `checked`). */
function ctxOf(
  eng: Engine,
  key: string,
  o: CacheEntryOptions | undefined,
  checked?: Checked,
): KeyCtx {
  const ctx = checked === undefined
    ? objectKeyCtx(eng, key, checkTags(o?.tags), callOptions(key, o))
    : objectKeyCtx(eng, key, checked.tags, checked.call);
  if (o?.ttl !== undefined) ctx.ttl = o.ttl;
  return ctx;
}

/** A call's options as checked once: its tags and {@linkcode CallOptions}. */
interface Checked {
  tags: readonly string[] | null;
  call: CallOptions;
}

/** A live L1 entry's answer (a promise for a sealed one), counted as an L1 hit. */
function hitAnswer(eng: Engine, e: L1Entry): unknown {
  countHit(eng, true);
  return e.kind === L1_SHARED ? e.value : eng.entryValue(e);
}

/** `getOrSet(key, factory, opts)`: the value of `key`, computed by `factory` on a miss. */
export function getOrSet(
  eng: Engine,
  key: string,
  factory: ObjectFactory,
  o: CacheEntryOptions | undefined,
  rec: CallRecord | null = null,
): Promise<unknown> {
  if (typeof factory !== "function") {
    return Promise.reject(new CacheConfigError("factory", factory, "a function"));
  }
  // Options are checked on every call, a hit too (a mistake must not pass while the cache is
  // warm), and before the signal is read (a signal-like object is refused, not obeyed).
  let checked: Checked | undefined;
  if (o !== undefined) {
    try {
      checked = { tags: checkTags(o?.tags), call: callOptions(key, o) };
    } catch (e) {
      return Promise.reject(e);
    }
  }
  const signal = o?.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  let ctx: KeyCtx | null = null;
  try {
    const l1 = eng.l1;
    if (l1 !== null && o?.skipL1Read !== true && typeof key === "string") {
      // The hit needs only the L1 key: the key context is built on a miss (or a refresh).
      const lk = objectL1Key(eng, key);
      const now = l1.now(); // one clock read for the expiry and the refresh point
      const e = l1.get(lk, now);
      if (e !== undefined) {
        if (e.refreshAt <= now) {
          refreshEntry(eng, e, key, ctx = ctxOf(eng, key, o, checked), factory);
        }
        if (rec !== null) {
          recordL1Hit(eng, rec, e);
          rec.key = (ctx ??= ctxOf(eng, key, o, checked)).protoKey; // an observed call names its key
        }
        if (e.kind === L1_SHARED) {
          countHit(eng, true);
          return Promise.resolve(e.value);
        }
        const v = hitAnswer(eng, e);
        if (!(v instanceof Promise)) return Promise.resolve(v);
        const miss = ctx ?? ctxOf(eng, key, o, checked);
        return v.catch(() => computeKey(eng, miss, factory, signal, rec));
      }
    }
    ctx ??= ctxOf(eng, key, o, checked);
  } catch (e) {
    return Promise.reject(e);
  }
  if (rec !== null) rec.key = ctx.protoKey;
  return computeKey(eng, ctx, factory, signal, rec);
}

/** Join the computation of `ctx` in flight, or start one (`load`), and wait for it. */
function computeKey(
  eng: Engine,
  ctx: KeyCtx,
  factory: ObjectFactory,
  signal: AbortSignal | undefined,
  rec: CallRecord | null = null,
): Promise<unknown> {
  const p = eng.inflight.get(ctx.l1Key);
  if (p !== undefined) return waitFor(join(eng, p, rec), signal, flightOf.get(p));
  // A flight only for a caller that can abort: without one, nobody can cancel the computation.
  const flight = signal === undefined ? undefined : ctx.call!.flight = new Flight();
  const shared = load(eng, undefined, [factory], ctx, rec);
  eng.inflight.track(ctx.l1Key, shared, flight, rec, ctx.backendKey);
  return waitFor(shared, signal, flight);
}

/** Stale-while-revalidate of a key-based entry: run `factory` in the background, store it. */
function refreshEntry(
  eng: Engine,
  e: L1Entry,
  key: string,
  ctx: KeyCtx,
  factory: ObjectFactory,
): void {
  if (eng.refreshing.has(e)) return;
  eng.refreshing.add(e);
  const epoch = eng.epoch;
  queueMicrotask(() => {
    void (async () => {
      let claim: LockAttempt | null = null;
      try {
        const b = await eng.backendAsync();
        if (b !== null) {
          // Across processes: the key's lock, or another's newer value (`_refresh.ts`).
          const c = await prepareRefresh(eng, b, ctx, e, epoch);
          if (c === SKIP) return;
          claim = c;
        }
        const fc = new FactoryCall();
        const value = await invoke(fc, trampoline as (...a: unknown[]) => unknown, eng, [factory]);
        const entry = entryOf(eng, ctx, fc, value, [key]);
        if (entry !== null && eng.epoch === epoch && eng.l1?.map.get(ctx.l1Key) === e) {
          await store(eng, entry, value, b, epoch, true, claim); // the write releases the claim
        }
      } catch (err) {
        eng.log.warn("{identity}: background refresh failed: {error}", {
          identity: eng.identity,
          error: errMessage(err),
        });
      } finally {
        if (claim !== null) releaseClaim(eng, ctx, claim);
        eng.refreshing.delete(e);
      }
    })();
  });
}

/**
 * `get(key, opts)`: the fresh value of `key` (L1, then L2), or `undefined`. A plain call (no
 * options, not observed) answers an L1 hit from the L1 key alone, as `getOrSet` does: the key
 * context is built only when L1 misses.
 */
export function get(
  eng: Engine,
  key: string,
  o: CacheEntryOptions | undefined,
  rec: CallRecord | null = null,
): Promise<unknown> {
  const l1 = eng.l1;
  if (o === undefined && rec === null && l1 !== null && typeof key === "string") {
    let lk: ArgKey;
    let e: L1Entry | undefined;
    try {
      lk = objectL1Key(eng, key);
      e = l1.get(lk);
    } catch (err) {
      return Promise.reject(err);
    }
    if (e !== undefined) {
      if (e.kind === L1_SHARED) {
        countHit(eng, true);
        return Promise.resolve(e.value);
      }
      const again = () => {
        l1.delete(lk); // unreadable entry: read L2 again
        return getFrom(eng, key, o, rec);
      };
      let v: unknown;
      try {
        v = hitAnswer(eng, e);
      } catch {
        return again();
      }
      return v instanceof Promise ? v.catch(again) : Promise.resolve(v);
    }
  }
  return getFrom(eng, key, o, rec);
}

/** {@linkcode get} with its key context: L1, then L2. */
async function getFrom(
  eng: Engine,
  key: string,
  o: CacheEntryOptions | undefined,
  rec: CallRecord | null,
): Promise<unknown> {
  const ctx = ctxOf(eng, key, o);
  if (rec !== null) rec.key = ctx.protoKey;
  if (eng.l1 !== null && o?.skipL1Read !== true) {
    const e = eng.l1.get(ctx.l1Key);
    if (e !== undefined) {
      try {
        if (rec !== null) recordL1Hit(eng, rec, e);
        return await hitAnswer(eng, e);
      } catch {
        eng.l1.delete(ctx.l1Key); // unreadable sealed entry: read L2 again
      }
    }
  }
  const b = o?.skipL2Read ? null : await eng.backendAsync();
  if (b === null) {
    if (rec !== null) notFound(rec);
    return countMiss(eng);
  }
  const epoch = eng.epoch;
  const hit = await readL2(eng, b, ctx);
  if (hit === null || hit.stale) {
    if (rec !== null) notFound(rec);
    return countMiss(eng);
  }
  if (rec !== null) recordL2Hit(eng, rec, hit.freshUntil, "hit");
  countHit(eng, false, hit.stored.byteLength);
  // Not over a write of the key made (or announced by another instance) since the read started
  // (`_write_marks.ts`).
  if (eng.epoch !== epoch || o?.skipL1Write || !eng.writes.mayFill(ctx.backendKey, hit.seq)) {
    return hit.value;
  }
  return storeL1(
    eng,
    hitEntry(eng, ctx, hit.value, hit.freshUntil, [key]),
    hit.value,
    null,
    hit.stored,
  );
}

/** `get` found no fresh value: a `miss` from no layer (nothing is computed by `get`). */
function notFound(rec: CallRecord): void {
  rec.status = "miss";
  rec.layer = "source";
  rec.ageMs = null;
  rec.expiresInMs = null;
}

function countMiss(eng: Engine): undefined {
  if (eng.collectStats) {
    eng.stats.misses++;
    eng.stats.last = Date.now();
  }
  return undefined;
}

/** `set(key, value, opts)`: store `value` in L1 and L2 (and tell other instances). */
export async function set(
  eng: Engine,
  key: string,
  value: unknown,
  o: CacheEntryOptions | undefined,
): Promise<void> {
  const ctx = ctxOf(eng, key, o);
  supersede(eng, ctx); // an earlier computation must not land over the written value
  ctx.supersedes = "set"; // nor one of another instance (announced as `set`)
  // Not kept in L1 (`skipL1Write`): nor is the value it replaces. Dropped before the write (no
  // call answers it meanwhile) and after it (a read during the write may have put it back).
  const drop = o?.skipL1Write === true ? eng.l1 : null;
  drop?.delete(ctx.l1Key);
  // A read of the key in flight (it may end with the old value) must not put it back into L1.
  eng.writes.begin(ctx.backendKey);
  try {
    const b = o?.skipL2Write ? null : await eng.backendAsync();
    await store(eng, ctx, value, b, eng.epoch, true);
  } finally {
    eng.writes.end(ctx.backendKey);
  }
  drop?.delete(ctx.l1Key);
}

/** `has(key)`: whether a fresh value of `key` exists (L1, then L2; a stale one does not count). */
export async function has(
  eng: Engine,
  key: string,
  o: CacheEntryOptions | undefined,
): Promise<boolean> {
  const ctx = ctxOf(eng, key, o);
  if (eng.l1 !== null && o?.skipL1Read !== true && eng.l1.get(ctx.l1Key) !== undefined) return true;
  const b = o?.skipL2Read ? null : await eng.backendAsync();
  if (b === null) return false;
  const hit = await readL2(eng, b, ctx);
  return hit !== null && !hit.stale;
}

/** `delete(...keys)`: remove the entries of `keys` from L1 and L2, and tell other instances. */
export async function deleteKeys(eng: Engine, keys: readonly string[]): Promise<void> {
  const ctxs = keys.map((k) => objectKeyCtx(eng, k, null, undefined));
  bump(eng);
  for (const c of ctxs) eng.l1?.delete(c.l1Key);
  const b = await eng.backendAsync();
  if (b === null || ctxs.length === 0) return;
  const landed = writesLanded([eng]); // a write issued before lands before the deletion
  if (landed !== null) await landed;
  // Issued together: node-redis writes commands of one tick in one batch (auto-pipelining).
  // A failure is retried when L2 is back (`_recovery.ts`).
  await Promise.all(ctxs.map((c) => deleteEntry(eng, b, c)));
  bump(eng);
  for (const c of ctxs) eng.l1?.delete(c.l1Key);
  publish(eng, b, { level: "key", targets: ctxs.map((c) => c.backendKey), reason: "delete" });
}

/** `deleteByTags(...tags)`: as `invalidateTags`, on this cache's backend (L1 only: locally). */
export async function deleteByTags(eng: Engine, tags: readonly string[]): Promise<void> {
  if (tags.some((t) => typeof t !== "string")) {
    throw new CacheConfigError("tags", tags, "tags as separate string arguments");
  }
  const b = await eng.backendAsync();
  if (b === null) invalidateTagsLocal(eng, new Set(tags));
  else await invalidateTagsEverywhere([...tags], { backend: b });
}

/**
 * `expire(key)`: soft delete. Without the fail-safe (`staleTtl` 0) or in interop mode (no
 * metadata to mark it), a deletion. With it, the entry's logical expiry becomes now, and it stays
 * usable as a stale value for its own stale window at most, never longer than it already was
 * (its original logical expiry plus its stale window): L1 keeps it as a stale entry (its own
 * window: `L1Cache.staleMsOf`), L2 gets it back with `fresh_until` = now and, as its TTL, the
 * stale window it had (what its remaining TTL holds past its logical expiry). An entry already
 * stale is left as it is, and one without a stale window is deleted. The next read misses and
 * recomputes, and a failure or timeout of that computation is answered from it.
 *
 * Never lengthening the entry also keeps it within the life of its tag index (Redis tag sets,
 * written to live as long as the entry did): `deleteByTags` reaches it as long as it answers. A
 * deletion or a `set` of the key (or a write another instance announces) while L2 is read wins:
 * the old value is not written back (`supersede` sees the key in `expiring`).
 */
export async function expire(eng: Engine, key: string): Promise<void> {
  if (eng.failsafe === null || eng.config.interop !== null) return deleteKeys(eng, [key]);
  const call: CallOptions = { skipL1Write: true };
  const ctx = objectKeyCtx(eng, key, null, call);
  // A computation or refresh of the key that started earlier must not store its result over the
  // expiry (as over a `set`). Before this call joins `expiring`, which `supersede` also stops.
  supersede(eng, ctx);
  const l1 = eng.l1;
  const e = l1?.map.get(ctx.l1Key);
  if (l1 !== null && e !== undefined) {
    // Expired now (in the cache's time), so still within its own stale window.
    const now = l1.now();
    if (e.expiresAt > now) e.expiresAt = now;
    if (e.refreshAt > now) e.refreshAt = now;
  }
  // A deletion or a write while L2 is read: the old value is not written back.
  const epoch = eng.epoch;
  beginWriteBack(eng, ctx.backendKey);
  // A read of the key in flight must not put the entry back into L1 as fresh (`_write_marks.ts`).
  eng.writes.begin(ctx.backendKey);
  try {
    const b = await eng.backendAsync();
    if (b === null) return;
    const landed = writesLanded([eng]); // a write issued before is the one to expire
    if (landed !== null) await landed;
    const t0 = Date.now(); // before the reads: their latency does not lengthen the window
    const [hit, left] = await Promise.all([readL2(eng, b, ctx), ttlLeft(eng, b, ctx)]);
    if (hit === null || hit.stale || left === null) return;
    if (eng.epoch !== epoch) {
      // An invalidation came during the reads. A write of this key since (a `set`, another
      // instance's write or deletion: noted) decided its state; any other (this key's deletion,
      // another key's, tags, a clear that may cover it) cannot be told apart: the entry is
      // deleted rather than left fresh in L2.
      if (!eng.writes.wroteSince(ctx.backendKey, hit.seq)) await deleteKeys(eng, [key]);
      return;
    }
    const window = staleWindow(eng, hit.freshUntil, left, t0);
    if (window < MIN_WINDOW) {
      // No stale window (a `staleTtl` of 0): nothing may answer it once expired.
      await deleteKeys(eng, [key]);
      return;
    }
    // Written again with its logical expiry now (`ttl: 0`: fresh_until = now), living its window.
    ctx.ttl = 0;
    call.staleTtl = window;
    await store(eng, ctx, hit.value, b, epoch, true);
  } finally {
    eng.writes.end(ctx.backendKey);
    endWriteBack(eng, ctx.backendKey);
  }
}

/** Below this stale window (seconds), `expire` deletes: a TTL rounds to whole milliseconds. */
const MIN_WINDOW = 0.001;

/**
 * The remaining L2 TTL of the entry of `ctx`, seconds (`Infinity`: none; `null`: gone;
 * `undefined`: unknown, the backend cannot tell or failed to).
 */
async function ttlLeft(eng: Engine, b: Backend, ctx: KeyCtx): Promise<number | null | undefined> {
  const cap = b.capabilities.ttl;
  if (cap === undefined) return undefined;
  try {
    return await cap.ttl(ctx.backendKey, eng.l2Opts);
  } catch (e) {
    recordFailure(eng, "ttl", e, ctx);
    return undefined;
  }
}

/**
 * The stale window, seconds from now, that an expired entry keeps: what its L2 life (`left`
 * seconds when read, after `t0`, ms since the epoch) holds past its logical expiry (`freshUntil`,
 * ms since the epoch), i.e. the stale window it was written with. Unknown (no logical expiry, or
 * no TTL to read): the cache's `staleTtl`. Never more than the entry has left now.
 */
function staleWindow(
  eng: Engine,
  freshUntil: number | null,
  left: number | undefined,
  t0: number,
): number {
  if (left === undefined) return eng.config.staleTtl;
  const own = left === Infinity || freshUntil === null
    ? eng.config.staleTtl
    : left - Math.max(0, freshUntil - t0) / 1000;
  return Math.min(own, left - (Date.now() - t0) / 1000);
}
