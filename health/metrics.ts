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

/** Label values by label name. */
export type Labels = Readonly<Record<string, string>>;

/** Kind of a metric family. */
export type MetricType = "counter" | "gauge" | "histogram";

/** One recorded value, as passed to observers (OpenTelemetry bridges and the like). */
export interface MetricEvent {
  /** Family name, e.g. `cache_operations_total`. */
  name: string;
  /** Family kind. */
  type: MetricType;
  /** Counter increment, gauge value, or histogram observation. */
  value: number;
  /** Label values (use as OTel attributes). */
  labels: Labels;
}

/** Receives every recorded value. Exceptions it throws are ignored. */
export type MetricObserver = (event: MetricEvent) => void;

/** Definition of a metric family. */
export interface MetricOptions {
  /** Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`). */
  name: string;
  /** One-line description (`# HELP`). */
  help: string;
  /** Label names, in exposition order. Default none. */
  labelNames?: readonly string[];
}

/** Definition of a histogram family. */
export interface HistogramOptions extends MetricOptions {
  /** Upper bounds of the buckets, increasing (`+Inf` is implicit). Default {@linkcode DEFAULT_SECONDS_BUCKETS}. */
  buckets?: readonly number[];
}

/** Definition of a gauge family. */
export interface GaugeOptions extends MetricOptions {
  /** Called at every scrape, before the values are written, to refresh them (e.g. L1 bytes). */
  collect?: (gauge: Gauge) => void;
}

/** Latency buckets in seconds (0.5 ms … 10 s). */
export const DEFAULT_SECONDS_BUCKETS: readonly number[] = Object.freeze([
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
]);

/** Size buckets in bytes (64 B … 64 MiB, ×4). */
export const DEFAULT_BYTES_BUCKETS: readonly number[] = Object.freeze([
  64,
  256,
  1024,
  4096,
  16384,
  65536,
  262144,
  1048576,
  4194304,
  16777216,
  67108864,
]);

const NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Escape a label value for the text format: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c));
}

function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** What every metric family shares: name, help, label names and labelled series. */
export abstract class MetricFamily<C> {
  /** Metric name. */
  readonly name: string;
  /** One-line description. */
  readonly help: string;
  /** Label names, in exposition order. */
  readonly labelNames: readonly string[];
  /** Series by joined label values. */
  protected readonly children: Map<string, C> = new Map();
  /** The owning registry. */
  protected readonly registry: MetricsRegistry;

  /**
   * Validate the name and label names.
   *
   * @param registry The owning registry.
   * @param options Name, help, label names.
   */
  constructor(registry: MetricsRegistry, options: MetricOptions) {
    if (!NAME_RE.test(options.name)) throw new TypeError(`invalid metric name ${options.name}`);
    const labelNames = options.labelNames ?? [];
    for (const l of labelNames) {
      if (!LABEL_RE.test(l) || l.startsWith("__") || l === "le") {
        throw new TypeError(`invalid label name ${l} for ${options.name}`);
      }
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = Object.freeze([...labelNames]);
    this.registry = registry;
  }

  /** The series key and normalised labels of `labels`. */
  protected key(labels: Labels | undefined): [string, Labels] {
    const names = this.labelNames;
    if (names.length === 0) return ["", {}];
    const values: string[] = [];
    const clean: Record<string, string> = {};
    for (const n of names) {
      const v = labels?.[n];
      const s = v === undefined || v === null ? "" : String(v);
      values.push(s);
      clean[n] = s;
    }
    if (labels) {
      for (const k of Object.keys(labels)) {
        if (!names.includes(k)) throw new TypeError(`unknown label ${k} for ${this.name}`);
      }
    }
    return [values.join("\u0000"), Object.freeze(clean)];
  }

  /** The series of `labels`, created by `make` on first use. */
  protected child(labels: Labels | undefined, make: (l: Labels) => C): C {
    const [k, clean] = this.key(labels);
    let c = this.children.get(k);
    if (c === undefined) {
      c = make(clean);
      this.children.set(k, c);
    }
    return c;
  }

  /** Forget every labelled series. */
  reset(): void {
    this.children.clear();
  }

  /** `{a="x",b="y"}` for a series (plus an `extra` pair such as `le="0.1"`). */
  protected labelString(labels: Labels, extra?: string): string {
    const parts: string[] = [];
    for (const n of this.labelNames) parts.push(`${n}="${escapeLabelValue(labels[n])}"`);
    if (extra) parts.push(extra);
    return parts.length ? `{${parts.join(",")}}` : "";
  }

  /** Write this family in the text format. */
  abstract write(out: string[]): void;
}

/** One labelled counter series. */
export class CounterChild {
  /** Current total. */
  value = 0;
  /** The series' labels. */
  readonly labels: Labels;
  readonly #family: Counter;
  /** @internal */
  constructor(family: Counter, labels: Labels) {
    this.#family = family;
    this.labels = labels;
  }
  /** Add `value` (default 1; must be ≥ 0). */
  inc(value = 1): void {
    if (!(value >= 0)) return;
    this.value += value;
    this.#family.emit(value, this.labels);
  }
}

/** A monotonically increasing counter family. */
export class Counter extends MetricFamily<CounterChild> {
  /** The series for `labels` (cache it on hot paths). */
  labels(labels?: Labels): CounterChild {
    return this.child(labels, (l) => new CounterChild(this, l));
  }
  /** Add `value` (default 1) to the series `labels`. */
  inc(labels?: Labels, value = 1): void {
    this.labels(labels).inc(value);
  }
  /** Current total of the series `labels` (0 if never touched). */
  get(labels?: Labels): number {
    return this.children.get(this.key(labels)[0])?.value ?? 0;
  }
  /** @internal */
  emit(value: number, labels: Labels): void {
    this.registry.emit(this.name, "counter", value, labels);
  }
  /** Write this family in the text format. */
  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} counter`);
    for (const c of this.children.values()) {
      out.push(`${this.name}${this.labelString(c.labels)} ${formatValue(c.value)}`);
    }
  }
}

/** One labelled gauge series. */
export class GaugeChild {
  /** Current value. */
  value = 0;
  /** The series' labels. */
  readonly labels: Labels;
  readonly #family: Gauge;
  /** @internal */
  constructor(family: Gauge, labels: Labels) {
    this.#family = family;
    this.labels = labels;
  }
  /** Set the value. */
  set(value: number): void {
    this.value = value;
    this.#family.emit(value, this.labels);
  }
  /** Add `value` (default 1). */
  inc(value = 1): void {
    this.set(this.value + value);
  }
  /** Subtract `value` (default 1). */
  dec(value = 1): void {
    this.set(this.value - value);
  }
}

/** A gauge family (a value that goes up and down). */
export class Gauge extends MetricFamily<GaugeChild> {
  readonly #collect: ((g: Gauge) => void) | undefined;
  /** @internal */
  constructor(registry: MetricsRegistry, options: GaugeOptions) {
    super(registry, options);
    this.#collect = options.collect;
  }
  /** The series for `labels`. */
  labels(labels?: Labels): GaugeChild {
    return this.child(labels, (l) => new GaugeChild(this, l));
  }
  /** Set the series `labels` to `value`. */
  set(labels: Labels | undefined, value: number): void {
    this.labels(labels).set(value);
  }
  /** Current value of the series `labels` (0 if never set). */
  get(labels?: Labels): number {
    return this.children.get(this.key(labels)[0])?.value ?? 0;
  }
  /** @internal */
  emit(value: number, labels: Labels): void {
    this.registry.emit(this.name, "gauge", value, labels);
  }
  /** Run the `collect` callback (done before every exposition). */
  collect(): void {
    if (!this.#collect) return;
    try {
      this.#collect(this);
    } catch {
      // A failing provider must not break the scrape.
    }
  }
  /** Write this family in the text format. */
  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} gauge`);
    for (const c of this.children.values()) {
      out.push(`${this.name}${this.labelString(c.labels)} ${formatValue(c.value)}`);
    }
  }
}

/** One labelled histogram series. */
export class HistogramChild {
  /** Observations per bucket (not cumulative; the last slot is `+Inf`). */
  readonly counts: Float64Array;
  /** Sum of observations. */
  sum = 0;
  /** Number of observations. */
  count = 0;
  /** The series' labels. */
  readonly labels: Labels;
  readonly #family: Histogram;
  /** @internal */
  constructor(family: Histogram, labels: Labels) {
    this.#family = family;
    this.labels = labels;
    this.counts = new Float64Array(family.buckets.length + 1);
  }
  /** Record one observation. */
  observe(value: number): void {
    if (Number.isNaN(value)) return;
    const b = this.#family.buckets;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
    this.#family.emit(value, this.labels);
  }
}

/** A histogram family with fixed buckets. */
export class Histogram extends MetricFamily<HistogramChild> {
  /** Bucket upper bounds (without `+Inf`). */
  readonly buckets: readonly number[];
  /** @internal */
  constructor(registry: MetricsRegistry, options: HistogramOptions) {
    super(registry, options);
    const buckets = [...(options.buckets ?? DEFAULT_SECONDS_BUCKETS)];
    for (let i = 0; i < buckets.length; i++) {
      if (!Number.isFinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
        throw new TypeError(`histogram ${options.name}: buckets must be finite and increasing`);
      }
    }
    this.buckets = Object.freeze(buckets);
  }
  /** The series for `labels`. */
  labels(labels?: Labels): HistogramChild {
    return this.child(labels, (l) => new HistogramChild(this, l));
  }
  /** Record `value` in the series `labels`. */
  observe(labels: Labels | undefined, value: number): void {
    this.labels(labels).observe(value);
  }
  /** The series `labels`, if it exists. */
  get(labels?: Labels): HistogramChild | undefined {
    return this.children.get(this.key(labels)[0]);
  }
  /** @internal */
  emit(value: number, labels: Labels): void {
    this.registry.emit(this.name, "histogram", value, labels);
  }
  /** Write this family in the text format. */
  write(out: string[]): void {
    out.push(`# HELP ${this.name} ${escapeHelp(this.help)}`, `# TYPE ${this.name} histogram`);
    for (const c of this.children.values()) {
      let cumulative = 0;
      for (let i = 0; i <= this.buckets.length; i++) {
        cumulative += c.counts[i];
        const le = i < this.buckets.length ? formatValue(this.buckets[i]) : "+Inf";
        out.push(`${this.name}_bucket${this.labelString(c.labels, `le="${le}"`)} ${cumulative}`);
      }
      out.push(`${this.name}_sum${this.labelString(c.labels)} ${formatValue(c.sum)}`);
      out.push(`${this.name}_count${this.labelString(c.labels)} ${c.count}`);
    }
  }
}

/** A set of metric families with one text exposition and a list of observers. */
export class MetricsRegistry {
  readonly #families = new Map<string, Counter | Gauge | Histogram>();
  readonly #observers: MetricObserver[] = [];

  /** Create (or return the existing) counter family `options.name`. */
  counter(options: MetricOptions): Counter {
    return this.#register(options, "counter", () => new Counter(this, options)) as Counter;
  }

  /** Create (or return the existing) gauge family `options.name`. */
  gauge(options: GaugeOptions): Gauge {
    return this.#register(options, "gauge", () => new Gauge(this, options)) as Gauge;
  }

  /** Create (or return the existing) histogram family `options.name`. */
  histogram(options: HistogramOptions): Histogram {
    return this.#register(options, "histogram", () => new Histogram(this, options)) as Histogram;
  }

  /** The family named `name`, if registered. */
  get(name: string): Counter | Gauge | Histogram | undefined {
    return this.#families.get(name);
  }

  /**
   * Receive every recorded value from now on (an OpenTelemetry bridge, a test spy, …).
   *
   * @returns A function that removes the observer.
   */
  addObserver(observer: MetricObserver): () => void {
    this.#observers.push(observer);
    return () => {
      const i = this.#observers.indexOf(observer);
      if (i >= 0) this.#observers.splice(i, 1);
    };
  }

  /** @internal Deliver one value to the observers. */
  emit(name: string, type: MetricType, value: number, labels: Labels): void {
    const obs = this.#observers;
    if (obs.length === 0) return;
    const event: MetricEvent = { name, type, value, labels };
    for (let i = 0; i < obs.length; i++) {
      try {
        obs[i](event);
      } catch {
        // An observer must never break the cache path.
      }
    }
  }

  /** Every family in the Prometheus text format 0.0.4 (gauges' `collect` callbacks run first). */
  exposition(): string {
    const out: string[] = [];
    for (const f of this.#families.values()) {
      if (f instanceof Gauge) f.collect();
      f.write(out);
    }
    return out.length ? out.join("\n") + "\n" : "";
  }

  /** Forget every series of every family (families stay registered). */
  reset(): void {
    for (const f of this.#families.values()) f.reset();
  }

  #register(
    options: MetricOptions,
    type: MetricType,
    make: () => Counter | Gauge | Histogram,
  ): Counter | Gauge | Histogram {
    const existing = this.#families.get(options.name);
    if (existing) {
      const existingType = existing instanceof Counter
        ? "counter"
        : existing instanceof Gauge
        ? "gauge"
        : "histogram";
      const sameLabels = existing.labelNames.join(",") === (options.labelNames ?? []).join(",");
      if (existingType !== type || !sameLabels) {
        throw new TypeError(`metric ${options.name} already registered with another shape`);
      }
      return existing;
    }
    const family = make();
    this.#families.set(options.name, family);
    return family;
  }
}

/** The Prometheus content type of {@linkcode MetricsRegistry.exposition}. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

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
