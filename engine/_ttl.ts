/**
 * The lifetimes of an entry from its TTL: in L1 (a little shorter than in L2, so that L1 never
 * answers what L2 has expired), in L2 (plus the fail-safe window), and the stale-while-revalidate
 * and eager refresh points. One place for the rule, used for the configured TTL (once, by the engine) and for a TTL
 * chosen per result (adaptive caching, `_factory_context.ts`).
 *
 * @module
 */
import type { ResolvedConfig } from "../config/options.ts";

/**
 * L1 lifetime in ms of an entry whose TTL is `ttl` seconds (`null`: none): `l1.defaultTtl` without
 * a TTL; with an L2, `expiryBuffer` seconds less than the TTL but never below half of it; L1 only,
 * the TTL.
 */
export function l1TtlMs(c: ResolvedConfig, ttl: number | null): number {
  const s = ttl === null
    ? c.l1.defaultTtl
    : c.backend === null
    ? ttl
    : Math.max(ttl - c.l1.expiryBuffer, ttl / 2);
  return s * 1000;
}

/** The TTL written to L2 for `ttl`: plus `staleTtl` (the fail-safe window), `null` for none. */
export function l2Ttl(c: ResolvedConfig, ttl: number | null): number | null {
  return ttl === null ? null : ttl + c.staleTtl;
}

/** The stale-while-revalidate delay of an entry living `lifeMs` in L1 (`Infinity`: off). */
export function swrMs(c: ResolvedConfig, lifeMs: number): number {
  return c.l1.swrEnabled ? lifeMs * c.l1.swrThreshold : Infinity;
}

/**
 * The eager refresh delay (`eagerRefresh`) of an entry whose TTL is `ttl` seconds and whose L1
 * lifetime is `lifeMs`: that fraction of the TTL, or of the L1 lifetime when that comes first (a
 * short TTL: L1 lives `expiryBuffer` less) or there is no TTL; `Infinity` when off.
 */
export function eagerMs(c: ResolvedConfig, ttl: number | null, lifeMs: number): number {
  if (c.eagerRefresh === 0) return Infinity;
  const onTtl = c.eagerRefresh * (ttl === null ? lifeMs : ttl * 1000);
  return onTtl < lifeMs ? onTtl : c.eagerRefresh * lifeMs;
}
