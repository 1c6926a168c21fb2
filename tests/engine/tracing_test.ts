// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// OpenTelemetry (issue 16.3), with the SDK's in-memory exporter: a `cachekit.call` span per call
// with identity, status, layer, hit and stale; children for the L2 read, the lock wait and the
// function (whose own spans nest under it); the caller's active span as parent, across awaits
// (AsyncLocalStorage context manager); nothing with `monitoring.tracing` off; the meter's
// hit/miss/stale counters (every call, traced or not) and the traced calls' L2 latency histogram.
import assert from "node:assert/strict";
import { metrics, SpanStatusCode, trace } from "@opentelemetry/api";
import { test } from "../_harness.ts";
import { type FinishedSpan, installOtel, parentId } from "../_otel.ts";
import { shiftDateNow } from "../_timing.ts";
import { cache as realCache, MemoryBackend } from "../../mod.ts";

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
const traced = { ...bare, monitoring: { tracing: true } } as const;
const otel = installOtel();
const app = trace.getTracer("app");
/** The SDK's span processor exports under a timeout timer that outlives a test. */
const sdkTimers = { sanitize: false };

function named(spans: FinishedSpan[], name: string): FinishedSpan[] {
  return spans.filter((s) => s.name === name);
}

function only(spans: FinishedSpan[], name: string): FinishedSpan {
  const found = named(spans, name);
  assert.equal(found.length, 1, `${name}: ${spans.map((s) => s.name).join(", ")}`);
  return found[0];
}

test(
  "tracing: a miss has a cachekit.call span with L2 read, lock and factory children; the function's spans nest",
  async () => {
    otel.reset();
    const f = cache(async (id: number) => {
      app.startSpan("db.query").end();
      return { id };
    }, { name: "otel.miss", ttl: 60, backend: new MemoryBackend(), ...traced });
    await f(1);
    const spans = otel.spans();
    const call = only(spans, "cachekit.call");
    assert.equal(call.attributes["cachekit.identity"], "otel.miss");
    assert.equal(call.attributes["cachekit.status"], "miss");
    assert.equal(call.attributes["cachekit.layer"], "source");
    assert.equal(call.attributes["cachekit.hit"], false);
    assert.equal(call.attributes["cachekit.stale"], false);
    assert.match(String(call.attributes["cachekit.key"]), /^func:otel\.miss:args:/);
    const id = call.spanContext().spanId;
    const reads = named(spans, "cachekit.l2.get");
    assert.ok(reads.length >= 1, "the L2 read");
    for (const r of reads) assert.equal(parentId(r), id);
    assert.equal(parentId(only(spans, "cachekit.lock.acquire")), id);
    const factory = only(spans, "cachekit.factory");
    assert.equal(parentId(factory), id);
    const db = only(spans, "db.query");
    assert.equal(
      parentId(db),
      factory.spanContext().spanId,
      "the function's span under the factory",
    );
    assert.equal(parentId(call), undefined, "a root span without a caller's span");
    for (const s of spans) assert.equal(s.spanContext().traceId, call.spanContext().traceId);
  },
  sdkTimers,
);

test(
  "tracing: a call that waits for another instance's lock has a cachekit.lock.wait child and is joined",
  async () => {
    otel.reset();
    const backend = new MemoryBackend();
    let open!: () => void;
    const slow = new Promise<void>((r) => (open = r));
    let calls = 0;
    const fn = async (id: number) => {
      calls++;
      await slow;
      return { id };
    };
    // Two instances (their own L1 and single flight) on one backend: the second waits on the lock.
    const f = cache(fn, { name: "otel.lock", ttl: 60, backend, ...traced });
    const g = cache(fn, { name: "otel.lock", ttl: 60, backend, ...traced });
    const first = f.withStatus(1);
    while (calls === 0) await new Promise((r) => setTimeout(r, 1));
    const second = g.withStatus(1);
    await new Promise((r) => setTimeout(r, 20));
    open();
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.status, a.layer], ["miss", "source"]);
    assert.deepEqual([b.status, b.layer], ["joined", "l2"]);
    assert.equal(calls, 1);
    const calls2 = named(otel.spans(), "cachekit.call");
    const waiter = calls2.find((c) => c.attributes["cachekit.status"] === "joined")!;
    assert.ok(waiter, calls2.map((c) => c.attributes["cachekit.status"]).join());
    assert.equal(waiter.attributes["cachekit.layer"], "l2");
    assert.equal(waiter.attributes["cachekit.hit"], true);
    assert.equal(parentId(only(otel.spans(), "cachekit.lock.wait")), waiter.spanContext().spanId);
  },
  sdkTimers,
);

test("tracing: hits (L1, L2) and the caller's active span as parent, across awaits", async () => {
  otel.reset();
  const backend = new MemoryBackend();
  const fn = async (id: number) => ({ id });
  const f = cache(fn, { name: "otel.hit", ttl: 60, backend, ...traced });
  const g = cache(fn, { name: "otel.hit", ttl: 60, backend, ...traced });
  await app.startActiveSpan("request", async (req) => {
    await f(1);
    await new Promise((r) => setTimeout(r, 5));
    await f(1);
    await g(1);
    req.end();
  });
  const spans = otel.spans();
  const req = only(spans, "request");
  const calls = named(spans, "cachekit.call");
  assert.deepEqual(
    calls.map((c) => [c.attributes["cachekit.status"], c.attributes["cachekit.layer"]]),
    [["miss", "source"], ["hit", "l1"], ["hit", "l2"]],
  );
  for (const c of calls) {
    assert.equal(parentId(c), req.spanContext().spanId, "child of the caller's span");
    assert.equal(c.spanContext().traceId, req.spanContext().traceId);
  }
  assert.equal(calls[1].attributes["cachekit.hit"], true);
  const l1Children = spans.filter((s) => parentId(s) === calls[1].spanContext().spanId);
  assert.deepEqual(l1Children, [], "an L1 hit has no child spans");
}, sdkTimers);

test("tracing: a stale answer and a failing call", async () => {
  otel.reset();
  const clock = shiftDateNow();
  try {
    let fail = false;
    const f = cache(async (id: number) => {
      if (fail) throw new Error("source down");
      return { id };
    }, { name: "otel.stale", ttl: 60, staleTtl: 600, backend: new MemoryBackend(), ...traced });
    await f(1);
    clock.advance(61_000);
    fail = true;
    await f(1);
    await assert.rejects(f(2), /source down/);
    const calls = named(otel.spans(), "cachekit.call");
    assert.equal(calls[1].attributes["cachekit.status"], "stale");
    assert.equal(calls[1].attributes["cachekit.stale"], true);
    assert.equal(calls[1].attributes["cachekit.layer"], "l1");
    assert.equal(calls[2].status.code, SpanStatusCode.ERROR);
    const factories = named(otel.spans(), "cachekit.factory");
    assert.ok(factories.some((s) => s.status.code === SpanStatusCode.ERROR));
  } finally {
    clock.restore();
  }
}, sdkTimers);

test(
  "tracing: off by default (no span), on in cache.production; synchronous L1-only calls too",
  () => {
    otel.reset();
    const f = cache((n: number) => n + 1, { name: "otel.off", backend: null });
    f(1);
    f(1);
    assert.deepEqual(otel.spans(), []);
    const p = realCache.production((n: number) => n + 1, { name: "otel.prod", backend: null });
    assert.equal(p.config.monitoring.tracing, true);
    const s = cache((n: number) => n * 2, {
      name: "otel.sync",
      backend: null,
      monitoring: { tracing: true },
    });
    assert.equal(s(2), 4);
    assert.equal(s(2), 4);
    const calls = named(otel.spans(), "cachekit.call");
    assert.deepEqual(calls.map((c) => c.attributes["cachekit.status"]), ["miss", "hit"]);
    assert.equal(parentId(only(otel.spans(), "cachekit.factory")), calls[0].spanContext().spanId);
  },
  sdkTimers,
);

test(
  "tracing: with no SDK registered a traced function makes no span and still answers",
  async () => {
    otel.reset();
    const f = cache(async (n: number) => ({ n }), {
      name: "otel.nosdk",
      ttl: 60,
      backend: new MemoryBackend(),
      ...traced,
    });
    await otel.withoutSdk(async () => {
      assert.deepEqual(await f(1), { n: 1 });
      assert.deepEqual(await f(1), { n: 1 });
      assert.equal((await f.withStatus(1)).status, "hit", "withStatus still says how");
    });
    assert.deepEqual(named(otel.spans(), "cachekit.call"), []);
    await f(1); // the SDK is back: spans again
    assert.equal(named(otel.spans(), "cachekit.call").length, 1);
  },
  sdkTimers,
);

/**
 * A meter provider as an SDK's meter reader sees it: synchronous instruments record into
 * `recorded`; `collect()` runs the batch observable callbacks and returns what they observed.
 */
function fakeMeter() {
  const recorded: { name: string; value: number; attrs: Record<string, unknown> }[] = [];
  const callbacks: ((r: { observe(o: { name: string }, v: number, a: object): void }) => void)[] =
    [];
  const instrument = (name: string) => ({
    name,
    add: (value: number, attrs: Record<string, unknown>) => recorded.push({ name, value, attrs }),
    record: (value: number, attrs: Record<string, unknown>) =>
      recorded.push({ name, value, attrs }),
  });
  const meter = {
    createCounter: instrument,
    createHistogram: instrument,
    createObservableCounter: instrument,
    addBatchObservableCallback: (cb: (typeof callbacks)[number]) => callbacks.push(cb),
  };
  // deno-lint-ignore no-explicit-any
  const provider = { getMeter: () => meter as any };
  /** Observed totals (`name function layer` → value) of the functions named `fn`. */
  const collect = (fn: string) => {
    const out: Record<string, number> = {};
    for (const cb of callbacks) {
      cb({
        observe: (o, v, a) => {
          const attrs = a as Record<string, unknown>;
          if (attrs.function === fn) out[`${o.name} ${attrs.layer ?? "-"}`] = v;
        },
      });
    }
    return out;
  };
  return { recorded, provider, collect };
}

test(
  "tracing: the meter counts hits, misses and stale answers and times L2 reads, by function and layer",
  async () => {
    const m = fakeMeter();
    metrics.setGlobalMeterProvider(m.provider);
    try {
      const backend = new MemoryBackend();
      const fn = async (id: number) => ({ id });
      const f = cache(fn, { name: "otel.meter", ttl: 60, backend, ...traced });
      const g = cache(fn, { name: "otel.meter", ttl: 60, backend, ...traced });
      await f(1);
      await f(1);
      await g(1);
      // Two functions of one identity report one sum.
      assert.deepEqual(m.collect("otel.meter"), {
        "cachekit.hits l1": 1,
        "cachekit.hits l2": 1,
        "cachekit.misses source": 1,
        "cachekit.stale -": 0,
      });
      const l2 = m.recorded.filter((r) => r.name === "cachekit.l2.duration");
      assert.ok(l2.length >= 2, "the miss's and the L2 hit's reads");
      for (const r of l2) {
        assert.deepEqual(r.attrs, { function: "otel.meter", layer: "l2", operation: "get" });
        assert.ok(r.value >= 0 && r.value < 60, `seconds: ${r.value}`);
      }
    } finally {
      metrics.disable();
    }
  },
  sdkTimers,
);

test("the meter counts the calls of a function without tracing, from before the SDK was registered", async () => {
  const backend = new MemoryBackend();
  const f = cache(async (id: number) => ({ id }), {
    name: "otel.meter.untraced",
    ttl: 60,
    backend,
    ...bare,
  });
  await f(1); // a miss while no SDK is registered
  await f(1);
  const m = fakeMeter();
  metrics.setGlobalMeterProvider(m.provider);
  try {
    assert.deepEqual(m.collect("otel.meter.untraced"), {}, "nothing made on it yet");
    await f(2); // the next miss makes the instruments on the new provider
    await f(2);
    assert.deepEqual(m.collect("otel.meter.untraced"), {
      "cachekit.hits l1": 2,
      "cachekit.hits l2": 0,
      "cachekit.misses source": 2,
      "cachekit.stale -": 0,
    });
    assert.deepEqual(m.recorded, [], "no per-call recording without tracing");
  } finally {
    metrics.disable();
  }
});
