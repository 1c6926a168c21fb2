/**
 * OpenTelemetry for a cached function with `monitoring.tracing`: a `cachekit.call` span per call,
 * child spans for the L2 read (`cachekit.l2.get`), the stampede lock (`cachekit.lock.acquire`, and
 * `cachekit.lock.wait` while another process holds it) and the function (`cachekit.factory`, the active span while it runs, so the function's own
 * spans nest under it), and the histogram `cachekit.l2.duration` (seconds, labelled by `function`,
 * the identity, never a key, and `layer`) of the traced calls' L2 reads. The call counters
 * (`cachekit.hits`, …) count every call, traced or not: `_otel_metrics.ts`.
 *
 * Through `@opentelemetry/api` only, imported statically: a few kilobytes that do nothing until
 * the application registers an SDK (a tracer provider, a meter provider). The call span's parent
 * is the caller's active span (`context.active()`), which across `await` needs the application's
 * context manager (`@opentelemetry/context-async-hooks` on Node, Bun and Deno). The children take
 * the call span explicitly, so the engine itself needs none.
 *
 * The histogram is made again when the global meter provider changes: the API's metrics have no
 * proxy, so an instrument created before the SDK was registered would stay a no-op.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  type Histogram,
  type MeterProvider,
  metrics,
  ProxyTracerProvider,
  type Span,
  SpanStatusCode,
  trace,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import type { CallRecord, CallTrace } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import { OTEL_SCOPE } from "./_otel_metrics.ts";

/** The API's no-op provider: the delegate of its proxy while no SDK is registered. */
const NOOP_PROVIDER: TracerProvider = new ProxyTracerProvider().getDelegate();

/**
 * Whether an SDK's tracer provider is registered (checked per call by the wrapper of a function
 * with `monitoring.tracing`: without one, calls take the plain path, not the observed one). A
 * provider that is not this API copy's proxy counts as registered.
 */
export function tracingActive(): boolean {
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NOOP_PROVIDER;
}

let tracer: Tracer | null = null;
let tracerProvider: TracerProvider | null = null;

function getTracer(): Tracer {
  // The tracer of the provider registered now: a tracer kept across `trace.disable()` would stay
  // bound to the provider registered before it.
  const provider = trace.getTracerProvider();
  if (tracer === null || provider !== tracerProvider) {
    tracerProvider = provider;
    tracer = provider.getTracer(OTEL_SCOPE);
  }
  return tracer;
}

let l2Histogram: { provider: MeterProvider; l2: Histogram } | null = null;

function l2Duration(): Histogram {
  const provider = metrics.getMeterProvider();
  if (l2Histogram !== null && l2Histogram.provider === provider) return l2Histogram.l2;
  const l2 = provider.getMeter(OTEL_SCOPE).createHistogram("cachekit.l2.duration", {
    description: "Duration of an L2 operation of a call",
    unit: "s",
  });
  l2Histogram = { provider, l2 };
  return l2;
}

/** Attribute sets of the L2 reads by identity (one object per function, not per call). */
const attrSets = new Map<string, Attributes>();

function l2Attrs(identity: string): Attributes {
  let a = attrSets.get(identity);
  if (a === undefined) {
    if (attrSets.size >= 10_000) attrSets.clear(); // functions made without end
    attrSets.set(identity, a = { function: identity, layer: "l2", operation: "get" });
  }
  return a;
}

function fail(span: Span, e: unknown): void {
  span.recordException(e instanceof Error ? e : String(e));
  span.setStatus({
    code: SpanStatusCode.ERROR,
    message: e instanceof Error ? e.message : String(e),
  });
}

/** The spans of one traced call (the call flow sees it as `rec.trace`). */
class CallSpans implements CallTrace {
  readonly span: Span;
  readonly ctx: Context;
  readonly #identity: string;

  constructor(eng: Engine, parent: Context) {
    this.#identity = eng.identity;
    this.span = getTracer().startSpan("cachekit.call", {
      attributes: {
        "cachekit.identity": eng.identity,
        "cachekit.namespace": eng.namespace ?? "",
      },
    }, parent);
    this.ctx = trace.setSpan(parent, this.span);
  }

  child<T>(name: string, op: () => Promise<T>): Promise<T> {
    const span = getTracer().startSpan(name, {
      attributes: { "cachekit.identity": this.#identity },
    }, this.ctx);
    const t0 = performance.now();
    return op().then((v) => {
      span.end();
      if (name === "cachekit.l2.get") {
        l2Duration().record((performance.now() - t0) / 1000, l2Attrs(this.#identity));
      }
      return v;
    }, (e) => {
      fail(span, e);
      span.end();
      throw e;
    });
  }

  factory(fn: () => unknown): unknown {
    const span = getTracer().startSpan("cachekit.factory", {
      attributes: { "cachekit.identity": this.#identity },
    }, this.ctx);
    let out: unknown;
    try {
      out = context.with(trace.setSpan(this.ctx, span), fn);
    } catch (e) {
      fail(span, e);
      span.end();
      throw e;
    }
    if (
      out !== null && typeof out === "object" &&
      typeof (out as Promise<unknown>).then === "function"
    ) {
      (out as Promise<unknown>).then(() => span.end(), (e) => {
        fail(span, e);
        span.end();
      });
    } else span.end();
    return out;
  }
}

/** Start the `cachekit.call` span of `rec`'s call, a child of the caller's active span. */
export function startCallSpan(eng: Engine, rec: CallRecord): void {
  rec.trace = new CallSpans(eng, context.active());
}

/** End the call span of `rec` with its outcome (`error`: the call failed). */
export function endCallSpan(rec: CallRecord, error?: unknown): void {
  const spans = rec.trace as CallSpans | null;
  if (spans === null) return;
  const span = spans.span;
  if (error !== undefined) {
    fail(span, error);
    span.end();
    return;
  }
  const status = rec.status;
  const hit = status === "hit" || (status === "joined" && rec.layer !== "source");
  span.setAttributes({
    "cachekit.status": status,
    "cachekit.layer": rec.layer,
    "cachekit.hit": hit,
    "cachekit.stale": status === "stale",
  });
  if (rec.key !== null) span.setAttribute("cachekit.key", rec.key);
  span.end();
}
