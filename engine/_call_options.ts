/**
 * Per-call options of the engine: what a key-based call (`createCache`'s `getOrSet`, `set`, …)
 * or a `cache(fn)` call with a signal asks of one computation, beside the engine's
 * configuration: its TTL, stale window, timeouts, the layers it skips, and the shared flight it
 * belongs to (cancellation). A call without them (`KeyCtx.call` undefined) runs on the
 * configuration alone, with nothing added on its path.
 *
 * Separate from the call flow so that every place that reads an override reads it the same way.
 *
 * @module
 */
import type { Engine } from "./_engine.ts";
import type { Flight } from "./_flight.ts";
import type { KeyCtx } from "./_keys.ts";
import { l2Ttl } from "./_ttl.ts";

/** What one call overrides (each field absent: the engine's configuration). */
export interface CallOptions {
  /** Extra seconds the entry stays usable as stale in L2 (needs the fail-safe on). */
  staleTtl?: number;
  /** Soft timeout of this computation, ms (needs a stale value). */
  softMs?: number;
  /** Hard timeout of this computation, ms (`0`: off). */
  hardMs?: number;
  /** Do not store the answer in L1. */
  skipL1Write?: boolean;
  /** Do not read L2 (nor take the stampede lock). */
  skipL2Read?: boolean;
  /** Do not write the answer to L2. */
  skipL2Write?: boolean;
  /** Do not announce the write on the invalidation bus. */
  skipBus?: boolean;
  /** A key-based call's key (named by a `FactoryTimeoutError`). */
  key?: string;
  /** The shared flight this call started (cancellation; see `_flight.ts`), if any. */
  flight?: Flight;
}

/**
 * The L2 TTL of the entry of `ctx`: its TTL (`ctx.ttl`, else the configured one) plus its stale
 * window (the call's `staleTtl`, else the configured one).
 */
export function l2TtlOf(eng: Engine, ctx: KeyCtx): number | null {
  const stale = ctx.call?.staleTtl;
  if (stale === undefined || eng.failsafe === null) {
    return ctx.ttl === undefined ? eng.l2Ttl : l2Ttl(eng.config, ctx.ttl);
  }
  const ttl = ctx.ttl === undefined ? eng.config.ttl : ctx.ttl;
  return ttl === null ? null : ttl + stale;
}

/**
 * The arguments the result options (`ttl` as a function, `cacheIf`, `resultTags`) see after the
 * result: a function call's arguments, or a key-based call's key.
 */
export function optionArgs(ctx: KeyCtx, args: readonly unknown[]): readonly unknown[] {
  const key = ctx.call?.key;
  return key === undefined ? args : [key];
}
