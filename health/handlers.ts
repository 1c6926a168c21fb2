/**
 * HTTP handlers for health and metrics, as plain `(req: Request) => Promise<Response>` functions:
 * they fit `Deno.serve(handler)`, `Bun.serve({ fetch: handler })`, Hono
 * (`app.get("/health", (c) => handler(c.req.raw))`) and any Fetch-API router, with no dependency.
 *
 * @example Serving both on Deno
 * ```ts ignore
 * import { healthCheckHandler, metricsHandler } from "@cachekit/core/health";
 * const health = healthCheckHandler({ backend: null });
 * const metrics = metricsHandler();
 * Deno.serve((req) => new URL(req.url).pathname === "/metrics" ? metrics(req) : health(req));
 * ```
 *
 * @module
 */

import {
  HealthChecker,
  type HealthCheckerOptions,
  type HealthLevel,
  type HealthReport,
  parseHealthLevel,
} from "./health_checker.ts";
import {
  CacheMetrics,
  getDefaultMetrics,
  MetricsRegistry,
  PROMETHEUS_CONTENT_TYPE,
} from "./metrics.ts";

/**
 * Anything that produces a {@linkcode HealthReport} for a level: a {@linkcode HealthChecker}, or
 * the whole-process check of the cached functions (`checkCacheHealth` in `cache_health.ts`).
 */
export interface HealthSource {
  /** Run the checks of `level`; never rejects. */
  check(level: HealthLevel): Promise<HealthReport>;
}

/** Options of {@linkcode healthCheckHandler}. */
export interface HealthCheckHandlerOptions {
  /** Level when the request has no `?level=`. Default `"basic"`. */
  defaultLevel?: HealthLevel;
}

const JSON_HEADERS = {
  "content-type": "application/json; charset=utf-8",
  "cache-control": "no-store",
};

/**
 * A health endpoint: JSON body (a `HealthReport`), status 200 when healthy or degraded, 503 when
 * unhealthy, 400 for an unknown `?level=` (`ping`, `basic`, `full`). `HEAD` gets the status
 * without a body.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { healthCheckHandler } from "@cachekit/core/health";
 * const handler = healthCheckHandler({ l1: () => ({ bytes: 0, entries: 0 }) });
 * const res = await handler(new Request("http://localhost/health?level=full"));
 * assert.equal(res.status, 200);
 * assert.equal((await res.json()).status, "healthy");
 * ```
 *
 * @param source A {@linkcode HealthSource} (e.g. a {@linkcode HealthChecker}), or options to build a
 * `HealthChecker`.
 * @param options Handler options.
 * @returns The request handler.
 */
export function healthCheckHandler(
  source: HealthSource | HealthCheckerOptions = {},
  options: HealthCheckHandlerOptions = {},
): (req: Request) => Promise<Response> {
  const checker: HealthSource = typeof (source as Partial<HealthSource>).check === "function"
    ? source as HealthSource
    : new HealthChecker(source as HealthCheckerOptions);
  const defaultLevel = options.defaultLevel ?? "basic";
  parseHealthLevel(defaultLevel);
  return async (req: Request): Promise<Response> => {
    let level: HealthLevel = defaultLevel;
    const q = new URL(req.url).searchParams.get("level");
    if (q !== null && q !== "") {
      try {
        level = parseHealthLevel(q);
      } catch (e) {
        return new Response(
          JSON.stringify({ error: e instanceof Error ? e.message : String(e) }),
          { status: 400, headers: JSON_HEADERS },
        );
      }
    }
    const report = await checker.check(level);
    const status = report.status === "unhealthy" ? 503 : 200;
    const body = req.method === "HEAD" ? null : JSON.stringify(report);
    return new Response(body, { status, headers: JSON_HEADERS });
  };
}

/**
 * A Prometheus scrape endpoint: the text exposition format 0.0.4 of `source` (default: the
 * process-wide {@linkcode getDefaultMetrics} registry).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheMetrics, metricsHandler } from "@cachekit/core/health";
 * const m = new CacheMetrics();
 * m.recordMiss("users", "l1", "app.users");
 * const res = await metricsHandler(m)(new Request("http://localhost/metrics"));
 * const text = await res.text();
 * assert.ok(text.includes('cache_misses_total{namespace="users",function="app.users",layer="l1"} 1'));
 * ```
 *
 * @param source The metrics to expose.
 * @returns The request handler.
 */
export function metricsHandler(
  source?: CacheMetrics | MetricsRegistry,
): (req: Request) => Promise<Response> {
  return (req: Request): Promise<Response> => {
    const registry = source instanceof CacheMetrics
      ? source.registry
      : source instanceof MetricsRegistry
      ? source
      : getDefaultMetrics().registry;
    const body = req.method === "HEAD" ? null : registry.exposition();
    return Promise.resolve(
      new Response(body, {
        status: 200,
        headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" },
      }),
    );
  };
}
