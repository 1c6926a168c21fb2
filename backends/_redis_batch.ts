/**
 * Batching of concurrent operations of one kind into one Redis command: the `GET`s that
 * concurrent calls start in the same turn of the event loop go out as one `MGET`, their
 * read-or-lock scripts as one script call over all their keys, their store-and-unlock scripts as
 * one. Internal to the Redis backend, single server only (a cluster spreads keys over slots).
 *
 * Why: at 100 concurrent calls, what a Redis read or write costs is mostly per command, on both
 * sides: node-redis spends ~3 µs of JavaScript per command (queue entry, encoding, reply parsing,
 * a promise), and Redis ~2.5 µs per script call before the script's own commands run
 * (`bench/redis_lock_shapes_bench.ts`, `bench/MEASUREMENTS.md`). One command per batch pays those
 * once for the batch; each operation keeps its own deadline, breaker verdict and metrics, which
 * the layers above apply per operation as before.
 *
 * Order is kept: a batch is flushed before any other command is sent on the connection (the
 * driver calls {@linkcode CommandBatch.flush} first), and before an operation of another kind
 * joins, so the commands reach Redis in the order their operations started, as they did one by
 * one. A batch also goes out when it reaches {@linkcode MAX_BATCH} operations or
 * {@linkcode MAX_BATCH_BYTES} of values to write, so that one command never carries many large
 * values. Reads cannot be bounded that way (their sizes are known only from the reply): the
 * callers of one `MGET` get their values together, when its whole reply has arrived.
 *
 * @module
 */

/** Most operations in one batch. */
export const MAX_BATCH = 128;
/** A batch whose values (writes) reach this many bytes goes out at once. */
export const MAX_BATCH_BYTES: number = 256 * 1024;

/** One queued operation: what it needs to be sent, and how to settle its caller. */
export interface BatchEntry {
  /** Settle the operation with its part of the reply. */
  resolve(value: unknown): void;
  /** Fail the operation (the batch's command failed, or its own part did). */
  reject(error: unknown): void;
}

/** A kind of batchable operation: how a batch of its entries goes out. */
export interface BatchKind<E extends BatchEntry> {
  /** Send `entries` (at least one, in the order they were queued) and settle each. */
  flush(entries: E[]): void;
}

/** The batch being collected on one connection (at most one kind at a time). */
export class CommandBatch {
  // deno-lint-ignore no-explicit-any
  #kind: BatchKind<any> | undefined;
  #entries: BatchEntry[] = [];
  #bytes = 0;
  #scheduled = false;
  readonly #task = (): void => {
    this.#scheduled = false;
    this.flush();
  };

  /** Whether operations are waiting to go out. */
  get pending(): boolean {
    return this.#entries.length > 0;
  }

  /**
   * Queue `entry` of `kind` (with `bytes` of value to send); it goes out with the batch at the
   * end of the current turn of the event loop, or earlier (see the module documentation).
   */
  add<E extends BatchEntry>(kind: BatchKind<E>, entry: E, bytes = 0): void {
    if (this.#kind !== kind && this.#entries.length > 0) this.flush();
    this.#kind = kind;
    this.#entries.push(entry);
    this.#bytes += bytes;
    if (this.#entries.length >= MAX_BATCH || this.#bytes >= MAX_BATCH_BYTES) {
      this.flush();
      return;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#task);
    }
  }

  /** Send what is queued now, as one command. */
  flush(): void {
    const entries = this.#entries;
    if (entries.length === 0) return;
    const kind = this.#kind!;
    this.#entries = [];
    this.#bytes = 0;
    this.#kind = undefined;
    try {
      kind.flush(entries);
    } catch (e) {
      for (const entry of entries) entry.reject(e);
    }
  }
}
