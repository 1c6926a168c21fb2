/**
 * {@linkcode MetricsRegistry}: a set of metric families with one text exposition and the observer
 * hook (OpenTelemetry bridges, test spies). Separate from the families, which it creates and
 * orders.
 *
 * @module
 */
import {
  Counter,
  Gauge,
  type GaugeOptions,
  Histogram,
  type HistogramOptions,
  type Labels,
  type MetricEvent,
  type MetricObserver,
  type MetricOptions,
  type MetricType,
} from "./_metric_families.ts";

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
