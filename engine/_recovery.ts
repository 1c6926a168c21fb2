/**
 * Auto-recovery of remote operations: a deletion, a tag invalidation or a bus publish that failed
 * because L2 or its bus was down is queued, per backend, and retried when the backend answers
 * again, so that an invalidation made during an outage still reaches L2 and the other instances.
 *
 * - **What is queued**: operations that make entries go away (`delete`, `deleteByPrefix`,
 *   `invalidateTags`) and invalidation events (`publish`). Not writes: a value that could not be
 *   written is only a miss later, while a deletion that never happens leaves an invalidated value
 *   readable by every instance.
 * - **Bounded and deduplicated**: one pending operation per target (key, prefix, tag, event), in
 *   the order they first failed; beyond {@linkcode MAX_PENDING} the oldest is dropped and counted
 *   (`dropped` in health) with a warning.
 * - **When retried**: at once after the next successful operation on the backend (any function's
 *   L2 read or write, a health check; {@linkcode nudgeRecovery}), and by an unref'd timer with
 *   exponential backoff ({@linkcode FIRST_RETRY_MS} doubling up to {@linkcode MAX_RETRY_MS}), so a
 *   process whose functions are all answered from L1 recovers too, and a script still exits. One
 *   drain at a time per backend, in queue order; it stops at the first failure and waits for the
 *   next trigger. An operation refused for good (`BackendError` of kind `permanent`) is dropped.
 * - **Applied locally again** after a successful retry (each operation's `after`): a call made
 *   between the backend's return and the retry may have read the old entry back into L1.
 * - **Health**: {@linkcode recoveryStatus} (pending, dropped, last retry), reported as the
 *   `recovery` component of a function and of its backend (`degraded` while anything is pending).
 *
 * Retries run on the backend itself, not through its reliability guard: they are the probe that
 * tells whether it is back, and must not wait for a circuit breaker that only calls reopen.
 *
 * Hand-written: FusionCache's auto-recovery queue lives inside its own cache and backplane; ours
 * sits beside this engine's invalidation paths and its per-backend guard.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { unrefTimer } from "../backends/internal.ts";
import { BackendError } from "../errors.ts";
import { getCacheLogger } from "../health/logging.ts";
import { GuardedBackend } from "../reliability/guarded_backend.ts";

const log = getCacheLogger("engine", "recovery");

/** Pending operations kept per backend at most; the oldest is dropped beyond. */
export const MAX_PENDING: number = 1000;
/** Delay of the first timed retry after a failure, ms. */
export const FIRST_RETRY_MS: number = 500;
/** Longest delay between timed retries, ms. */
export const MAX_RETRY_MS: number = 30_000;
/** A successful operation retries the queue at most this often, ms. */
const NUDGE_GAP_MS = 100;

/** One remote operation waiting to be retried. */
export interface PendingOperation {
  /** Deduplication id: at most one pending operation per id (and backend). */
  readonly id: string;
  /** What it is, for logs: `delete`, `deleteByPrefix`, `invalidateTags`, `publish`. */
  readonly kind: string;
  /** Run it on the backend (the unguarded one). */
  run(b: Backend): Promise<unknown>;
  /** After a successful retry: apply it to this process again (evict what L1 read meanwhile). */
  after?(): void;
}

/** The recovery queue of one backend, as health reports it. */
export interface RecoveryStatus {
  /** Operations waiting to be retried. */
  pending: number;
  /** Operations given up: dropped beyond {@linkcode MAX_PENDING}, or refused for good. */
  dropped: number;
  /**
   * The last retry: when (ISO time), whether the queue was emptied, the error that stopped it,
   * and how many operations it completed; `null` before the first.
   */
  lastRetry: { at: string; ok: boolean; error: string | null; completed: number } | null;
}

/** Pending operations over every backend (read on the hot path by {@linkcode nudgeRecovery}). */
let pendingTotal = 0;
const queues = new WeakMap<Backend, RecoveryQueue>();

function target(b: Backend): Backend {
  return b instanceof GuardedBackend ? b.inner : b;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Whether a failed remote operation is worth retrying (not refused for good, nor closed). */
export function retryable(e: unknown): boolean {
  return !(e instanceof BackendError && (e.kind === "permanent" || e.kind === "closed"));
}

class RecoveryQueue {
  readonly #backend: Backend;
  readonly #ops = new Map<string, PendingOperation>();
  dropped = 0;
  lastRetry: RecoveryStatus["lastRetry"] = null;
  #delayMs = FIRST_RETRY_MS;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #draining = false;
  #lastAttempt = -Infinity;
  #warnedDrop = false;

  constructor(backend: Backend) {
    this.#backend = backend;
  }

  get pending(): number {
    return this.#ops.size;
  }

  add(op: PendingOperation): void {
    if (this.#ops.has(op.id)) return;
    if (this.#ops.size >= MAX_PENDING) {
      const oldest = this.#ops.keys().next().value!;
      this.#ops.delete(oldest);
      pendingTotal--;
      this.dropped++;
      if (!this.#warnedDrop) {
        this.#warnedDrop = true;
        log.warn(
          "{backend}: more than {max} remote operations wait for recovery; dropping the oldest " +
            "(the entries they would have removed may be served until they expire)",
          { backend: this.#backend.type, max: MAX_PENDING },
        );
      }
    }
    this.#ops.set(op.id, op);
    pendingTotal++;
    this.#schedule();
  }

  /** A successful operation was seen on the backend: retry now (unless one runs or just ran). */
  nudge(): void {
    if (this.#ops.size === 0 || this.#draining) return;
    if (performance.now() - this.#lastAttempt < NUDGE_GAP_MS) return;
    this.#cancelTimer();
    void this.#drain();
  }

  /** Drop everything (the backend is closed). */
  clear(): void {
    this.#cancelTimer();
    pendingTotal -= this.#ops.size;
    this.#ops.clear();
  }

  #cancelTimer(): void {
    if (this.#timer === null) return;
    clearTimeout(this.#timer);
    this.#timer = null;
  }

  #schedule(): void {
    if (this.#timer !== null || this.#draining || this.#ops.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#drain();
    }, this.#delayMs);
    unrefTimer(this.#timer);
  }

  async #drain(): Promise<void> {
    this.#draining = true;
    this.#lastAttempt = performance.now();
    let completed = 0;
    let failure: unknown = null;
    try {
      for (let op = this.#first(); op !== undefined; op = this.#first()) {
        let ok = true;
        try {
          await op.run(this.#backend);
        } catch (e) {
          if (retryable(e)) {
            failure = e;
            break;
          }
          ok = false;
          this.dropped++;
          // Closed by the application (at shutdown): quiet, as `recordFailure` is.
          const closed = e instanceof BackendError && e.kind === "closed";
          (closed ? log.debug : log.warn).call(
            log,
            "{backend}: pending {kind} refused for good, dropped: {error}",
            { backend: this.#backend.type, kind: op.kind, error: message(e) },
          );
        }
        if (this.#ops.get(op.id) === op) {
          this.#ops.delete(op.id);
          pendingTotal--;
        }
        if (!ok) continue;
        completed++;
        try {
          op.after?.();
        } catch { /* local eviction is best effort */ }
      }
    } finally {
      this.#draining = false;
    }
    const at = new Date().toISOString();
    if (failure === null) {
      this.lastRetry = { at, ok: true, error: null, completed };
      this.#delayMs = FIRST_RETRY_MS;
      this.#warnedDrop = false;
      if (completed > 0) {
        log.info("{backend}: recovered; {completed} queued remote operations applied", {
          backend: this.#backend.type,
          completed,
        });
      }
      return;
    }
    this.lastRetry = { at, ok: false, error: message(failure), completed };
    log.debug(
      "{backend}: recovery retry failed ({pending} pending, next in {delayMs} ms): {error}",
      {
        backend: this.#backend.type,
        pending: this.#ops.size,
        delayMs: this.#delayMs,
        error: message(failure),
      },
    );
    this.#schedule();
    this.#delayMs = Math.min(this.#delayMs * 2, MAX_RETRY_MS);
  }

  #first(): PendingOperation | undefined {
    return this.#ops.values().next().value;
  }
}

/**
 * Queue `ops` (in order) for retry on backend `b` after a retryable failure.
 *
 * @param b The backend the operations failed on (guarded or not: one queue per inner backend).
 * @param ops The operations, oldest first.
 */
export function queueRecovery(b: Backend, ops: Iterable<PendingOperation>): void {
  const t = target(b);
  let q = queues.get(t);
  if (q === undefined) queues.set(t, q = new RecoveryQueue(t));
  for (const op of ops) q.add(op);
}

/**
 * A successful operation was seen on backend `b` (or `null`/`undefined`: none): retry its queue.
 * Costs one comparison while nothing is pending anywhere.
 */
export function nudgeRecovery(b: Backend | null | undefined): void {
  if (pendingTotal === 0 || b === null || b === undefined) return;
  queues.get(target(b))?.nudge();
}

/** The recovery queue of backend `b` for health, or `null` when nothing was ever queued for it. */
export function recoveryStatus(b: Backend): RecoveryStatus | null {
  const q = queues.get(target(b));
  if (q === undefined) return null;
  return { pending: q.pending, dropped: q.dropped, lastRetry: q.lastRetry };
}

/** Drop the queue of backend `b` (it is being closed: its operations cannot run any more). */
export function dropRecovery(b: Backend): void {
  const t = target(b);
  queues.get(t)?.clear();
  queues.delete(t);
}
