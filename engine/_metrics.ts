/**
 * The engine's Prometheus series, bound once per cached function: the hot paths (an L2 hit, a
 * write, a miss) increment pre-resolved series instead of resolving labels on every call (a label
 * lookup allocates; bound, an L2 hit's metrics cost one counter and one histogram update each).
 *
 * @module
 */
import type { CacheMetrics, CounterChild, HistogramChild } from "../health/metrics.ts";

/** Pre-bound series of one cached function (`namespace` and `serializer` fixed). */
export class EngineSeries {
  readonly #m: CacheMetrics;
  readonly #ns: string;
  readonly #serializer: string;
  #getOk: CounterChild | undefined;
  #getSize: HistogramChild | undefined;
  #setOk: CounterChild | undefined;
  #setSize: HistogramChild | undefined;
  #l2Hit: CounterChild | undefined;
  #l1Miss: CounterChild | undefined;
  #l2Miss: CounterChild | undefined;

  /**
   * @param metrics The registry's families.
   * @param namespace The `namespace` label.
   * @param serializer The `serializer` label.
   */
  constructor(metrics: CacheMetrics, namespace: string, serializer: string) {
    this.#m = metrics;
    this.#ns = namespace;
    this.#serializer = serializer;
  }

  #op(operation: string): CounterChild {
    return this.#m.operations.labels({
      operation,
      namespace: this.#ns,
      success: "true",
      serializer: this.#serializer,
    });
  }

  #size(operation: string): HistogramChild {
    return this.#m.operationSize.labels({
      operation,
      namespace: this.#ns,
      serializer: this.#serializer,
    });
  }

  /** A successful L2 read (`size`: bytes read, `null` for a miss). */
  read(size: number | null): void {
    (this.#getOk ??= this.#op("get")).inc();
    if (size !== null) (this.#getSize ??= this.#size("get")).observe(size);
  }

  /** A successful L2 write of `size` bytes. */
  write(size: number): void {
    (this.#setOk ??= this.#op("set")).inc();
    (this.#setSize ??= this.#size("set")).observe(size);
  }

  /** An L2 hit. */
  l2Hit(): void {
    (this.#l2Hit ??= this.#m.hits.labels({ namespace: this.#ns, layer: "l2" })).inc();
  }

  /** A miss in L1 and/or L2. */
  miss(l1: boolean, l2: boolean): void {
    if (l1) (this.#l1Miss ??= this.#m.misses.labels({ namespace: this.#ns, layer: "l1" })).inc();
    if (l2) (this.#l2Miss ??= this.#m.misses.labels({ namespace: this.#ns, layer: "l2" })).inc();
  }
}
