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
 * `redis_cache_operation_duration_seconds`, `circuit_breaker_state`) plus hits and misses by layer
 * and function, errors by kind and L1 size. The backend families are named after the backend that
 * answered (`redis_…` as in cachekit-py, `memory_…`, `file_…`).
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
import { backendMetricPrefix, FunctionLabels } from "./_metric_labels.ts";

export * from "./_metric_families.ts";
export { MetricsRegistry } from "./_metrics_registry.ts";
export { escapeLabelValue, PROMETHEUS_CONTENT_TYPE } from "./_metric_text.ts";
export { backendMetricPrefix, FUNCTION_LABEL_OVERFLOW } from "./_metric_labels.ts";

/** Where a hit or miss happened. */
export type CacheLayer = "l1" | "l2";

/** Options of {@linkcode CacheMetrics}. */
export interface CacheMetricsOptions {
  /**
   * Most distinct `function` label values (function identities); the calls of any further
   * function are counted under {@linkcode FUNCTION_LABEL_OVERFLOW}. Default 100.
   */
  maxFunctions?: number;
}

/**
 * The cache's metric families, with the Python cachekit names and labels. One instance per
 * registry; share it between every cached function (they differ by the `namespace` and `function`
 * labels).
 *
 * | family | type | labels |
 * |---|---|---|
 * | `cache_operations_total` | counter | operation, namespace, success, serializer |
 * | `cache_operation_size_bytes` | histogram | operation, namespace, serializer |
 * | `<backend>_cache_operations_total` | counter | operation, backend, status (`success`/`error`/`rejected`) |
 * | `<backend>_cache_operation_duration_seconds` | histogram | operation, backend, function |
 * | `circuit_breaker_state` | gauge (0 closed, 1 open, 2 half-open) | backend |
 * | `cache_hits_total` / `cache_misses_total` | counter | namespace, function, layer (`l1`/`l2`) |
 * | `cache_errors_total` | counter | operation, backend, kind |
 * | `cache_stale_hits_total` | counter | namespace, function, reason (`error`/`soft_timeout`/`hard_timeout`/`throttled`) |
 * | `cache_l1_bytes` / `cache_l1_entries` | gauge | namespace |
 *
 * **Backend families** are named after the backend that answered: `<backend>` is its `type` as a
 * metric-name prefix ({@linkcode backendMetricPrefix}): `redis_cache_operations_total` (cachekit-py's
 * name) for Redis, `memory_cache_operations_total`, `file_cache_operations_total`, … A family
 * appears with the first operation of its backend.
 *
 * **Counting rule**: `cache_operations_total{operation="get"}` counts one per call that consulted L2
 * (an L2 hit, an L2 miss, a stale value found, or a failed read with `success="false"`), however
 * many round trips the call made (a miss under the stampede lock reads twice). The backend families
 * count round trips: every `get` the backend was sent.
 *
 * **`function` label**: the function's identity (its `name` or package-relative path), never a key
 * or an argument. At most `maxFunctions` (100) distinct values: the calls of further functions are
 * counted under {@linkcode FUNCTION_LABEL_OVERFLOW} (`"_overflow"`). Operations no single function
 * made (health probes, group invalidation) have `function=""`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheMetrics } from "@cachekit/core/health";
 *
 * const m = new CacheMetrics();
 * m.recordHit("users", "l1", "app.getUser");
 * m.recordOperation({ operation: "get", namespace: "users", success: true, serializer: "std", sizeBytes: 120 });
 * m.trackL1("users", () => ({ bytes: 2048, entries: 3 }));
 * const text = m.registry.exposition();
 * assert.ok(text.includes('cache_hits_total{namespace="users",function="app.getUser",layer="l1"} 1'));
 * assert.ok(text.includes('cache_l1_bytes{namespace="users"} 2048'));
 * ```
 */
export class CacheMetrics {
  /** The registry holding the families. */
  readonly registry: MetricsRegistry;
  /** `cache_operations_total`. */
  readonly operations: Counter;
  /** `cache_operation_size_bytes`. */
  readonly operationSize: Histogram;
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
  readonly #functions: FunctionLabels;
  readonly #backendFamilies = new Map<string, { operations: Counter; duration: Histogram }>();

  /**
   * Register the families in `registry`.
   *
   * @param registry Where to register the families. Default: a new registry.
   * @param options The bound on `function` label values.
   * @throws {CacheConfigError} on an invalid `maxFunctions`.
   */
  constructor(
    registry: MetricsRegistry = new MetricsRegistry(),
    options: CacheMetricsOptions = {},
  ) {
    this.registry = registry;
    this.#functions = new FunctionLabels(options.maxFunctions);
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
    this.circuitState = registry.gauge({
      name: "circuit_breaker_state",
      help: "Circuit breaker state per backend: 0 closed, 1 open, 2 half-open.",
      labelNames: ["backend"],
    });
    this.hits = registry.counter({
      name: "cache_hits_total",
      help: "Cache hits by namespace, function and layer.",
      labelNames: ["namespace", "function", "layer"],
    });
    this.misses = registry.counter({
      name: "cache_misses_total",
      help: "Cache misses by namespace, function and layer.",
      labelNames: ["namespace", "function", "layer"],
    });
    this.errors = registry.counter({
      name: "cache_errors_total",
      help: "Cache errors by operation, backend and error kind.",
      labelNames: ["operation", "backend", "kind"],
    });
    this.staleHits = registry.counter({
      name: "cache_stale_hits_total",
      help: "Fail-safe: expired values served because the function failed or was too slow.",
      labelNames: ["namespace", "function", "reason"],
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

  /**
   * The `function` label value of the function `identity`: the identity itself while fewer than
   * `maxFunctions` distinct ones were seen (or it was seen before), else
   * {@linkcode FUNCTION_LABEL_OVERFLOW}. Resolve it once per function, not per call.
   */
  functionLabel(identity: string): string {
    return this.#functions.label(identity);
  }

  /**
   * The counter of operations of `backend` (a backend `type`): `<prefix>_cache_operations_total`,
   * registered on first use (see {@linkcode backendMetricPrefix}).
   */
  backendOperationsFamily(backend: string): Counter {
    return this.#backend(backend).operations;
  }

  /** The latency histogram of `backend`: `<prefix>_cache_operation_duration_seconds`. */
  backendDurationFamily(backend: string): Histogram {
    return this.#backend(backend).duration;
  }

  #backend(backend: string): { operations: Counter; duration: Histogram } {
    const prefix = backendMetricPrefix(backend);
    let f = this.#backendFamilies.get(prefix);
    if (f === undefined) {
      f = {
        operations: this.registry.counter({
          name: `${prefix}_cache_operations_total`,
          help: `L2 operations sent to the ${prefix} backend, by operation and status.`,
          labelNames: ["operation", "backend", "status"],
        }),
        duration: this.registry.histogram({
          name: `${prefix}_cache_operation_duration_seconds`,
          help: `Latency of L2 operations on the ${prefix} backend, in seconds, by function.`,
          labelNames: ["operation", "backend", "function"],
        }),
      };
      this.#backendFamilies.set(prefix, f);
    }
    return f;
  }

  /** Count a hit in `layer` (`fn`: the function identity, bounded by {@linkcode functionLabel}). */
  recordHit(namespace: string, layer: CacheLayer, fn = ""): void {
    this.hits.inc({ namespace, function: fn && this.functionLabel(fn), layer });
  }

  /** Count a miss in `layer` (`fn`: the function identity, bounded). */
  recordMiss(namespace: string, layer: CacheLayer, fn = ""): void {
    this.misses.inc({ namespace, function: fn && this.functionLabel(fn), layer });
  }

  /** Count an error of `kind` (a `BackendErrorKind`, or e.g. `serialization`, `integrity`). */
  recordError(operation: string, backend: string, kind: string): void {
    this.errors.inc({ operation, backend, kind });
  }

  /**
   * Count a stale value served by the fail-safe (`reason`: `error`, `soft_timeout`, `hard_timeout`,
   * or `throttled`: reused within `failSafeThrottle` after a failure; `fn`: the function identity,
   * bounded).
   */
  recordStaleHit(
    namespace: string,
    reason: "error" | "soft_timeout" | "hard_timeout" | "throttled",
    fn = "",
  ): void {
    this.staleHits.inc({ namespace, function: fn && this.functionLabel(fn), reason });
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
