/**
 * The options a guarded `get`, `set` or stampede-lock attempt or write (`fetchOrLock`,
 * `setAndUnlock`) passes to its backend, as a settle hook (`backends/_settle_hook.ts`):
 * what the guard's bookkeeping of the operation needs (its name, start, adaptive timeout, limit and
 * the caller's options), and the guard's settle step to run with them. A backend that takes the
 * hook calls `settled` as the operation settles; the guard then chains no `then` of its own.
 * Internal.
 *
 * @module
 */
import type { SettleHook } from "../backends/internal.ts";
import type { BackendError } from "../errors.ts";
import type { AdaptiveTimeout } from "./adaptive_timeout.ts";

/** One guarded operation's options and settle hook. */
export class GuardHook<O> implements SettleHook {
  /** Set by a backend that will call {@linkcode GuardHook.settled}. */
  hooked = false;
  /** The deadline the backend applies (unset: none). */
  timeoutMs?: number;
  /** When the guard started the operation (`performance.now()`). */
  startedAt?: number;
  /** The caller's signal. */
  signal?: AbortSignal;
  readonly #settle: (h: GuardHook<O>, error: unknown) => BackendError | null;

  /**
   * @param settle The guard's settle step (returns the classified failure, or `null`).
   * @param operation The operation's name (metrics, errors).
   * @param start The guard's start reading (0 when it read none).
   * @param at The adaptive timeout recording the duration, if on.
   * @param limitMs The operation's limit (`Infinity`: none), as the guard computed it.
   * @param opts The caller's options.
   */
  constructor(
    settle: (h: GuardHook<O>, error: unknown) => BackendError | null,
    readonly operation: string,
    readonly start: number,
    readonly at: AdaptiveTimeout | null,
    readonly limitMs: number,
    readonly opts: O | undefined,
  ) {
    this.#settle = settle;
  }

  /** The operation settled (`null`: success): the guard's bookkeeping; the failure to reject with. */
  settled(error: unknown): BackendError | null {
    return this.#settle(this, error);
  }
}
