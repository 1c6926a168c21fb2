/**
 * Invalidation: of one call, of a function (`cacheClear()`), the local and L2 parts the group
 * invalidations of the whole process are made of (`clearNamespace`, `invalidateTags`,
 * `clearFunction`: `_group_invalidation.ts`), and what other instances announce on the
 * invalidation bus; with the index of the L2 keys this process wrote per tag.
 *
 * Separate from the call flow: an invalidation only bumps the engine's epoch (so that work in
 * flight does not store) and evicts; the call flow reads the epoch and never calls in here,
 * except to record what it wrote (`trackWrite`) and announce it (`publish`).
 *
 * A remote part (L2 deletion, tag invalidation, bus publish) that fails on a retryable error is
 * queued for auto-recovery (`_recovery.ts`): retried when the backend answers again, then applied
 * to this process's L1 once more.
 *
 * @module
 */
import type { Backend, InvalidationEvent } from "../backends/types.ts";
import { underAnyTenant } from "../backends/types.ts";
import { type CacheLogger, getCacheLogger } from "../health/logging.ts";
import { GuardedBackend } from "../reliability/guarded_backend.ts";
import type { L1Entry } from "./l1.ts";
import type { ArgKey } from "./_argkey.ts";
import type { Engine } from "./_engine.ts";
import { hasUnknownTags, mayCarryTags, noteTagsPassedOver } from "./_factory_context.ts";
import { callTenant, fastKey, keyContext, type KeyCtx } from "./_keys.ts";
import { liveEngines, tenantSegments } from "./_registry.ts";
import { type PendingOperation, queueRecovery, retryable } from "./_recovery.ts";
import { errMessage, recordFailure, warnUnlessClosed } from "./_status.ts";
import { backendIndex } from "./_l1_store.ts";
import { emit } from "./_events.ts";
import { worksOn } from "./_inflight.ts";

const log = getCacheLogger("engine");
const MAX_TRACKED_KEYS = 100_000;

/** A prefix target `t:*:{rest}` stands for `{rest}` under every tenant segment. */
export const ANY_TENANT = "t:*:";

/** Whether backend key `key` falls under the prefix target `target` (see {@linkcode ANY_TENANT}). */
export function underTarget(key: string, target: string): boolean {
  return target.startsWith(ANY_TENANT)
    ? underAnyTenant(key, target.slice(ANY_TENANT.length))
    : key.startsWith(target);
}

/** Whether two prefix targets can match a common key. */
function overlaps(p: string, q: string): boolean {
  if (p.startsWith(ANY_TENANT) !== q.startsWith(ANY_TENANT)) {
    const [any, other] = p.startsWith(ANY_TENANT) ? [p, q] : [q, p];
    const end = other.startsWith("t:") ? other.indexOf(":", 2) : -1;
    if (end < 0) return false;
    p = any.slice(ANY_TENANT.length);
    q = other.slice(end + 1);
  }
  return p.startsWith(q) || q.startsWith(p);
}

/**
 * Delete every key under the prefix targets: `t:*:` ones through `deleteByTenantPrefix`, or, on a
 * backend without it, under the tenant segments this process has seen.
 */
async function deleteTargets(b: Backend, targets: string[]): Promise<void> {
  const cap = b.capabilities.prefix;
  if (!cap) return;
  for (const t of targets) {
    if (!t.startsWith(ANY_TENANT)) await cap.deleteByPrefix(t);
    else {
      const rest = t.slice(ANY_TENANT.length);
      if (cap.deleteByTenantPrefix) await cap.deleteByTenantPrefix(rest);
      else for (const seg of tenantSegments()) await cap.deleteByPrefix(`t:${seg}:${rest}`);
    }
  }
}

/** Whether `e` uses backend `b` (guarded or not). */
/** The backend a guard wraps, or `b` itself. */
export function unwrapped(b: Backend): Backend {
  return b instanceof GuardedBackend ? b.inner : b;
}

function usesBackend(e: Engine, b: Backend): boolean {
  const own = e.l2Backend;
  return own !== null && own !== undefined && unwrapped(own) === unwrapped(b);
}

/**
 * After a queued operation reached backend `b`: apply `event` to the L1 of every live function
 * using `b`, as a remote event (a call may have read the old entry back since the invalidation).
 */
export function reapply(b: Backend, event: InvalidationEvent): void {
  for (const e of liveEngines()) if (usesBackend(e, b)) onRemoteEvent(e, event);
}

/**
 * The L2 deletion of `key`, for the recovery queue; after it, `local` evicts what the event alone
 * cannot find (an L1 without its backend-key index: `l1.invalidation` off).
 */
function deleteOp(b: Backend, key: string, local?: () => void): PendingOperation {
  return {
    id: `delete:${key}`,
    kind: "delete",
    run: (t) => t.delete(key),
    after: () => {
      reapply(b, { level: "key", targets: [key], reason: "delete", sender: "" });
      local?.();
    },
  };
}

/** The deletion of every key under the prefix target `target`, for the recovery queue. */
function prefixOp(b: Backend, target: string, local?: () => void): PendingOperation {
  return {
    id: `prefix:${target}`,
    kind: "deleteByPrefix",
    run: (t) => deleteTargets(t, [target]),
    after: () => {
      reapply(b, { level: "prefix", targets: [target], sender: "" });
      local?.();
    },
  };
}

/** The invalidation of `tag` in L2, for the recovery queue. */
export function tagOp(b: Backend, tag: string): PendingOperation {
  return {
    id: `tag:${tag}`,
    kind: "invalidateTags",
    run: async (t) => {
      const deleted = await t.capabilities.tags?.invalidateTags([tag]) ?? [];
      // As `invalidateTagsEverywhere` does: the deleted entries by key, here and on the bus.
      await deletedKeys(b, liveEngines().filter((e) => usesBackend(e, b)), deleted);
    },
    after: () => reapply(b, { level: "tags", targets: [tag], sender: "" }),
  };
}

/** The publication of `event` on the bus, for the recovery queue. */
function publishOp(event: Omit<InvalidationEvent, "sender">): PendingOperation {
  return {
    id: `publish:${JSON.stringify([event.level, event.reason ?? null, event.targets])}`,
    kind: "publish",
    run: (t) => t.capabilities.invalidation?.publish(event) ?? Promise.resolve(),
  };
}

/**
 * Delete the prefix targets, then `keys`, in L2; on a failure, queue what is left for recovery
 * (when retryable: the keys first, so that the prefixes are the last to be dropped over the
 * queue's bound; `local`: the L1 eviction to repeat after each retry) and return the error, else
 * `null`.
 */
export async function deleteOrQueue(
  b: Backend,
  prefixes: string[],
  keys: string[],
  local?: () => void,
): Promise<unknown> {
  let i = 0;
  let j = 0;
  try {
    for (; i < prefixes.length; i++) await deleteTargets(b, [prefixes[i]]);
    // Keys the prefix may miss (truncated long keys) or a backend without prefix deletion.
    for (; j < keys.length; j++) await b.delete(keys[j]);
    return null;
  } catch (e) {
    if (retryable(e)) {
      queueRecovery(b, [
        ...keys.slice(j).map((k) => deleteOp(b, k, local)),
        ...prefixes.slice(i).map((p) => prefixOp(b, p, local)),
      ]);
    }
    return e;
  }
}

/** Matches L1 entries carrying any of `tags`. */
export function taggedWith(tags: ReadonlySet<string>): (e: L1Entry) => boolean {
  return (e) => e.tags !== null && (hasUnknownTags(e.tags) || e.tags.some((t) => tags.has(t)));
}

/**
 * Whether every deletion of this function's keys (`cacheClear`, `clearFunction`, `clearNamespace`)
 * reaches `key` through its prefix, so that it need not be remembered: a standard key as
 * `keyContext` builds it directly (`direct`: not shortened or rewritten by `finalizeKey`), under
 * the default tenant's `t:{segment}:{keyPrefix}`, on a backend that deletes a prefix under every
 * tenant segment. Remembering it cost a `Set` insertion hashing the fresh key on every write
 * (`bench/MEASUREMENTS.md`). Interop and key-based caches' keys are always remembered.
 */
function underOwnPrefix(eng: Engine, b: Backend, key: string): boolean {
  const ck = eng.callKeys;
  return ck !== null && ck.direct && b.capabilities.prefix?.deleteByTenantPrefix !== undefined &&
    key.startsWith(ck.defaultPrefix);
}

/**
 * Remember an L2 key this process wrote (for deletions a prefix may miss: not one under
 * {@linkcode underOwnPrefix}), and by tag when the
 * backend has no tag index of its own (`indexTags`): only then does `invalidateTags` delete the
 * keys listed here. Bounded: at most {@linkcode MAX_TRACKED_KEYS} keys, tags, and keys per tag
 * (per-result and per-call tags such as `user:${id}` would otherwise grow it without end).
 */
export function trackWrite(eng: Engine, b: Backend, ctx: KeyCtx): void {
  if (eng.tracked.size < MAX_TRACKED_KEYS && !underOwnPrefix(eng, b, ctx.backendKey)) {
    eng.tracked.add(ctx.backendKey);
  }
  const indexTags = b.capabilities.tags === undefined;
  if (ctx.tags && indexTags) {
    for (const t of ctx.tags) {
      let s = eng.tagIndex.get(t);
      if (!s) {
        if (eng.tagIndex.size >= MAX_TRACKED_KEYS) continue;
        eng.tagIndex.set(t, s = new Set());
      }
      if (s.size < MAX_TRACKED_KEYS) s.add(ctx.backendKey);
    }
  }
}

/** Broadcast an L1 invalidation event when the bus exists and `l1.invalidation` is on. */
export function publish(
  eng: Engine,
  b: Backend | null,
  event: Omit<InvalidationEvent, "sender">,
): void {
  if (b === null || !eng.config.l1.invalidation) return;
  const bus = b.capabilities.invalidation;
  if (!bus) return;
  bus.publish(event).catch((e) => publishFailed(eng.log, b, event, e));
}

/**
 * A bus publish of `event` failed with `e`: logged (quietly after the application's `close()`, as
 * `recordFailure` does), and queued for recovery when it may succeed later.
 */
function publishFailed(
  log: CacheLogger,
  b: Backend,
  event: Omit<InvalidationEvent, "sender">,
  e: unknown,
): void {
  warnUnlessClosed(log, e, "invalidation publish failed: {error}", { error: errMessage(e) });
  if (retryable(e)) queueRecovery(b, [publishOp(event)]);
}

/**
 * The L2 writes the engines `es` issued so far have landed (or failed: `writeL2` never rejects);
 * `null` when none is under way. An invalidation's L2 part waits for it, so that a write issued
 * before the invalidation (a result that passed its epoch check just before) cannot land after
 * the deletion and bring the old value back: a backend need not apply operations in the order
 * they were issued (the file backend's tagged, large or `fsync` writes take several steps, as
 * Redis's chunked values do, while a deletion takes one).
 */
export function writesLanded(es: readonly Engine[]): Promise<void> | null {
  let all: Promise<void>[] | null = null;
  for (const e of es) {
    if (e.l2Writes.size === 0) continue;
    all ??= [];
    for (const w of e.l2Writes) all.push(w);
  }
  return all === null ? null : Promise.all(all).then(() => {});
}

/** Mark work in flight stale: it will not store its result. */
export function bump(eng: Engine): void {
  eng.epoch++;
  eng.inflight.clear();
  eng.failsafe?.forget();
  eng.lateWork.clear();
}

/**
 * Before a write, an `expire` or a forced refresh of the key of `ctx`: a computation of the key
 * that started earlier (in flight, still running past a soft or hard timeout, or the background
 * refresh of its L1 entry), or a cache object's `expire` reading it to write it back, must not
 * land over the newer value, so it is marked stale ({@linkcode bump}: its callers still get its
 * answer, nothing stores it). Nothing happens when none runs, so that other keys' computations
 * keep storing. A stale value the fail-safe throttle holds for the key is dropped.
 */
export function supersede(eng: Engine, ctx: KeyCtx): void {
  const l1Key = ctx.l1Key;
  eng.failsafe?.release(l1Key); // a stale value the throttle holds is older than the write
  if (
    eng.inflight.has(l1Key) || eng.lateWork.has(l1Key) ||
    eng.failsafe?.pending(l1Key) !== undefined ||
    (eng.expiring.size !== 0 && eng.expiring.has(ctx.backendKey)) ||
    (eng.refreshing.size !== 0 && refreshRuns(eng, l1Key))
  ) bump(eng);
}

/** Whether the background refresh of the L1 entry of `l1Key` runs (`refreshing`). */
function refreshRuns(eng: Engine, l1Key: ArgKey): boolean {
  const e = eng.l1?.map.get(l1Key);
  return e !== undefined && eng.refreshing.has(e);
}

/**
 * Mark in-flight work stale and evict the L1 entries matching `pred` (all when omitted).
 *
 * Invalidations call it twice: before their L2 deletion (so work already running does not
 * store) and after it, because a call made while the deletion was in flight could still read
 * the old L2 entry and put it back into L1.
 */
export function evictLocal(eng: Engine, pred?: (e: L1Entry) => boolean): void {
  bump(eng);
  if (pred !== undefined) {
    eng.l1?.deleteWhere(pred);
    return;
  }
  eng.l1?.clear();
  eng.byBackendKey.clear();
}

/** Remove the entry of one call from L1 and L2. */
export async function invalidateCall(eng: Engine, self: unknown, args: unknown[]): Promise<void> {
  const t0 = eng.listening ? performance.now() : 0;
  const tenant = callTenant(eng, args);
  const ctx = keyContext(eng, self, args, fastKey(eng, self, args), tenant);
  bump(eng);
  eng.l1?.delete(ctx.l1Key);
  const b = await eng.backendAsync();
  if (b === null) {
    if (eng.listening) emit(eng, "delete", "l1", performance.now() - t0, ctx.protoKey);
    return;
  }
  const landed = writesLanded([eng]);
  if (landed !== null) await landed;
  await deleteEntry(eng, b, ctx);
  bump(eng);
  eng.l1?.delete(ctx.l1Key);
  publish(eng, b, { level: "key", targets: [ctx.backendKey], reason: "delete" });
  if (eng.listening) emit(eng, "delete", "l2", performance.now() - t0, ctx.protoKey);
}

/**
 * Delete the L2 entry of `ctx`: its key and, during a key rotation with hashed tenant segments,
 * its copies under the previous master keys' segments (`SecureKeys.previousKeys`), where a read
 * that misses looks next: left there, the deleted value was answered by the next read (and
 * rewritten under the current key). A failure is recorded and queued for recovery.
 */
export async function deleteEntry(
  eng: Engine,
  b: Backend,
  ctx: { backendKey: string; l1Key: ArgKey; tenant: string | null },
): Promise<void> {
  const prev = eng.secure?.rotating
    ? eng.secure.previousKeys(ctx.backendKey, ctx.tenant ?? "default")
    : [];
  const one = async (key: string): Promise<void> => {
    try {
      await b.delete(key);
      eng.tracked.delete(key);
    } catch (e) {
      recordFailure(eng, "delete", e);
      queueDelete(eng, b, { backendKey: key, l1Key: ctx.l1Key }, e);
    }
  };
  if (prev.length === 0) return await one(ctx.backendKey);
  await Promise.all([ctx.backendKey, ...prev].map(one));
}

/**
 * The L2 deletion of the entry of `ctx` failed with `e`: queue it for recovery when retryable
 * (after the retry, the entry is evicted from L1 again: a call may have read it back meanwhile).
 */
export function queueDelete(
  eng: Engine,
  b: Backend,
  ctx: { backendKey: string; l1Key: ArgKey },
  e: unknown,
): void {
  if (!retryable(e)) return;
  const l1Key = ctx.l1Key;
  queueRecovery(b, [deleteOp(b, ctx.backendKey, () => {
    bump(eng);
    eng.l1?.delete(l1Key);
  })]);
}

/** Prefix targets of this function's backend keys (every tenant: see {@linkcode ANY_TENANT}). */
export function prefixTargets(eng: Engine): string[] {
  if (eng.config.interop) return [eng.keyPrefix];
  return [ANY_TENANT + eng.keyPrefix];
}

/** Clear this function's entries in L1 and L2 (every tenant's). */
export async function clearEngine(eng: Engine): Promise<void> {
  const t0 = eng.listening ? performance.now() : 0;
  const done = (layer: "l1" | "l2") => {
    if (eng.listening) emitInvalidate(eng, "function", false, layer, performance.now() - t0);
  };
  evictLocal(eng);
  const b = await eng.backendAsync();
  if (b === null) return done("l1");
  const prefixes = prefixTargets(eng);
  const landed = writesLanded([eng]);
  if (landed !== null) await landed;
  await deletePrefixes(eng, b, prefixes, [...eng.tracked]);
  eng.tracked.clear();
  eng.tagIndex.clear();
  evictLocal(eng);
  publish(eng, b, { level: "prefix", targets: prefixes });
  done("l2");
}

/** Emit an `invalidate` event (the caller checked `eng.listening`). */
export function emitInvalidate(
  eng: Engine,
  scope: "key" | "function" | "tags" | "namespace" | "prefix" | "all",
  remote: boolean,
  layer: "l1" | "l2" | null,
  durationMs: number | null,
  key: string | null = null,
): void {
  emit(eng, "invalidate", layer, durationMs, key, { scope, remote });
}

/**
 * Delete every key under `prefixes` and the `tracked` keys in L2 (a failure is recorded, and what
 * is left queued for recovery).
 */
export async function deletePrefixes(
  eng: Engine,
  b: Backend,
  prefixes: string[],
  tracked: string[],
): Promise<void> {
  const e = await deleteOrQueue(b, prefixes, tracked, () => evictLocal(eng));
  if (e !== null) recordFailure(eng, "deleteByPrefix", e);
}

/** Evict L1 entries of a namespace and mark in-flight work stale (L2 is handled by the caller). */
export function clearNamespaceLocal(eng: Engine): string[] {
  evictLocal(eng);
  return takeTracked(eng);
}

/** The L2 keys this process wrote (`trackWrite`), forgotten: a clear deletes them. */
export function takeTracked(eng: Engine): string[] {
  const tracked = [...eng.tracked];
  eng.tracked.clear();
  eng.tagIndex.clear();
  return tracked;
}

/** The L2 keys this process wrote with any of `tags` (`trackWrite`), forgotten: deleted by them. */
export function takeTagged(eng: Engine, tags: ReadonlySet<string>): string[] {
  const keys: string[] = [];
  for (const t of tags) {
    const s = eng.tagIndex.get(t);
    if (s) {
      keys.push(...s);
      eng.tagIndex.delete(t);
    }
  }
  return keys;
}

/** Evict L1 entries carrying any of `tags`; returns the L2 keys this process wrote with them. */
export function invalidateTagsLocal(eng: Engine, tags: ReadonlySet<string>): string[] {
  if (!mayCarryTags(eng)) {
    noteTagsPassedOver(); // a computation in flight may still give its result tags (`setTags`)
    return [];
  }
  evictLocal(eng, taggedWith(tags));
  return takeTagged(eng, tags);
}

/**
 * Apply an invalidation event from another instance. Only events that concern this function
 * evict and mark in-flight work stale (other functions' writes on the same bus do not).
 */
export function onRemoteEvent(eng: Engine, ev: InvalidationEvent): void {
  // Another instance wrote a key an `expire` (or a key rotation's rewrite) here is reading: the
  // old value is not written back.
  if (
    eng.expiring.size !== 0 && ev.level === "key" && ev.targets.some((k) => eng.expiring.has(k))
  ) {
    bump(eng);
  }
  const l1 = eng.l1;
  if (l1 === null) return;
  switch (ev.level) {
    case "all":
      evictLocal(eng);
      if (eng.listening) emitInvalidate(eng, "all", true, "l1", null);
      break;
    case "key": {
      // A stale value held by the throttle is done once another instance wrote or deleted its key.
      eng.failsafe?.releaseBackendKeys(ev.targets);
      let hit = false;
      // Only an event naming a key of this function (every one holds its key mark: its prefix,
      // cut where a long key is shortened) needs the index: other functions' writes on the same
      // bus do not make it live (`backendIndex`).
      const mark = eng.keyMark;
      const ours = ev.targets.some((k) => k.includes(mark));
      if (!ours && !eng.indexLive) break;
      const index = ours ? backendIndex(eng) : eng.byBackendKey;
      for (const k of ev.targets) {
        const lk = index.get(k);
        let mine = k.includes(mark);
        if (lk !== undefined && l1.map.get(lk)?.backendKey === k) {
          l1.delete(lk);
          mine = true;
        }
        if (mine) {
          hit = true;
          // A read of the key in flight (no L1 copy yet to evict) must not fill L1 with what it
          // read: it may be the value this event replaced or deleted (`_write_marks.ts`).
          eng.writes.note(k);
        }
      }
      // A remote computed value (`write`) only makes our L1 copy stale (evicted above): results
      // computed here in the meantime are just as fresh, so in-flight work stays. A value stored
      // on purpose (`set`: a cache object's `set`, a forced refresh) or a deletion (or an event
      // without a reason) must stop work on the key that started before it from storing its
      // result (and new calls from joining it); work on other keys goes on (`worksOn`).
      if (hit && ev.reason !== "write" && worksOn(eng, ev.targets)) bump(eng);
      if (hit && eng.listening) emitInvalidate(eng, "key", true, "l1", null, ev.targets[0] ?? null);
      break;
    }
    case "prefix": {
      const mine = prefixTargets(eng);
      const relevant = ev.targets.some((p) => mine.some((q) => overlaps(p, q)));
      if (!relevant) break;
      bump(eng);
      l1.deleteWhere((e) =>
        e.backendKey !== null && ev.targets.some((p) => underTarget(e.backendKey!, p))
      );
      if (eng.listening) emitInvalidate(eng, "prefix", true, "l1", null);
      break;
    }
    case "tags": {
      if (mayCarryTags(eng)) {
        evictLocal(eng, taggedWith(new Set(ev.targets)));
        if (eng.listening) emitInvalidate(eng, "tags", true, "l1", null);
      } else noteTagsPassedOver(); // as `invalidateTagsLocal`
      break;
    }
  }
}

/**
 * The invalidation bus is back after a gap (its subscription was lost, or failed and has now
 * succeeded): the events published meanwhile were missed and cannot be known, so every L1 entry
 * and every computation in flight may be stale. Drop them all.
 */
export function onBusGap(eng: Engine): void {
  eng.busLost = false;
  if (eng.listening) emit(eng, "bus", "l2", null, null, { bus: "recovered" });
  if (eng.l1 === null) return;
  const n = eng.l1.size;
  evictLocal(eng);
  eng.log.info("{identity}: invalidation bus reconnected; cleared {entries} L1 entries", {
    identity: eng.identity,
    entries: n,
  });
}

/**
 * Publish `event` on `b`'s invalidation bus (awaited: a script that exits next still sends it),
 * unless every engine using `b` has `l1.invalidation` off.
 */
export async function broadcast(
  b: Backend,
  es: Engine[],
  event: Omit<InvalidationEvent, "sender">,
): Promise<void> {
  const bus = b.capabilities.invalidation;
  if (!bus || (es.length > 0 && !es.some((e) => e.config.l1.invalidation))) return;
  try {
    await bus.publish(event);
  } catch (e) {
    publishFailed(log, b, event, e);
  }
}

/** Most keys one `key` event names (a tag may cover many entries: several events then). */
const MAX_KEYS_PER_EVENT = 128;

/**
 * The L2 entries a tag invalidation deleted, evicted by key from the L1 of every engine on `b`
 * (here, through the bus elsewhere). A copy filled from L2 does not know the tags its writer gave
 * (from the result: `resultTags`, `setTags`; the stored entry does not record them), so the `tags`
 * event alone leaves it answering the deleted value until its L1 lifetime ends.
 */
export async function deletedKeys(b: Backend, es: Engine[], keys: string[]): Promise<void> {
  for (let i = 0; i < keys.length; i += MAX_KEYS_PER_EVENT) {
    const targets = keys.slice(i, i + MAX_KEYS_PER_EVENT);
    reapply(b, { level: "key", targets, reason: "delete", sender: "" });
    await broadcast(b, es, { level: "key", targets, reason: "delete" });
  }
}
