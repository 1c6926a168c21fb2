/**
 * Helpers shared by the in-tree backends (internal): per-operation deadlines
 * (`OperationOptions.timeoutMs` / `signal`), TTL and lock option validation, the capability
 * object of the local backends (memory, file), and unref'd timers.
 *
 * @module
 */

import { BackendError } from "../errors.ts";
import type {
  LockCapability,
  LockHandle,
  LockOptions,
  OperationOptions,
  PrefixCapability,
  TagCapability,
  TtlCapability,
} from "./types.ts";

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

/**
 * The error of an operation on a backend that was closed (`close()`): kind `closed`, saying what to
 * do. The engine reports it without a console notice: the application closed the backend.
 */
export function closedError(backend: string, operation: string): BackendError {
  return new BackendError(
    `${backend} ${operation} refused: the backend was closed. Close a backend only once the ` +
      "cached functions that use it are done, or give them an open one.",
    { kind: "closed", backend, operation },
  );
}

/** The error a lock wait rejects with when its signal aborts. */
export function lockAborted(backend: string): BackendError {
  return new BackendError(`${backend} lock wait aborted`, {
    kind: "timeout",
    backend,
    operation: "lock",
  });
}

/** Every optional capability, as the local backends (memory, file) offer them. */
export interface LocalCapabilities {
  /** TTL inspection and refresh. */
  readonly ttl: TtlCapability;
  /** Lease locks. */
  readonly lock: LockCapability;
  /** Honours `timeoutMs` and `signal`. */
  readonly timeouts: true;
  /** Prefix deletion, also under every tenant segment. */
  readonly prefix: Required<PrefixCapability>;
  /** Tag index, with value and tags written together. */
  readonly tags: Required<TagCapability>;
}

/** The operations of a local backend behind {@linkcode LocalCapabilities}. */
export interface LocalCapabilityOps {
  /** Runs one operation under the backend's closed check and `opts` deadline. */
  run<T>(
    operation: string,
    opts: OperationOptions | undefined,
    fn: () => T | Promise<T>,
  ): Promise<T>;
  ttl(key: string): number | null | Promise<number | null>;
  expire(key: string, ttlSeconds: number): boolean | Promise<boolean>;
  acquire(key: string, opts: LockOptions): Promise<LockHandle | null>;
  deleteByPrefix(prefix: string): number | Promise<number>;
  deleteByTenantPrefix(prefix: string): number | Promise<number>;
  setWithTags(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[],
  ): void | Promise<void>;
  addTags(key: string, tags: readonly string[], ttlSeconds?: number | null): void | Promise<void>;
  invalidateTags(tags: readonly string[]): string[] | Promise<string[]>;
}

/** The capability object of a local backend: each operation runs through `ops.run`. */
export function localCapabilities(ops: LocalCapabilityOps): LocalCapabilities {
  return {
    ttl: {
      ttl: (key, opts) => ops.run("ttl", opts, () => ops.ttl(key)),
      expire: (key, ttlSeconds, opts) => ops.run("expire", opts, () => ops.expire(key, ttlSeconds)),
    },
    lock: { acquire: (key, opts) => ops.acquire(key, opts) },
    timeouts: true,
    prefix: {
      deleteByPrefix: (prefix, opts) =>
        ops.run("deleteByPrefix", opts, () => ops.deleteByPrefix(prefix)),
      deleteByTenantPrefix: (prefix, opts) =>
        ops.run("deleteByTenantPrefix", opts, () => ops.deleteByTenantPrefix(prefix)),
    },
    tags: {
      addTags: (key, tags, ttlSeconds) =>
        ops.run("addTags", undefined, () => ops.addTags(key, tags, ttlSeconds)),
      invalidateTags: (tags) =>
        ops.run("invalidateTags", undefined, () => ops.invalidateTags(tags)),
      setWithTags: (key, value, ttlSeconds, tags, opts) =>
        ops.run("set", opts, () => ops.setWithTags(key, value, ttlSeconds, tags)),
    },
  };
}

/** Let a timer not keep the process alive (Node/Bun timer objects, or Deno's numeric ids). */
export function unrefTimer(timer: unknown): void {
  if (typeof timer === "object" && timer !== null && "unref" in timer) {
    (timer as { unref(): void }).unref();
    return;
  }
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  if (typeof timer === "number" && typeof deno?.unrefTimer === "function") deno.unrefTimer(timer);
}
