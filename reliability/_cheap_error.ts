/**
 * Build an error without capturing a stack trace. Refusals (open circuit, backpressure) happen on
 * the hot path by design and their stack says nothing useful; capturing one costs more than the
 * refusal itself in V8 and JavaScriptCore. `Error.stackTraceLimit` is honoured by both; elsewhere
 * this is a no-op.
 *
 * @module
 */

// deno-lint-ignore no-explicit-any
const E = Error as any;

/** Run `make` with stack capture turned off. */
export function withoutStack<T>(make: () => T): T {
  const limit = E.stackTraceLimit;
  if (typeof limit !== "number") return make();
  E.stackTraceLimit = 0;
  try {
    return make();
  } finally {
    E.stackTraceLimit = limit;
  }
}
