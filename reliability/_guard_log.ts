/**
 * What {@linkcode GuardedBackend} writes to the log: a classified failure (loud at error level for
 * refused credentials, debug otherwise) and a circuit state change. Cold paths only, kept apart
 * from the per-operation guard.
 *
 * The logger is LogTape's, under the same `["cachekit", "reliability", "guard"]` category as every
 * cachekit logger; it is taken from LogTape directly so that this layer does not depend on
 * `health/` (which reports on it).
 *
 * @module
 */
import { getLogger, type Logger } from "@logtape/logtape";
import type { BackendError } from "../errors.ts";
import type { CircuitStateChange } from "./circuit_breaker.ts";

/**
 * The ambient correlation id (`withCorrelationId(id, fn)` around the call), which `health/`
 * provides through {@linkcode setCorrelationSource} (this layer does not import it).
 */
let ambientCorrelationId: () => string | undefined = () => undefined;

/** Where {@linkcode logFailure} finds the correlation id of a call that passed none. */
export function setCorrelationSource(source: () => string | undefined): void {
  ambientCorrelationId = source;
}

/** The guard's logger (silent until the application configures LogTape). */
export function guardLogger(): Logger {
  return getLogger(["cachekit", "reliability", "guard"]);
}

/**
 * Log a classified failure: refused credentials at error level every time (the breaker bounds the
 * rate), anything else at debug level; with the call's correlation id (passed, or the ambient one).
 */
export function logFailure(
  log: Logger,
  correlationId: string | undefined,
  backend: string,
  operation: string,
  err: BackendError,
  durationMs: number,
): void {
  const id = correlationId ?? ambientCorrelationId();
  const l = id ? log.with({ correlationId: id }) : log;
  if (err.kind === "authentication") {
    l.error(
      "{backend} refused our credentials on {operation}: {message}. Fix the backend " +
        "credentials (password, ACL user, TLS); cache calls skip L2 meanwhile.",
      { backend, operation, message: err.message, error: err },
    );
  } else {
    l.debug(
      "{backend} {operation} failed ({kind}) after {durationMs} ms: {message}",
      {
        backend,
        operation,
        kind: err.kind,
        durationMs: Math.round(durationMs),
        message: err.message,
      },
    );
  }
}

/** Log a circuit state change (opening at warning level). */
export function logStateChange(log: Logger, backend: string, change: CircuitStateChange): void {
  const props = {
    backend,
    from: change.from,
    to: change.to,
    reason: change.reason,
    error: change.error instanceof Error ? change.error.message : undefined,
  };
  if (change.to === "open") {
    log.warn("circuit for {backend} opened ({reason}); L2 is skipped until it recovers", props);
  } else {
    log.info("circuit for {backend}: {from} → {to} ({reason})", props);
  }
}
