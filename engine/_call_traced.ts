/**
 * The L2 steps of `load` (`_call.ts`) under the child spans of a traced call: the read
 * (`cachekit.l2.get`), an attempt at the stampede lock (`cachekit.lock.acquire`) and the wait while
 * another process holds it (`cachekit.lock.wait`). Without a trace (`tr` null: every call that is
 * not traced) each is the plain step, with no closure.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import type { CallTrace } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { type L2Hit, readL2 } from "./_l2.ts";
import type { LockAttempt } from "./_l2_lock.ts";
import { attempt, waitForLock } from "./_lock_wait.ts";

/** `readL2`, under a `cachekit.l2.get` span when traced. */
export function readTraced(
  tr: CallTrace | null,
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io: { failed: boolean },
  lk?: LockAttempt,
): Promise<L2Hit | null> {
  if (tr === null) return readL2(eng, b, ctx, io, lk);
  return tr.child("cachekit.l2.get", () => readL2(eng, b, ctx, io, lk));
}

/** `attempt` (the read-or-lock), under a `cachekit.lock.acquire` span when traced. */
export function attemptTraced(
  tr: CallTrace | null,
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io: { failed: boolean },
  lk: LockAttempt,
): Promise<L2Hit | null> {
  if (tr === null) return attempt(eng, b, ctx, io, lk);
  return tr.child("cachekit.lock.acquire", () => attempt(eng, b, ctx, io, lk));
}

/** `waitForLock`, under a `cachekit.lock.wait` span when traced. */
export function waitTraced(
  tr: CallTrace | null,
  eng: Engine,
  b: Backend,
  ctx: KeyCtx,
  io: { failed: boolean },
  lk: LockAttempt,
  waitMs: number,
): Promise<L2Hit | null> {
  if (tr === null) return waitForLock(eng, b, ctx, io, lk, waitMs);
  return tr.child("cachekit.lock.wait", () => waitForLock(eng, b, ctx, io, lk, waitMs));
}
