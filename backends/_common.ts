/**
 * Helpers shared by the in-tree backends (internal): per-operation deadlines
 * (`OperationOptions.timeoutMs` / `signal`), TTL and lock option validation.
 *
 * @module
 */

import { BackendError } from "../errors.ts";
import type { LockOptions, OperationOptions } from "./types.ts";

/**
 * Run `fn` under the deadline in `opts`. Rejects with a `BackendError` of kind `timeout` when the
 * signal is (or becomes) aborted or `timeoutMs` passes first. The underlying work is not cancelled
 * (file system calls cannot be), only abandoned. Without options, `fn` runs with no overhead.
 */
export function withDeadline<T>(
  backend: string,
  operation: string,
  opts: OperationOptions | undefined,
  fn: () => Promise<T>,
): Promise<T> {
  if (opts === undefined || (opts.signal === undefined && opts.timeoutMs === undefined)) {
    return fn();
  }
  const { signal, timeoutMs } = opts;
  if (timeoutMs !== undefined && !(typeof timeoutMs === "number" && timeoutMs >= 0)) {
    return Promise.reject(
      new BackendError(`timeoutMs must be a number >= 0, got ${String(timeoutMs)}`, {
        kind: "permanent",
        backend,
        operation,
      }),
    );
  }
  const timeoutError = (why: string) =>
    new BackendError(`${backend} ${operation} ${why}`, { kind: "timeout", backend, operation });
  if (signal?.aborted) return Promise.reject(timeoutError("aborted before it started"));
  return new Promise<T>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      cleanup();
      reject(timeoutError("aborted"));
    };
    signal?.addEventListener("abort", onAbort, { once: true });
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => {
        cleanup();
        reject(timeoutError(`timed out after ${timeoutMs} ms`));
      }, timeoutMs);
    }
    fn().then(
      (v) => {
        cleanup();
        resolve(v);
      },
      (e) => {
        cleanup();
        reject(e);
      },
    );
  });
}

/** Validate a TTL in seconds; null/undefined/0 = none. */
export function checkTtl(backend: string, operation: string, ttl: number | null | undefined): void {
  if (ttl === null || ttl === undefined) return;
  if (typeof ttl !== "number" || !Number.isFinite(ttl) || ttl < 0) {
    throw new BackendError(
      `ttlSeconds must be a finite number >= 0 or null, got ${String(ttl)}`,
      { kind: "permanent", backend, operation },
    );
  }
}

/** Validate `LockOptions` (shared by the in-tree backends). */
export function checkLockOptions(backend: string, opts: LockOptions): void {
  const ok = (v: unknown) => typeof v === "number" && Number.isFinite(v) && v >= 0;
  if (
    opts === null || typeof opts !== "object" || !ok(opts.leaseMs) || opts.leaseMs === 0 ||
    !ok(opts.waitMs)
  ) {
    throw new BackendError("lock options need leaseMs > 0 and waitMs >= 0 (milliseconds)", {
      kind: "permanent",
      backend,
      operation: "lock",
    });
  }
}

/** The error a lock wait rejects with when its signal aborts. */
export function lockAborted(backend: string): BackendError {
  return new BackendError(`${backend} lock wait aborted`, {
    kind: "timeout",
    backend,
    operation: "lock",
  });
}
