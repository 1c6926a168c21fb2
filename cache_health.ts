/**
 * Health and metrics endpoints for every cached function of the process: `checkCacheHealth(level)`
 * checks each live cached function (one probe per distinct backend, so the default backend shared
 * by many functions is pinged once), and `cacheHealthHandler()` / `cacheMetricsHandler()` are
 * `(req: Request) => Promise<Response>` handlers that fit `Deno.serve`, `Bun.serve({ fetch })`,
 * Hono (`app.get("/health", (c) => handler(c.req.raw))`) and any Fetch-API router.
 *
 * Health body: JSON, the {@linkcode CacheHealthReport}: `status`, `level`, `timestamp`,
 * `durationMs`; `components` (the L1 total, and at `full` the metrics summary); `backends`: each
 * backend in use **once** ({@linkcode BackendHealthEntry}: `id`, `type`, `status`, `latencyMs`,
 * the `functions` that use it, and its components: `backend`, `circuitBreaker`, `pool` when the
 * backend measures one, at `full` `timeout` and `backpressure`, and `recovery`: its queue of
 * invalidations that failed during an outage, `pending`, `dropped`, `lastRetry`); `functions`:
 * each function's {@linkcode FunctionHealth} with its own components only (`l1`,
 * `invalidation`) and the `backendId` of its backend. HTTP 200 when healthy or degraded, 503 when unhealthy, 400 for an
 * unknown `?level=` (`ping`, `basic`, `full`). Status is the worst function's.
 *
 * Pool figures are read from the backend's client at the probe (Redis: open `connections`,
 * `pendingCommands` in node-redis's queues, `inFlightOperations` of the backend); a backend that
 * measures none (memory, file) has no `pool` component rather than made-up numbers.
 *
 * Metrics: the Prometheus text exposition of the process-wide registry the cached functions record
 * into (`monitoring.prometheus`, on in `cache.production`): hits, misses and stale hits by layer
 * and function (the bounded `function` label), L2 operations and latency in families named after
 * the backend (`redis_…`, `memory_…`, `file_…`), sizes, errors by kind, circuit state, L1
 * bytes/entries. See `CacheMetrics` in `@cachekit/core/health` for the names, labels and the
 * counting rule.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, cacheHealthHandler, cacheMetricsHandler, MemoryBackend } from "@cachekit/core";
 *
 * const square = cache.production(async (n: number) => n * n, {
 *   name: "docs.health.square",
 *   ttl: 60,
 *   backend: new MemoryBackend(),
 * });
 * await square(3);
 * const health = cacheHealthHandler();
 * const metrics = cacheMetricsHandler();
 * const res = await health(new Request("http://localhost/health?level=ping"));
 * assert.equal(res.status, 200);
 * assert.equal((await res.json()).status, "healthy");
 * assert.ok((await (await metrics(new Request("http://localhost/metrics"))).text()).length > 0);
 * // Deno.serve({ port: 8080 }, (req) => new URL(req.url).pathname === "/metrics" ? metrics(req) : health(req));
 * ```
 *
 * @module
 */
import type { Backend } from "./backends/types.ts";
import {
  backendEntries,
  type BackendHealthEntry,
  checkFunctionHealth,
  type FunctionHealth,
  liveEngines,
  ownComponents,
  type ProbeCache,
  worstStatus,
} from "./engine/internal.ts";
import type { HealthLevel, HealthReport, HealthStatus } from "./health/health_checker.ts";
import {
  healthCheckHandler,
  type HealthCheckHandlerOptions,
  metricsHandler,
} from "./health/handlers.ts";
import { getDefaultMetrics } from "./health/metrics.ts";

export type { BackendHealthEntry } from "./engine/internal.ts";

/** The health of every cached function of the process. */
export interface CacheHealthReport extends HealthReport {
  /** Each backend in use, once, with the functions that use it and its components. */
  backends: BackendHealthEntry[];
  /**
   * Each live cached function's health (identity, backend and `backendId`, circuit, L1, its own
   * components: `l1`, `invalidation`).
   */
  functions: FunctionHealth[];
}

/**
 * Check every live cached function at `level` (one backend probe per distinct backend).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkCacheHealth } from "@cachekit/core";
 * const report = await checkCacheHealth("ping");
 * assert.ok(["healthy", "degraded", "unhealthy"].includes(report.status));
 * ```
 *
 * @param level `ping`, `basic` (default) or `full`.
 * @returns The report; never rejects.
 */
export async function checkCacheHealth(level: HealthLevel = "basic"): Promise<CacheHealthReport> {
  const t0 = performance.now();
  const probes: ProbeCache = new Map();
  const engines = liveEngines();
  const checked = await Promise.all(engines.map((e) => checkFunctionHealth(e, level, probes)));
  const users = new Map<Backend, string[]>();
  engines.forEach((e, i) => {
    const b = e.l2Backend;
    if (b === null || b === undefined || !probes.has(b)) return;
    const list = users.get(b);
    const id = checked[i].identity;
    // Functions of one name (and so one identity) share their entries: listed once.
    if (list === undefined) users.set(b, [id]);
    else if (!list.includes(id)) list.push(id);
  });
  const { entries, ids } = await backendEntries(probes, users);
  let status: HealthStatus = "healthy";
  let l1Entries = 0;
  let bytes = 0;
  let metrics: HealthReport["components"]["metrics"];
  const functions = checked.map((f, i): FunctionHealth => {
    status = worstStatus(status, f.status);
    l1Entries += f.l1.entries;
    bytes += f.l1.bytes;
    metrics ??= f.components.metrics;
    const { details: _, ...rest } = f;
    const b = engines[i].l2Backend;
    const backendId = b === null || b === undefined ? undefined : ids.get(b);
    return {
      ...rest,
      ...(backendId !== undefined ? { backendId } : {}),
      components: ownComponents(f.components),
    };
  });
  const components: HealthReport["components"] = {
    l1: { status: "healthy", details: { entries: l1Entries, bytes, functions: functions.length } },
  };
  if (metrics !== undefined) components.metrics = metrics;
  return {
    status,
    level,
    timestamp: new Date().toISOString(),
    durationMs: Math.round((performance.now() - t0) * 1000) / 1000,
    components,
    backends: entries,
    functions,
  };
}

/**
 * A health endpoint over every cached function of the process (see the module documentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheHealthHandler } from "@cachekit/core";
 * const handler = cacheHealthHandler({ defaultLevel: "ping" });
 * assert.equal((await handler(new Request("http://localhost/health?level=nope"))).status, 400);
 * ```
 *
 * @param options Handler options (`defaultLevel`, default `basic`).
 * @returns `(req: Request) => Promise<Response>`.
 */
export function cacheHealthHandler(
  options: HealthCheckHandlerOptions = {},
): (req: Request) => Promise<Response> {
  return healthCheckHandler({ check: checkCacheHealth }, options);
}

/**
 * A Prometheus scrape endpoint for the metrics the cached functions record (the process-wide
 * registry, `getDefaultMetrics()`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheMetricsHandler } from "@cachekit/core";
 * const res = await cacheMetricsHandler()(new Request("http://localhost/metrics"));
 * assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
 * ```
 *
 * @returns `(req: Request) => Promise<Response>`.
 */
export function cacheMetricsHandler(): (req: Request) => Promise<Response> {
  return metricsHandler(getDefaultMetrics());
}
