/**
 * Structured logging for `@cachekit/core`, through [LogTape](https://logtape.org).
 *
 * Every logger lives under the category `["cachekit", …]`. A library must stay silent unless the
 * application asks for logs, and LogTape is exactly that: nothing is printed until the application
 * calls LogTape's `configure()` with a sink for the `"cachekit"` category (or the root).
 *
 * Correlation ids: every warning or error record of a cache call carries the call's identity,
 * protocol key, layer and `correlationId`. The engine takes that id, when the call logs something
 * (never otherwise), from {@linkcode withCorrelationId}`(id, fn)` around the call (an
 * application's request id, without tracing), else from the caller's active OpenTelemetry span
 * (its trace id), else it creates one for the call (a fresh UUID, shared by the call's records).
 * `withCorrelationId(logger, id)` is the explicit form: a child logger whose every record carries
 * the id. An application that wants more ambient properties can configure LogTape's
 * `contextLocalStorage` and use LogTape's `withContext(props, fn)`: they appear on our records too.
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

import { AsyncLocalStorage } from "node:async_hooks";
import { getLogger } from "@logtape/logtape";
import { setCorrelationSource } from "../reliability/internal.ts";

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

/** The correlation id of {@linkcode withCorrelationId}`(id, fn)` (AsyncLocalStorage). */
const ambient = new AsyncLocalStorage<string>();
// The reliability guard's failure records carry it too (that layer does not import this one).
setCorrelationSource(() => ambient.getStore());

/**
 * The correlation id set by {@linkcode withCorrelationId}`(id, fn)` around the current code, if any.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentCorrelationId, withCorrelationId } from "@cachekit/core/health";
 * assert.equal(await withCorrelationId("req-7", async () => currentCorrelationId()), "req-7");
 * assert.equal(currentCorrelationId(), undefined);
 * ```
 *
 * @returns The id, or `undefined`.
 */
export function currentCorrelationId(): string | undefined {
  return ambient.getStore();
}

/**
 * Run `fn` (and everything it awaits) with `correlationId` as the correlation id of the cache
 * calls it makes: their warning and error records carry it (for callers without tracing; with an
 * active OpenTelemetry span the id set here still wins).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { configure, type LogRecord, reset } from "@logtape/logtape";
 * import { cache, withCorrelationId } from "@cachekit/core";
 *
 * const records: LogRecord[] = [];
 * await configure({
 *   sinks: { memory: (record) => void records.push(record) },
 *   loggers: [
 *     { category: ["cachekit"], lowestLevel: "warning", sinks: ["memory"] },
 *     { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
 *   ],
 *   reset: true,
 * });
 * const size = cache((s: Set<number>) => s.size, { name: "docs.corr", backend: null, safeMode: true });
 * withCorrelationId("req-42", () => size(new Set([1]))); // no key for a Set: logged, uncached
 * assert.equal(records[0].properties.correlationId, "req-42");
 * await reset();
 * ```
 *
 * @param correlationId The id (a request id, a trace id).
 * @param fn The work to run.
 * @returns What `fn` returns.
 */
export function withCorrelationId<T>(correlationId: string, fn: () => T): T;
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
): CacheLogger;
export function withCorrelationId(
  a: CacheLogger | string,
  b: string | undefined | (() => unknown),
): unknown {
  if (typeof a === "string") {
    if (typeof b !== "function") {
      throw new TypeError("withCorrelationId(id, fn): fn must be a function");
    }
    return ambient.run(a, b);
  }
  const correlationId = b as string | undefined;
  return correlationId ? a.with({ correlationId }) : a;
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
