/**
 * The engine's Prometheus series, bound once per cached function: the hot paths (an L2 hit, a
 * write, a miss) increment pre-resolved series instead of resolving labels on every call (a label
 * lookup allocates; bound, an L2 hit's metrics cost one counter and one histogram update each).
 *
 * Counting rule: a call that consulted L2 counts one `get` in `cache_operations_total`, at its
 * outcome (an L2 hit: {@linkcode EngineSeries.l2Hit}; anything else: {@linkcode EngineSeries.miss}),
 * not per round trip: a miss under the stampede lock reads L2 twice and counts one `get`. Round
 * trips are what the backend families (`<backend>_cache_operations_total`, counted by the guard)
 * count.
 *
 * @module
 */
import type { CacheMetrics, CounterChild, HistogramChild } from "../health/metrics.ts";
import type { Engine } from "./_engine.ts";

/** Count a hit (`size`: bytes of the L2 entry; one `get` per call, see the counting rule). */
export function countHit(eng: Engine, l1: boolean, size = 0): void {
  if (l1) eng.l1HitCounter?.inc();
  else eng.series?.l2Hit(size);
  if (!eng.collectStats) return;
  eng.stats.hits++;
  if (l1) eng.stats.l1Hits++;
  else eng.stats.l2Hits++;
  eng.stats.last = Date.now();
}

/** Pre-bound series of one cached function (`namespace`, `function` and `serializer` fixed). */
export class EngineSeries {
  readonly #m: CacheMetrics;
  readonly #ns: string;
  readonly #fn: string;
  readonly #serializer: string;
  #getOk: CounterChild | undefined;
  #getFailed: CounterChild | undefined;
  #getSize: HistogramChild | undefined;
  #setOk: CounterChild | undefined;
  #setSize: HistogramChild | undefined;
  #l2Hit: CounterChild | undefined;
  #l1Miss: CounterChild | undefined;
  #l2Miss: CounterChild | undefined;

  /**
   * @param metrics The registry's families.
   * @param namespace The `namespace` label.
   * @param fn The `function` label (already bounded: `CacheMetrics.functionLabel`).
   * @param serializer The `serializer` label.
   */
  constructor(metrics: CacheMetrics, namespace: string, fn: string, serializer: string) {
    this.#m = metrics;
    this.#ns = namespace;
    this.#fn = fn;
    this.#serializer = serializer;
  }

  #op(operation: string, success: boolean): CounterChild {
    return this.#m.operations.labels({
      operation,
      namespace: this.#ns,
      success: success ? "true" : "false",
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

  /** A call answered by L2 from an entry of `size` bytes: one `get`, its size, one L2 hit. */
  l2Hit(size: number): void {
    (this.#getOk ??= this.#op("get", true)).inc();
    (this.#getSize ??= this.#size("get")).observe(size);
    (this.#l2Hit ??= this.#m.hits.labels({ namespace: this.#ns, function: this.#fn, layer: "l2" }))
      .inc();
  }

  /** A successful L2 write of `size` bytes. */
  write(size: number): void {
    (this.#setOk ??= this.#op("set", true)).inc();
    (this.#setSize ??= this.#size("set")).observe(size);
  }

  /**
   * A call that ran the function: a miss in L1 (`l1`: L1 is on) and in L2 (`l2`: the function has
   * an L2), whose L2 read, when it had one, counts one `get` (`l2Failed`: it failed).
   */
  miss(l1: boolean, l2: boolean, l2Failed: boolean): void {
    if (l1) {
      (this.#l1Miss ??= this.#m.misses.labels({
        namespace: this.#ns,
        function: this.#fn,
        layer: "l1",
      })).inc();
    }
    if (!l2) return;
    (this.#l2Miss ??= this.#m.misses.labels({
      namespace: this.#ns,
      function: this.#fn,
      layer: "l2",
    })).inc();
    if (l2Failed) (this.#getFailed ??= this.#op("get", false)).inc();
    else (this.#getOk ??= this.#op("get", true)).inc();
  }
}
