// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Cache events (issue 16.2): `f.events` and the global `cacheEvents` carry hit, miss, stale, set,
// delete, invalidate (local and remote), error (with the BackendError kind), circuit, timeout
// (soft and hard) and bus (disconnected, recovered), each with identity, namespace, layer,
// duration and protocol key, never arguments or values; and no event object is ever built while
// nobody listens (counted in CacheEvent's constructor).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { captureLogs, render } from "../_log_capture.ts";
import { gate, shiftDateNow, until } from "../_timing.ts";
import {
  type Backend,
  BackendError,
  cache as realCache,
  type CacheEvent,
  cacheEvents,
  type CacheEventTarget,
  type CacheEventType,
  clearNamespace,
  invalidateTags,
  type InvalidationEvent,
  MemoryBackend,
} from "../../mod.ts";
import { cacheEventsConstructed } from "../../engine/_events.ts";

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

/** Every event of `target` (all types), in order. */
function collect(target: CacheEventTarget): { events: CacheEvent[]; stop(): void } {
  const types: CacheEventType[] = [
    "hit",
    "miss",
    "stale",
    "set",
    "delete",
    "invalidate",
    "error",
    "circuit",
    "timeout",
    "bus",
  ];
  const events: CacheEvent[] = [];
  const on = (e: CacheEvent) => void events.push(e);
  for (const t of types) target.addEventListener(t, on);
  return { events, stop: () => types.forEach((t) => target.removeEventListener(t, on)) };
}

function summary(events: CacheEvent[]): string[] {
  return events.map((e) => `${e.type}:${e.detail.layer}`);
}

/** `inner` with an invalidation bus the test drives: `deliver(event)`, `drop()`, `fail`. */
function busBackend(inner: Backend) {
  let handler: ((e: InvalidationEvent) => void) | null = null;
  let onGap: (() => void) | undefined;
  const state = { failSubscribe: false, subscriptions: 0 };
  const backend: Backend = {
    type: "busmem",
    capabilities: {
      ...inner.capabilities,
      invalidation: {
        instanceId: "test",
        publish: () => Promise.resolve(),
        subscribe: (h: (e: InvalidationEvent) => void, gap?: () => void) => {
          state.subscriptions++;
          if (state.failSubscribe) return Promise.reject(new Error("bus down"));
          handler = h;
          onGap = gap;
          return Promise.resolve(() => Promise.resolve());
        },
      },
    },
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => inner.set(k, v, t, o),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return {
    backend,
    state,
    deliver: (e: InvalidationEvent) => handler?.(e),
    gap: () => onGap?.(),
  };
}

test("events: nothing is constructed while nobody listens (hits, misses, writes, invalidations, errors)", async () => {
  const backend = new MemoryBackend();
  const f = cache(async (n: number) => ({ n }), {
    name: "events.silent",
    ttl: 60,
    tags: (n) => [`n:${n}`],
    backend,
    ...bare,
  });
  const failing = cache(async (n: number) => n, {
    name: "events.silent.failing",
    backend: failingBackend("transient"),
    ...bare,
  });
  const before = cacheEventsConstructed();
  for (let i = 0; i < 50; i++) await f(i % 5);
  await f.invalidate(1);
  await invalidateTags("n:2");
  await f.cacheClear();
  await failing(1);
  await f.withStatus(3);
  assert.equal(cacheEventsConstructed(), before, "no CacheEvent without a listener");
  assert.equal(f.events.listening, false);
  // A listener that comes and goes leaves nothing behind.
  const on = () => {};
  f.events.addEventListener("hit", on);
  await f(3);
  assert.equal(cacheEventsConstructed(), before + 1);
  f.events.removeEventListener("hit", on);
  await f(3);
  assert.equal(cacheEventsConstructed(), before + 1, "silent again after removal");
});

test("events: listener accounting follows once, signal, duplicates and capture", () => {
  const f = cache((n: number) => n, { name: "events.accounting", backend: null });
  const on = () => {};
  f.events.addEventListener("hit", on);
  f.events.addEventListener("hit", on); // a duplicate EventTarget ignores
  f.events.removeEventListener("hit", on);
  assert.equal(f.events.listening, false, "one removal undoes the duplicate add");
  f.events.addEventListener("hit", on, true);
  f.events.removeEventListener("hit", on);
  assert.equal(f.events.listening, true, "capture and bubble are two registrations");
  f.events.removeEventListener("hit", on, { capture: true });
  assert.equal(f.events.listening, false);
  let once = 0;
  f.events.addEventListener("miss", () => once++, { once: true });
  f(1);
  f(2);
  assert.equal(once, 1);
  assert.equal(f.events.listening, false, "a once listener is gone after it fired");
  const ac = new AbortController();
  cacheEvents.addEventListener("miss", on, { signal: ac.signal });
  assert.equal(f.events.listening, false);
  assert.equal(cacheEvents.listening, true);
  ac.abort();
  assert.equal(cacheEvents.listening, false);
});

test("events: miss, set, hit (l1, l2), delete and invalidate carry identity, layer, duration and key, never values", async () => {
  const backend = new MemoryBackend();
  const fn = async (id: number) => ({ secret: `value-${id}` });
  const f = cache(fn, {
    name: "events.flow",
    namespace: "evns",
    ttl: 60,
    tags: (id) => [`user:${id}`],
    backend,
    ...bare,
  });
  const g = cache(fn, {
    name: "events.flow",
    namespace: "evns",
    ttl: 60,
    tags: (id) => [`user:${id}`],
    backend,
    ...bare,
  });
  const mine = collect(f.events);
  const all = collect(cacheEvents);
  try {
    await f(424242);
    await f(424242);
    await g(424242);
    await f.invalidate(424242);
    await f.cacheClear();
    await invalidateTags("user:1");
    await clearNamespace("evns");
    assert.deepEqual(summary(mine.events), [
      "set:l2",
      "miss:source",
      "hit:l1",
      "delete:l2",
      "invalidate:l2",
      "invalidate:l2",
      "invalidate:l2",
    ]);
    const [set, miss, hit] = mine.events;
    assert.equal(miss.detail.identity, "events.flow");
    assert.equal(miss.detail.namespace, "evns");
    assert.equal(miss.detail.status, "miss");
    assert.match(miss.detail.key!, /^ns:evns:func:events\.flow:args:/);
    assert.equal(set.detail.key, miss.detail.key);
    assert.equal(hit.detail.key, miss.detail.key);
    assert.equal(typeof miss.detail.durationMs, "number");
    assert.ok(miss.detail.durationMs! >= 0);
    const scopes = mine.events.filter((e) => e.type === "invalidate").map((e) => e.detail.scope);
    assert.deepEqual(scopes, ["function", "tags", "namespace"]);
    // g's L2 hit reached the global target, not f's.
    assert.ok(all.events.some((e) => e.type === "hit" && e.detail.layer === "l2"));
    // Never an argument or a value.
    const text = JSON.stringify(all.events.map((e) => e.detail));
    assert.ok(!text.includes("424242") && !text.includes("value-"), text);
  } finally {
    mine.stop();
    all.stop();
  }
});

test("events: stale and a soft timeout", async () => {
  const clock = shiftDateNow();
  const slow = gate();
  try {
    let n = 0;
    const f = cache(async () => {
      if (++n > 1) await slow.promise;
      return n;
    }, {
      name: "events.soft",
      ttl: 60,
      staleTtl: 600,
      softTimeout: 0.05,
      backend: null,
    });
    await f();
    clock.advance(61_000);
    const c = collect(f.events);
    assert.equal(await f(), 1);
    c.stop();
    assert.deepEqual(c.events.map((e) => [e.type, e.detail.layer, e.detail.timeout ?? null]), [
      ["timeout", "l1", "soft"],
      ["stale", "l1", null],
    ]);
    assert.equal(c.events[1].detail.status, "stale");
  } finally {
    slow.open();
    clock.restore();
  }
});

/** A backend whose every operation fails with a BackendError of `kind` (after `delayMs`). */
function failingBackend(kind: "transient" | "timeout"): Backend {
  const inner = new MemoryBackend();
  const fail = (operation: string) =>
    Promise.reject(new BackendError("down", { kind, backend: "failing", operation }));
  return {
    type: "failing",
    capabilities: inner.capabilities,
    get: () => fail("get"),
    set: () => fail("set"),
    delete: () => fail("delete"),
    exists: () => fail("exists"),
    healthCheck: () => inner.healthCheck(),
  };
}

test("events: error with the BackendError kind, circuit changes, and a hard timeout", async () => {
  const f = cache(async (n: number) => n, {
    name: "events.errors",
    backend: failingBackend("transient"),
    circuitBreaker: { failureThreshold: 2, recoveryTimeout: 60 },
    timeout: false,
    backpressure: false,
  });
  const c = collect(f.events);
  const g = collect(cacheEvents);
  try {
    await f(1);
    await f(2);
    const errors = c.events.filter((e) => e.type === "error");
    assert.ok(errors.length >= 2, summary(c.events).join());
    assert.equal(errors[0].detail.kind, "transient");
    assert.equal(errors[0].detail.operation, "get");
    assert.equal(errors[0].detail.layer, "l2");
    const circuit = c.events.find((e) => e.type === "circuit");
    assert.ok(circuit, summary(c.events).join());
    assert.deepEqual([circuit.detail.from, circuit.detail.to], ["closed", "open"]);
    assert.equal(circuit.detail.identity, "events.errors");
    const global = g.events.filter((e) => e.type === "circuit" && e.detail.identity === null);
    assert.equal(global.length, 1, "the breaker's change once on the global target");
  } finally {
    c.stop();
    g.stop();
  }
  const t = cache(async (n: number) => n, {
    name: "events.hardtimeout",
    backend: failingBackend("timeout"),
    ...bare,
  });
  const ct = collect(t.events);
  try {
    await t(1);
    const hard = ct.events.find((e) => e.type === "timeout");
    assert.ok(hard, summary(ct.events).join());
    assert.equal(hard.detail.timeout, "hard");
    assert.equal(hard.detail.operation, "get");
  } finally {
    ct.stop();
  }
});

test("events: remote invalidations and the bus going down and coming back", async () => {
  const bus = busBackend(new MemoryBackend());
  const f = cache(async (n: number) => ({ n }), {
    name: "events.remote",
    ttl: 60,
    backend: bus.backend,
    l1: { invalidation: true },
    ...bare,
  });
  const c = collect(f.events);
  try {
    const r = await f.withStatus(1);
    bus.deliver({ level: "key", targets: [r.key!], reason: "delete", sender: "other" });
    bus.deliver({ level: "all", targets: [], sender: "other" });
    bus.gap();
    const remote = c.events.filter((e) => e.type === "invalidate");
    assert.deepEqual(remote.map((e) => [e.detail.scope, e.detail.remote]), [
      ["key", true],
      ["all", true],
    ]);
    assert.equal(remote[0].detail.key, r.key);
    const recovered = c.events.filter((e) => e.type === "bus");
    assert.deepEqual(recovered.map((e) => e.detail.bus), ["recovered"]);
  } finally {
    c.stop();
  }
  // A subscription that fails: disconnected.
  const down = busBackend(new MemoryBackend());
  down.state.failSubscribe = true;
  const g = cache(async (n: number) => n, {
    name: "events.busdown",
    backend: down.backend,
    l1: { invalidation: true },
    ...bare,
  });
  const d = collect(g.events);
  try {
    await g(1);
    assert.ok(await until(() => d.events.some((e) => e.type === "bus"), 5_000));
    assert.equal(d.events.find((e) => e.type === "bus")!.detail.bus, "disconnected");
  } finally {
    d.stop();
  }
}, { sanitize: false }); // the subscription's retry timer (unref'd) outlives the test

test("events: a listener that throws is logged, never thrown at the call or the process", async () => {
  const logs = await captureLogs("error");
  try {
    const f = cache((n: number) => n + 1, { name: "events.throwing", backend: null });
    const boom = () => {
      throw new Error("listener bug");
    };
    f.events.addEventListener("miss", boom);
    assert.equal(f(1), 2, "the call answers");
    f.events.removeEventListener("miss", boom);
    assert.equal(f.events.listening, false);
    const [rec] = logs.matching(/listener of miss threw: listener bug/);
    assert.ok(rec, logs.records.map(render).join("\n"));
    assert.deepEqual(rec.category, ["cachekit", "events"]);
  } finally {
    await logs.stop();
  }
});
