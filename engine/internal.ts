/**
 * What the wrapper (`cache.ts`, `decorator.ts`, `cache_health.ts`, `mod.ts`) uses of the engine:
 * the engine's one face for the rest of the package. Not public: `deno.json` does not export it
 * and no `mod.ts` re-exports it wholesale (`mod.ts` takes {@linkcode closeDefaultBackend} by name).
 *
 * The engine's files are private (`_name.ts`) so that they can be split and moved freely; this
 * file names the few things the entry files call, so that a move inside `engine/` changes one
 * import here instead of every caller (`tools/import_cycles.ts` refuses imports of another
 * folder's private file). Re-exports only: the calls go straight to the private files' functions,
 * with nothing added on the hot path. `identity.ts` and `l1.ts` are faces of their own.
 *
 * - the engine and its call flow: {@linkcode Engine}, the L1 lookups, the miss paths, `refresh`,
 *   the cheap argument key and the fast key; the per-call controls (`uncached`, forced refresh);
 * - invalidation: of one call, of one engine, and the group invalidations across engines;
 * - status: `cacheInfo`, a function's health, the registry of live engines, `worstStatus`;
 * - the default backend: {@linkcode closeDefaultBackend};
 * - observation: the observed call (`withStatus`, tracing, events), the call record's types, the
 *   event classes and the global {@linkcode cacheEvents};
 * - the key-based cache (`createCache`): `objectOps`, its operations and key prefix.
 *
 * @module
 */
export { Engine } from "./_engine.ts";
export { hitValue, lookupAsync, lookupSync, missAsync, missSync, refresh } from "./_call.ts";
export { callUncached, forceRefresh } from "./_controls.ts";
export { canonicalArgKeys, fastKey, pythonKeyed } from "./_keys.ts";
export { type ArgKey, argKey } from "./_argkey.ts";
export { hitNow } from "./_hit_clock.ts";
export { clearEngine, invalidateCall } from "./_invalidation.ts";
export {
  clearFunctionEverywhere,
  clearNamespaceEverywhere,
  type GroupInvalidationOptions,
  invalidateTagsEverywhere,
} from "./_group_invalidation.ts";
export {
  type CacheInfo,
  cacheInfo,
  checkFunctionHealth,
  type FunctionHealth,
  functionHealth,
} from "./_status.ts";
export { liveEngines } from "./_registry.ts";
export {
  backendEntries,
  type BackendHealthEntry,
  ownComponents,
  type ProbeCache,
  worstStatus,
} from "./_health.ts";
export { closeDefaultBackend } from "./_backend.ts";
export { observedCall } from "./_observed.ts";
export { mustObserve, observedObjectCall } from "./_object_observed.ts";
export { tracingActive } from "./_tracing.ts";
export type {
  CallInfo,
  CallLayer,
  CallRecord,
  CallResult,
  CallStatus,
  CallTrace,
} from "./_call_record.ts";
export {
  type AddListenerOptions,
  CacheEvent,
  type CacheEventDetail,
  type CacheEventListener,
  cacheEvents,
  CacheEventTarget,
  type CacheEventType,
  type EventTargetListener,
  type RemoveListenerOptions,
} from "./_events.ts";
export * as objectOps from "./_object_face.ts";
export { checkSignal, Flight, flightOf, waitFor } from "./_flight.ts";
