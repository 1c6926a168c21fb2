/**
 * Metrics: a small registry of counters, gauges and histograms, Prometheus text exposition
 * (format 0.0.4), and an observer hook for OpenTelemetry or any other sink.
 *
 * Why hand-written rather than `prom-client`: prom-client is CommonJS for Node (it requires
 * `cluster`, `v8`, `perf_hooks`, `http`, `zlib` and pulls `@opentelemetry/api` and `tdigest`); it
 * runs under Deno's Node compatibility but costs ≈ 60–80 ms to import there and ties a
 * web-standard library to Node built-ins. The text format needs ~150 lines; no npm package offers
 * a runtime-neutral registry with labelled histograms. So this module has no dependency at all.
 *
 * {@linkcode CacheMetrics} creates the metric families with the Python cachekit names and labels
 * (`cache_operations_total`, `cache_operation_size_bytes`, `redis_cache_operations_total`,
 * `redis_cache_operation_duration_seconds`, `circuit_breaker_state`) plus hits and misses by layer,
 * errors by kind and L1 size.
 *
 * OpenTelemetry: {@linkcode MetricsRegistry.addObserver} receives every recorded value as a
 * {@linkcode MetricEvent}; forward counters to an OTel `Counter.add`, histograms to
 * `Histogram.record` and gauges to a `Gauge.record`/`UpDownCounter`, with `labels` as attributes.
 * We never depend on OTel ourselves.
 *
 * @example Counting, exposing and observing
 * ```ts
 * import assert from "node:assert/strict";
 * import { MetricsRegistry } from "@cachekit/core/health";
 *
 * const registry = new MetricsRegistry();
 * const seen: string[] = [];
 * registry.addObserver((e) => seen.push(`${e.name} ${e.value}`));
 * const hits = registry.counter({ name: "demo_hits_total", help: "Hits.", labelNames: ["layer"] });
 * hits.inc({ layer: "l1" });
 * assert.ok(registry.exposition().includes('demo_hits_total{layer="l1"} 1'));
 * assert.deepEqual(seen, ["demo_hits_total 1"]);
 * ```
 *
 * @module
 */

import {
  type Counter,
  DEFAULT_BYTES_BUCKETS,
  type Gauge,
  type Histogram,
} from "./_metric_families.ts";
import { MetricsRegistry } from "./_metrics_registry.ts";

export * from "./_metric_families.ts";
export { MetricsRegistry } from "./_metrics_registry.ts";
export { escapeLabelValue, PROMETHEUS_CONTENT_TYPE } from "./_metric_text.ts";

/** Where a hit or miss happened. */
export type CacheLayer = "l1" | "l2";

/**
 * The cache's metric families, with the Python cachekit names and labels. One instance per
 * registry; share it between every cached function (they differ by the `namespace` label).
 *
 * | family | type | labels |
 * |---|---|---|
 * | `cache_operations_total` | counter | operation, namespace, success, serializer |
 * | `cache_operation_size_bytes` | histogram | operation, namespace, serializer |
 * | `redis_cache_operations_total` | counter | operation, backend, status (`success`/`error`/`rejected`) |
 * | `redis_cache_operation_duration_seconds` | histogram | operation, backend |
 * | `circuit_breaker_state` | gauge (0 closed, 1 open, 2 half-open) | backend |
 * | `cache_hits_total` / `cache_misses_total` | counter | namespace, layer (`l1`/`l2`) |
 * | `cache_errors_total` | counter | operation, backend, kind |
 * | `cache_stale_hits_total` | counter | namespace, reason (`error`/`soft_timeout`) |
 * | `cache_l1_bytes` / `cache_l1_entries` | gauge | namespace |
 *
 * The L2 families keep cachekit-py's `redis_` prefix whatever the backend; the `backend` label says
 * which (`redis`, `file`, `memory`, …).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheMetrics } from "@cachekit/core/health";
 *
 * const m = new CacheMetrics();
 * m.recordHit("users", "l1");
 * m.recordOperation({ operation: "get", namespace: "users", success: true, serializer: "std", sizeBytes: 120 });
 * m.trackL1("users", () => ({ bytes: 2048, entries: 3 }));
 * assert.ok(m.registry.exposition().includes('cache_l1_bytes{namespace="users"} 2048'));
 * ```
 */
export class CacheMetrics {
  /** The registry holding the families. */
  readonly registry: MetricsRegistry;
  /** `cache_operations_total`. */
  readonly operations: Counter;
  /** `cache_operation_size_bytes`. */
  readonly operationSize: Histogram;
  /** `redis_cache_operations_total`. */
  readonly backendOperations: Counter;
  /** `redis_cache_operation_duration_seconds`. */
  readonly backendDuration: Histogram;
  /** `circuit_breaker_state`. */
  readonly circuitState: Gauge;
  /** `cache_hits_total`. */
  readonly hits: Counter;
  /** `cache_misses_total`. */
  readonly misses: Counter;
  /** `cache_errors_total`. */
  readonly errors: Counter;
  /** `cache_stale_hits_total` (fail-safe: stale values served). */
  readonly staleHits: Counter;
  /** `cache_l1_bytes`. */
  readonly l1Bytes: Gauge;
  /** `cache_l1_entries`. */
  readonly l1Entries: Gauge;
  readonly #l1Providers = new Map<string, () => { bytes: number; entries?: number }>();

  /**
   * Register the families in `registry`.
   *
   * @param registry Where to register the families. Default: a new registry.
   */
  constructor(registry: MetricsRegistry = new MetricsRegistry()) {
    this.registry = registry;
    this.operations = registry.counter({
      name: "cache_operations_total",
      help: "Cache operations by operation, namespace, outcome and serializer.",
      labelNames: ["operation", "namespace", "success", "serializer"],
    });
    this.operationSize = registry.histogram({
      name: "cache_operation_size_bytes",
      help: "Size of cached values read or written, in bytes.",
      labelNames: ["operation", "namespace", "serializer"],
      buckets: DEFAULT_BYTES_BUCKETS,
    });
    this.backendOperations = registry.counter({
      name: "redis_cache_operations_total",
      help: "L2 backend operations by operation, backend and status.",
      labelNames: ["operation", "backend", "status"],
    });
    this.backendDuration = registry.histogram({
      name: "redis_cache_operation_duration_seconds",
      help: "L2 backend operation latency in seconds.",
      labelNames: ["operation", "backend"],
    });
    this.circuitState = registry.gauge({
      name: "circuit_breaker_state",
      help: "Circuit breaker state per backend: 0 closed, 1 open, 2 half-open.",
      labelNames: ["backend"],
    });
    this.hits = registry.counter({
      name: "cache_hits_total",
      help: "Cache hits by namespace and layer.",
      labelNames: ["namespace", "layer"],
    });
    this.misses = registry.counter({
      name: "cache_misses_total",
      help: "Cache misses by namespace and layer.",
      labelNames: ["namespace", "layer"],
    });
    this.errors = registry.counter({
      name: "cache_errors_total",
      help: "Cache errors by operation, backend and error kind.",
      labelNames: ["operation", "backend", "kind"],
    });
    this.staleHits = registry.counter({
      name: "cache_stale_hits_total",
      help: "Fail-safe: expired values served because the function failed or was too slow.",
      labelNames: ["namespace", "reason"],
    });
    const providers = this.#l1Providers;
    const collectL1 = () => {
      for (const [ns, provider] of providers) {
        const v = provider();
        this.l1Bytes.labels({ namespace: ns }).set(v.bytes);
        if (v.entries !== undefined) this.l1Entries.labels({ namespace: ns }).set(v.entries);
      }
    };
    this.l1Bytes = registry.gauge({
      name: "cache_l1_bytes",
      help: "Bytes held by the in-process L1 cache.",
      labelNames: ["namespace"],
      collect: collectL1,
    });
    this.l1Entries = registry.gauge({
      name: "cache_l1_entries",
      help: "Entries held by the in-process L1 cache.",
      labelNames: ["namespace"],
    });
  }

  /** Count one cache operation (`get`, `set`, `delete`, …) and, with `sizeBytes`, its value size. */
  recordOperation(op: {
    operation: string;
    namespace: string;
    success: boolean;
    serializer: string;
    sizeBytes?: number;
  }): void {
    this.operations.inc({
      operation: op.operation,
      namespace: op.namespace,
      success: op.success ? "true" : "false",
      serializer: op.serializer,
    });
    if (op.sizeBytes !== undefined) {
      this.operationSize.observe(
        { operation: op.operation, namespace: op.namespace, serializer: op.serializer },
        op.sizeBytes,
      );
    }
  }

  /** Count a hit in `layer`. */
  recordHit(namespace: string, layer: CacheLayer): void {
    this.hits.inc({ namespace, layer });
  }

  /** Count a miss in `layer`. */
  recordMiss(namespace: string, layer: CacheLayer): void {
    this.misses.inc({ namespace, layer });
  }

  /** Count an error of `kind` (a `BackendErrorKind`, or e.g. `serialization`, `integrity`). */
  recordError(operation: string, backend: string, kind: string): void {
    this.errors.inc({ operation, backend, kind });
  }

  /** Count a stale value served by the fail-safe (`reason`: `error` or `soft_timeout`). */
  recordStaleHit(namespace: string, reason: "error" | "soft_timeout"): void {
    this.staleHits.inc({ namespace, reason });
  }

  /** Set the circuit state gauge of `backend` (0 closed, 1 open, 2 half-open). */
  setCircuitState(backend: string, value: number): void {
    this.circuitState.set({ backend }, value);
  }

  /**
   * Report L1 size for `namespace` at every scrape by calling `provider` (replaces an earlier one).
   *
   * @returns A function that stops tracking.
   */
  trackL1(namespace: string, provider: () => { bytes: number; entries?: number }): () => void {
    this.#l1Providers.set(namespace, provider);
    return () => {
      if (this.#l1Providers.get(namespace) === provider) this.#l1Providers.delete(namespace);
    };
  }
}

let defaultMetrics: CacheMetrics | undefined;

/**
 * The process-wide {@linkcode CacheMetrics} (created on first use), which
 * `metricsHandler()` serves by default.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getDefaultMetrics } from "@cachekit/core/health";
 * assert.equal(getDefaultMetrics(), getDefaultMetrics());
 * ```
 */
export function getDefaultMetrics(): CacheMetrics {
  defaultMetrics ??= new CacheMetrics();
  return defaultMetrics;
}
