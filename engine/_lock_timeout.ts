/**
 * The call's timeouts over the wait for a stampede lock another process (or another cache object
 * on the backend) holds. `softTimeout` and `hardTimeout` bound that wait exactly as they bound a
 * computation in this process (`compute` in `_call.ts`, `withTimeouts` in `_hard_timeout.ts`):
 *
 * - after `softTimeout`, when a stale value exists, the caller gets it; the wait goes on in the
 *   background (and whatever follows it: the holder's value read into L1, or this process's own
 *   computation when the wait runs out or the lock comes free without a value);
 * - after `hardTimeout`, the caller gets the stale value when one exists, else a
 *   `FactoryTimeoutError`; the wait goes on in the background likewise.
 *
 * The timeouts count from the start of the wait and bound it together with the computation that
 * may follow it (which then runs without timeouts of its own). Calls of the key that arrive while
 * the background wait runs join it, as they join a background computation (the fail-safe's
 * pending work, or the hard timeout's late work), instead of polling the lock each. A call without
 * a timeout that applies (no hard timeout, and no soft one with a stale value) waits as before:
 * up to `stampede.wait`, then reads the value or computes.
 *
 * Separate from `_lock_wait.ts` (the wait itself, which `_call_traced.ts` traces) and from
 * `_call.ts`, whose miss path only enters here once another holder's lock was found.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { readTraced, waitTraced } from "./_call_traced.ts";
import type { CallRecord } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import type { StaleValue } from "./_failsafe.ts";
import { withTimeouts } from "./_hard_timeout.ts";
import type { KeyCtx } from "./_keys.ts";
import type { L2Hit } from "./_l2.ts";
import { LOCK_ONLY, type LockAttempt, releaseLock } from "./_l2_lock.ts";

/**
 * The fallback of a call about to wait for another holder's lock when one of its timeouts bounds
 * the wait: the newest stale value (`stale`, read from L2, or the L1 entry's), or `null` under a
 * hard timeout without one. `undefined` when no timeout applies: no hard timeout, and no soft
 * timeout with a stale value (the wait is then the plain one, up to `stampede.wait`).
 */
export function waitFallback(
  eng: Engine,
  ctx: KeyCtx,
  stale: StaleValue | null,
): StaleValue | null | undefined {
  const fs = eng.failsafe;
  const fallback = fs === null ? null : fs.newest(stale, ctx.l1Key);
  const call = ctx.call;
  if ((call?.hardMs ?? eng.hardMs) > 0) return fallback;
  return fallback !== null && (call?.softMs ?? fs!.softMs) > 0 ? fallback : undefined;
}

/**
 * Wait for the lock `lk` another holds (up to `stampede.wait`), then `then` the result: a fresh
 * value read (the holder's), or else the computation (`null`, or a stale entry). The call's
 * timeouts bound the whole (see the module documentation), with `fallback` the value they serve;
 * the lock, if this call took it meanwhile, is released once `then` ends (unless its write did).
 */
export function waitWithin(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io: { failed: boolean },
  lk: LockAttempt,
  fallback: StaleValue | null,
  rec: CallRecord | null,
  then: (hit: L2Hit | null) => unknown,
): Promise<unknown> {
  const tr = rec === null ? null : rec.trace;
  const run = async () => {
    let hit = await waitTraced(tr, eng, b, ctx, io, lk, eng.config.stampede.wait * 1000);
    // Over a stale entry the wait took the lock alone: the holder may have stored a fresh value.
    if (lk.opts === LOCK_ONLY && !io.failed) hit = await readTraced(tr, eng, b, ctx, io);
    try {
      return await then(hit);
    } finally {
      if (lk.held) releaseLock(eng, ctx, lk); // unless the write released it
    }
  };
  return withTimeouts(eng, ctx, run, fallback, rec);
}
