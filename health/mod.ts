/**
 * Observability for `@cachekit/core`: health checks and their HTTP handler, metrics with
 * Prometheus exposition and an OpenTelemetry-friendly observer hook, and LogTape loggers with
 * correlation ids.
 *
 * @example A health and a metrics endpoint
 * ```ts
 * import { CacheMetrics, healthCheckHandler, HealthChecker, metricsHandler } from "./mod.ts";
 *
 * const metrics = new CacheMetrics();
 * const checker = new HealthChecker({ backend: null, metrics, l1: () => ({ bytes: 0, entries: 0 }) });
 * const health = healthCheckHandler(checker);
 * const scrape = metricsHandler(metrics);
 * console.log((await health(new Request("http://x/health?level=ping"))).status); // 200
 * console.log((await scrape(new Request("http://x/metrics"))).headers.get("content-type"));
 * ```
 *
 * @module
 */

export type * from "../backends/types.ts";
export * from "./health_checker.ts";
export * from "./handlers.ts";
export * from "./metrics.ts";
export * from "./logging.ts";
