/**
 * The two label rules of the cache's families that keep a scrape bounded: the `function` label
 * (function identities, at most `maxFunctions` distinct values, then one overflow value) and the
 * metric-name prefix of a backend family (its `type`, made a valid metric name). Kept apart from
 * the families, which only apply them.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";

/**
 * The `function` label value of the calls of every function past the `maxFunctions` bound of a
 * `CacheMetrics` (default 100 distinct identities).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheMetrics, FUNCTION_LABEL_OVERFLOW } from "@cachekit/core/health";
 *
 * const m = new CacheMetrics(undefined, { maxFunctions: 1 });
 * assert.equal(m.functionLabel("app.a"), "app.a");
 * assert.equal(m.functionLabel("app.b"), FUNCTION_LABEL_OVERFLOW);
 * ```
 */
export const FUNCTION_LABEL_OVERFLOW = "_overflow";

/** Default bound on distinct `function` label values. */
const DEFAULT_MAX_FUNCTIONS = 100;

/**
 * The metric-name prefix of a backend `type`: lower case, every character outside `[a-z0-9_]` as
 * `_`, a leading digit prefixed with `_`, `unknown` when empty. The backend families are
 * `<prefix>_cache_operations_total` and `<prefix>_cache_operation_duration_seconds`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { backendMetricPrefix } from "@cachekit/core/health";
 *
 * assert.equal(backendMetricPrefix("redis"), "redis");
 * assert.equal(backendMetricPrefix("My-Store.v2"), "my_store_v2");
 * ```
 *
 * @param type A backend's `type`.
 * @returns A valid start of a metric name.
 */
export function backendMetricPrefix(type: string): string {
  const p = type.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  if (p === "") return "unknown";
  return /^[0-9]/.test(p) ? "_" + p : p;
}

/** The bounded set of `function` label values of one `CacheMetrics`. */
export class FunctionLabels {
  readonly #max: number;
  readonly #seen = new Set<string>();

  /**
   * @param max Most distinct values (default 100).
   * @throws {CacheConfigError} when `max` is not an integer ≥ 1.
   */
  constructor(max: number = DEFAULT_MAX_FUNCTIONS) {
    if (!Number.isInteger(max) || max < 1) {
      throw new CacheConfigError("maxFunctions", max, "an integer ≥ 1");
    }
    this.#max = max;
  }

  /** `identity` while it fits the bound (or was admitted before), else the overflow value. */
  label(identity: string): string {
    if (this.#seen.has(identity)) return identity;
    if (this.#seen.size >= this.#max) return FUNCTION_LABEL_OVERFLOW;
    this.#seen.add(identity);
    return identity;
  }
}
