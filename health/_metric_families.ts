/**
 * The metric families (counter, gauge, histogram), their labelled series, and the types that
 * define them. Each family writes itself in the text format; the registry only orders them. Kept
 * apart from the cache's own families (`CacheMetrics`), which are one use of these.
 *
 * @module
 */
import type { MetricsRegistry } from "./_metrics_registry.ts";
import { escapeHelp, escapeLabelValue, formatValue } from "./_metric_text.ts";

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
