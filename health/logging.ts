/**
 * Structured logging for `@cachekit/core`, through [LogTape](https://logtape.org).
 *
 * Every logger lives under the category `["cachekit", …]`. A library must stay silent unless the
 * application asks for logs, and LogTape is exactly that: nothing is printed until the application
 * calls LogTape's `configure()` with a sink for the `"cachekit"` category (or the root).
 *
 * Correlation ids: the design is explicit, not ambient. An operation that knows its correlation id
 * (the engine creates one per cache call, or takes the caller's request id) passes it along, and
 * {@linkcode withCorrelationId} returns a child logger whose every record carries
 * `correlationId` as a structured property. Nothing here needs `AsyncLocalStorage`; an application
 * that wants ambient ids across its own code can configure LogTape's `contextLocalStorage` and use
 * LogTape's `withContext({ correlationId }, fn)`: those properties then appear on our records too.
 *
 * @example Seeing cachekit's logs in an application
 * ```ts
 * import { configure, getConsoleSink } from "@logtape/logtape";
 * import { getCacheLogger, newCorrelationId, withCorrelationId } from "@cachekit/core/health";
 *
 * await configure({
 *   sinks: { console: getConsoleSink() },
 *   loggers: [{ category: ["cachekit"], lowestLevel: "warning", sinks: ["console"] }],
 *   reset: true,
 * });
 * const log = withCorrelationId(getCacheLogger("example"), newCorrelationId());
 * log.warn("L2 slow: {latencyMs} ms", { latencyMs: 812 });
 * ```
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

/**
 * The part of a LogTape `Logger` cachekit uses (LogTape's `Logger` satisfies it). Use
 * `getLogger(["cachekit", …])` from LogTape directly for the full interface.
 */
export interface CacheLogger {
  /** The logger's category, e.g. `["cachekit", "reliability"]`. */
  readonly category: readonly string[];
  /** Log at debug level; `{name}` placeholders are filled from `properties`. */
  debug(message: string, properties?: Record<string, unknown>): void;
  /** Log at info level. */
  info(message: string, properties?: Record<string, unknown>): void;
  /** Log at warning level. */
  warn(message: string, properties?: Record<string, unknown>): void;
  /** Log at error level. */
  error(message: string, properties?: Record<string, unknown>): void;
  /** A child logger whose records carry `properties`. */
  with(properties: Record<string, unknown>): CacheLogger;
}

/** The root LogTape category of every cachekit logger. */
export const LOG_CATEGORY: readonly ["cachekit"] = ["cachekit"] as const;

/**
 * A LogTape logger under `["cachekit", ...subcategories]`. Silent until the application configures
 * LogTape.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { getCacheLogger } from "@cachekit/core/health";
 * const log = getCacheLogger("reliability", "circuit");
 * assert.deepEqual(log.category, ["cachekit", "reliability", "circuit"]);
 * ```
 *
 * @param subcategories Categories below `"cachekit"`.
 * @returns The (cached) LogTape logger.
 */
export function getCacheLogger(...subcategories: string[]): CacheLogger {
  return getLogger([...LOG_CATEGORY, ...subcategories]);
}

/**
 * A fresh correlation id (a random UUID from WebCrypto).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { newCorrelationId } from "@cachekit/core/health";
 * assert.equal(newCorrelationId().length, 36);
 * ```
 *
 * @returns A random UUID string.
 */
export function newCorrelationId(): string {
  return crypto.randomUUID();
}

/**
 * A child logger whose records carry `correlationId` (unchanged when `correlationId` is empty).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configure, type LogRecord, reset } from "@logtape/logtape";
 * import { getCacheLogger, withCorrelationId } from "@cachekit/core/health";
 *
 * const records: LogRecord[] = [];
 * await configure({
 *   sinks: { memory: (record) => void records.push(record) },
 *   loggers: [
 *     { category: ["cachekit"], lowestLevel: "info", sinks: ["memory"] },
 *     { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
 *   ],
 *   reset: true,
 * });
 * const log = withCorrelationId(getCacheLogger("engine"), "req-42");
 * log.info("cache miss for {key}", { key: "users:1" });
 * assert.deepEqual(records[0].properties, { key: "users:1", correlationId: "req-42" });
 * await reset();
 * ```
 *
 * @param logger The logger to derive from.
 * @param correlationId The id to attach; `undefined` or `""` returns `logger` itself.
 * @returns A logger carrying the id.
 */
export function withCorrelationId(
  logger: CacheLogger,
  correlationId: string | undefined,
): CacheLogger {
  return correlationId ? logger.with({ correlationId }) : logger;
}

/** `{name}` placeholders of a LogTape message template (not the escaped `{{`). */
const PLACEHOLDER = /\{\{|\}\}|\{([^{}]*)\}/g;

/**
 * A logger whose records are plain text: each message's `{name}` placeholders are filled in from
 * its properties and the record carries no properties at all. What `monitoring.structuredLogging:
 * false` gives the engine: one line of text per record, nothing for a sink to index.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configure, type LogRecord, reset } from "@logtape/logtape";
 * import { getCacheLogger, plainTextLogger } from "@cachekit/core/health";
 *
 * const records: LogRecord[] = [];
 * await configure({
 *   sinks: { memory: (record) => void records.push(record) },
 *   loggers: [
 *     { category: ["cachekit"], lowestLevel: "info", sinks: ["memory"] },
 *     { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["memory"] },
 *   ],
 *   reset: true,
 * });
 * const log = plainTextLogger(getCacheLogger("engine"));
 * log.warn("L2 {operation} failed", { operation: "get" });
 * assert.deepEqual(records[0].message, ["L2 get failed"]);
 * assert.deepEqual(records[0].properties, {});
 * await reset();
 * ```
 *
 * @param logger The logger to write to.
 * @returns A logger with the same category.
 */
export function plainTextLogger(logger: CacheLogger): CacheLogger {
  const render = (message: string, props?: Record<string, unknown>) =>
    message.replace(PLACEHOLDER, (m, name: string | undefined) => {
      if (name === undefined) return m; // an escaped brace stays escaped
      const v = props?.[name.trim()];
      const text = typeof v === "string" ? v : v instanceof Error ? v.message : String(v);
      return text.replaceAll("{", "{{").replaceAll("}", "}}");
    });
  return {
    category: logger.category,
    debug: (m, p) => logger.debug(render(m, p)),
    info: (m, p) => logger.info(render(m, p)),
    warn: (m, p) => logger.warn(render(m, p)),
    error: (m, p) => logger.error(render(m, p)),
    with: () => plainTextLogger(logger),
  };
}
