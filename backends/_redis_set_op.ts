/**
 * A plain write (`SET … GET`) under its deadline as one op (`_redis_run_op.ts`): the write of every
 * miss, with the release of the stampede lease when it fails in the lease's place. Internal.
 *
 * @module
 */
import type { BackendError } from "../errors.ts";
import { type RedisArg, toBuffer } from "./_redis_driver.ts";
import type { DeadlineQueue } from "./_redis_deadlines.ts";
import type { SettleHook } from "./_settle_hook.ts";
import { RunOp } from "./_redis_run_op.ts";
import type { RedisCore } from "./_redis_core.ts";

/** What releases a stampede lease (the lease capability's `unlock`). */
export interface Unlocker {
  /** Release the lease of `token` on `key`. */
  unlock(key: string, token: string): Promise<unknown>;
}

/** `SET full value [PX ttlMs] GET`. */
export function setArgs(full: string, value: Uint8Array, ttlMs: number): RedisArg[] {
  return ttlMs > 0
    ? ["SET", full, toBuffer(value), "PX", String(ttlMs), "GET"]
    : ["SET", full, toBuffer(value), "GET"];
}

/**
 * A plain write (`SET … GET`) under its deadline as one op: `RedisCore.#setPlain` without the
 * wrapper of `run` (a write on every miss).
 */
export class PlainSetOp extends RunOp {
  readonly #core: RedisCore;
  readonly #full: string;
  readonly #value: Uint8Array;
  readonly #ttlMs: number;
  #unlocker: Unlocker | undefined = undefined;
  #key = "";
  #token = "";

  constructor(
    core: RedisCore,
    queue: DeadlineQueue,
    hook: SettleHook | undefined,
    full: string,
    value: Uint8Array,
    ttlMs: number,
  ) {
    super(core, "set", queue, hook);
    this.#core = core;
    this.#full = full;
    this.#value = value;
    this.#ttlMs = ttlMs;
  }

  /** On failure, release the lease of `token` on `key` first (the write was to take its place). */
  unlockOnFailure(unlocker: Unlocker, key: string, token: string): void {
    this.#unlocker = unlocker;
    this.#key = key;
    this.#token = token;
  }

  protected override failWith(e: BackendError): void {
    const unlocker = this.#unlocker;
    if (unlocker === undefined) return super.failWith(e);
    // The marker goes before the failure is known (a waiter must not wait out the lease).
    const fail = () => super.failWith(e);
    let released: Promise<unknown>;
    try {
      released = unlocker.unlock(this.#key, this.#token);
    } catch {
      return fail();
    }
    released.then(fail, fail);
  }

  /** Send the write (after {@linkcode RunOp.start}). */
  write(): void {
    const full = this.#full;
    try {
      this.send(this.#core.driver.send(full, false, setArgs(full, this.#value, this.#ttlMs), true));
    } catch (e) {
      this.reject(e);
    }
  }

  /** `GET`'s part of the reply: the value replaced, whose chunks are retired if it was chunked. */
  protected override reply(old: unknown): void {
    if (old === null || old === undefined) return this.resolve(undefined);
    try {
      this.continueWith(this.#core.retireReplaced(this.#full, old as Uint8Array));
    } catch (e) {
      this.reject(e);
    }
  }

  /** A key of another type is overwritten by the Lua path; any other failure fails the write. */
  protected override failed(error: unknown): void {
    try {
      this.follow(this.#core.setOverOtherType(error, this.#full, this.#value, this.#ttlMs));
    } catch (e) {
      this.reject(e);
    }
  }
}
