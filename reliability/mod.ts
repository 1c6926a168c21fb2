/**
 * Reliability building blocks for an L2 backend: a circuit breaker, an adaptive timeout,
 * backpressure, and {@linkcode GuardedBackend}, the `Backend` decorator that combines them with
 * error classification. Defaults are the Python cachekit 0.3.0 ones.
 *
 * @example Guarding a backend
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Backend } from "@cachekit/core";
 * import { GuardedBackend, isSkipL2Error } from "@cachekit/core/reliability";
 *
 * const down: Backend = {
 *   type: "down",
 *   capabilities: {},
 *   get: () => Promise.reject(new Error("ECONNREFUSED")),
 *   set: () => Promise.reject(new Error("ECONNREFUSED")),
 *   delete: () => Promise.reject(new Error("ECONNREFUSED")),
 *   exists: () => Promise.reject(new Error("ECONNREFUSED")),
 *   healthCheck: () => Promise.resolve({ healthy: false, latencyMs: 0, backendType: "down" }),
 * };
 * const l2 = new GuardedBackend(down);
 * for (let i = 0; i < 5; i++) await l2.get("k").catch(() => {});
 * const err = await l2.get("k").catch((e) => e);
 * assert.equal(l2.circuitBreaker?.state, "open");
 * assert.ok(isSkipL2Error(err));
 * await l2.close();
 * ```
 *
 * @module
 */

export { BackendError, CacheKitError } from "../errors.ts";
export type * from "../backends/types.ts";
export * from "./circuit_breaker.ts";
export * from "./adaptive_timeout.ts";
export * from "./backpressure.ts";
export * from "./guarded_backend.ts";
