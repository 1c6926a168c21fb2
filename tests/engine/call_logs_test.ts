// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Logs that carry their call (issue 16.4): each warning or error record of a call has the
// identity, the protocol key, the layer and a correlation id — the one of withCorrelationId(id, fn)
// around the call, else the trace id of the caller's active span, else one made for the call
// (shared by its records, made only when the call logs).
import assert from "node:assert/strict";
import { trace } from "@opentelemetry/api";
import { test } from "../_harness.ts";
import { captureLogs, render } from "../_log_capture.ts";
import { installOtel } from "../_otel.ts";
import { shiftDateNow } from "../_timing.ts";
import {
  type Backend,
  BackendError,
  cache as realCache,
  MemoryBackend,
  withCorrelationId,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/**
 * `cache` with Prometheus off unless asked: the process-wide registry bounds its `function` label
 * (100 identities), and under Bun every test file shares one process.
 */
const cache = ((fn: (...a: never[]) => unknown, o?: Record<string, unknown>) =>
  realCache(fn, {
    ...o,
    monitoring: { prometheus: false, ...(o?.monitoring as object | undefined) },
  })) as unknown as typeof realCache;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A backend whose get and set fail (transient). */
function failing(): Backend {
  const inner = new MemoryBackend();
  const fail = (operation: string) =>
    Promise.reject(new BackendError("down", { kind: "transient", backend: "failing", operation }));
  return {
    type: "failing",
    capabilities: { ttl: inner.capabilities.ttl },
    get: () => fail("get"),
    set: () => fail("set"),
    delete: () => fail("delete"),
    exists: () => fail("exists"),
    healthCheck: () => inner.healthCheck(),
  };
}

test("logs: an L2 failure's records carry identity, protocol key, layer and one correlation id per call", async () => {
  const logs = await captureLogs("warning");
  try {
    const f = cache(async (id: number) => ({ id }), {
      name: "logs.l2",
      backend: failing(),
      ...bare,
    });
    const r = await f.withStatus(1);
    await f(2);
    const failures = logs.matching(/L2 (get|set) failed/);
    assert.equal(failures.length, 4, logs.records.map(render).join("\n"));
    const [get1, set1, get2] = failures;
    for (const rec of failures) {
      assert.equal(rec.properties.identity, "logs.l2");
      assert.equal(rec.properties.layer, "l2");
      assert.match(String(rec.properties.correlationId), UUID);
    }
    assert.equal(get1.properties.key, r.key, "the call's protocol key");
    assert.equal(set1.properties.key, r.key);
    assert.equal(get1.properties.correlationId, set1.properties.correlationId, "one id per call");
    assert.notEqual(get2.properties.correlationId, get1.properties.correlationId, "another call");
  } finally {
    await logs.stop();
  }
});

test("logs: withCorrelationId(id, fn) gives the call's records that id, across awaits", async () => {
  const logs = await captureLogs("warning");
  try {
    const f = cache(async (id: number) => ({ id }), {
      name: "logs.ambient",
      backend: failing(),
      ...bare,
    });
    await withCorrelationId("req-42", async () => {
      await Promise.resolve();
      await f(1);
    });
    const records = logs.matching(/L2 (get|set) failed/);
    assert.ok(records.length >= 1);
    for (const rec of records) assert.equal(rec.properties.correlationId, "req-42");
    // A synchronous safeMode call without a key: uncached, logged with the id and no key.
    const keyless = cache((s: Set<number>) => s.size, {
      name: "logs.keyless",
      backend: null,
      safeMode: true,
    });
    assert.equal(withCorrelationId("req-43", () => keyless(new Set([1, 2]))), 2);
    const [warned] = logs.matching(/no cache key/);
    assert.equal(warned.properties.correlationId, "req-43");
    assert.equal(warned.properties.key, null);
    assert.equal(warned.properties.layer, "source");
  } finally {
    await logs.stop();
  }
});

test("logs: the caller's active span gives the correlation id (its trace id)", async () => {
  installOtel();
  const logs = await captureLogs("warning");
  try {
    const f = cache(async (id: number) => ({ id }), {
      name: "logs.span",
      backend: failing(),
      ...bare,
    });
    let traceId = "";
    await trace.getTracer("app").startActiveSpan("request", async (span) => {
      traceId = span.spanContext().traceId;
      await f(1);
      span.end();
    });
    const records = logs.matching(/L2 get failed/);
    assert.equal(records.length, 1);
    assert.equal(records[0].properties.correlationId, traceId);
  } finally {
    await logs.stop();
  }
}, { sanitize: false }); // the SDK's span processor exports under a timer

test("logs: the fail-safe's stale warning carries the call's key, the stale layer and the id", async () => {
  const logs = await captureLogs("warning");
  const clock = shiftDateNow();
  try {
    let fail = false;
    const f = cache(async (id: number) => {
      if (fail) throw new Error("source down");
      return { id };
    }, { name: "logs.failsafe", ttl: 60, staleTtl: 600, backend: new MemoryBackend(), ...bare });
    const r = await f.withStatus(1);
    clock.advance(61_000);
    fail = true;
    await withCorrelationId("req-9", () => f(1));
    const [warned] = logs.matching(/source down.*stale/);
    assert.ok(warned, logs.records.map(render).join("\n"));
    assert.equal(warned.properties.correlationId, "req-9");
    assert.equal(warned.properties.key, r.key);
    assert.equal(warned.properties.layer, "l1");
    assert.equal(warned.properties.identity, "logs.failsafe");
  } finally {
    clock.restore();
    await logs.stop();
  }
});

test("logs: a call that logs nothing makes no correlation id", async () => {
  const real = crypto.randomUUID.bind(crypto);
  let made = 0;
  crypto.randomUUID = () => {
    made++;
    return real();
  };
  try {
    const f = cache((n: number) => n * 2, { name: "logs.quiet", backend: null });
    for (let i = 0; i < 20; i++) f(i % 3);
    assert.equal(made, 0);
  } finally {
    crypto.randomUUID = real;
  }
});
