/**
 * The lock capability of {@linkcode FileBackend}: a lock name per key (hashed, so any key is a
 * safe file name), the errors a caller sees, and the `LockHandle` over the lease lock files of
 * `_file_lock.ts` (the primitive shared with eviction).
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import { checkLockOptions, closedError, lockAborted } from "./_common.ts";
import { sha256Hex } from "./_file_format.ts";
import { type FileLocks, LockAbortedError } from "./_file_lock.ts";
import { errnoKind, type FileStore, TYPE } from "./_file_store.ts";
import type { LockHandle, LockOptions } from "./types.ts";

/**
 * Acquire the lock named `key`; `null` when not had within `opts.waitMs`. Rejects with a `closed`
 * BackendError when the backend is closed (before or during the wait).
 */
export async function acquire(
  store: FileStore,
  key: string,
  opts: LockOptions,
): Promise<LockHandle | null> {
  if (typeof key !== "string") {
    throw new BackendError("lock key must be a string", {
      kind: "permanent",
      backend: TYPE,
      operation: "lock",
    });
  }
  checkLockOptions(TYPE, opts);
  if (store.closed) throw closedError(TYPE, "lock");
  let locks: FileLocks;
  try {
    locks = (await store.init()).locks;
  } catch (e) {
    throw new BackendError(`cannot create the lock directory: ${(e as Error).message}`, {
      kind: errnoKind(e),
      backend: TYPE,
      operation: "lock",
      cause: e,
    });
  }
  const name = `${sha256Hex(`lock\0${key}`)}.lock`;
  let record;
  try {
    // A wait stops when the backend is closed: it neither keeps a script waiting for `waitMs`
    // nor takes the lock after close().
    record = await locks.acquire(name, opts.leaseMs, opts.waitMs, opts.signal, () => store.closed);
  } catch (e) {
    if (store.closed) throw closedError(TYPE, "lock");
    if (e instanceof LockAbortedError) throw lockAborted(TYPE);
    throw new BackendError(`lock ${key} failed: ${(e as Error).message}`, {
      kind: errnoKind(e),
      backend: TYPE,
      operation: "lock",
      cause: e,
    });
  }
  if (store.closed) {
    // Closed as its last try ran: a lock taken is given back.
    if (record !== null) await locks.release(name, record).catch(() => false);
    throw closedError(TYPE, "lock");
  }
  if (record === null) return null;
  let released: Promise<boolean> | undefined;
  const release = (): Promise<boolean> => {
    if (released !== undefined) return released.then(() => false);
    released = locks.release(name, record).catch(() => false);
    return released;
  };
  return {
    key,
    token: record.token,
    release,
    [Symbol.asyncDispose]: async () => void (await release()),
  };
}
