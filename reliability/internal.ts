/**
 * What the rest of the package uses of the reliability layer's private parts: its internal face.
 * Not public: `deno.json` does not export it and `reliability/mod.ts` does not re-export it.
 * Re-exports only: nothing is added on any path.
 *
 * - {@linkcode setCorrelationSource}: where the guard's failure records find the ambient
 *   correlation id (`health/logging.ts` provides `withCorrelationId`'s, which this layer cannot
 *   import: `health/` reports on it).
 *
 * @module
 */
export { setCorrelationSource } from "./_guard_log.ts";
