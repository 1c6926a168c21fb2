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

/** What one call overrides (each field absent: the engine's configuration). */
export interface CallOptions {
  /** TTL of the entry this call writes, seconds (`null`: no expiry in L2). */
  ttl?: number | null;
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
  /** What a `FactoryTimeoutError` names (default: the function identity). */
  label?: string;
  /** The shared flight this call started (cancellation; see `_flight.ts`), if any. */
  flight?: Flight;
}

/** The TTL, seconds, of an entry written under `call` (`null`: none). */
export function ttlOf(eng: Engine, call: CallOptions | undefined): number | null {
  return call?.ttl !== undefined ? call.ttl : eng.config.ttl;
}

/** The L2 TTL of an entry written under `call`: its TTL plus its stale window. */
export function l2TtlOf(eng: Engine, call: CallOptions | undefined): number | null {
  if (call === undefined || (call.ttl === undefined && call.staleTtl === undefined)) {
    return eng.l2Ttl;
  }
  const ttl = ttlOf(eng, call);
  if (ttl === null) return null;
  return ttl + (eng.failsafe === null ? 0 : call.staleTtl ?? eng.config.staleTtl);
}

/** The L1 lifetime, ms, of an entry written under `call` (the engine's rule for its TTL). */
export function l1TtlMsOf(eng: Engine, call: CallOptions | undefined): number {
  if (call?.ttl === undefined) return eng.l1TtlMs;
  const c = eng.config;
  const ttl = call.ttl;
  const s = ttl === null
    ? c.l1.defaultTtl
    : c.backend === null
    ? ttl
    : Math.max(ttl - c.l1.expiryBuffer, ttl / 2);
  return s * 1000;
}
