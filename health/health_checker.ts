/**
 * Health of a cache: cachekit-py's levels (`ping`, `basic`, `full`) and statuses (`healthy`,
 * `degraded`, `unhealthy`).
 *
 * | level | checks |
 * |---|---|
 * | `ping` | the backend's `healthCheck()` and its latency |
 * | `basic` | ping + connection/pool figures (the backend's `pool`, when it measures one) + circuit state |
 * | `full` | every component with details: backend, circuit breaker state and counts, adaptive timeout, backpressure, L1 size, pool, metrics |
 *
 * Status rules (the worst component wins):
 * - backend probe fails → `unhealthy` (or `degraded` with `backendDownStatus: "degraded"`, for
 *   services that answer from L1 and the function anyway and must not be restarted for it);
 * - circuit open or half-open, or probe latency over `degradedLatencyMs` (100 ms) → `degraded`;
 * - no backend at all (L1 only) → `healthy`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { HealthChecker } from "@cachekit/core/health";
 *
 * const checker = new HealthChecker({ l1: () => ({ bytes: 1024, entries: 2 }) });
 * const report = await checker.check("full");
 * assert.equal(report.status, "healthy");
 * assert.equal(report.components.l1?.details?.entries, 2);
 * ```
 *
 * @module
 */

import type { Backend, BackendHealth } from "../backends/types.ts";
import { CacheConfigError } from "../errors.ts";
import type { CircuitBreaker } from "../reliability/circuit_breaker.ts";
import type { GuardedBackend } from "../reliability/guarded_backend.ts";
import type { CacheMetrics } from "./metrics.ts";

/** How much to check. */
export type HealthLevel = "ping" | "basic" | "full";

/** The verdict. */
export type HealthStatus = "healthy" | "degraded" | "unhealthy";

/** Every level, in increasing depth. */
export const HEALTH_LEVELS: readonly HealthLevel[] = Object.freeze(["ping", "basic", "full"]);

/** L1 figures reported by the engine's provider. */
export interface L1Stats {
  /** Bytes held. */
  bytes: number;
  /** Entries held. */
  entries: number;
  /** Byte limit, if any. */
  maxBytes?: number;
  /** Entry limit, if any. */
  maxEntries?: number;
}

/** Options of {@linkcode HealthChecker}. */
export interface HealthCheckerOptions {
  /** The L2 backend (a `GuardedBackend` adds circuit, timeout and backpressure figures). `null`: L1 only. */
  backend?: Backend | null;
  /** A breaker to report; default: the backend's own when it is a `GuardedBackend`. */
  circuitBreaker?: CircuitBreaker | null;
  /** L1 size provider. */
  l1?: (() => L1Stats) | null;
  /** Metrics to summarise at `full`. */
  metrics?: CacheMetrics | null;
  /** Probe latency above which the backend is `degraded`, ms. Default 100. */
  degradedLatencyMs?: number;
  /** Longest wait for the backend probe, ms (then it counts as failed). Default 2000. */
  probeTimeoutMs?: number;
  /** Status when the backend probe fails. Default `"unhealthy"`. */
  backendDownStatus?: "unhealthy" | "degraded";
  /** Name reported in the body (e.g. the service or cache name). */
  name?: string;
}

/** One component's verdict. */
export interface HealthComponent {
  /** Verdict for this component. */
  status: HealthStatus;
  /** Probe latency, ms (backend). */
  latencyMs?: number;
  /** Why it is not healthy. */
  message?: string;
  /** Figures (JSON-able). */
  details?: Record<string, unknown>;
}

/** The body of a health answer. */
export interface HealthReport {
  /** Overall verdict (worst component). */
  status: HealthStatus;
  /** Level checked. */
  level: HealthLevel;
  /** `name` option, if set. */
  name?: string;
  /** ISO time of the check. */
  timestamp: string;
  /** How long the check took, ms. */
  durationMs: number;
  /** Components checked at this level. */
  components: {
    backend?: HealthComponent;
    circuitBreaker?: HealthComponent;
    timeout?: HealthComponent;
    backpressure?: HealthComponent;
    pool?: HealthComponent;
    l1?: HealthComponent;
    metrics?: HealthComponent;
    /** The invalidation bus subscription of a cached function, when it is down. */
    invalidation?: HealthComponent;
    /**
     * The backend's queue of remote operations (deletions, tag invalidations, bus publishes) that
     * failed during an outage and wait to be retried: `pending`, `dropped`, `lastRetry`.
     */
    recovery?: HealthComponent;
  };
}

const RANK: Record<HealthStatus, number> = { healthy: 0, degraded: 1, unhealthy: 2 };

function worst(a: HealthStatus, b: HealthStatus): HealthStatus {
  return RANK[b] > RANK[a] ? b : a;
}

function isGuarded(b: Backend | null | undefined): b is GuardedBackend {
  return !!b && typeof (b as Partial<GuardedBackend>).stats === "function" &&
    "circuitBreaker" in b;
}

/** A finite number of milliseconds > 0, or `fallback` when `undefined`. */
function positiveMs(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new CacheConfigError(option, value, "a finite number > 0");
  }
  return value;
}

/**
 * Parse a level name (e.g. from `?level=`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseHealthLevel } from "@cachekit/core/health";
 * assert.equal(parseHealthLevel("FULL"), "full");
 * ```
 *
 * @throws {CacheConfigError} when `value` is not a level.
 */
export function parseHealthLevel(value: string): HealthLevel {
  const v = value.trim().toLowerCase();
  if ((HEALTH_LEVELS as readonly string[]).includes(v)) return v as HealthLevel;
  throw new CacheConfigError("level", value, `one of ${HEALTH_LEVELS.join(", ")}`);
}

/** Checks a cache's components. */
export class HealthChecker {
  readonly #backend: Backend | null;
  readonly #breaker: CircuitBreaker | null;
  readonly #l1: (() => L1Stats) | null;
  readonly #metrics: CacheMetrics | null;
  readonly #degradedMs: number;
  readonly #probeMs: number;
  readonly #downStatus: HealthStatus;
  readonly #name: string | undefined;

  /**
   * Create the object from its options (validated at once).
   *
   * @param options What to check; see {@linkcode HealthCheckerOptions}.
   * @throws {CacheConfigError} on an invalid option.
   */
  constructor(options: HealthCheckerOptions = {}) {
    this.#backend = options.backend ?? null;
    this.#breaker = options.circuitBreaker !== undefined
      ? options.circuitBreaker
      : isGuarded(this.#backend)
      ? this.#backend.circuitBreaker
      : null;
    this.#l1 = options.l1 ?? null;
    this.#metrics = options.metrics ?? null;
    this.#degradedMs = positiveMs("degradedLatencyMs", options.degradedLatencyMs, 100);
    this.#probeMs = positiveMs("probeTimeoutMs", options.probeTimeoutMs, 2000);
    const down = options.backendDownStatus ?? "unhealthy";
    if (down !== "unhealthy" && down !== "degraded") {
      throw new CacheConfigError("backendDownStatus", down, `"unhealthy" or "degraded"`);
    }
    this.#downStatus = down;
    this.#name = options.name;
  }

  /**
   * Run the checks of `level`. Never throws: failures become `unhealthy` components.
   *
   * @param level `ping`, `basic` (default) or `full`.
   */
  async check(level: HealthLevel = "basic"): Promise<HealthReport> {
    if (!HEALTH_LEVELS.includes(level)) level = parseHealthLevel(String(level));
    const t0 = performance.now();
    const components: HealthReport["components"] = {};
    let status: HealthStatus = "healthy";

    let probe: BackendHealth | null = null;
    if (this.#backend) {
      probe = await this.#probe(this.#backend);
      const c: HealthComponent = {
        status: probe.healthy
          ? (probe.latencyMs > this.#degradedMs ? "degraded" : "healthy")
          : this.#downStatus,
        latencyMs: round(probe.latencyMs),
        details: { type: probe.backendType },
      };
      if (!probe.healthy) {
        c.message = String(probe.details?.error ?? "backend health check failed");
      } else if (c.status === "degraded") {
        c.message = `latency ${round(probe.latencyMs)} ms over ${this.#degradedMs} ms`;
      }
      if (level === "full" && probe.details) c.details = { ...c.details, ...probe.details };
      components.backend = c;
      status = worst(status, c.status);
    }

    if (level !== "ping") {
      const breaker = this.#breaker;
      if (breaker) {
        const snap = breaker.snapshot();
        const c: HealthComponent = {
          status: snap.state === "closed" ? "healthy" : "degraded",
          details: level === "full"
            ? { ...snap }
            : { state: snap.state, failures: snap.failures, timesOpened: snap.timesOpened },
        };
        if (snap.state !== "closed") {
          c.message = snap.state === "open"
            ? `circuit open: L2 skipped, probes in ${Math.ceil(snap.retryInMs)} ms`
            : "circuit half-open: probing L2";
        }
        components.circuitBreaker = c;
        status = worst(status, c.status);
      }
      const pool = probe ? poolDetails(probe) : null;
      if (pool !== null) components.pool = { status: "healthy", details: pool };
    }

    if (level === "full") {
      const b = this.#backend;
      if (isGuarded(b)) {
        const stats = b.stats();
        if (stats.timeout) {
          components.timeout = { status: "healthy", details: { ...stats.timeout } };
        }
        if (stats.backpressure) {
          const bp = stats.backpressure;
          components.backpressure = {
            status: bp.queued > 0 ? "degraded" : "healthy",
            details: { ...bp, rejectedTotal: stats.rejectedByBackpressure },
          };
          if (bp.queued > 0) components.backpressure.message = `${bp.queued} L2 operations waiting`;
          status = worst(status, components.backpressure.status);
        }
        if (components.backend) {
          components.backend.details = {
            ...components.backend.details,
            successes: stats.successes,
            failures: stats.failures,
          };
        }
      }
      if (this.#l1) {
        try {
          const l1 = this.#l1();
          components.l1 = { status: "healthy", details: { ...l1 } };
        } catch (e) {
          components.l1 = { status: "degraded", message: errorMessage(e) };
          status = worst(status, "degraded");
        }
      }
      if (this.#metrics) {
        const m = this.#metrics;
        components.metrics = {
          status: "healthy",
          details: {
            enabled: true,
            hits: { l1: sumSeries(m, "hits", "l1"), l2: sumSeries(m, "hits", "l2") },
            misses: { l1: sumSeries(m, "misses", "l1"), l2: sumSeries(m, "misses", "l2") },
          },
        };
      }
    }

    const report: HealthReport = {
      status,
      level,
      timestamp: new Date().toISOString(),
      durationMs: round(performance.now() - t0),
      components,
    };
    if (this.#name !== undefined) report.name = this.#name;
    return report;
  }

  async #probe(backend: Backend): Promise<BackendHealth> {
    const start = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const timeout = new Promise<BackendHealth>((resolve) => {
        timer = setTimeout(() =>
          resolve({
            healthy: false,
            latencyMs: performance.now() - start,
            backendType: backend.type,
            details: { error: `health check timed out after ${this.#probeMs} ms` },
          }), this.#probeMs);
      });
      return await Promise.race([backend.healthCheck(), timeout]);
    } catch (e) {
      return {
        healthy: false,
        latencyMs: performance.now() - start,
        backendType: backend.type,
        details: { error: errorMessage(e) },
      };
    } finally {
      clearTimeout(timer);
    }
  }
}

const POOL_KEYS = /pool|conn|client|socket|idle|active|waiting|open|ready/i;

/**
 * The pool figures of a probe: the backend's `pool` (read from its client), else the connection
 * entries of its `details` (a backend that reports them there); `null` when it reported none, so
 * a report never shows a pool a backend did not measure.
 */
function poolDetails(probe: BackendHealth): Record<string, unknown> | null {
  if (probe.pool !== undefined) return { ...probe.pool };
  const out: Record<string, unknown> = {};
  let any = false;
  for (const [k, v] of Object.entries(probe.details ?? {})) {
    if (POOL_KEYS.test(k) && (typeof v !== "object" || v === null || !Array.isArray(v))) {
      out[k] = v;
      any = true;
    }
  }
  return any ? out : null;
}

function sumSeries(m: CacheMetrics, which: "hits" | "misses", layer: string): number {
  const text = m.registry.get(which === "hits" ? "cache_hits_total" : "cache_misses_total");
  if (!text) return 0;
  let total = 0;
  // Sum over namespaces: walk the exposition lines of this one family.
  const out: string[] = [];
  text.write(out);
  for (const line of out) {
    if (line.startsWith("#") || !line.includes(`layer="${layer}"`)) continue;
    total += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return total;
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
