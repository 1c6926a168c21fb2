/**
 * The optional capabilities of a guarded backend: each inner capability wrapped so that its calls
 * go through the guard too. `ttl`, `tags.setWithTags` and `fetchLock` get the full guard (they
 * are reads and writes like `get`/`set`: each `fetchLock` attempt is one round trip, counted as a
 * `get` when it is the call's first read, else as a `lock`: a call counts one `get`); `prefix`, `tags` and `lock` the breaker and backpressure but not the
 * adaptive timeout (bulk operations and lock waits legitimately take longer than a `GET`);
 * `invalidation` is passed through. Separate from the per-operation guard it calls.
 *
 * @module
 */
import type {
  BackendCapabilities,
  FetchLockCapability,
  LockCapability,
  OperationOptions,
  PrefixCapability,
  TagCapability,
  TtlCapability,
} from "../backends/types.ts";

/**
 * Run one operation through the guard (`useTimeout`: whether the adaptive timeout applies;
 * `hookable`: whether `invoke` returns the inner capability's promise as it is, so that the options
 * it gets may be the guard's settle hook, `backends/_settle_hook.ts`).
 */
export type GuardRun = <T>(
  operation: string,
  invoke: (opts: OperationOptions | undefined) => Promise<T>,
  opts: OperationOptions | undefined,
  useTimeout: boolean,
  hookable?: boolean,
) => Promise<T>;

/**
 * The capabilities of the guarded backend: `caps` guarded by `run`, plus `timeouts: true`.
 *
 * @param caps The inner backend's capabilities.
 * @param run The guard.
 */
export function guardCapabilities(caps: BackendCapabilities, run: GuardRun): BackendCapabilities {
  const capabilities: BackendCapabilities = { timeouts: true };
  if (caps.ttl) capabilities.ttl = guardTtl(caps.ttl, run);
  if (caps.prefix) capabilities.prefix = guardPrefix(caps.prefix, run);
  if (caps.tags) capabilities.tags = guardTags(caps.tags, run);
  if (caps.lock) capabilities.lock = guardLock(caps.lock, run);
  if (caps.fetchLock) capabilities.fetchLock = guardFetchLock(caps.fetchLock, run);
  if (caps.invalidation) capabilities.invalidation = caps.invalidation;
  return capabilities;
}

function guardTtl(ttl: TtlCapability, run: GuardRun): TtlCapability {
  return {
    ttl: (key, opts) => run("ttl", (o) => ttl.ttl(key, o), opts, true),
    expire: (key, seconds, opts) => run("expire", (o) => ttl.expire(key, seconds, o), opts, true),
  };
}

function guardPrefix(prefix: PrefixCapability, run: GuardRun): PrefixCapability {
  const guarded: PrefixCapability = {
    deleteByPrefix: (p, opts) =>
      run("deleteByPrefix", (o) => prefix.deleteByPrefix(p, o), opts, false),
  };
  const byTenant = prefix.deleteByTenantPrefix?.bind(prefix);
  if (byTenant) {
    guarded.deleteByTenantPrefix = (p, opts) =>
      run("deleteByTenantPrefix", (o) => byTenant(p, o), opts, false);
  }
  return guarded;
}

function guardTags(tags: TagCapability, run: GuardRun): TagCapability {
  const guarded: TagCapability = {
    addTags: (key, t, ttl) => run("addTags", () => tags.addTags(key, t, ttl), undefined, false),
    invalidateTags: (t) => run("invalidateTags", () => tags.invalidateTags(t), undefined, false),
  };
  const setWithTags = tags.setWithTags?.bind(tags);
  if (setWithTags) {
    // A write like `set`: the full guard (timeout, breaker, backpressure).
    guarded.setWithTags = (key, value, ttl, t, opts) =>
      run("set", (o) => setWithTags(key, value, ttl, t, o), opts, true);
  }
  return guarded;
}

function guardLock(lock: LockCapability, run: GuardRun): LockCapability {
  return {
    acquire: (key, opts) => run("lock", () => lock.acquire(key, opts), undefined, false),
  };
}

function guardFetchLock(fl: FetchLockCapability, run: GuardRun): FetchLockCapability {
  return {
    fetchOrLock: (key, token, leaseMs, opts) =>
      run(
        opts?.read === true ? "get" : "lock",
        (o) => fl.fetchOrLock(key, token, leaseMs, opts?.lockOnly ? { ...o, lockOnly: true } : o),
        opts,
        true,
        true,
      ),
    setAndUnlock: (key, value, ttl, tags, token, opts, leaseUntil) =>
      run(
        "set",
        (o) => fl.setAndUnlock(key, value, ttl, tags, token, o, leaseUntil),
        opts,
        true,
        true,
      ),
    unlock: (key, token, opts) => run("unlock", (o) => fl.unlock(key, token, o), opts, true),
    inKey: fl.inKey && guardFetchLock(fl.inKey, run),
  };
}
