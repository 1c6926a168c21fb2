/**
 * The process-wide registry of cached functions: the live engines (weakly held, for the
 * module-level invalidations and `cacheHealthHandler`), the tenants this process has seen (for
 * prefix deletions on backends that cannot match every tenant segment), and the per-namespace L1
 * size providers of the Prometheus metrics.
 *
 * Separate from the engine so that module-level code reaches every engine through one small
 * interface, without a reference that keeps a collected function alive.
 *
 * @module
 */
import type { CacheMetrics } from "../health/metrics.ts";
import { quoteTenant } from "../tenant.ts";
import { knownHashedSegments } from "./_secure.ts";
import type { Engine } from "./_engine.ts";

const engines = new Set<WeakRef<Engine>>();
const seenTenants = new Set<string>(["default"]);

/** Live-set size after the last sweep of collected engines' references. */
let sweptSize = 64;

/**
 * Add a new engine to the live set. The references of collected engines are swept whenever the
 * set has doubled since the last sweep, so a process creating caches without end (a cache object
 * per request) does not keep a reference per cache it ever made (amortized O(1) per engine).
 */
export function registerEngine(engine: Engine): void {
  engines.add(new WeakRef(engine));
  if (engines.size >= 2 * sweptSize) {
    for (const ref of engines) if (ref.deref() === undefined) engines.delete(ref);
    sweptSize = Math.max(64, engines.size);
  }
}

/** How many engine references the live set holds (collected ones too, until a sweep). */
export function registeredEngines(): number {
  return engines.size;
}

/** Live engines (for module-level invalidation). */
export function liveEngines(): Engine[] {
  const out: Engine[] = [];
  for (const ref of engines) {
    const e = ref.deref();
    if (e === undefined) engines.delete(ref);
    else out.push(e);
  }
  return out;
}

/** Remember a tenant whose keys carry a plain (unhashed) tenant segment. */
export function sawTenant(tenant: string): void {
  seenTenants.add(tenant);
}

/** Tenant segments of every tenant this process has seen (plain and hashed). */
export function tenantSegments(): string[] {
  return [...[...seenTenants].map(quoteTenant), ...knownHashedSegments()];
}

const l1Tracked = new Map<string, Set<WeakRef<Engine>>>();

/** Report the L1 size of every function of a namespace (one provider per namespace). */
export function trackL1(metrics: CacheMetrics, ns: string, engine: Engine): void {
  let set = l1Tracked.get(ns);
  if (set === undefined) {
    const refs = new Set<WeakRef<Engine>>();
    l1Tracked.set(ns, set = refs);
    metrics.trackL1(ns, () => {
      let bytes = 0;
      let entries = 0;
      for (const r of refs) {
        const e = r.deref();
        if (e === undefined) refs.delete(r);
        else if (e.l1 !== null) {
          bytes += e.l1.bytes;
          entries += e.l1.size;
        }
      }
      return { bytes, entries };
    });
  }
  set.add(new WeakRef(engine));
}
