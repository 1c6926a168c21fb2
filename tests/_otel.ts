/**
 * The OpenTelemetry SDK for the tests (test-only packages): `@opentelemetry/sdk-trace-base`
 * (tracer provider, in-memory exporter) and `@opentelemetry/context-async-hooks` (the
 * AsyncLocalStorage context manager that carries the active span across `await`), registered
 * globally once by {@linkcode installOtel}.
 *
 * Loaded by runtime: Deno and the Node build take the literal `npm:` specifiers (locked in
 * deno.dev.lock, which the test tasks use; `tools/build_npm.ts` maps them to the build's
 * devDependencies); Bun has no `npm:` scheme and takes the bare names from `node_modules` (the
 * names sit in variables so that neither Deno nor the build resolves them).
 *
 * @module
 */
// deno-lint-ignore-file no-explicit-any
import { context, trace } from "@opentelemetry/api";
import { RUNTIME } from "./_harness.ts";

const SDK = "@opentelemetry/sdk-trace-base";
const HOOKS = "@opentelemetry/context-async-hooks";

const sdk: any = RUNTIME === "bun"
  ? await import(SDK)
  // deno-lint-ignore no-import-prefix
  : await import("npm:@opentelemetry/sdk-trace-base@^2.2.0");
const hooks: any = RUNTIME === "bun"
  ? await import(HOOKS)
  // deno-lint-ignore no-import-prefix
  : await import("npm:@opentelemetry/context-async-hooks@^2.2.0");

/** A finished span as the in-memory exporter keeps it (the fields the tests read). */
export interface FinishedSpan {
  name: string;
  attributes: Record<string, unknown>;
  status: { code: number; message?: string };
  spanContext(): { traceId: string; spanId: string };
  parentSpanContext?: { spanId: string };
  parentSpanId?: string;
}

/** The installed SDK: the exporter's spans, and a tracer of the application. */
export interface Otel {
  /** Spans ended so far, oldest first. */
  spans(): FinishedSpan[];
  /** Forget the spans ended so far. */
  reset(): void;
  /** Run `fn` with no tracer provider registered (`trace.disable()`), then register it again. */
  withoutSdk<T>(fn: () => Promise<T>): Promise<T>;
}

let installed: Otel | null = null;

/** Register the SDK (tracer provider with an in-memory exporter, context manager) once. */
export function installOtel(): Otel {
  if (installed !== null) return installed;
  const exporter = new sdk.InMemorySpanExporter();
  const provider = new sdk.BasicTracerProvider({
    spanProcessors: [new sdk.SimpleSpanProcessor(exporter)],
  });
  context.setGlobalContextManager(new hooks.AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(provider);
  installed = {
    spans: () => exporter.getFinishedSpans() as FinishedSpan[],
    reset: () => exporter.reset(),
    withoutSdk: async (fn) => {
      trace.disable();
      try {
        return await fn();
      } finally {
        trace.setGlobalTracerProvider(provider);
      }
    },
  };
  return installed;
}

/** The span id of a span's parent, or `undefined` for a root span (SDK 1.x and 2.x fields). */
export function parentId(s: FinishedSpan): string | undefined {
  return s.parentSpanContext?.spanId ?? s.parentSpanId;
}
