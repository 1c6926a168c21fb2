/**
 * Spans of cached calls on the console: an OpenTelemetry SDK with a console exporter, the
 * AsyncLocalStorage context manager (the caller's span survives `await`), and a cached function
 * with `monitoring.tracing` called inside a request span. Prints a `cachekit.call` span (with
 * its `cachekit.l2.get`, `cachekit.lock.acquire` and `cachekit.factory` children) for the miss, one
 * for the hit, and the request span that is their parent.
 *
 * Run: `deno run -A --lock=deno.dev.lock examples/otel_console.ts`. On Node or Bun the same code
 * runs with bare imports (`@cachekit/core`, `@opentelemetry/sdk-trace-base`,
 * `@opentelemetry/context-async-hooks` from npm): see the README's "Observability" section.
 * `tests/examples_test.ts` runs it on all three (Node: its transpiled build; Bun: with the `npm:`
 * prefixes dropped).
 *
 * @module
 */
import { context, trace } from "@opentelemetry/api";
// deno-lint-ignore no-import-prefix
import * as sdk from "npm:@opentelemetry/sdk-trace-base@^2.2.0";
// deno-lint-ignore no-import-prefix
import { AsyncLocalStorageContextManager } from "npm:@opentelemetry/context-async-hooks@^2.2.0";
import { cache, MemoryBackend } from "../mod.ts";

// The application's OpenTelemetry setup: a provider exporting to the console, and a context
// manager so that a span started before an `await` is still the parent after it.
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(
  new sdk.BasicTracerProvider({
    spanProcessors: [new sdk.SimpleSpanProcessor(new sdk.ConsoleSpanExporter())],
  }),
);

const getUser = cache((id: number) => Promise.resolve({ id, name: `user ${id}` }), {
  name: "example.users.get",
  ttl: 60,
  backend: new MemoryBackend(),
  monitoring: { tracing: true }, // on by default in cache.production
});

await trace.getTracer("example").startActiveSpan("GET /users/42", async (span) => {
  await getUser(42); // miss: cachekit.call with L2 read, lock and factory children
  await getUser(42); // hit: cachekit.call, cachekit.status "hit", cachekit.layer "l1"
  span.end();
});
