/**
 * The logger of one call's warning and error records: each carries the call's identity (the
 * engine's logger), protocol key, layer and correlation id.
 *
 * The correlation id is taken when the call first logs, never before: the id of
 * `withCorrelationId(id, fn)` around the call, else the trace id of the caller's active
 * OpenTelemetry span, else a fresh UUID. It is kept on the call's key context, so every record of
 * one call carries the same id; a call that logs nothing pays nothing.
 *
 * @module
 */
import { isSpanContextValid, trace } from "@opentelemetry/api";
import { type CacheLogger, currentCorrelationId, newCorrelationId } from "../health/logging.ts";
import type { CallLayer } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";

/** The trace id of the active span, if there is a valid one. */
function activeTraceId(): string | undefined {
  const c = trace.getActiveSpan()?.spanContext();
  return c !== undefined && isSpanContextValid(c) ? c.traceId : undefined;
}

/** The correlation id of the call of `ctx` (taken once, then kept on `ctx`); `null`: no call key. */
export function callCorrelationId(ctx: KeyCtx | null): string {
  if (ctx?.correlationId !== undefined) return ctx.correlationId;
  const id = currentCorrelationId() ?? activeTraceId() ?? newCorrelationId();
  if (ctx !== null) ctx.correlationId = id;
  return id;
}

/** `eng`'s logger for a record of the call of `ctx` about `layer`. */
export function callLogger(eng: Engine, ctx: KeyCtx | null, layer: CallLayer): CacheLogger {
  return eng.log.with({
    key: ctx?.protoKey ?? null,
    layer,
    correlationId: callCorrelationId(ctx),
  });
}
