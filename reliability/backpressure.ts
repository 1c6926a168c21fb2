/**
 * A bound on concurrent L2 operations, with cachekit-py's defaults: 100 at once, up to 1000 more
 * waiting, each waiting at most 0.1 s. A call that finds the queue full, or waits past the wait
 * timeout, is refused with {@linkcode BackpressureError} (a `BackendError` of kind `transient`
 * with `skipL2: true`): the engine then answers from L1 or the function. Nothing ever queues
 * without limit, and a refusal costs no more than the wait timeout.
 *
 * The fast path ({@linkcode Backpressure.tryAcquire}) is synchronous: one comparison and an
 * increment. Waiters are served first come, first served.
 *
 * Hand-written: `p-limit`/`p-queue` queue without bound or time limit and `async-sema` has no wait
 * timeout; `cockatiel`'s bulkhead rejects on a full queue but cannot bound the wait.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Backpressure, BackpressureError } from "@cachekit/core/reliability";
 *
 * const bp = new Backpressure({ maxConcurrent: 1, queueSize: 0 });
 * const slow = bp.run(() => new Promise((r) => setTimeout(r, 20)));
 * const refused = await bp.run(() => Promise.resolve("never")).catch((e) => e);
 * assert.ok(refused instanceof BackpressureError);
 * await slow;
 * ```
 *
 * @module
 */

import { BackendError } from "../errors.ts";
import { intOption, numOption } from "./_validate.ts";
import { withoutStack } from "./_cheap_error.ts";

/** Options of {@linkcode Backpressure}; the wait timeout in seconds like cachekit-py. */
export interface BackpressureOptions {
  /** Operations allowed at once. Default 100. */
  maxConcurrent?: number;
  /** Operations allowed to wait for a slot. Default 1000 (0 = refuse at once when full). */
  queueSize?: number;
  /** Longest wait for a slot, seconds. Default 0.1. */
  waitTimeout?: number;
  /** Name used in errors. Default `"backend"`. */
  name?: string;
}

/** Counters of a {@linkcode Backpressure}, for health and metrics. */
export interface BackpressureSnapshot {
  /** Operations running now. */
  active: number;
  /** Operations waiting now. */
  queued: number;
  /** Refused because the queue was full, ever. */
  rejectedQueueFull: number;
  /** Refused because the wait timed out, ever. */
  rejectedWaitTimeout: number;
  /** The configuration in force. */
  config: { maxConcurrent: number; queueSize: number; waitTimeout: number };
}

/**
 * Refusal by {@linkcode Backpressure}: too many L2 operations at once. Kind `transient`,
 * `skipL2: true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackpressureError } from "@cachekit/core/reliability";
 * const e = new BackpressureError("redis", "get", "queue full");
 * assert.equal(e.kind, "transient");
 * assert.ok(e.skipL2);
 * ```
 */
export class BackpressureError extends BackendError {
  /** Always `true`: the call was not attempted; skip L2. */
  readonly skipL2: true = true;
  /** `"queue full"` or `"wait timeout"`. */
  readonly reason: "queue full" | "wait timeout";

  /**
   * Create the object from its options (validated at once).
   *
   * @param backend Backend name.
   * @param operation The refused operation.
   * @param reason Why it was refused.
   */
  constructor(backend: string, operation: string, reason: "queue full" | "wait timeout") {
    super(`${backend} ${operation} refused by backpressure (${reason}); L2 skipped`, {
      kind: "transient",
      backend,
      operation,
    });
    this.reason = reason;
  }
}

interface Waiter {
  resolve: () => void;
  reject: (e: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  settled: boolean;
  operation: string;
}

/** A concurrency limiter with a bounded, time-limited queue. */
export class Backpressure {
  /** Name used in errors. */
  readonly name: string;
  readonly #max: number;
  readonly #queueSize: number;
  readonly #waitMs: number;
  #active = 0;
  #queue: Waiter[] = [];
  #head = 0;
  #queued = 0;
  #rejectedFull = 0;
  #rejectedTimeout = 0;

  /**
   * Create the object from its options (validated at once).
   *
   * @param options Limits; see {@linkcode BackpressureOptions}.
   * @throws {CacheConfigError} on an invalid option.
   */
  constructor(options: BackpressureOptions = {}) {
    this.#max = intOption("backpressure.maxConcurrent", options.maxConcurrent, 100, 1);
    this.#queueSize = intOption("backpressure.queueSize", options.queueSize, 1000, 0);
    this.#waitMs = numOption("backpressure.waitTimeout", options.waitTimeout, 0.1, 0) * 1000;
    this.name = options.name ?? "backend";
  }

  /** Operations running now. */
  get active(): number {
    return this.#active;
  }

  /** Operations waiting now. */
  get queued(): number {
    return this.#queued;
  }

  /** Take a slot if one is free right now (no waiting). Pair a `true` with {@linkcode release}. */
  tryAcquire(): boolean {
    if (this.#active < this.#max && this.#queued === 0) {
      this.#active++;
      return true;
    }
    return false;
  }

  /**
   * Take a slot, waiting up to `waitTimeout` for one. Rejects with {@linkcode BackpressureError}
   * when the queue is full or the wait times out. Pair a resolution with {@linkcode release}.
   *
   * @param operation Operation name for the refusal error.
   */
  acquire(operation = "call"): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.#queued >= this.#queueSize || this.#waitMs === 0) {
      this.#rejectedFull++;
      return Promise.reject(
        withoutStack(() => new BackpressureError(this.name, operation, "queue full")),
      );
    }
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject, timer: undefined, settled: false, operation };
      waiter.timer = setTimeout(() => {
        if (waiter.settled) return;
        waiter.settled = true;
        this.#queued--;
        this.#rejectedTimeout++;
        reject(
          withoutStack(() => new BackpressureError(this.name, waiter.operation, "wait timeout")),
        );
      }, this.#waitMs);
      // Timed-out waiters stay in the array until passed over; never let them pile up.
      if (this.#queue.length - this.#head > 2 * this.#queueSize + 16) {
        this.#queue = this.#queue.slice(this.#head).filter((x) => !x.settled);
        this.#head = 0;
      }
      this.#queue.push(waiter);
      this.#queued++;
    });
  }

  /** Give a slot back; the longest waiter (if any) gets it. */
  release(): void {
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const w = queue[this.#head];
      queue[this.#head++] = undefined as unknown as Waiter;
      if (w.settled) continue;
      w.settled = true;
      clearTimeout(w.timer);
      this.#queued--;
      this.#compact();
      w.resolve(); // the slot passes to the waiter: #active unchanged
      return;
    }
    this.#compact();
    if (this.#active > 0) this.#active--;
  }

  /**
   * Run `fn` in a slot (waiting as {@linkcode acquire} does).
   *
   * @param fn The bounded operation.
   * @param operation Operation name for the refusal error.
   * @returns What `fn` resolves.
   */
  async run<T>(fn: () => Promise<T>, operation = "call"): Promise<T> {
    await this.acquire(operation);
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  /** Counters and configuration. */
  snapshot(): BackpressureSnapshot {
    return {
      active: this.#active,
      queued: this.#queued,
      rejectedQueueFull: this.#rejectedFull,
      rejectedWaitTimeout: this.#rejectedTimeout,
      config: {
        maxConcurrent: this.#max,
        queueSize: this.#queueSize,
        waitTimeout: this.#waitMs / 1000,
      },
    };
  }

  #compact(): void {
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
  }
}
