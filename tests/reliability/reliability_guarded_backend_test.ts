// GuardedBackend over a real store (MemoryBackend), behind a test wrapper that can be told to fail,
// hang or refuse credentials. Expected behaviour is the issue's: an open circuit fails fast, the
// circuit closes by itself on recovery, timeouts bound latency, authentication errors are loud,
// permanent errors do not trip reads.
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { test } from "../_harness.ts";
import { assertTtlLeft, settlesBeforeTimers, sleep, until } from "../_timing.ts";
import { MemoryBackend } from "../../backends/memory.ts";
import type {
  Backend,
  BackendCapabilities,
  BackendHealth,
  OperationOptions,
} from "../../backends/types.ts";
import { BackendError, CacheConfigError } from "../../errors.ts";
import { CacheMetrics } from "../../health/metrics.ts";
import { withCorrelationId } from "../../health/logging.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { readEnvConfig } from "../../config/env.ts";
import {
  BackpressureError,
  CircuitOpenError,
  GuardedBackend,
  isSkipL2Error,
} from "../../reliability/mod.ts";

type Mode =
  | { kind: "ok" }
  | { kind: "fail"; error: unknown }
  | { kind: "hang" };

/** A real store whose behaviour the test can switch. Hung calls are released by `releaseAll`. */
class Switchable implements Backend {
  readonly type = "switchable";
  readonly capabilities: BackendCapabilities;
  readonly store: MemoryBackend = new MemoryBackend({ maxValueBytes: 1024 });
  mode: Mode = { kind: "ok" };
  calls = 0;
  lastOpts: OperationOptions | undefined;
  #hung: Array<() => void> = [];

  constructor(advertiseTimeouts = false) {
    this.capabilities = advertiseTimeouts
      ? { timeouts: true }
      : { ttl: this.store.capabilities.ttl, prefix: this.store.capabilities.prefix };
  }

  #go<T>(op: () => Promise<T>, opts?: OperationOptions): Promise<T> {
    this.calls++;
    this.lastOpts = opts;
    const m = this.mode;
    if (m.kind === "fail") return Promise.reject(m.error);
    if (m.kind === "hang") {
      return new Promise<T>((resolve, reject) => {
        this.#hung.push(() => op().then(resolve, reject));
      });
    }
    return op();
  }
  releaseAll(): void {
    for (const r of this.#hung.splice(0)) r();
  }
  get(key: string, opts?: OperationOptions) {
    return this.#go(() => this.store.get(key), opts);
  }
  set(key: string, value: Uint8Array, ttl?: number | null, opts?: OperationOptions) {
    return this.#go(() => this.store.set(key, value, ttl), opts);
  }
  delete(key: string, opts?: OperationOptions) {
    return this.#go(() => this.store.delete(key), opts);
  }
  exists(key: string, opts?: OperationOptions) {
    return this.#go(() => this.store.exists(key), opts);
  }
  healthCheck(): Promise<BackendHealth> {
    if (this.mode.kind === "hang") return new Promise(() => {});
    return Promise.resolve({
      healthy: this.mode.kind === "ok",
      latencyMs: 0,
      backendType: this.type,
    });
  }
}

const transient = () =>
  new BackendError("ECONNREFUSED", { kind: "transient", backend: "switchable", operation: "get" });
const bytes = (...b: number[]) => new Uint8Array(b);

test("guard: values pass through a real store; capabilities forwarded and guarded", async () => {
  const inner = new Switchable();
  const g = new GuardedBackend(inner);
  assert.equal(g.type, "switchable");
  assert.equal(g.capabilities.timeouts, true);
  assert.ok(g.capabilities.ttl && g.capabilities.prefix);
  assert.equal(g.capabilities.lock, undefined);
  const t0 = Date.now();
  await g.set("a:1", bytes(1, 2, 3), 60);
  await g.set("a:2", bytes(4));
  assert.deepEqual(await g.get("a:1"), bytes(1, 2, 3));
  assert.equal(await g.exists("a:2"), true);
  assertTtlLeft(await g.capabilities.ttl!.ttl("a:1"), 60, t0);
  assert.equal(await g.capabilities.prefix!.deleteByPrefix("a:"), 2);
  assert.equal(await g.get("a:1"), null);
  assert.equal(await g.delete("a:1"), false);
  assert.equal(g.stats().successes, 8);
  await g.close();
});

test("guard: an open circuit fails fast without touching the backend", async () => {
  const inner = new Switchable();
  const g = new GuardedBackend(inner, { timeout: false });
  await g.set("k", bytes(9));
  inner.mode = { kind: "fail", error: transient() };
  for (let i = 0; i < 5; i++) {
    const e = await g.get("k").catch((x) => x);
    assert.equal(e.kind, "transient");
    assert.ok(!isSkipL2Error(e));
  }
  assert.equal(g.circuitBreaker!.state, "open");
  const callsBefore = inner.calls;
  for (let i = 0; i < 1000; i++) {
    const p = g.get("k");
    // Fails fast: refused before any timer or I/O could run (holds on a loaded machine too).
    assert.ok(await settlesBeforeTimers(p), `open-circuit refusal ${i} waited for something`);
    const e = await p.catch((x) => x);
    assert.ok(e instanceof CircuitOpenError);
    assert.equal(e.kind, "transient");
    assert.match(e.message, /circuit open/);
    assert.ok(isSkipL2Error(e));
  }
  assert.equal(inner.calls, callsBefore, "the backend was not called while open");
  assert.equal(g.stats().rejectedByCircuit, 1000);
  await g.close();
});

test("guard: recovery: half-open probes succeed and the circuit closes by itself", async () => {
  let now = 0;
  const inner = new Switchable();
  const g = new GuardedBackend(inner, { clock: () => now, timeout: false });
  await g.set("k", bytes(1));
  inner.mode = { kind: "fail", error: transient() };
  for (let i = 0; i < 5; i++) await g.get("k").catch(() => {});
  assert.equal(g.circuitBreaker!.state, "open");
  inner.mode = { kind: "ok" };
  now += 29_000;
  assert.ok((await g.get("k").catch((e) => e)) instanceof CircuitOpenError);
  now += 1_000;
  for (let i = 0; i < 3; i++) assert.deepEqual(await g.get("k"), bytes(1));
  assert.equal(g.circuitBreaker!.state, "closed");
  assert.deepEqual(await g.get("k"), bytes(1));
  await g.close();
});

test("guard: a hung backend costs at most the timeout (shared timer race)", async () => {
  // The guard's clock is driven by the test: the calls must fail exactly when 50 ms have passed on
  // it, however late the host runs the shared sweep timer.
  let now = 1000;
  const inner = new Switchable(false);
  const g = new GuardedBackend(inner, {
    clock: () => now,
    timeout: { min: 0.05, initial: 0.05, max: 0.05 },
  });
  await g.set("k", bytes(1));
  inner.mode = { kind: "hang" };
  const keepAlive = setInterval(() => {}, 1000); // the guard's timer is unref'd on purpose
  try {
    let settled = 0;
    const all = Promise.all(
      Array.from({ length: 20 }, () => g.get("k").catch((e) => e).finally(() => settled++)),
    );
    now += 49;
    await sleep(100); // several sweeps run (10 ms timer resolution): none may expire yet
    assert.equal(settled, 0, "no call failed before its timeout");
    now += 1;
    assert.ok(
      await until(() => settled === 20),
      `20 hung calls failed at the timeout (${settled})`,
    );
    const results = await all;
    for (const e of results) {
      assert.ok(e instanceof BackendError);
      assert.equal(e.kind, "timeout");
      assert.match(e.message, /timed out after 50 ms/);
    }
    assert.equal(g.stats().failures.timeout, 20);
    assert.equal(g.circuitBreaker!.state, "open", "timeouts count toward the breaker");
  } finally {
    clearInterval(keepAlive);
    inner.releaseAll();
    await g.close();
  }
});

test("guard: a backend that honours timeouts gets the adaptive timeout as timeoutMs", async () => {
  const inner = new Switchable(true);
  const g = new GuardedBackend(inner);
  await g.get("k");
  assert.equal(inner.lastOpts?.timeoutMs, 1000, "initial adaptive timeout, 1.0 s");
  const ac = new AbortController();
  await g.get("k", { timeoutMs: 20, signal: ac.signal });
  assert.equal(inner.lastOpts?.timeoutMs, 20, "the caller's shorter deadline wins");
  assert.equal(inner.lastOpts?.signal, ac.signal);
  const plain = new GuardedBackend(new Switchable(true), { timeout: false });
  await plain.get("k");
  await plain.close();
  await g.close();
});

test("guard: the deadline's start goes with timeoutMs (real clock only)", async () => {
  const inner = new Switchable(true);
  const g = new GuardedBackend(inner);
  const before = performance.now();
  await g.get("k");
  const after = performance.now();
  const started = inner.lastOpts?.startedAt;
  assert.equal(typeof started, "number");
  assert.ok(started! >= before && started! <= after, `${before} <= ${started} <= ${after}`);
  await g.close();
  // An injected clock is not performance.now(): its readings stay inside the guard.
  const fake = new Switchable(true);
  const g2 = new GuardedBackend(fake, { clock: () => 42 });
  await g2.get("k");
  assert.equal(fake.lastOpts?.timeoutMs, 1000);
  assert.equal(fake.lastOpts?.startedAt, undefined);
  await g2.close();
});

test("guard: the caller's signal aborts the wait; not counted as a backend failure", async () => {
  const inner = new Switchable(false);
  const g = new GuardedBackend(inner, { circuitBreaker: { failureThreshold: 1 } });
  inner.mode = { kind: "hang" };
  const ac = new AbortController();
  const p = g.get("k", { signal: ac.signal }).catch((e) => e);
  ac.abort(new Error("request cancelled"));
  const e = await p;
  assert.equal(e.kind, "timeout");
  assert.match(e.message, /aborted by the caller/);
  assert.equal(g.circuitBreaker!.state, "closed");
  inner.releaseAll();
  await g.close();
});

test("guard: authentication errors are surfaced and logged at error level with the correlation id", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["cachekit"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
    reset: true,
  });
  try {
    const inner = new Switchable();
    const auth = new BackendError("WRONGPASS invalid username-password pair", {
      kind: "authentication",
      backend: "switchable",
      operation: "get",
    });
    inner.mode = { kind: "fail", error: auth };
    const g = new GuardedBackend(inner);
    const e = await g.get("k", { correlationId: "req-7" }).catch((x) => x);
    assert.equal(e, auth, "the same error is rethrown");
    const errors = records.filter((r) => r.level === "error");
    assert.equal(errors.length, 1);
    assert.deepEqual(errors[0].category, ["cachekit", "reliability", "guard"]);
    assert.equal(errors[0].properties.correlationId, "req-7");
    assert.equal(errors[0].properties.operation, "get");
    assert.match(String(errors[0].properties.message), /WRONGPASS/);
    for (let i = 0; i < 4; i++) await g.get("k").catch(() => {});
    assert.equal(g.circuitBreaker!.state, "open", "a backend refusing credentials is unusable");
    assert.ok(records.some((r) => r.level === "warning" && r.properties.to === "open"));
    await g.close();
  } finally {
    await reset();
  }
});

test("guard: a failure's record carries the ambient correlation id (withCorrelationId around the call)", async () => {
  const records: LogRecord[] = [];
  await configure({
    sinks: { mem: (r) => records.push(r) },
    loggers: [
      { category: ["cachekit"], lowestLevel: "debug", sinks: ["mem"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
    reset: true,
  });
  try {
    const inner = new Switchable();
    inner.mode = {
      kind: "fail",
      error: new BackendError("WRONGPASS invalid username-password pair", {
        kind: "authentication",
        backend: "switchable",
        operation: "get",
      }),
    };
    const g = new GuardedBackend(inner);
    await withCorrelationId("req-9", () => g.get("k")).catch(() => {});
    const errors = records.filter((r) => r.level === "error");
    assert.equal(errors.length, 1);
    assert.equal(errors[0].properties.correlationId, "req-9");
    await g.get("k").catch(() => {}); // outside: none
    assert.equal(records.filter((r) => r.level === "error")[1].properties.correlationId, undefined);
    await g.close();
  } finally {
    await reset();
  }
});

test("guard: permanent errors (value too large on set) do not trip reads", async () => {
  const inner = new Switchable();
  const g = new GuardedBackend(inner, { circuitBreaker: { failureThreshold: 2 } });
  await g.set("small", bytes(1));
  for (let i = 0; i < 10; i++) {
    const e = await g.set("big", new Uint8Array(4096)).catch((x) => x); // MemoryBackend: permanent
    assert.equal(e.kind, "permanent");
  }
  assert.equal(g.circuitBreaker!.state, "closed");
  assert.deepEqual(await g.get("small"), bytes(1));
  assert.equal(g.stats().failures.permanent, 10);
  await g.close();
});

test("guard: raw errors become BackendError kind unknown (cause kept) and count", async () => {
  const inner = new Switchable();
  const raw = new TypeError("socket closed");
  inner.mode = { kind: "fail", error: raw };
  const g = new GuardedBackend(inner, { circuitBreaker: { failureThreshold: 2 } });
  const e = await g.exists("k").catch((x) => x);
  assert.ok(e instanceof BackendError);
  assert.equal(e.kind, "unknown");
  assert.equal(e.cause, raw);
  assert.equal(e.operation, "exists");
  await g.exists("k").catch(() => {});
  assert.equal(g.circuitBreaker!.state, "open");
  await g.close();
});

test("guard: excludedErrors receives the classified error and keeps the circuit closed", async () => {
  const inner = new Switchable();
  inner.mode = { kind: "fail", error: new RangeError("bad key") };
  const g = new GuardedBackend(inner, {
    circuitBreaker: {
      failureThreshold: 1,
      excludedErrors: (e) => e instanceof BackendError && e.cause instanceof RangeError,
    },
  });
  for (let i = 0; i < 5; i++) await g.get("k").catch(() => {});
  assert.equal(g.circuitBreaker!.state, "closed");
  await g.close();
});

test("guard: backpressure over the limit rejects quickly and does not trip the breaker", async () => {
  const inner = new Switchable();
  const g = new GuardedBackend(inner, {
    timeout: false,
    circuitBreaker: { failureThreshold: 1 },
    backpressure: { maxConcurrent: 2, queueSize: 0 },
  });
  inner.mode = { kind: "hang" };
  const held = [g.get("a"), g.get("b")];
  const refused = g.get("c");
  assert.ok(await settlesBeforeTimers(refused), "refused at once, without waiting");
  const e = await refused.catch((x) => x);
  assert.ok(e instanceof BackpressureError);
  assert.ok(isSkipL2Error(e));
  assert.equal(g.circuitBreaker!.state, "closed");
  assert.equal(g.stats().rejectedByBackpressure, 1);
  inner.releaseAll();
  assert.deepEqual(await Promise.all(held), [null, null]);
  assert.equal(g.backpressure!.active, 0);
  await g.close();
});

test("guard: each feature can be switched off; defaults are cachekit-py's", async () => {
  const all = new GuardedBackend(new Switchable());
  assert.equal(all.circuitBreaker!.snapshot().config.failureThreshold, 5);
  assert.equal(all.adaptiveTimeout!.timeoutMs, 1000);
  assert.equal(all.backpressure!.snapshot().config.maxConcurrent, 100);
  const none = new GuardedBackend(new Switchable(), {
    circuitBreaker: false,
    timeout: { enabled: false },
    backpressure: false,
  });
  assert.equal(none.circuitBreaker, null);
  assert.equal(none.adaptiveTimeout, null);
  assert.equal(none.backpressure, null);
  const inner = none.inner as Switchable;
  inner.mode = { kind: "fail", error: transient() };
  for (let i = 0; i < 20; i++) await none.get("k").catch(() => {});
  assert.equal(inner.calls, 20, "no breaker: every call reaches the backend");
  assert.throws(
    () => new GuardedBackend(new Switchable(), { backpressure: { maxConcurrent: 0 } }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "backpressure.maxConcurrent",
  );
  await all.close();
  await none.close();
});

test("guard: metrics count outcomes by status and kind, and track the circuit state", async () => {
  const metrics = new CacheMetrics();
  const inner = new Switchable();
  const g = new GuardedBackend(inner, { metrics, circuitBreaker: { failureThreshold: 2 } });
  await g.set("k", bytes(1));
  await g.get("k");
  inner.mode = { kind: "fail", error: transient() };
  await g.get("k").catch(() => {});
  await g.get("k").catch(() => {});
  await g.get("k").catch(() => {});
  const ops = metrics.backendOperationsFamily("switchable");
  assert.equal(metrics.registry.get("switchable_cache_operations_total"), ops);
  assert.equal(ops.get({ operation: "get", backend: "switchable", status: "success" }), 1);
  assert.equal(ops.get({ operation: "set", backend: "switchable", status: "success" }), 1);
  assert.equal(ops.get({ operation: "get", backend: "switchable", status: "error" }), 2);
  assert.equal(ops.get({ operation: "get", backend: "switchable", status: "rejected" }), 1);
  assert.equal(
    metrics.errors.get({ operation: "get", backend: "switchable", kind: "transient" }),
    2,
  );
  assert.equal(metrics.circuitState.get({ backend: "switchable" }), 1);
  const latency = metrics.backendDurationFamily("switchable");
  assert.equal(latency.get({ operation: "get", backend: "switchable", function: "" })?.count, 3);
  await g.close();
});

test("guard: healthCheck bypasses an open circuit and is bounded when the backend hangs", async () => {
  const inner = new Switchable();
  const g = new GuardedBackend(inner, {
    circuitBreaker: { failureThreshold: 1 },
    timeout: { min: 0.05, initial: 0.05, max: 0.05 },
  });
  inner.mode = { kind: "fail", error: transient() };
  await g.get("k").catch(() => {});
  assert.equal(g.circuitBreaker!.state, "open");
  inner.mode = { kind: "ok" };
  assert.equal((await g.healthCheck()).healthy, true);
  inner.mode = { kind: "hang" };
  const keepAlive = setInterval(() => {}, 1000);
  try {
    const h = await g.healthCheck();
    assert.equal(h.healthy, false);
    assert.match(String(h.details?.error), /timed out/);
  } finally {
    clearInterval(keepAlive);
    await g.close();
  }
});

test("guard: works over MemoryBackend itself (timeouts capability) and closes it", async () => {
  const mem = new MemoryBackend();
  const g = new GuardedBackend(mem);
  await g.set("x", bytes(5), 10);
  assert.deepEqual(await g.get("x"), bytes(5));
  assert.ok(g.capabilities.lock && g.capabilities.tags && g.capabilities.ttl);
  await g.capabilities.tags!.addTags("x", ["t"]);
  assert.deepEqual(await g.capabilities.tags!.invalidateTags(["t"]), ["x"]);
  const lock = await g.capabilities.lock!.acquire("job", { leaseMs: 1000, waitMs: 0 });
  assert.ok(lock);
  assert.equal(await lock.release(), true);
  await g.close();
  await g.close();
});

test("guard: the engine's resolved config groups plug in as they are (presets on and off)", async () => {
  const env = readEnvConfig({});
  const guard = (preset: "production" | "test" | "minimal") => {
    const c = resolveConfig({ name: "f" }, preset, env);
    return new GuardedBackend(new MemoryBackend(), {
      circuitBreaker: c.circuitBreaker,
      timeout: c.timeout,
      backpressure: c.backpressure,
    });
  };
  const prod = guard("production");
  assert.equal(prod.circuitBreaker?.snapshot().config.failureThreshold, 5);
  assert.equal(prod.adaptiveTimeout?.snapshot().config.initial, 1);
  assert.equal(prod.adaptiveTimeout?.timeoutMs, 100); // cold over a local backend: `min`
  assert.equal(prod.backpressure?.snapshot().config.queueSize, 1000);
  const t = guard("test"); // cachekit-py 0.3.0: breaker, timeout and backpressure all off
  assert.equal(t.circuitBreaker, null);
  assert.equal(t.adaptiveTimeout, null);
  assert.equal(t.backpressure, null);
  const minimal = guard("minimal"); // cachekit-py 0.3.0: only backpressure on
  assert.equal(minimal.circuitBreaker, null);
  assert.equal(minimal.adaptiveTimeout, null);
  assert.ok(minimal.backpressure);
  await Promise.all([prod.close(), t.close(), minimal.close()]);
});
