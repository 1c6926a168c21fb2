/**
 * Health of a cached function through {@linkcode HealthChecker}: cachekit-py's levels (`ping`:
 * backend ping and latency; `basic`: + circuit state and pool/connection info; `full`: + adaptive
 * timeout, backpressure, backend counts, metrics summary), plus L1 size at every level.
 *
 * One probe per backend and check: functions sharing a backend share its report when checked
 * together (`checkCacheHealth()` passes one `probes` map).
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import {
  HealthChecker,
  type HealthLevel,
  type HealthReport,
  type HealthStatus,
} from "../health/health_checker.ts";
import type { CacheMetrics } from "../health/metrics.ts";

/** Backend reports of one health check, shared by the functions checked together. */
export type ProbeCache = Map<Backend, Promise<HealthReport>>;

/**
 * The HealthChecker report of backend `b` at `level` (cached in `probes` when given).
 *
 * @param b The (guarded) backend.
 * @param level Level to check.
 * @param metrics Metrics summarised at `full`.
 * @param probes Reports already made in this check.
 */
export function backendReport(
  b: Backend,
  level: HealthLevel,
  metrics: CacheMetrics | null,
  probes?: ProbeCache,
): Promise<HealthReport> {
  let p = probes?.get(b);
  if (p === undefined) {
    p = new HealthChecker({ backend: b, metrics, probeTimeoutMs: 5000 }).check(level);
    probes?.set(b, p);
  }
  return p;
}

const RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

/** The worse of two statuses. */
export function worstStatus(a: HealthStatus, b: HealthStatus): HealthStatus {
  return RANK[b] > RANK[a] ? b : a;
}
