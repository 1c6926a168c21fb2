/**
 * Observability for `@cachekit/core`: health checks and their HTTP handler, metrics with
 * Prometheus exposition and an OpenTelemetry-friendly observer hook, and LogTape loggers with
 * correlation ids.
 *
 * @example A health and a metrics endpoint
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheMetrics, healthCheckHandler, HealthChecker, metricsHandler } from "@cachekit/core/health";
 *
 * const metrics = new CacheMetrics();
 * const checker = new HealthChecker({ backend: null, metrics, l1: () => ({ bytes: 0, entries: 0 }) });
 * const health = healthCheckHandler(checker);
 * const scrape = metricsHandler(metrics);
 * assert.equal((await health(new Request("http://x/health?level=ping"))).status, 200);
 * const res = await scrape(new Request("http://x/metrics"));
 * assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
 * ```
 *
 * @module
 */

export type * from "../backends/types.ts";
export * from "./health_checker.ts";
export * from "./handlers.ts";
export * from "./metrics.ts";
export * from "./logging.ts";
