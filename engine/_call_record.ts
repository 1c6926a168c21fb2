/**
 * How one call was answered: the per-call record behind `f.withStatus(...args)`, the span
 * attributes of `monitoring.tracing` and the `hit` / `miss` / `stale` events.
 *
 * The call flow (`_call.ts`, `_failsafe.ts`) takes an optional {@linkcode CallRecord} and fills it
 * at each outcome: the L1 hit, the L2 hit, the computation, the join of a call in flight, the
 * fail-safe's stale value, the uncached answers. A plain call passes `null` and pays one
 * comparison per outcome; nothing here is allocated for it.
 *
 * A call that joins another call in flight (single flight) learns where that call found its value
 * only when the leader kept a record too: leaders keep one once their engine has seen an observed
 * call ({@linkcode InflightTable.watched}); before that a joined call reports layer `source`.
 *
 * Hand-written: no cache library reports a per-call status (cachified#143 asks for one).
 *
 * @module
 */
import { ValueTooLargeError } from "../protocol/stored_value.ts";
import type { Engine } from "./_engine.ts";
import type { L1Entry } from "./l1.ts";

/**
 * How a call was answered:
 *
 * - `hit`: from a cache layer, fresh;
 * - `stale`: a value past its TTL, served by the fail-safe (the function failed, or was slower
 *   than `softTimeout`);
 * - `miss`: the function ran for this call (and its result was stored);
 * - `joined`: the call waited for another caller's computation or L2 read (single flight), or
 *   for another process's (the stampede lock) and then read its result;
 * - `uncached`: the function ran and nothing was stored (`safeMode` with arguments that form no
 *   key, a value over `maxValueSize`, a value the serializer refused, a skipped call).
 */
export type CallStatus = "hit" | "stale" | "miss" | "joined" | "uncached";

/** Where the value came from: the in-process L1, the L2 backend, or the function (`source`). */
export type CallLayer = "l1" | "l2" | "source";

/** What {@linkcode CallResult} says about a call, without the value. */
export interface CallInfo {
  /** How the call was answered. */
  status: CallStatus;
  /** Where the value came from. */
  layer: CallLayer;
  /**
   * Age of the value in ms (0 for a value computed by this call), or `null` when the layer does
   * not tell (an L2 entry written without a logical expiry, an uncached call).
   */
  ageMs: number | null;
  /**
   * Time left before the value expires in ms (negative for a stale value: how long ago it
   * expired), or `null` when unknown (no TTL, an L2 entry without a logical expiry, uncached).
   */
  expiresInMs: number | null;
  /** The protocol key of the call (`ns:…:func:…:args:…`), or `null` when it has none. */
  key: string | null;
}

/**
 * A call's value with how it was answered: what `f.withStatus(...args)` returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, type CallResult, MemoryBackend } from "@cachekit/core";
 *
 * const user = cache(async (id: number) => ({ id }), {
 *   name: "docs.status.user",
 *   ttl: 60,
 *   backend: new MemoryBackend(),
 * });
 * const first: CallResult<{ id: number }> = await user.withStatus(7);
 * assert.deepEqual([first.status, first.layer, first.ageMs], ["miss", "source", 0]);
 * const again = await user.withStatus(7);
 * assert.deepEqual([again.status, again.layer], ["hit", "l1"]);
 * assert.equal(again.key, first.key);
 * ```
 */
export interface CallResult<T> extends CallInfo {
  /** What the call returned. */
  value: T;
}

/** What the call flow asks of a traced call (implemented over OpenTelemetry in `_tracing.ts`). */
export interface CallTrace {
  /** Run `op` (an L2 read, the lock wait) under a child span `name` of the call's span. */
  child<T>(name: string, op: () => Promise<T>): Promise<T>;
  /** Run the cached function under the `cachekit.factory` span, as the active context. */
  factory(fn: () => unknown): unknown;
}

/**
 * The mutable record of one observed call (a `withStatus` call, a traced call, or a call with an
 * event listener). The cache object of `createCache` passes one too: the type is the engine's.
 */
export class CallRecord implements CallInfo {
  /** How the call was answered (until an outcome says otherwise: a computation). */
  status: CallStatus = "miss";
  /** Where the value came from. */
  layer: CallLayer = "source";
  /** Age of the value, ms, or `null`. */
  ageMs: number | null = null;
  /** Time to expiry, ms, or `null`. */
  expiresInMs: number | null = null;
  /** The protocol key, or `null`. */
  key: string | null = null;
  /** Why the call was `uncached`, or `null`. */
  reason: string | null = null;
  /** The record of the call this one joined (single flight), or `null`. */
  leader: CallRecord | null = null;
  /** The call's span and its children when the call is traced (`_tracing.ts`), or `null`. */
  trace: CallTrace | null = null;

  /** The call settled: a joined call takes where its leader found the value, and its age. */
  settle(): void {
    const lead = this.leader;
    if (lead === null || this.status !== "joined") return;
    this.layer = lead.layer;
    this.ageMs = lead.ageMs;
    this.expiresInMs = lead.expiresInMs;
    this.key ??= lead.key;
  }

  /** The public view of this record around `value` (after {@linkcode CallRecord.settle}). */
  result<T>(value: T): CallResult<T> {
    return {
      value,
      status: this.status,
      layer: this.layer,
      ageMs: this.ageMs,
      expiresInMs: this.expiresInMs,
      key: this.key,
    };
  }
}

/** An L1 hit on entry `e` (its age from the function's L1 TTL). */
export function recordL1Hit(eng: Engine, rec: CallRecord, e: L1Entry): void {
  const left = e.expiresAt - eng.l1!.now(); // entry times count from the L1's base
  rec.status = "hit";
  rec.layer = "l1";
  rec.expiresInMs = left;
  rec.ageMs = Math.max(0, eng.l1TtlMs - left);
}

/** An L2 hit (`freshUntil`: the entry's logical expiry, ms since the epoch, or `null`). */
export function recordL2Hit(
  eng: Engine,
  rec: CallRecord,
  freshUntil: number | null,
  status: "hit" | "joined",
): void {
  rec.status = status;
  rec.layer = "l2";
  if (freshUntil !== null) {
    const left = freshUntil - Date.now();
    rec.expiresInMs = left;
    const ttl = eng.config.ttl;
    rec.ageMs = ttl === null ? null : Math.max(0, ttl * 1000 - left);
  }
}

/** The function runs for this call. */
export function recordMiss(eng: Engine, rec: CallRecord): void {
  rec.status = "miss";
  rec.layer = "source";
  rec.ageMs = 0;
  const ttl = eng.config.ttl;
  rec.expiresInMs = eng.l2Backend === null ? eng.l1TtlMs : ttl === null ? null : ttl * 1000;
}

/** The computation's value is not stored (`reason`): the call is `uncached`. */
export function recordUncached(rec: CallRecord, reason: string): void {
  rec.status = "uncached";
  rec.layer = "source";
  rec.ageMs = null;
  rec.expiresInMs = null;
  rec.reason = reason;
}

/**
 * A stale value from `source`, expired at `expiredAt` (ms since the epoch, `NaN`: unknown); `ttlMs`
 * is that layer's TTL (`NaN`: unknown).
 */
export function recordStale(
  rec: CallRecord,
  source: "l1" | "l2",
  expiredAt: number,
  ttlMs: number,
): void {
  rec.status = "stale";
  rec.layer = source;
  if (Number.isNaN(expiredAt)) {
    rec.ageMs = null;
    rec.expiresInMs = null;
    return;
  }
  const left = expiredAt - Date.now();
  rec.expiresInMs = left;
  rec.ageMs = Number.isNaN(ttlMs) ? null : ttlMs - left;
}

/** The value of a call whose result is not stored (a skipped result: `cacheIf`, TTL 0, `skip()`). */
export function skipped<T>(rec: CallRecord | null, value: T): T {
  if (rec !== null) recordUncached(rec, "skipped");
  return value;
}

/** The value a call computed could not be stored (`e`: too large, or not serializable). */
export function uncachedBy(rec: CallRecord | null, e: unknown): void {
  if (rec !== null) recordUncached(rec, e instanceof ValueTooLargeError ? "too_large" : "value");
}

/** The call joined the call in flight whose record is `leader` (or `undefined`: none kept). */
export function recordJoined(rec: CallRecord, leader: CallRecord | undefined): void {
  rec.status = "joined";
  rec.layer = "source";
  rec.leader = leader ?? null;
}

/** Join the call in flight `p` (single flight), noting it in the record of an observed call. */
export function join(eng: Engine, p: Promise<unknown>, rec: CallRecord | null): Promise<unknown> {
  if (rec !== null) recordJoined(rec, eng.inflight.recordOf(p));
  return p;
}

/**
 * Call the function through `invoker` (`invoke` / `invokeSync` of `_factory_context.ts`, which run
 * it in its factory context): under a `cachekit.factory` span when the call is traced.
 */
export function callFn<F, R>(
  rec: CallRecord | null,
  invoker: (fc: F, fn: (...args: unknown[]) => unknown, self: unknown, args: unknown[]) => R,
  fc: F,
  fn: (...args: unknown[]) => unknown,
  self: unknown,
  args: unknown[],
): R {
  if (rec === null || rec.trace === null) return invoker(fc, fn, self, args);
  return rec.trace.factory(() => invoker(fc, fn, self, args)) as R;
}
