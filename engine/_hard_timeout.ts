/**
 * Hard timeout (`hardTimeout`, and `getOrSet`'s per-call `hardTimeout`): after it the callers of a
 * computation stop waiting. They get the stale value when one exists (the fail-safe's, `staleTtl`),
 * else a {@linkcode FactoryTimeoutError}. The computation is not stopped: it goes on in the
 * background, its store step caches the result when it lands (unless an invalidation came
 * meanwhile), and calls for the same key that arrive before it lands join it instead of starting
 * another (FusionCache's factory hard timeout). The stampede lock, when one was taken, is held
 * until it lands (see `load` in `_call.ts`).
 *
 * The timeline with both timeouts: at `softTimeout` a stale value is served and the computation
 * continues (`_failsafe.ts`); at `hardTimeout` the callers that are still waiting (no stale value)
 * get the error; the result is cached whenever it comes.
 *
 * @module
 */
import { FactoryTimeoutError } from "../errors.ts";
import type { ArgKey } from "./_argkey.ts";
import type { Engine } from "./_engine.ts";
import type { StaleValue } from "./_failsafe.ts";
import type { CallRecord } from "./_call_record.ts";
import type { KeyCtx } from "./_keys.ts";
import { joinerCopy } from "./_inflight.ts";
import { errMessage } from "./_status.ts";

/** The computation of `key` still running after a hard timeout, if any (joined by new calls). */
export function lateWork(eng: Engine, key: ArgKey): Promise<unknown> | undefined {
  return eng.lateWork.get(key);
}

/**
 * Join `late`, a computation running past its hard timeout: its result, as a copy of its own
 * under `l1.copy` `"clone"` / `"freeze"` (every joiner gets one, as joiners of a flight do).
 */
export function joinLate(eng: Engine, late: Promise<unknown>): Promise<unknown> {
  return eng.config.l1.copy === "none" ? late : late.then(joinerCopy);
}

/**
 * Run `run` (a miss's computation, or the wait for another holder's lock and what follows it:
 * `_lock_timeout.ts`) under the call's timeouts: the soft one through the fail-safe, when a
 * `stale` value exists, and the hard one ({@linkcode withHardTimeout}). Without a hard timeout,
 * a computation of the key still running past an earlier call's one is joined instead.
 */
export function withTimeouts(
  eng: Engine,
  ctx: KeyCtx,
  run: () => Promise<unknown>,
  stale: StaleValue | null,
  rec: CallRecord | null,
): Promise<unknown> {
  const call = ctx.call;
  const fs = eng.failsafe;
  const hardMs = call?.hardMs ?? eng.hardMs;
  const soft = fs === null ? run : () => fs.run(ctx.l1Key, run, stale, call?.softMs, rec, ctx);
  if (hardMs <= 0) {
    // A call without a hard timeout joins a computation still running past another call's one
    // (the lock was not taken for it: see `load`), rather than racing it to the store.
    const late = eng.lateWork.get(ctx.l1Key);
    return late === undefined ? soft() : joinLate(eng, late);
  }
  return withHardTimeout(eng, ctx.l1Key, soft, stale, hardMs, call?.key, rec, ctx);
}

/**
 * Wait for the computation `start()` of `l1Key` (or the one still running after an earlier hard
 * timeout) at most `hardMs`; then answer `stale` or reject with a {@linkcode FactoryTimeoutError}
 * naming the function, or the `key` of a key-based call.
 */
export function withHardTimeout(
  eng: Engine,
  l1Key: ArgKey,
  start: () => Promise<unknown>,
  stale: StaleValue | null,
  hardMs: number,
  key: string | undefined,
  rec: CallRecord | null = null,
  ctx: KeyCtx | null = null,
): Promise<unknown> {
  const late = eng.lateWork.get(l1Key);
  const work = late === undefined ? start() : joinLate(eng, late);
  // An invalidation before the timeout fires (`bump`) leaves the work unjoined: it will not store
  // its result, and calls made since must not get it either.
  const epoch = eng.epoch;
  return new Promise<unknown>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      if (!eng.lateWork.has(l1Key) && eng.epoch === epoch) {
        eng.lateWork.set(l1Key, work);
        const done = () => {
          if (eng.lateWork.get(l1Key) === work) eng.lateWork.delete(l1Key);
        };
        work.then(done, done);
        work.catch((e) =>
          eng.log.warn("{identity}: the computation that passed hardTimeout failed: {error}", {
            identity: eng.identity,
            error: errMessage(e),
          })
        );
      }
      if (stale !== null && eng.failsafe !== null) {
        try {
          resolve(eng.failsafe.serveStale(stale, "hard_timeout", rec, ctx));
        } catch (e) {
          reject(e);
        }
      } else {
        const what = key === undefined
          ? eng.identity
          : `${eng.identity} key ${JSON.stringify(key)}`;
        reject(new FactoryTimeoutError(what, hardMs / 1000));
      }
    }, hardMs);
    work.then((v) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(v);
    }, (e) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(e);
    });
  });
}
