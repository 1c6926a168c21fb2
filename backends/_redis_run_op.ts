/**
 * One Redis operation under its deadline, as a single object: the common case of
 * `RedisCore.run`. Internal.
 *
 * `run`'s general path wraps an operation in a promise raced against a deadline entry, with
 * closures for success, failure, expiry and abort, a state object and a closure context holding
 * them: about 0.9 KB of allocations per command (sampled), two commands per locked miss (the
 * lease `SET … NX … GET`, then the value's `SET … PX … GET`). With a deadline, no caller's signal
 * and a ready connection (every command of a warm cache), it is one {@linkcode RunOp} instead: its
 * own `Deadline` linked into the shared {@linkcode DeadlineQueue} (methods, not closures), the
 * operation's state (`expired`), and the settlement of the one promise handed to the caller. The
 * guarantees are `run`'s: the deadline rejects with a `timeout` {@linkcode BackendError} (and
 * marks the state expired, so a long operation stops), failures are mapped by the host's `error`,
 * and the operation counts as in flight until it settles (`close()` waits for it).
 *
 * {@linkcode runOp} runs any `fn` that way (one `then` on its promise). An op that sends its one
 * command itself handles the reply in its own methods, so that the command's promise gets one
 * `then` in all: the plain write (`PlainSetOp`, `_redis_core.ts`) and the lease's attempt
 * (`LeaseOp`, `_redis_lease.ts`), both on every locked miss.
 *
 * With a {@linkcode SettleHook} (the guard's options, `_settle_hook.ts`), the op calls it as it
 * settles, before its promise does, and rejects with the failure the guard classified, so the guard
 * chains no `then` of its own. Only call sites whose promise is the operation's outcome pass one
 * (`RedisCore.run`'s `hook` parameter, `RedisCore.set`'s).
 *
 * @module
 */
import type { BackendError } from "../errors.ts";
import type { Deadline, DeadlineQueue } from "./_redis_deadlines.ts";
import { settleFailed, type SettleHook, settleOk } from "./_settle_hook.ts";

/** What a {@linkcode RunOp} needs from the core that runs it. */
export interface RunOpHost {
  /** Any failure as a `BackendError`. */
  error(e: unknown, operation: string): BackendError;
  /** A timeout error for `operation` after `ms`. */
  timeoutError(operation: string, ms: number): BackendError;
  /** An operation started (in-flight accounting: `close()` waits for it). */
  started(): void;
  /** The operation settled. */
  settled(): void;
}

// The settle functions of the promise being created, handed over by one shared executor: no
// closure is allocated per operation to capture them.
let nextResolve: ((v: unknown) => void) | undefined;
let nextReject: ((e: unknown) => void) | undefined;
function capture(resolve: (v: unknown) => void, reject: (e: unknown) => void): void {
  nextResolve = resolve;
  nextReject = reject;
}

/**
 * Run `fn` (the connection is ready) under the deadline of `queue`, counted from `startedAt`
 * (default: now), with `operation` naming its failures; `hook`: the guard's, called as it settles
 * (the caller has checked it is not taken yet; it is marked taken here).
 */
export function runOp<T>(
  host: RunOpHost,
  operation: string,
  queue: DeadlineQueue,
  startedAt: number | undefined,
  hook: SettleHook | undefined,
  fn: (state: RunOp) => Promise<T>,
): Promise<T> {
  const op = new RunOp(host, operation, queue, hook);
  op.start(startedAt);
  try {
    op.follow(fn(op));
  } catch (e) {
    op.reject(e); // settled like any failure (a hook is called: the guard's slot is given back)
  }
  return op.promise as Promise<T>;
}

/**
 * A command under its deadline that is its own deadline and operation state. A subclass that
 * sends one command itself handles its reply in {@linkcode RunOp.reply} and
 * {@linkcode RunOp.failed} (see {@linkcode RunOp.send}): one `then` on the command's promise,
 * where `fn` under `runOp` chains its own and the op one more.
 */
export class RunOp implements Deadline {
  at = 0;
  prev: Deadline | undefined = undefined;
  next: Deadline | undefined = undefined;
  linked = false;
  /** Set when the operation failed or its deadline passed: a long operation stops. */
  expired = false;
  /** The promise handed to the caller. */
  readonly promise: Promise<unknown>;
  #done = false;
  readonly #host: RunOpHost;
  readonly #operation: string;
  readonly #queue: DeadlineQueue;
  readonly #ok: (v: unknown) => void;
  readonly #fail: (e: unknown) => void;
  readonly #hook: SettleHook | undefined;

  /** `hook`: not taken yet (it is marked taken by {@linkcode RunOp.start}). */
  constructor(
    host: RunOpHost,
    operation: string,
    queue: DeadlineQueue,
    hook: SettleHook | undefined,
  ) {
    this.promise = new Promise(capture);
    this.#ok = nextResolve!;
    this.#fail = nextReject!;
    nextResolve = nextReject = undefined;
    this.#host = host;
    this.#operation = operation;
    this.#queue = queue;
    this.#hook = hook;
  }

  /** The operation starts: the hook is taken, it counts in flight, its deadline runs. */
  start(startedAt: number | undefined): void {
    this.#host.started();
    this.#queue.link(this, startedAt);
    if (this.#hook !== undefined) this.#hook.hooked = true;
  }

  /** Settle with `p`'s outcome. */
  follow(p: Promise<unknown>): void {
    p.then((v) => this.resolve(v), (e) => this.reject(e));
  }

  /** Hand the reply of the op's command (`p`) to {@linkcode RunOp.reply} or {@linkcode RunOp.failed}. */
  protected send(p: Promise<unknown>): void {
    p.then((v) => this.reply(v), (e) => this.failed(e));
  }

  /**
   * The command's reply (see {@linkcode RunOp.send}); by default the result. Runs even after the
   * deadline: what a reply requires (retiring a replaced value's chunks) is still done.
   */
  protected reply(value: unknown): void {
    this.resolve(value);
  }

  /** The command failed (see {@linkcode RunOp.send}); by default the operation fails. */
  protected failed(error: unknown): void {
    this.reject(error);
  }

  /** Settle with the rest of the operation: a value, or a promise of it. */
  protected continueWith(rest: unknown): void {
    if (rest instanceof Promise) this.follow(rest);
    else this.resolve(rest);
  }

  /** The operation's result. */
  resolve(value: unknown): void {
    if (this.#done) return;
    this.#end();
    settleOk(this.#hook, this.#ok, this.#fail, value);
  }

  /** The operation failed. */
  reject(error: unknown): void {
    if (this.#done) return;
    this.expired = true;
    this.#end();
    this.failWith(this.#host.error(error, this.#operation));
  }

  /** The deadline passed. */
  fire(): void {
    if (this.#done) return;
    this.expired = true;
    this.#end();
    this.failWith(this.#host.timeoutError(this.#operation, this.#queue.ms));
  }

  /**
   * Fail with `e` (the operation has ended: no longer in flight, its deadline gone): the hook,
   * then the promise. A subclass may do something first (and call this once it is done).
   */
  protected failWith(e: BackendError): void {
    settleFailed(this.#hook, this.#fail, e);
  }

  #end(): void {
    this.#done = true;
    this.#queue.remove(this);
    this.#host.settled();
  }
}
