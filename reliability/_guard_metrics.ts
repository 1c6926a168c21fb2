/**
 * The metrics series of a {@linkcode GuardedBackend}'s operations: one counter per operation and
 * status, one latency histogram per operation and function, each bound once (two lookups on short
 * keys per operation; no key string is built). Internal.
 *
 * @module
 */
import type { GuardMetrics } from "./guarded_backend.ts";

/** A counter series of {@linkcode GuardMetrics}. */
type CounterSeries = ReturnType<ReturnType<GuardMetrics["backendOperationsFamily"]>["labels"]>;
/** A histogram series of {@linkcode GuardMetrics}. */
type HistogramSeries = ReturnType<ReturnType<GuardMetrics["backendDurationFamily"]>["labels"]>;

/** The series of one backend's operations in `metrics`. */
export class GuardSeries {
  readonly #metrics: GuardMetrics;
  readonly #backend: string;
  readonly #counters = new Map<string, Map<string, CounterSeries>>();
  readonly #durations = new Map<string, Map<string, HistogramSeries>>();

  constructor(metrics: GuardMetrics, backend: string) {
    this.#metrics = metrics;
    this.#backend = backend;
  }

  /** Count one `operation` ending with `status`. */
  count(operation: string, status: string): void {
    let byStatus = this.#counters.get(operation);
    if (byStatus === undefined) this.#counters.set(operation, byStatus = new Map());
    let c = byStatus.get(status);
    if (c === undefined) {
      const backend = this.#backend;
      c = this.#metrics.backendOperationsFamily(backend).labels({ operation, backend, status });
      byStatus.set(status, c);
    }
    c.inc();
  }

  /** Count one `operation` ending with `status` and time it (`fn`: the caller's function label). */
  observe(operation: string, status: string, durationMs: number, fn: string): void {
    this.count(operation, status);
    let byFunction = this.#durations.get(operation);
    if (byFunction === undefined) this.#durations.set(operation, byFunction = new Map());
    let h = byFunction.get(fn);
    if (h === undefined) {
      const backend = this.#backend;
      h = this.#metrics.backendDurationFamily(backend).labels({ operation, backend, function: fn });
      byFunction.set(fn, h);
    }
    h.observe(durationMs / 1000);
  }
}
