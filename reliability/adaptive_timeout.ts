/**
 * A per-operation timeout that follows observed latency, with cachekit-py's defaults.
 *
 * Rule: `timeout = clamp(p95 × safetyFactor, min, max)`, where p95 is the 95th
 * percentile (nearest rank: the `⌈0.95·n⌉`-th smallest) of the last `window` (1000) recorded
 * durations. The safety factor is **1.5**, the Python library's 50 % buffer: a backend whose p95 is
 * 100 ms gets 150 ms; a backend at 1 ms gets the 0.1 s floor; nothing ever waits past 5 s. Until
 * `minSamples` (10, as in Python) durations are known the timeout is `initial` (1.0 s), or `min`
 * for a backend on this host (`local`), whose latency needs no learning.
 *
 * The percentile is recomputed lazily (a quickselect over a copy of the window, O(n)) at most once
 * every `recomputeEvery` (256) recordings (every quarter of the samples while the window fills), so the
 * per-operation cost is a ring-buffer write plus a share of one O(n) recomputation.
 *
 * An operation that timed out should be recorded with the timeout it hit (a censored sample): if
 * the backend becomes uniformly slower, those samples push p95 up and the timeout follows, within
 * the bounds, instead of timing out forever.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { AdaptiveTimeout } from "@cachekit/core/reliability";
 *
 * const t = new AdaptiveTimeout();
 * assert.equal(t.timeoutMs, 1000); // initial, no samples yet
 * for (let i = 1; i <= 100; i++) t.record(i * 2); // 2, 4, …, 200 ms
 * assert.equal(t.timeoutMs, 285); // p95 = 190 ms × 1.5
 * ```
 *
 * @module
 */

import { CacheConfigError } from "../errors.ts";
import { intOption, numOption } from "./_validate.ts";

/** Options of {@linkcode AdaptiveTimeout}; times in seconds like cachekit-py. */
export interface AdaptiveTimeoutOptions {
  /**
   * Timeout before `minSamples` durations are known, for a remote backend (its latency is
   * unknown). Default 1.0 s. A `local` one starts at `min` instead.
   */
  initial?: number;
  /**
   * The backend is on this host (`Backend.local`): before `minSamples` durations are known the
   * timeout is `min`, not `initial`, so a paused local server costs a quiet service `min` per call
   * rather than `initial` until the timeout has learnt. Default `false`.
   */
  local?: boolean;
  /** Lower bound. Default 0.1 s. */
  min?: number;
  /** Upper bound: no operation waits longer. Default 5.0 s. */
  max?: number;
  /** How many recent durations are kept. Default 1000. */
  window?: number;
  /** Percentile of the window (0 < p ≤ 100). Default 95. */
  percentile?: number;
  /** Multiplier applied to the percentile. Default 1.5. */
  safetyFactor?: number;
  /** Durations needed before the percentile is used. Default 10. */
  minSamples?: number;
  /** Recompute the percentile after this many new durations. Default 256. */
  recomputeEvery?: number;
}

/** Current figures of an {@linkcode AdaptiveTimeout}, for health and logs. */
export interface AdaptiveTimeoutSnapshot {
  /** The timeout now in force, ms. */
  timeoutMs: number;
  /** The percentile of the window, ms (`null` before `minSamples`). */
  percentileMs: number | null;
  /** Durations currently in the window. */
  samples: number;
  /** Bounds and parameters, seconds. */
  config: {
    initial: number;
    min: number;
    max: number;
    window: number;
    percentile: number;
    safetyFactor: number;
  };
}

/** The latency-following timeout. See the module documentation for the rule. */
export class AdaptiveTimeout {
  readonly #initialMs: number;
  /** The timeout before `minSamples`: `initial`, or `min` for a local backend. */
  readonly #coldMs: number;
  readonly #minMs: number;
  readonly #maxMs: number;
  readonly #percentile: number;
  readonly #factor: number;
  readonly #minSamples: number;
  readonly #recomputeEvery: number;
  readonly #window: Float64Array;
  #next = 0;
  #count = 0;
  #sinceCompute = 0;
  #timeoutMs: number;
  #percentileMs: number | null = null;

  /**
   * Create the object from its options (validated at once).
   *
   * @param options Bounds and window; see {@linkcode AdaptiveTimeoutOptions}.
   * @throws {CacheConfigError} on an invalid option (e.g. `min > max`).
   */
  constructor(options: AdaptiveTimeoutOptions = {}) {
    const p = "timeout.";
    this.#minMs = numOption(p + "min", options.min, 0.1, 0, true) * 1000;
    this.#maxMs = numOption(p + "max", options.max, 5.0, 0, true) * 1000;
    if (this.#minMs > this.#maxMs) {
      throw new CacheConfigError(
        p + "min",
        this.#minMs / 1000,
        `a number <= max (${this.#maxMs / 1000})`,
      );
    }
    this.#initialMs = numOption(p + "initial", options.initial, 1.0, 0, true) * 1000;
    if (this.#initialMs < this.#minMs || this.#initialMs > this.#maxMs) {
      throw new CacheConfigError(
        p + "initial",
        this.#initialMs / 1000,
        `a number within min..max (${this.#minMs / 1000}..${this.#maxMs / 1000})`,
      );
    }
    const windowSize = intOption(p + "window", options.window, 1000, 1);
    this.#percentile = numOption(p + "percentile", options.percentile, 95, 0, true);
    if (this.#percentile > 100) {
      throw new CacheConfigError(p + "percentile", this.#percentile, "a number in (0, 100]");
    }
    this.#factor = numOption(p + "safetyFactor", options.safetyFactor, 1.5, 0, true);
    this.#minSamples = intOption(p + "minSamples", options.minSamples, 10, 1);
    this.#recomputeEvery = intOption(p + "recomputeEvery", options.recomputeEvery, 256, 1);
    this.#window = new Float64Array(windowSize);
    this.#coldMs = options.local === true ? this.#minMs : this.#initialMs;
    this.#timeoutMs = this.#coldMs;
  }

  /** The timeout to apply to the next operation, in milliseconds. */
  get timeoutMs(): number {
    const since = this.#sinceCompute;
    if (
      since >= this.#recomputeEvery ||
      (since > 0 && this.#count < this.#window.length && this.#count >= this.#minSamples &&
        since >= this.#count >> 2)
    ) {
      this.#recompute();
    }
    return this.#timeoutMs;
  }

  /**
   * Record how long an operation took (ms). Record a timed-out operation with the timeout it hit.
   * Negative or non-finite values are ignored.
   */
  record(durationMs: number): void {
    if (!(durationMs >= 0) || durationMs === Infinity) return;
    this.#window[this.#next] = durationMs;
    this.#next = this.#next + 1 === this.#window.length ? 0 : this.#next + 1;
    if (this.#count < this.#window.length) this.#count++;
    // Reach minSamples promptly; afterwards recompute every `recomputeEvery` recordings.
    this.#sinceCompute = this.#count === this.#minSamples
      ? this.#recomputeEvery
      : this.#sinceCompute + 1;
  }

  /** Forget every recorded duration (back to `initial`, or `min` when local). */
  reset(): void {
    this.#next = 0;
    this.#count = 0;
    this.#sinceCompute = 0;
    this.#timeoutMs = this.#coldMs;
    this.#percentileMs = null;
  }

  /** Current timeout, percentile and bounds. */
  snapshot(): AdaptiveTimeoutSnapshot {
    const timeoutMs = this.timeoutMs;
    return {
      timeoutMs,
      percentileMs: this.#percentileMs,
      samples: this.#count,
      config: {
        initial: this.#initialMs / 1000,
        min: this.#minMs / 1000,
        max: this.#maxMs / 1000,
        window: this.#window.length,
        percentile: this.#percentile,
        safetyFactor: this.#factor,
      },
    };
  }

  #recompute(): void {
    this.#sinceCompute = 0;
    const n = this.#count;
    if (n < this.#minSamples) {
      this.#percentileMs = null;
      this.#timeoutMs = this.#coldMs;
      return;
    }
    const values = this.#window.slice(0, n);
    const rank = Math.max(1, Math.ceil((this.#percentile / 100) * n)); // nearest rank, 1-based
    const p = select(values, rank - 1);
    this.#percentileMs = p;
    this.#timeoutMs = Math.min(this.#maxMs, Math.max(this.#minMs, p * this.#factor));
  }
}

/** The k-th smallest value (0-based) of `a`, reordering `a` (Hoare quickselect). */
function select(a: Float64Array, k: number): number {
  let lo = 0;
  let hi = a.length - 1;
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (a[i] < pivot) i++;
      while (a[j] > pivot) j--;
      if (i <= j) {
        const t = a[i];
        a[i] = a[j];
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return a[k];
  }
  return a[k];
}
