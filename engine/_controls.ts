/**
 * The per-call controls of a cached function: `uncached(...args)` (the function itself, no cache
 * and no statistics: cachekit-py's `_bypass_cache=True`) and `refresh(...args)` (recompute now,
 * whatever L1 and L2 hold, store the result and answer it).
 *
 * A forced refresh runs as a miss does once it has decided to compute: single flight (concurrent
 * refreshes of one key share one computation, and calls of the key that miss meanwhile join it),
 * the stampede lock across processes, the fail-safe, the factory context, the store step. It does
 * not join a miss already in flight (that one may answer what L2 held) and does not read L2, not
 * even after the lock: what another process stored meanwhile is older than this call's intent.
 *
 * Separate from the call flow (`_call.ts`), which it reuses, so that the ordinary path stays as
 * it is.
 *
 * @module
 */
import { joinerCopy } from "./_inflight.ts";
import { supersede } from "./_invalidation.ts";
import { CacheKeyError } from "../errors.ts";
import type { ArgKey } from "./_argkey.ts";
import { compute, computeSync } from "./_call.ts";
import type { Engine } from "./_engine.ts";
import { callTenant, fastKey, keyContext, type KeyCtx } from "./_keys.ts";
import { fetchLockOf, LOCK_ONLY, lockAttempt, releaseLock } from "./_l2_lock.ts";
import { attempt, waitForLock } from "./_lock_wait.ts";

/** Forced refreshes in flight, per engine and L1 key, with the invalidation epoch they started in. */
const refreshing = new WeakMap<Engine, Map<ArgKey, { epoch: number; p: Promise<unknown> }>>();

/** `uncached(...args)`: the function itself (a promise when the wrapper returns one). */
export function callUncached(eng: Engine, self: unknown, args: unknown[]): unknown {
  if (!eng.returnsPromise) return eng.fn.apply(self, args);
  try {
    return Promise.resolve(eng.fn.apply(self, args));
  } catch (e) {
    return Promise.reject(e);
  }
}

/** The key context of a forced refresh, or the error (safe mode: `null`, call uncached). */
function refreshKey(eng: Engine, self: unknown, args: unknown[]): KeyCtx | null {
  try {
    return keyContext(eng, self, args, fastKey(eng, self, args), callTenant(eng, args));
  } catch (e) {
    if (eng.config.safeMode && e instanceof CacheKeyError) return null;
    throw e;
  }
}

/** `refresh(...args)`: recompute and store now (see the module documentation). */
export function forceRefresh(eng: Engine, self: unknown, args: unknown[]): unknown {
  if (!eng.returnsPromise) {
    const ctx = refreshKey(eng, self, args);
    return ctx === null ? eng.fn.apply(self, args) : computeSync(eng, self, args, ctx, false);
  }
  let ctx: KeyCtx | null;
  try {
    ctx = refreshKey(eng, self, args);
  } catch (e) {
    return Promise.reject(e);
  }
  if (ctx === null) return callUncached(eng, self, args);
  let table = refreshing.get(eng);
  if (table === undefined) refreshing.set(eng, table = new Map());
  const known = table.get(ctx.l1Key);
  if (known !== undefined && known.epoch === eng.epoch) {
    // A second refresh caller gets its own copy, as a joiner of any computation does.
    return eng.config.l1.copy === "none" ? known.p : known.p.then(joinerCopy);
  }
  supersede(eng, ctx); // a miss computing since before the refresh must not land over it
  ctx.supersedes = "refresh"; // nor one of another instance (announced as `set`)
  const p = refreshLoad(eng, self, args, ctx);
  const mine = { epoch: eng.epoch, p };
  table.set(ctx.l1Key, mine);
  const key = ctx.l1Key;
  const done = () => {
    if (table.get(key) === mine) table.delete(key);
  };
  p.then(done, done);
  eng.inflight.track(ctx.l1Key, p, undefined, null, ctx.backendKey);
  return p;
}

async function refreshLoad(
  eng: Engine,
  self: unknown,
  args: unknown[],
  ctx: KeyCtx,
): Promise<unknown> {
  if (!eng.serializerReady) { // as `load` does: the serializer's optional dependency
    await eng.serializer.prepare!();
    eng.serializerReady = true;
  }
  const epoch = eng.epoch;
  const b = await eng.backendAsync();
  const st = eng.config.stampede;
  const fl = b !== null && st.enabled ? fetchLockOf(b) : null;
  if (b === null || fl === null) {
    return await compute(eng, self, args, ctx, b, epoch, null, true, null);
  }
  // The lock alone (what L2 holds does not matter), waited for as a miss waits for it.
  const io = { failed: false };
  const lk = lockAttempt(fl, st.lease * 1000, false);
  lk.opts = LOCK_ONLY;
  await attempt(eng, b, ctx, io, lk);
  if (lk.busy) await waitForLock(eng, b, ctx, io, lk, st.wait * 1000);
  if (!lk.held) return await compute(eng, self, args, ctx, b, epoch, null, !io.failed, null);
  try {
    return await compute(eng, self, args, ctx, b, epoch, null, true, lk);
  } finally {
    releaseLock(eng, ctx, lk); // unless the write released it
  }
}
