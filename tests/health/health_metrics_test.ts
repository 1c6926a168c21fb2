// Metrics: cachekit-py's Prometheus names and labels, the text exposition format 0.0.4 parsed back
// by a small independent parser written from the format's specification (escapes `\\`, `\"`, `\n`
// in label values; cumulative `le` buckets ending in `+Inf` equal to `_count`), and the observer
// hook.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import {
  CacheMetrics,
  escapeLabelValue,
  getDefaultMetrics,
  type MetricEvent,
  MetricsRegistry,
} from "../../health/metrics.ts";
import { metricsHandler } from "../../health/handlers.ts";
import { parsePrometheus } from "../_prometheus.ts";

test("metrics: cachekit-py's families, names, types and label names", () => {
  const m = new CacheMetrics();
  m.recordOperation({
    operation: "get",
    namespace: "users",
    success: true,
    serializer: "std",
    sizeBytes: 300,
  });
  m.backendOperationsFamily("redis").inc({ operation: "get", backend: "redis", status: "success" });
  m.backendDurationFamily("redis").observe(
    { operation: "get", backend: "redis", function: "app.users" },
    0.002,
  );
  m.setCircuitState("redis", 1);
  m.recordHit("users", "l1", "app.users");
  m.recordMiss("users", "l2", "app.users");
  m.recordError("get", "redis", "timeout");
  m.trackL1("users", () => ({ bytes: 4096, entries: 7 }));
  const fams = parsePrometheus(m.registry.exposition());
  const expect: Record<string, [string, string[]]> = {
    cache_operations_total: ["counter", ["operation", "namespace", "success", "serializer"]],
    cache_operation_size_bytes: ["histogram", ["operation", "namespace", "serializer", "le"]],
    redis_cache_operations_total: ["counter", ["operation", "backend", "status"]],
    redis_cache_operation_duration_seconds: [
      "histogram",
      ["operation", "backend", "function", "le"],
    ],
    circuit_breaker_state: ["gauge", ["backend"]],
    cache_hits_total: ["counter", ["namespace", "function", "layer"]],
    cache_misses_total: ["counter", ["namespace", "function", "layer"]],
    cache_errors_total: ["counter", ["operation", "backend", "kind"]],
    cache_l1_bytes: ["gauge", ["namespace"]],
    cache_l1_entries: ["gauge", ["namespace"]],
  };
  for (const [name, [type, labels]] of Object.entries(expect)) {
    const f = fams.get(name);
    assert.ok(f, name);
    assert.equal(f.type, type, name);
    assert.ok(f.help.length > 0);
    const first = f.samples.find((s) => !s.name.endsWith("_sum") && !s.name.endsWith("_count"));
    assert.deepEqual(Object.keys(first!.labels), labels, name);
  }
  const op = fams.get("cache_operations_total")!.samples[0];
  assert.deepEqual(op.labels, {
    operation: "get",
    namespace: "users",
    success: "true",
    serializer: "std",
  });
  assert.equal(op.value, 1);
  assert.equal(fams.get("circuit_breaker_state")!.samples[0].value, 1);
  assert.equal(fams.get("cache_l1_bytes")!.samples[0].value, 4096);
  assert.equal(fams.get("cache_l1_entries")!.samples[0].value, 7);
});

test("metrics: label values with quotes, backslashes, line feeds and Unicode round-trip", () => {
  const r = new MetricsRegistry();
  const c = r.counter({
    name: "t_total",
    help: 'Help with \\ and\nnewline "quoted".',
    labelNames: ["v"],
  });
  const nasty = ['a"b', "back\\slash", "line\nfeed", 'all \\" \n three', "ünïcødé ✓", "", "}{,="];
  nasty.forEach((v, i) => c.inc({ v }, i + 1));
  const text = r.exposition();
  assert.equal(text.split("\n").length, nasty.length + 3, "no raw line feed leaks into a line");
  const f = parsePrometheus(text).get("t_total")!;
  assert.equal(f.help, 'Help with \\ and\nnewline "quoted".');
  assert.deepEqual(f.samples.map((s) => s.labels.v), nasty);
  assert.deepEqual(f.samples.map((s) => s.value), nasty.map((_, i) => i + 1));
  assert.equal(escapeLabelValue('x"y\\z\n'), 'x\\"y\\\\z\\n');
});

test("metrics: histogram buckets are cumulative, end in +Inf = count, and sum matches", () => {
  const r = new MetricsRegistry();
  const h = r.histogram({
    name: "lat_seconds",
    help: "x",
    labelNames: ["op"],
    buckets: [0.1, 1, 10],
  });
  const values = [0.05, 0.1, 0.5, 1, 2, 20, 0.0];
  for (const v of values) h.observe({ op: "get" }, v);
  const f = parsePrometheus(r.exposition()).get("lat_seconds")!;
  const buckets = f.samples.filter((s) => s.name === "lat_seconds_bucket");
  assert.deepEqual(buckets.map((s) => s.labels.le), ["0.1", "1", "10", "+Inf"]);
  // `le` is inclusive: count of values <= bound.
  const expected = [0.1, 1, 10, Infinity].map((b) => values.filter((v) => v <= b).length);
  assert.deepEqual(buckets.map((s) => s.value), expected);
  const count = f.samples.find((s) => s.name === "lat_seconds_count")!.value;
  const sum = f.samples.find((s) => s.name === "lat_seconds_sum")!.value;
  assert.equal(count, values.length);
  assert.ok(Math.abs(sum - values.reduce((a, b) => a + b, 0)) < 1e-9);
  assert.throws(() => r.histogram({ name: "bad", help: "x", buckets: [1, 1] }), TypeError);
});

test("metrics: observers see every value (an OpenTelemetry bridge needs nothing else)", () => {
  const m = new CacheMetrics();
  const events: MetricEvent[] = [];
  const off = m.registry.addObserver((e) => events.push(e));
  m.registry.addObserver(() => {
    throw new Error("a broken observer is ignored");
  });
  m.recordHit("users", "l2", "app.users");
  m.backendDurationFamily("redis").observe(
    { operation: "get", backend: "redis", function: "app.users" },
    0.25,
  );
  m.setCircuitState("redis", 2);
  off();
  m.recordHit("users", "l2");
  assert.deepEqual(events, [
    {
      name: "cache_hits_total",
      type: "counter",
      value: 1,
      labels: { namespace: "users", function: "app.users", layer: "l2" },
    },
    {
      name: "redis_cache_operation_duration_seconds",
      type: "histogram",
      value: 0.25,
      labels: { operation: "get", backend: "redis", function: "app.users" },
    },
    { name: "circuit_breaker_state", type: "gauge", value: 2, labels: { backend: "redis" } },
  ]);
});

test("metrics: registry rules — names, labels, re-registration, unknown labels", () => {
  const r = new MetricsRegistry();
  assert.throws(() => r.counter({ name: "1bad", help: "x" }), TypeError);
  assert.throws(() => r.counter({ name: "ok_total", help: "x", labelNames: ["le"] }), TypeError);
  assert.throws(() => r.counter({ name: "ok_total", help: "x", labelNames: ["__x"] }), TypeError);
  const a = r.counter({ name: "same_total", help: "x", labelNames: ["a"] });
  assert.equal(r.counter({ name: "same_total", help: "x", labelNames: ["a"] }), a);
  assert.throws(() => r.gauge({ name: "same_total", help: "x", labelNames: ["a"] }), TypeError);
  assert.throws(() => a.inc({ b: "1" }), TypeError);
  a.inc({ a: "x" }, -5); // counters never go down
  assert.equal(a.get({ a: "x" }), 0);
  assert.equal(new CacheMetrics(r).registry, r);
  assert.equal(new MetricsRegistry().exposition(), "");
});

test("metrics: handler serves the process-wide metrics by default", async () => {
  getDefaultMetrics().recordMiss("handler-test", "l1");
  const res = await metricsHandler()(new Request("http://localhost/metrics"));
  const fams = parsePrometheus(await res.text());
  const s = fams.get("cache_misses_total")!.samples.find((x) =>
    x.labels.namespace === "handler-test"
  );
  assert.equal(s?.value, 1);
  const head = await metricsHandler()(new Request("http://localhost/metrics", { method: "HEAD" }));
  assert.equal(await head.text(), "");
});
