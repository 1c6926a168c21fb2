/**
 * Distributed locks on Redis (`capabilities.lock`): `SET NX PX` with a random owner token, a Lua
 * compare-and-delete release, and a jittered backoff while waiting. Separate from the value path
 * because it has its own waiting and abort rules.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import type { LockCapability, LockHandle, LockOptions } from "./types.ts";
import { UNLOCK_SCRIPT } from "./_redis_chunks.ts";
import { checkKey, type RedisCore } from "./_redis_core.ts";

/** Locks stored at `keyPrefix + name`. */
export class RedisLocks implements LockCapability {
  readonly #core: RedisCore;

  /** The capability over `core`'s connection. */
  constructor(core: RedisCore) {
    this.#core = core;
  }

  /**
   * Acquire the lock `name` (stored at `keyPrefix + name`) with a lease; waits up to `waitMs`,
   * retrying with jittered backoff. Resolves `null` when not acquired in time; rejects with a
   * `closed` BackendError when the backend is closed (before or during the wait), and with a
   * `timeout` one when `signal` aborts the wait.
   */
  async acquire(name: string, opts: LockOptions): Promise<LockHandle | null> {
    checkKey(name, "lock");
    const leaseMs = opts?.leaseMs;
    const waitMs = opts?.waitMs;
    if (typeof leaseMs !== "number" || !Number.isFinite(leaseMs) || leaseMs < 1) {
      throw new BackendError(`Invalid lock leaseMs ${String(leaseMs)}: expected ms >= 1.`, {
        kind: "permanent",
        backend: "redis",
        operation: "lock",
      });
    }
    if (typeof waitMs !== "number" || !(waitMs >= 0)) {
      throw new BackendError(`Invalid lock waitMs ${String(waitMs)}: expected ms >= 0.`, {
        kind: "permanent",
        backend: "redis",
        operation: "lock",
      });
    }
    const full = this.#core.full(name);
    const token = crypto.randomUUID();
    const deadline = performance.now() + waitMs;
    const signal = opts.signal;
    let delay = 2;
    while (true) {
      if (signal?.aborted) throw lockAborted(signal);
      const reply = await this.#core.run(
        "lock",
        { timeoutMs: this.#core.opTimeoutMs },
        () =>
          this.#core.driver.send(full, false, [
            "SET",
            full,
            token,
            "NX",
            "PX",
            String(Math.ceil(leaseMs)),
          ]),
      );
      if (reply === "OK") return this.#handle(name, full, token);
      const left = deadline - performance.now();
      if (left <= 0) return null;
      const pause = Math.min(left, delay * (0.5 + Math.random()));
      delay = Math.min(delay * 2, 50);
      const aborted = await sleep(pause, signal);
      if (aborted) throw lockAborted(signal!);
    }
  }

  #handle(name: string, full: string, token: string): LockHandle {
    let released = false;
    const release = async (): Promise<boolean> => {
      if (released) return false;
      released = true;
      const n = await this.#core.run(
        "unlock",
        undefined,
        () => this.#core.driver.eval(UNLOCK_SCRIPT, [full], [token]),
      );
      return Number(n) === 1;
    };
    return {
      key: name,
      token,
      release,
      [Symbol.asyncDispose]: async () => {
        // The lease frees the lock anyway; a failing release must not mask the scope's outcome.
        await release().catch(() => {});
      },
    };
  }
}

function lockAborted(signal: AbortSignal): BackendError {
  return new BackendError("Redis lock wait aborted.", {
    kind: "timeout",
    backend: "redis",
    operation: "lock",
    cause: signal.reason,
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (aborted: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(aborted);
    };
    const onAbort = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
