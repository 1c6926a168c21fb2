/**
 * Group invalidations of the whole process (`invalidateTags`, `clearNamespace`,
 * `clearFunction`): every live function's L1 first, then each L2 backend they use (or the one
 * given, or the default one for a process that wraps nothing, an admin script), its bus, and the
 * recovery queue for what fails. The per-function and remote parts are `_invalidation.ts`.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { getCacheLogger } from "../health/logging.ts";
import { createdDefaultL2, defaultL2 } from "./_backend.ts";
import type { Engine } from "./_engine.ts";
import { mayCarryTags } from "./_factory_context.ts";
import {
  ANY_TENANT,
  broadcast,
  clearNamespaceLocal,
  deletedKeys,
  deleteOrQueue,
  emitInvalidate,
  evictLocal,
  invalidateTagsLocal,
  taggedWith,
  tagOp,
  takeTagged,
  takeTracked,
  unwrapped,
  writesLanded,
} from "./_invalidation.ts";
import { liveEngines } from "./_registry.ts";
import { queueRecovery, retryable } from "./_recovery.ts";
import { closedBackend, errMessage, warnUnlessClosed } from "./_status.ts";

const log = getCacheLogger("engine");

/** Where a module-level invalidation acts on L2 (`invalidateTags`, `clearNamespace`, …). */
export interface GroupInvalidationOptions {
  /**
   * The L2 backend to act on (and whose invalidation bus to publish on), instead of the backends
   * of this process's cached functions and the default backend.
   */
  backend?: Backend;
}

/**
 * The L2 backends a module-level invalidation acts on, each with the live engines using it: the
 * explicit `backend`, else the backends of the live engines plus the process default backend when
 * it exists or when no live engine has an L2 (a process that wraps nothing: an admin script, a
 * webhook worker).
 */
async function groupBackends(
  list: Engine[],
  explicit: Backend | undefined,
): Promise<Map<Backend, Engine[]>> {
  const out = new Map<Backend, Engine[]>();
  for (const e of list) {
    const b = await e.backendAsync();
    if (b === null) continue;
    const arr = out.get(b);
    if (arr) arr.push(e);
    else out.set(b, [e]);
  }
  if (explicit !== undefined) {
    const target = unwrapped(explicit);
    const es = [...out].filter(([b]) => unwrapped(b) === target).flatMap(([, es]) => es);
    return new Map([[explicit, es]]);
  }
  const pending = createdDefaultL2() ?? (out.size === 0 ? defaultL2() : null);
  const d = pending === null ? null : await pending.catch((err) => {
    log.warn("the default backend could not be created: {error}", { error: errMessage(err) });
    return null;
  });
  if (d !== null && ![...out.keys()].some((b) => unwrapped(b) === d)) out.set(d, []);
  return out;
}

/** What happens to a failed L2 part of a group invalidation, for its log record. */
function retryNote(err: unknown): string {
  return closedBackend(err)
    ? "the backend was closed"
    : retryable(err)
    ? "queued for retry"
    : "refused, not retried";
}

/** Invalidate every entry carrying any of `tags`, in every cached function of this process and L2. */
export async function invalidateTagsEverywhere(
  tags: string[],
  opts: GroupInvalidationOptions = {},
): Promise<void> {
  const set = new Set(tags);
  const list = liveEngines();
  const tracked = new Map<Engine, string[]>();
  for (const e of list) {
    tracked.set(e, invalidateTagsLocal(e, set));
    if (e.listening && mayCarryTags(e)) {
      emitInvalidate(e, "tags", false, e.l2Backend === null ? "l1" : "l2", null);
    }
  }
  for (const [b, es] of await groupBackends(list, opts.backend)) {
    // A write issued before the invalidation lands before its deletion (`writesLanded`); the keys
    // such writes added to this process's tag index are deleted too.
    const landed = writesLanded(es);
    if (landed !== null) {
      await landed;
      for (const e of es) tracked.get(e)?.push(...takeTagged(e, set));
    }
    let err: unknown = null;
    let deleted: string[] = [];
    const cap = b.capabilities.tags;
    if (cap) {
      try {
        deleted = await cap.invalidateTags(tags);
      } catch (e) {
        err = e;
        if (retryable(e)) queueRecovery(b, tags.map((t) => tagOp(b, t)));
      }
    } else {
      const keys = es.flatMap((e) => tracked.get(e) ?? []);
      err = await deleteOrQueue(b, [], keys, () => {
        for (const e of es) if (e.config.tags !== null) evictLocal(e, taggedWith(set));
      });
      if (err === null) deleted = keys;
    }
    if (err !== null) {
      warnUnlessClosed(log, err, "invalidateTags on {backend} failed ({retry}): {error}", {
        backend: b.type,
        retry: retryNote(err),
        error: errMessage(err),
      });
    }
    // Calls made while L2 was being cleared may have read old entries back into L1.
    for (const e of es) if (mayCarryTags(e)) evictLocal(e, taggedWith(set));
    await broadcast(b, es, { level: "tags", targets: tags });
    await deletedKeys(b, es, deleted);
  }
}

/**
 * Clear the prefix targets in L2 and the L1 of `matching` (the live engines they cover), on the
 * backends of every live engine (see {@linkcode groupBackends}), and broadcast them.
 */
async function clearEverywhere(
  what: string,
  matching: Engine[],
  prefixes: string[],
  opts: GroupInvalidationOptions,
): Promise<void> {
  const tracked = new Map<Engine, string[]>();
  for (const e of matching) {
    tracked.set(e, clearNamespaceLocal(e));
    const scope = what === "clearFunction" ? "function" : "namespace";
    if (e.listening) emitInvalidate(e, scope, false, e.l2Backend === null ? "l1" : "l2", null);
  }
  for (const [b, es] of await groupBackends(liveEngines(), opts.backend)) {
    // A write issued before the clear lands before its deletion (`writesLanded`); the keys such
    // writes added to this process's written keys are deleted too.
    const landed = writesLanded(es);
    if (landed !== null) {
      await landed;
      for (const e of es) tracked.get(e)?.push(...takeTracked(e));
    }
    const keys = es.flatMap((e) => tracked.get(e) ?? []);
    const err = await deleteOrQueue(b, prefixes, keys, () => {
      for (const e of es) if (tracked.has(e)) evictLocal(e);
    });
    if (err !== null) {
      warnUnlessClosed(log, err, "{what} on {backend} failed ({retry}): {error}", {
        what,
        backend: b.type,
        retry: retryNote(err),
        error: errMessage(err),
      });
    }
    // Calls made while L2 was being cleared may have read old entries back into L1.
    for (const e of es) if (tracked.has(e)) evictLocal(e);
    await broadcast(b, es, { level: "prefix", targets: prefixes });
  }
}

/** Clear namespace `ns` (every tenant) in every cached function of this process and in L2. */
export function clearNamespaceEverywhere(
  ns: string,
  opts: GroupInvalidationOptions = {},
): Promise<void> {
  const matching = liveEngines().filter((e) => e.namespace === ns);
  // `:func:` ends the namespace (`validateKeyPart`): `ns:a:` would also match namespace `a:b`.
  // Key-based caches (`createCache`) of the namespace: `obj:ns:{ns}:key:` (`_object_keys.ts`).
  const prefixes = [`${ANY_TENANT}ns:${ns}:func:`, `${ANY_TENANT}obj:ns:${ns}:key:`];
  // Interop keys are bare: delete `{ns}:` only when an interop function of this process owns it.
  if (matching.some((e) => e.config.interop !== null)) prefixes.push(`${ns}:`);
  return clearEverywhere("clearNamespace", matching, prefixes, opts);
}

/**
 * Clear every entry (every tenant) of the cached function with identity `identity` in namespace
 * `ns`, whether or not this process wraps it.
 */
export function clearFunctionEverywhere(
  identity: string,
  ns: string | null,
  opts: GroupInvalidationOptions = {},
): Promise<void> {
  const matching = liveEngines().filter((e) =>
    e.config.interop === null && e.identity === identity && e.config.namespace === ns
  );
  const prefix = `${ANY_TENANT}${ns ? `ns:${ns}:func:` : "func:"}${identity}:args:`;
  return clearEverywhere("clearFunction", matching, [prefix], opts);
}
