/**
 * The wait for a stampede lock another process holds: the call's attempt (a read that takes the
 * lock on a miss, `_l2.ts`, or the lock alone over a stale value) repeated with a jittered
 * backoff. Separate from `_l2_lock.ts` (the claim and the capability), which `_l2.ts` uses. A
 * call's `softTimeout` and `hardTimeout` bound the wait of a miss (`_lock_timeout.ts`).
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { type L2Hit, readL2 } from "./_l2.ts";
import { leaseHeld, LOCK_ONLY, type LockAttempt, lockOpts } from "./_l2_lock.ts";
import { recordFailure } from "./_status.ts";

/**
 * Repeat the attempt while another process holds the lock, with a jittered backoff (2 ms doubling
 * to 50 ms), until this call holds it, a value is read, L2 fails (`io.failed`), or `waitMs` passed
 * (then `null`, and the call computes without the lock).
 */
export async function waitForLock(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io: { failed: boolean },
  lk: LockAttempt,
  waitMs: number,
): Promise<L2Hit | null> {
  const deadline = performance.now() + waitMs;
  let delay = 2;
  while (lk.busy && !io.failed) {
    const left = deadline - performance.now();
    if (left <= 0) return null;
    await new Promise((r) => setTimeout(r, Math.min(left, delay * (0.5 + Math.random()))));
    delay = Math.min(delay * 2, 50);
    const hit = await attempt(eng, b, ctx, io, lk);
    if (hit !== null) return hit;
  }
  return null;
}

/** One attempt: a read that takes the lock on a miss, or (`lockOnly`) the lock alone. */
export async function attempt(
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io: { failed: boolean },
  lk: LockAttempt,
): Promise<L2Hit | null> {
  if (lk.opts !== LOCK_ONLY) return await readL2(eng, b, ctx, io, lk);
  try {
    const r = await lk.fl.fetchOrLock(ctx.backendKey, lk.token, lk.leaseMs, lockOpts(eng, lk));
    leaseHeld(lk, r);
    lk.busy = r === false;
  } catch (e) {
    recordFailure(eng, "lock", e, ctx);
    io.failed = true;
  }
  return null;
}
