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
  type HealthComponent,
  type HealthLevel,
  type HealthReport,
  type HealthStatus,
} from "../health/health_checker.ts";
import type { CacheMetrics } from "../health/metrics.ts";
import { recoveryStatus } from "./_recovery.ts";

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

/**
 * One backend of a process-wide health check (`checkCacheHealth`), listed once with the functions
 * that use it.
 */
export interface BackendHealthEntry {
  /**
   * The backend's `type` (`redis`, `file`, `memory`, …), with `#1`, `#2`, … when several backends
   * of one type are in use (functions name it in `FunctionHealth.backendId`).
   */
  id: string;
  /** The backend's `type`. */
  type: string;
  /** Its verdict (probe, circuit, backpressure). */
  status: HealthStatus;
  /** Probe round trip, ms. */
  latencyMs: number | null;
  /** Identities of the live cached functions that use it. */
  functions: string[];
  /**
   * `backend` (probe, details), `circuitBreaker`, `pool` (only when the backend measured one:
   * Redis), at `full` also `timeout` and `backpressure`; `recovery` once a remote operation failed
   * on it and was queued for retry (pending, dropped, last retry).
   */
  components: HealthReport["components"];
}

/** The components of a backend report that belong to the backend, not to one function. */
const BACKEND_COMPONENTS = [
  "backend",
  "circuitBreaker",
  "pool",
  "timeout",
  "backpressure",
] as const;

/**
 * Group the reports of one check by backend: each probed backend once, with the identities of
 * the functions that use it (`users`, in the order met).
 *
 * @param probes The reports made during the check.
 * @param users Identities of the functions of each backend.
 * @returns The entries, and the id of each backend.
 */
export async function backendEntries(
  probes: ProbeCache,
  users: Map<Backend, string[]>,
): Promise<{ entries: BackendHealthEntry[]; ids: Map<Backend, string> }> {
  const perType = new Map<string, number>();
  for (const b of probes.keys()) perType.set(b.type, (perType.get(b.type) ?? 0) + 1);
  const seen = new Map<string, number>();
  const entries: BackendHealthEntry[] = [];
  const ids = new Map<Backend, string>();
  for (const [b, p] of probes) {
    const report = await p;
    const n = (seen.get(b.type) ?? 0) + 1;
    seen.set(b.type, n);
    const id = perType.get(b.type)! > 1 ? `${b.type}#${n}` : b.type;
    ids.set(b, id);
    const components: HealthReport["components"] = {};
    for (const k of BACKEND_COMPONENTS) {
      if (report.components[k] !== undefined) components[k] = report.components[k];
    }
    const recovery = recoveryComponent(b);
    if (recovery !== null) components.recovery = recovery;
    entries.push({
      id,
      type: b.type,
      status: recovery === null ? report.status : worstStatus(report.status, recovery.status),
      latencyMs: report.components.backend?.latencyMs ?? null,
      functions: users.get(b) ?? [],
      components,
    });
  }
  return { entries, ids };
}

/**
 * The `recovery` component of backend `b` (its queue of remote operations to retry: pending,
 * dropped, last retry), or `null` when nothing was ever queued for it. `degraded` while any
 * operation is pending: an invalidation made during the outage has not reached L2 or the bus yet.
 */
export function recoveryComponent(b: Backend): HealthComponent | null {
  const r = recoveryStatus(b);
  if (r === null) return null;
  const c: HealthComponent = {
    status: r.pending > 0 ? "degraded" : "healthy",
    details: { pending: r.pending, dropped: r.dropped, lastRetry: r.lastRetry },
  };
  if (r.pending > 0) {
    c.message = `${r.pending} invalidation(s) made while the backend was failing wait to be ` +
      "retried (other instances may serve the old values until then)";
  }
  return c;
}

/** The components of a function's entry in a process-wide report: its own (L1, invalidation). */
export function ownComponents(c: HealthReport["components"]): HealthReport["components"] {
  const out: HealthReport["components"] = {};
  if (c.l1 !== undefined) out.l1 = c.l1;
  if (c.invalidation !== undefined) out.invalidation = c.invalidation;
  return out;
}
