// Circuit breaker state machine, driven by a fake clock. Expected thresholds and transitions come
// from cachekit-py (failure threshold 5, success threshold 3, recovery 30 s, 3 half-open probes)
// and the state diagram in the Python cachekit documentation.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { BackendError, CacheConfigError } from "../../errors.ts";
import {
  CircuitBreaker,
  CircuitOpenError,
  type CircuitStateChange,
} from "../../reliability/circuit_breaker.ts";

function fake() {
  let now = 1_000_000;
  const changes: CircuitStateChange[] = [];
  return {
    clock: () => now,
    advance(ms: number) {
      now += ms;
    },
    changes,
    onStateChange: (c: CircuitStateChange) => changes.push(c),
  };
}

const fail = (b: CircuitBreaker, err: unknown = new Error("down")) =>
  b.execute(() => Promise.reject(err)).then(
    () => assert.fail("expected a rejection"),
    (e) => e,
  );
const ok = (b: CircuitBreaker) => b.execute(() => Promise.resolve("v"));

test("breaker: cachekit-py's defaults", () => {
  const snap = new CircuitBreaker().snapshot();
  assert.deepEqual(snap.config, {
    failureThreshold: 5,
    successThreshold: 3,
    recoveryTimeout: 30,
    halfOpenRequests: 3,
    failureWindow: 60,
  });
  assert.equal(snap.state, "closed");
});

test("breaker: opens on the 5th consecutive failure, not the 4th", async () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock, onStateChange: f.onStateChange, name: "redis" });
  for (let i = 0; i < 4; i++) await fail(b);
  assert.equal(b.state, "closed");
  assert.equal(b.snapshot().failures, 4);
  await fail(b);
  assert.equal(b.state, "open");
  assert.equal(f.changes.length, 1);
  assert.equal(f.changes[0].from, "closed");
  assert.equal(f.changes[0].to, "open");
  assert.equal(f.changes[0].name, "redis");
  assert.equal((f.changes[0].error as Error).message, "down");
});

test("breaker: a success in between resets the count (consecutive failures)", async () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock });
  for (let i = 0; i < 4; i++) await fail(b);
  await ok(b);
  assert.equal(b.snapshot().failures, 0);
  for (let i = 0; i < 4; i++) await fail(b);
  assert.equal(b.state, "closed");
});

test("breaker: failures older than the window are forgotten", async () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock, failureWindow: 10 });
  for (let i = 0; i < 4; i++) await fail(b);
  f.advance(10_001);
  await fail(b);
  assert.equal(b.state, "closed");
  assert.equal(b.snapshot().failures, 1);
});

test("breaker: open refuses at once with CircuitOpenError, without calling", async () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock, failureThreshold: 1, name: "redis" });
  await fail(b);
  let called = false;
  const err = await b.execute(() => {
    called = true;
    return Promise.resolve(1);
  }, "get").catch((e) => e);
  assert.equal(called, false);
  assert.ok(err instanceof CircuitOpenError);
  assert.ok(err instanceof BackendError);
  assert.equal(err.kind, "transient");
  assert.equal(err.operation, "get");
  assert.match(err.message, /circuit open/);
  assert.equal(err.retryInMs, 30_000);
  assert.equal(b.snapshot().totalRejected, 1);
});

test("breaker: open → half_open exactly at recoveryTimeout", async () => {
  const f = fake();
  const b = new CircuitBreaker({
    clock: f.clock,
    failureThreshold: 1,
    onStateChange: f.onStateChange,
  });
  await fail(b);
  f.advance(29_999);
  assert.equal(b.state, "open");
  assert.equal(b.retryInMs(), 1);
  f.advance(1);
  assert.equal(b.state, "half_open");
  assert.deepEqual(f.changes.map((c) => c.to), ["open", "half_open"]);
});

test("breaker: half_open lets exactly halfOpenRequests probes through", () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock, failureThreshold: 1 });
  assert.ok(b.tryAcquire());
  b.recordFailure(new Error("x"));
  f.advance(30_000);
  assert.ok(b.tryAcquire());
  assert.ok(b.tryAcquire());
  assert.ok(b.tryAcquire());
  assert.equal(b.tryAcquire(), false, "4th probe refused");
  assert.equal(b.snapshot().halfOpenInFlight, 3);
});

test("breaker: half_open → closed after successThreshold successes", () => {
  const f = fake();
  const b = new CircuitBreaker({
    clock: f.clock,
    failureThreshold: 1,
    onStateChange: f.onStateChange,
  });
  b.tryAcquire();
  b.recordFailure(new Error("x"));
  f.advance(30_000);
  for (let i = 0; i < 3; i++) assert.ok(b.tryAcquire());
  b.recordSuccess();
  b.recordSuccess();
  assert.equal(b.state, "half_open");
  b.recordSuccess();
  assert.equal(b.state, "closed");
  assert.deepEqual(f.changes.map((c) => c.to), ["open", "half_open", "closed"]);
  assert.equal(b.tryAcquire(), true);
});

test("breaker: a failed probe re-opens and restarts the recovery timer", () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock, failureThreshold: 1, recoveryTimeout: 5 });
  b.tryAcquire();
  b.recordFailure(new Error("x"));
  f.advance(5_000);
  assert.ok(b.tryAcquire());
  b.recordSuccess();
  assert.ok(b.tryAcquire());
  b.recordFailure(new Error("still down"));
  assert.equal(b.state, "open");
  assert.equal(b.snapshot().timesOpened, 2);
  f.advance(4_999);
  assert.equal(b.state, "open");
  f.advance(1);
  assert.equal(b.state, "half_open");
  assert.equal(b.snapshot().halfOpenSuccesses, 0, "successes of the last period are forgotten");
});

test("breaker: excluded errors pass through and do not count", async () => {
  const f = fake();
  const b = new CircuitBreaker({
    clock: f.clock,
    failureThreshold: 2,
    excludedErrors: (e) => e instanceof BackendError && e.kind === "permanent",
  });
  const permanent = new BackendError("OOM", { kind: "permanent", backend: "r", operation: "set" });
  for (let i = 0; i < 10; i++) assert.equal(await fail(b, permanent), permanent);
  assert.equal(b.state, "closed");
  assert.equal(b.snapshot().totalFailures, 0);
  await fail(b);
  await fail(b);
  assert.equal(b.state, "open");
});

test("breaker: an excluded error on a probe gives the probe slot back", () => {
  const f = fake();
  const b = new CircuitBreaker({
    clock: f.clock,
    failureThreshold: 1,
    halfOpenRequests: 1,
    successThreshold: 1,
    excludedErrors: (e) => (e as Error).message === "ignore me",
  });
  b.tryAcquire();
  b.recordFailure(new Error("down"));
  f.advance(30_000);
  assert.ok(b.tryAcquire());
  assert.equal(b.tryAcquire(), false);
  b.recordFailure(new Error("ignore me"));
  assert.equal(b.state, "half_open");
  assert.ok(b.tryAcquire(), "slot returned");
  b.recordSuccess();
  assert.equal(b.state, "closed");
});

test("breaker: a throwing listener or predicate never breaks the call path", async () => {
  const f = fake();
  const b = new CircuitBreaker({
    clock: f.clock,
    failureThreshold: 1,
    onStateChange: () => {
      throw new Error("listener bug");
    },
    excludedErrors: () => {
      throw new Error("predicate bug");
    },
  });
  await fail(b);
  assert.equal(b.state, "open");
});

test("breaker: listeners can be added and removed; reset closes", async () => {
  const f = fake();
  const b = new CircuitBreaker({ clock: f.clock, failureThreshold: 1 });
  const seen: string[] = [];
  const off = b.onStateChange((c) => seen.push(c.to));
  await fail(b);
  b.reset();
  off();
  await fail(b);
  assert.deepEqual(seen, ["open", "closed"]);
});

test("breaker: invalid options are CacheConfigError naming the option", () => {
  const cases: Array<[Record<string, unknown>, string]> = [
    [{ failureThreshold: 0 }, "circuitBreaker.failureThreshold"],
    [{ failureThreshold: 1.5 }, "circuitBreaker.failureThreshold"],
    [{ successThreshold: -1 }, "circuitBreaker.successThreshold"],
    [{ recoveryTimeout: -1 }, "circuitBreaker.recoveryTimeout"],
    [{ recoveryTimeout: Number.NaN }, "circuitBreaker.recoveryTimeout"],
    [{ halfOpenRequests: 0 }, "circuitBreaker.halfOpenRequests"],
    [{ successThreshold: 4, halfOpenRequests: 3 }, "circuitBreaker.successThreshold"],
    [{ excludedErrors: "no" }, "circuitBreaker.excludedErrors"],
    [{ failureWindow: 0 }, "circuitBreaker.failureWindow"],
  ];
  for (const [opts, option] of cases) {
    assert.throws(
      () => new CircuitBreaker(opts),
      (e: unknown) => e instanceof CacheConfigError && e.option === option,
      JSON.stringify(opts),
    );
  }
  // The engine's resolved config passes `excludedErrors: null` when none is configured.
  assert.equal(new CircuitBreaker({ excludedErrors: null }).state, "closed");
});
