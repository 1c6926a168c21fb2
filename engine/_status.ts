/**
 * What a cached function reports about itself: statistics (`cacheInfo()`), health from what its
 * last operations saw (`getHealthStatus()`), a fresh probe (`checkHealth()`), and the record of
 * L2 failures those reports are built from.
 *
 * Separate from the call flow, which only records outcomes here (`recordFailure`,
 * `recordSuccess`) and never reads them back.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import { consoleMessage, consoleNotice } from "../health/internal.ts";
import { envConfig } from "../config/env.ts";
import type {
  HealthComponent,
  HealthLevel,
  HealthReport,
  HealthStatus,
} from "../health/health_checker.ts";
import type { CircuitState } from "../reliability/circuit_breaker.ts";
import { GuardedBackend, isSkipL2Error } from "../reliability/guarded_backend.ts";
import { backendReport, type ProbeCache, recoveryComponent, worstStatus } from "./_health.ts";
import { nudgeRecovery } from "./_recovery.ts";
import type { Engine } from "./_engine.ts";
import { emit } from "./_events.ts";
import { callLogger } from "./_call_log.ts";
import type { CacheLogger } from "../health/logging.ts";
import type { KeyCtx } from "./_keys.ts";
import type { L1Cache } from "./l1.ts";

/** Statistics of one cached function (the seed's `CacheInfo`, camelCase). */
export interface CacheInfo {
  /** Calls answered from a cache (L1 + L2). */
  hits: number;
  /** Calls that ran the function. */
  misses: number;
  /** Hits answered by the in-process L1. */
  l1Hits: number;
  /** Hits answered by the L2 backend. */
  l2Hits: number;
  /** Failed L2 operations (degraded to the function or L1). */
  l2Errors: number;
  /** Fail-safe: stale values served because the function failed or passed `softTimeout`. */
  staleHits: number;
  /** Mean latency of L2 reads, milliseconds (0 before the first). */
  l2AvgLatencyMs: number;
  /** L1 entries. */
  size: number;
  /** L1 bytes counted against `l1.maxBytes`. */
  bytes: number;
  /** `l1.maxEntries` (0 when L1 is off). */
  maxSize: number;
  /** `l1.maxBytes` (0 when L1 is off). */
  maxBytes: number;
  /** Time of the last call, ms since the epoch, or `null`. */
  lastOperationAt: number | null;
}

/** Health of one cached function. */
export interface FunctionHealth {
  /**
   * `healthy`; `degraded` (L2 failing, answers from L1/function; or the invalidation bus
   * subscription is down, so L1 may miss remote invalidations); `unhealthy` (L2 down).
   */
  status: HealthStatus;
  /** The function identity. */
  identity: string;
  /** Backend type, or `null` for L1 only. */
  backend: string | null;
  /**
   * In `checkCacheHealth()`: the `id` of its backend's entry in the report's `backends`, where the
   * backend's components are (listed once for all the functions that share it).
   */
  backendId?: string;
  /** L1 state. */
  l1: { enabled: boolean; entries: number; bytes: number; maxBytes: number; maxEntries: number };
  /** Circuit breaker state of the L2 guard, or `null` when there is no breaker. */
  circuit: CircuitState | null;
  /** Consecutive failed L2 operations. */
  consecutiveErrors: number;
  /** Message of the last L2 error, or `null`. */
  lastError: string | null;
  /** `BackendError.kind` of the last L2 error (`authentication`: fix the credentials), or `null`. */
  lastErrorKind: string | null;
  /** Fail-safe: stale values served so far. */
  staleHits: number;
  /** Round trip of the last backend health probe, ms (from `checkHealth()`), or `null`. */
  latencyMs: number | null;
  /** Backend details from the last probe. */
  details?: Record<string, unknown>;
  /** Level of the last `checkHealth(level)`, or `null` before the first. */
  level: HealthLevel | null;
  /** ISO time of the last `checkHealth()`, or `null`. */
  checkedAt: string | null;
  /**
   * Components of the last `checkHealth(level)` (`HealthChecker`: `backend` with ping latency,
   * `circuitBreaker`, `pool`, at `full` also `timeout`, `backpressure`, `metrics`) and `l1`;
   * `invalidation` (`degraded`) while the invalidation bus subscription is down; `recovery` once
   * a remote operation of its backend failed and was queued (`degraded` while any is pending; its
   * details: `pending`, `dropped`, `lastRetry`; see `engine/_recovery.ts`).
   */
  components: HealthReport["components"];
}

/** The message of a thrown value. */
export function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Whether `e` says the backend was closed (`close()`, by the application): reported quietly, at
 * debug level and without a console notice (see {@linkcode recordFailure}).
 */
export function closedBackend(e: unknown): boolean {
  return e instanceof BackendError && e.kind === "closed";
}

/**
 * Log a failure of `e` at warn level, or at debug level when `e` is a closed backend's refusal
 * (work that lands after the application's `close()`: nothing to warn about).
 */
export function warnUnlessClosed(
  log: CacheLogger,
  e: unknown,
  message: string,
  props: Record<string, unknown>,
): void {
  if (closedBackend(e)) log.debug(message, props);
  else log.warn(message, props);
}

/** Record a failed L2 operation (counts, logs, remembers it for the health report). */
export function recordFailure(
  eng: Engine,
  operation: string,
  e: unknown,
  ctx: KeyCtx | null = null,
): void {
  const kind = e instanceof BackendError ? e.kind : "unknown";
  eng.stats.l2Errors++;
  if (eng.listening) {
    emit(eng, "error", "l2", null, null, { kind, operation, message: errMessage(e) });
    if (kind === "timeout") emit(eng, "timeout", "l2", null, null, { timeout: "hard", operation });
  }
  if (isSkipL2Error(e)) {
    // Open circuit or backpressure: L2 skipped on purpose (the guard logged and counted it).
    eng.log.debug("{identity}: L2 {operation} skipped: {error}", {
      identity: eng.identity,
      operation,
      error: errMessage(e),
    });
    return;
  }
  eng.metrics?.recordError(operation, eng.l2Backend?.type ?? "default", kind);
  eng.consecutiveErrors++;
  eng.lastError = errMessage(e);
  eng.lastErrorKind = kind;
  const log = ctx === null ? eng.log : callLogger(eng, ctx, "l2");
  if (kind === "closed") {
    // The application closed the backend: not a fault of the backend, so no warning; health says
    // it. Work still in flight at close() that lands after it (a write, a lock release) is quiet.
    // A read is a call made after close(): every call now runs uncached, which is worth one line.
    log.debug("{identity}: L2 {operation} not done, the backend was closed: {error}", {
      identity: eng.identity,
      operation,
      kind,
      error: eng.lastError,
    });
    if (operation === "get" || operation === "lock") {
      const type = eng.l2Backend?.type ?? "L2";
      consoleMessage(
        "closed",
        `the ${type} cache backend was closed (its close() ran), but cached functions still ` +
          `call it (${eng.identity}): their calls answer without it, uncached. Close a backend ` +
          "only once the functions that use it are done, or give them an open one.",
        envConfig().consoleNotices,
      );
    }
    return;
  }
  consoleNotice(kind, eng.l2Backend?.type ?? "L2", eng.lastError, envConfig().consoleNotices);
  if (kind === "authentication" && !eng.authReported) {
    // Loud once per function at first use (the guard also logs every refusal at error level).
    eng.authReported = true;
    log.error(
      "{identity}: the L2 backend refused our credentials ({error}); every call answers " +
        "without L2 until the credentials are fixed. checkHealth() reports it too.",
      { identity: eng.identity, operation, kind, error: eng.lastError },
    );
    return;
  }
  log.warn("{identity}: L2 {operation} failed, answering without it: {error}", {
    identity: eng.identity,
    operation,
    kind,
    error: eng.lastError,
  });
}

/**
 * Record a successful L2 operation (ends a run of failures; the backend answers again, so the
 * remote operations queued during its outage are retried: `_recovery.ts`).
 */
export function recordSuccess(eng: Engine): void {
  eng.consecutiveErrors = 0;
  nudgeRecovery(eng.l2Backend);
}

/** Whether this function is missing remote invalidations now (its bus subscription is down). */
export function busDown(eng: Engine): boolean {
  if (eng.busLost) return true;
  const b = eng.l2Backend;
  if (eng.unsubscribe === null || b === null || b === undefined) return false;
  return b.capabilities.invalidation?.subscriptionUp === false;
}

/** Statistics of the function (`cacheInfo()`). */
export function cacheInfo(eng: Engine): CacheInfo {
  const s = eng.stats;
  return {
    hits: s.hits,
    misses: s.misses,
    l1Hits: s.l1Hits,
    l2Hits: s.l2Hits,
    l2Errors: s.l2Errors,
    staleHits: s.staleHits,
    l2AvgLatencyMs: s.l2Timed === 0 ? 0 : s.l2ReadMs / s.l2Timed,
    size: eng.l1?.size ?? 0,
    bytes: eng.l1?.bytes ?? 0,
    maxSize: eng.l1 ? eng.config.l1.maxEntries : 0,
    maxBytes: eng.l1 ? eng.config.l1.maxBytes : 0,
    lastOperationAt: lastOperation(s.last, eng.l1),
  };
}

/** The later of the last operation the engine timed and the L1's last inlined hit (`lastHit`). */
function lastOperation(last: number | null, l1: L1Cache | null): number | null {
  if (l1 === null || l1.lastHit === null) return last;
  const hit = l1.base + l1.lastHit;
  return last === null || hit > last ? hit : last;
}

/**
 * Health from what the last operations saw (no I/O); `fresh` is a report just made by
 * `checkHealth()`, whose status then counts too.
 */
export function functionHealth(eng: Engine, fresh: HealthReport | null = null): FunctionHealth {
  const b = eng.l2Backend;
  const n = eng.consecutiveErrors;
  const threshold = eng.config.circuitBreaker.failureThreshold;
  const circuit = b instanceof GuardedBackend ? b.circuitBreaker?.state ?? null : null;
  let status: HealthStatus = circuit === "open" || n >= threshold
    ? "unhealthy"
    : n === 0 && circuit !== "half_open"
    ? "healthy"
    : "degraded";
  // Refused credentials, or a closed backend: no L2 operation succeeds until that changes.
  if ((eng.lastErrorKind === "authentication" || eng.lastErrorKind === "closed") && n > 0) {
    status = "unhealthy";
  }
  const l1 = {
    enabled: eng.l1 !== null,
    entries: eng.l1?.size ?? 0,
    bytes: eng.l1?.bytes ?? 0,
    maxBytes: eng.config.l1.maxBytes,
    maxEntries: eng.config.l1.maxEntries,
  };
  const report = fresh ?? eng.lastReport;
  const components: HealthReport["components"] = { ...report?.components };
  const l1c: HealthComponent = { status: "healthy", details: { ...l1 } };
  components.l1 = l1c;
  if (fresh) status = worstStatus(status, fresh.status);
  const recovery = b === null || b === undefined ? null : recoveryComponent(b);
  if (recovery !== null) {
    // Invalidations made during an outage that have not reached L2 or the bus yet.
    components.recovery = recovery;
    status = worstStatus(status, recovery.status);
  }
  if (busDown(eng)) {
    // L1 may serve values another instance invalidated: the events are not arriving.
    components.invalidation = {
      status: "degraded",
      message: "invalidation bus subscription is down: remote invalidations are being " +
        "missed (L1 is cleared when it is back)",
    };
    status = worstStatus(status, "degraded");
  }
  return {
    status,
    identity: eng.identity,
    backend: b === null ? null : b === undefined ? "default" : b.type,
    l1,
    circuit,
    consecutiveErrors: n,
    lastError: eng.lastError,
    lastErrorKind: eng.lastErrorKind,
    staleHits: eng.stats.staleHits,
    latencyMs: eng.lastProbe?.latencyMs ?? null,
    ...(eng.lastProbe?.details ? { details: eng.lastProbe.details } : {}),
    level: report?.level ?? null,
    checkedAt: report?.timestamp ?? null,
    components,
  };
}

/**
 * Probe the backend now through a `HealthChecker` at `level` and return the health.
 *
 * @param level `ping`, `basic` (default) or `full`.
 * @param probes Reports of backends already probed in the same check (shared backends).
 */
export async function checkFunctionHealth(
  eng: Engine,
  level: HealthLevel = "basic",
  probes?: ProbeCache,
): Promise<FunctionHealth> {
  const b = await eng.backendAsync();
  if (b !== null) {
    const report = await backendReport(b, level, eng.metrics, probes);
    eng.lastReport = report;
    const c = report.components.backend;
    const details = c?.details;
    eng.lastProbe = { latencyMs: c?.latencyMs ?? 0, details };
    if (c !== undefined && c.status !== "unhealthy") recordSuccess(eng);
    else {
      eng.consecutiveErrors = Math.max(
        eng.consecutiveErrors,
        eng.config.circuitBreaker.failureThreshold,
      );
      eng.lastError = c?.message ?? "health check failed";
      if (typeof details?.kind === "string") eng.lastErrorKind = details.kind;
      else if (/WRONGPASS|NOAUTH|NOPERM|auth/i.test(eng.lastError)) {
        eng.lastErrorKind = "authentication";
      }
    }
  } else {
    eng.lastReport = {
      status: "healthy",
      level,
      timestamp: new Date().toISOString(),
      durationMs: 0,
      components: {},
    };
  }
  return functionHealth(eng, eng.lastReport);
}
