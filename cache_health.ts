/**
 * Health and metrics endpoints for every cached function of the process: `checkCacheHealth(level)`
 * checks each live cached function (one probe per distinct backend, so the default backend shared
 * by many functions is pinged once), and `cacheHealthHandler()` / `cacheMetricsHandler()` are
 * `(req: Request) => Promise<Response>` handlers that fit `Deno.serve`, `Bun.serve({ fetch })`,
 * Hono (`app.get("/health", (c) => handler(c.req.raw))`) and any Fetch-API router.
 *
 * Health body: JSON, the {@linkcode CacheHealthReport} (`status`, `level`, `timestamp`,
 * `durationMs`, `components` (the L1 total; the backend's components when every function shares
 * one backend) and `functions`: each function's {@linkcode FunctionHealth}); HTTP 200 when healthy
 * or degraded, 503 when unhealthy, 400 for an unknown `?level=` (`ping`, `basic`, `full`).
 * Status is the worst function's.
 *
 * Metrics: the Prometheus text exposition of the process-wide registry the cached functions record
 * into (`monitoring.prometheus`, on in `cache.production`): hits and misses by layer, L2 operations,
 * latency and sizes, errors by kind, circuit state, L1 bytes/entries, stale hits.
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
  checkFunctionHealth,
  type FunctionHealth,
  liveEngines,
  worstStatus,
} from "./engine/internal.ts";
import type { HealthLevel, HealthReport, HealthStatus } from "./health/health_checker.ts";
import {
  healthCheckHandler,
  type HealthCheckHandlerOptions,
  metricsHandler,
} from "./health/handlers.ts";
import { getDefaultMetrics } from "./health/metrics.ts";

/** The health of every cached function of the process. */
export interface CacheHealthReport extends HealthReport {
  /** Each live cached function's health (identity, backend, circuit, L1, components). */
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
  const probes = new Map<Backend, Promise<HealthReport>>();
  const functions = await Promise.all(
    liveEngines().map((e) => checkFunctionHealth(e, level, probes)),
  );
  let status: HealthStatus = "healthy";
  let entries = 0;
  let bytes = 0;
  for (const f of functions) {
    status = worstStatus(status, f.status);
    entries += f.l1.entries;
    bytes += f.l1.bytes;
  }
  const components: HealthReport["components"] = {};
  if (probes.size === 1) {
    Object.assign(
      components,
      await [...probes.values()][0].then((r) => r.components),
    );
  }
  components.l1 = { status: "healthy", details: { entries, bytes, functions: functions.length } };
  return {
    status,
    level,
    timestamp: new Date().toISOString(),
    durationMs: Math.round((performance.now() - t0) * 1000) / 1000,
    components,
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
