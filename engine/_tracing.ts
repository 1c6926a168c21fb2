/**
 * OpenTelemetry for a cached function with `monitoring.tracing`: a `cachekit.call` span per call,
 * child spans for the L2 read (`cachekit.l2.get`), the stampede lock (`cachekit.lock.acquire`, and
 * `cachekit.lock.wait` while another process holds it) and the function (`cachekit.factory`, the active span while it runs, so the function's own
 * spans nest under it), and meter instruments beside the Prometheus text: `cachekit.hits`,
 * `cachekit.misses`, `cachekit.stale` (counters) and `cachekit.l2.duration` (histogram, seconds),
 * labelled by `function` (the identity, never a key) and `layer`.
 *
 * Through `@opentelemetry/api` only, imported statically: a few kilobytes that do nothing until
 * the application registers an SDK (a tracer provider, a meter provider). The call span's parent
 * is the caller's active span (`context.active()`), which across `await` needs the application's
 * context manager (`@opentelemetry/context-async-hooks` on Node, Bun and Deno). The children take
 * the call span explicitly, so the engine itself needs none.
 *
 * The meter is looked up again when the global meter provider changes: the API's metrics have no
 * proxy, so instruments created before the SDK was registered would stay no-ops.
 *
 * @module
 */
import {
  type Attributes,
  type Context,
  context,
  type Counter,
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
import type { CallLayer, CallRecord, CallTrace } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";

/** The instrumentation scope of every span and instrument. */
export const OTEL_SCOPE = "@cachekit/core";

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

interface Instruments {
  provider: MeterProvider;
  hits: Counter;
  misses: Counter;
  stale: Counter;
  l2: Histogram;
}

let instruments: Instruments | null = null;

function getInstruments(): Instruments {
  const provider = metrics.getMeterProvider();
  if (instruments !== null && instruments.provider === provider) return instruments;
  const meter = provider.getMeter(OTEL_SCOPE);
  instruments = {
    provider,
    hits: meter.createCounter("cachekit.hits", {
      description: "Calls answered from a cache layer",
    }),
    misses: meter.createCounter("cachekit.misses", {
      description: "Calls that ran the function (misses, uncached calls)",
    }),
    stale: meter.createCounter("cachekit.stale", {
      description: "Calls answered with a stale value by the fail-safe",
    }),
    l2: meter.createHistogram("cachekit.l2.duration", {
      description: "Duration of an L2 operation of a call",
      unit: "s",
    }),
  };
  return instruments;
}

/** Attribute sets by identity and layer (one object per function and layer, not per call). */
const attrSets = new Map<string, Record<string, Attributes>>();

function attrs(identity: string, layer: CallLayer | "l2.get"): Attributes {
  let byLayer = attrSets.get(identity);
  if (byLayer === undefined) attrSets.set(identity, byLayer = {});
  return byLayer[layer] ??= layer === "l2.get"
    ? { function: identity, layer: "l2", operation: "get" }
    : { function: identity, layer };
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
        getInstruments().l2.record(
          (performance.now() - t0) / 1000,
          attrs(this.#identity, "l2.get"),
        );
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

/**
 * End the call span of `rec` with its outcome (`error`: the call failed), and count the call on
 * the OpenTelemetry meter.
 */
export function endCallSpan(eng: Engine, rec: CallRecord, error?: unknown): void {
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
  const m = getInstruments();
  const a = attrs(eng.identity, rec.layer);
  if (status === "stale") m.stale.add(1, a);
  else if (hit) m.hits.add(1, a);
  else m.misses.add(1, a);
}
