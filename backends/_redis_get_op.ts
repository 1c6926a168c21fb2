/**
 * One batched Redis `GET` under its deadline, as a single object. Internal.
 *
 * `RedisCore.run`'s general path wraps an operation in a promise raced against a deadline entry,
 * with closures for success, failure, expiry and abort, a state object, and a `then` for in-flight
 * tracking (its common case is one object too: `_redis_run_op.ts`); the `GET` itself adds a promise for its place in the batch and a `then` that reads chunked values.
 * An L2 hit is the hot path of a Redis-backed cache (100 concurrent hits cost the client a few µs
 * each), so a plain `GET` (batched, with a deadline, without a caller's signal) is one
 * {@linkcode GetOp} instead: the batch entry, the deadline linked into the shared
 * {@linkcode DeadlineQueue}, and the settlement of the one promise handed to the caller. The
 * guarantees are those of `run`: the deadline still rejects a hung `GET` with a `timeout`
 * {@linkcode BackendError}, failures are mapped the same way, a chunked value is read whole under
 * the same deadline, and the operation counts as in flight until it settles.
 *
 * The plain batched `GET` without a deadline is here too ({@linkcode getBatch}: concurrent `GET`s
 * as one `MGET`).
 *
 * Under a guard, the options are its {@linkcode SettleHook} (`_settle_hook.ts`): the op calls it
 * as it settles, before its promise does, and rejects with the failure the guard classified, so
 * the guard chains no `then` of its own.
 *
 * @module
 */
import type { BackendError } from "../errors.ts";
import type { BatchEntry, BatchKind, CommandBatch } from "./_redis_batch.ts";
import type { Deadline, DeadlineQueue } from "./_redis_deadlines.ts";
import { fromBuffer, type RedisDriver } from "./_redis_driver.ts";
import { hasMagic } from "./_redis_chunks.ts";
import { settleFailed, type SettleHook, settleOk } from "./_settle_hook.ts";

/** What a {@linkcode GetOp} needs from the core that runs it. */
export interface GetOpHost {
  /** Any failure as a `BackendError`. */
  error(e: unknown, operation: string): BackendError;
  /** A timeout error for `operation` after `ms`. */
  timeoutError(operation: string, ms: number): BackendError;
  /** Read the value a chunk manifest stands for. */
  readChunked(full: string, manifest: Uint8Array, retries: number): Promise<Uint8Array | null>;
  /** An operation started (in-flight accounting: `close()` waits for it). */
  started(): void;
  /** The operation settled. */
  settled(): void;
}

/**
 * `GET full` in the connection's `batch` (as an entry of `kind`) under the deadline of `queue`,
 * counted from `startedAt` (default: now); `hook`: the guard's, called as it settles.
 */
export function batchedGet(
  host: GetOpHost,
  full: string,
  queue: DeadlineQueue,
  batch: CommandBatch,
  kind: BatchKind<GetOp>,
  startedAt: number | undefined,
  hook?: SettleHook,
): Promise<Uint8Array | null> {
  return new Promise((resolve, reject) => {
    const op = new GetOp(host, full, queue, resolve, reject, hook);
    try {
      host.started();
      queue.link(op, startedAt);
      batch.add(kind, op);
    } catch (e) {
      op.reject(e); // settled like any failure (a hook is called: the guard's slot is given back)
    }
  });
}

/** A batched `GET` that is its own batch entry and deadline. */
export class GetOp implements BatchEntry, Deadline {
  readonly full: string;
  at = 0;
  prev: Deadline | undefined = undefined;
  next: Deadline | undefined = undefined;
  linked = false;
  #done = false;
  readonly #host: GetOpHost;
  readonly #queue: DeadlineQueue;
  readonly #ok: (v: Uint8Array | null) => void;
  readonly #fail: (e: unknown) => void;
  readonly #hook: SettleHook | undefined;

  constructor(
    host: GetOpHost,
    full: string,
    queue: DeadlineQueue,
    ok: (v: Uint8Array | null) => void,
    fail: (e: unknown) => void,
    hook?: SettleHook,
  ) {
    this.#host = host;
    this.full = full;
    this.#queue = queue;
    this.#ok = ok;
    this.#fail = fail;
    this.#hook = hook;
  }

  /** The batch's reply for this key. */
  resolve(value: unknown): void {
    if (this.#done) return;
    const v = value as Uint8Array | null | undefined;
    if (v === null || v === undefined) return this.#settle(null);
    const bytes = fromBuffer(v);
    if (!hasMagic(bytes)) return this.#settle(bytes);
    // A chunked value: read whole, still under this deadline.
    this.#host.readChunked(this.full, bytes, 1).then(
      (whole) => {
        if (!this.#done) this.#settle(whole);
      },
      (e) => this.reject(e),
    );
  }

  /** The batch (or the chunked read) failed. */
  reject(error: unknown): void {
    if (this.#done) return;
    this.#end();
    this.#failWith(this.#host.error(error, "get"));
  }

  /** The deadline passed. */
  fire(): void {
    if (this.#done) return;
    this.#end();
    this.#failWith(this.#host.timeoutError("get", this.#queue.ms));
  }

  #settle(v: Uint8Array | null): void {
    this.#end();
    settleOk(this.#hook, this.#ok, this.#fail, v);
  }

  #failWith(e: BackendError): void {
    settleFailed(this.#hook, this.#fail, e);
  }

  #end(): void {
    this.#done = true;
    this.#queue.remove(this);
    this.#host.settled();
  }
}

/** A `GET` waiting in the connection's batch. */
export interface GetEntry extends BatchEntry {
  full: string;
}

/**
 * Concurrent `GET`s as one `MGET` (one alone as `GET`). `MGET` answers nil for a key holding
 * another type where `GET` fails with `WRONGTYPE`: in a batch such a key reads as a miss (and a
 * write replaces it, as `SET` does); alone it still fails.
 */
export function getBatch(driver: RedisDriver): BatchKind<GetEntry> {
  return { flush: (entries) => flushGets(driver, entries) };
}

function flushGets(driver: RedisDriver, entries: GetEntry[]): void {
  if (entries.length === 1) {
    const e = entries[0];
    driver.sendNow(e.full, true, ["GET", e.full], true).then(
      (v) => e.resolve(v),
      (x) => e.reject(x),
    );
    return;
  }
  const args: string[] = new Array(entries.length + 1);
  args[0] = "MGET";
  for (let i = 0; i < entries.length; i++) args[i + 1] = entries[i].full;
  driver.sendNow(undefined, true, args, true).then((replies) => {
    const r = replies as (Uint8Array | null)[];
    for (let i = 0; i < entries.length; i++) entries[i].resolve(r[i] ?? null);
  }, (error) => {
    for (const e of entries) e.reject(error);
  });
}
