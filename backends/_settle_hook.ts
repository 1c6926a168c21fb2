/**
 * The settle hook: how a guard (`reliability/guarded_backend.ts`) and a backend that supports it
 * (the Redis backend's batched `GET`, `_redis_get_op.ts`, and its operations run as one op,
 * `_redis_run_op.ts`: `get`, `set`, the lease's attempt and write) share one promise per operation.
 * The guard passes it to the operations whose inner promise it returns as it is: `get`, `set`,
 * `fetchLock.fetchOrLock` and `fetchLock.setAndUnlock`.
 * Internal (re-exported by `internal.ts` for the guard).
 *
 * Without it, the guard chains a `then` on the backend's promise to do its bookkeeping (breaker,
 * adaptive timeout, backpressure, metrics) and to classify a failure: one more promise, two
 * closures and one more hop before the caller resumes, per operation. With it, the options object
 * the guard passes is a {@linkcode SettleHook}: a backend that takes it sets `hooked` (during the
 * call) and calls `settled` exactly once, synchronously, as the operation settles and before
 * its own promise does, rejecting with what `settled` returns. A backend that does not know it
 * reads the object as plain {@linkcode OperationOptions} and leaves `hooked` false, and the guard
 * chains its `then` as before.
 *
 * @module
 */
import type { OperationOptions } from "./types.ts";

/** Options of one operation that carry the guard's bookkeeping (see the module documentation). */
export interface SettleHook extends OperationOptions {
  /** Set to `true` by the backend, during its call, when it will call {@linkcode settled}. */
  hooked: boolean;
  /**
   * Called once as the operation settles, before its promise does: `null` on success, else the
   * failure. Returns what the promise rejects with (the classified failure); `null` on success.
   */
  settled(error: unknown): unknown;
}

/** `opts` as a {@linkcode SettleHook}, if it is one. */
export function settleHookOf(opts: OperationOptions | undefined): SettleHook | undefined {
  return opts !== undefined && typeof (opts as SettleHook).settled === "function"
    ? opts as SettleHook
    : undefined;
}

/**
 * Settle an operation's promise with `value` after its `hook` (if any) saw the success: `ok(value)`,
 * or `fail` with what the hook threw (as a throw in a guard's `then` would reject).
 */
export function settleOk<T>(
  hook: SettleHook | undefined,
  ok: (v: T) => void,
  fail: (e: unknown) => void,
  value: T,
): void {
  if (hook !== undefined) {
    try {
      hook.settled(null);
    } catch (e) {
      return fail(e);
    }
  }
  ok(value);
}

/**
 * Settle an operation's promise with the failure `error` after its `hook` (if any) saw it: `fail`
 * with what the hook classified (or threw), else with `error` itself.
 */
export function settleFailed(
  hook: SettleHook | undefined,
  fail: (e: unknown) => void,
  error: unknown,
): void {
  if (hook === undefined) return fail(error);
  let out: unknown;
  try {
    out = hook.settled(error);
  } catch (x) {
    out = x;
  }
  fail(out);
}
