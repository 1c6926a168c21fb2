// HealthChecker levels (ping / basic / full) and statuses (healthy / degraded / unhealthy) as
// cachekit-py describes them, and the HTTP handler served for real on a loopback port.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { MemoryBackend } from "../../backends/memory.ts";
import type { Backend, BackendHealth } from "../../backends/types.ts";
import { BackendError, CacheConfigError } from "../../errors.ts";
import {
  CacheMetrics,
  HealthChecker,
  healthCheckHandler,
  type HealthReport,
  metricsHandler,
  parseHealthLevel,
} from "../../health/mod.ts";
import { GuardedBackend } from "../../reliability/mod.ts";

/** MemoryBackend whose probe can be made to fail, be slow, or report pool details. */
function probeable(
  health: () => Promise<BackendHealth>,
): Backend & { failGets: boolean } {
  const mem = new MemoryBackend();
  const b = {
    type: "probe",
    capabilities: {},
    failGets: false,
    get: (k: string) =>
      b.failGets
        ? Promise.reject(
          new BackendError("down", { kind: "transient", backend: "probe", operation: "get" }),
        )
        : mem.get(k),
    set: (k: string, v: Uint8Array) => mem.set(k, v),
    delete: (k: string) => mem.delete(k),
    exists: (k: string) => mem.exists(k),
    healthCheck: health,
  };
  return b;
}

const okProbe = (latencyMs = 1, details?: Record<string, unknown>) => () =>
  Promise.resolve({ healthy: true, latencyMs, backendType: "probe", details });

test("health: L1 only is healthy at every level", async () => {
  const checker = new HealthChecker({ l1: () => ({ bytes: 10, entries: 1, maxBytes: 100 }) });
  for (const level of ["ping", "basic", "full"] as const) {
    const r = await checker.check(level);
    assert.equal(r.status, "healthy");
    assert.equal(r.level, level);
    assert.equal(r.components.backend, undefined);
  }
  const full = await checker.check("full");
  assert.deepEqual(full.components.l1?.details, { bytes: 10, entries: 1, maxBytes: 100 });
  assert.ok(!Number.isNaN(Date.parse(full.timestamp)));
});

test("health: ping checks only the backend; basic adds circuit and pool; full adds the rest", async () => {
  const inner = probeable(okProbe(2, { connections: 4, poolSize: 10, url: "redis://x" }));
  const guarded = new GuardedBackend(inner);
  const metrics = new CacheMetrics();
  metrics.recordHit("users", "l1");
  metrics.recordHit("orders", "l1");
  metrics.recordMiss("users", "l2");
  const checker = new HealthChecker({
    backend: guarded,
    metrics,
    l1: () => ({ bytes: 0, entries: 0 }),
  });
  const ping = await checker.check("ping");
  assert.deepEqual(Object.keys(ping.components), ["backend"]);
  assert.equal(ping.components.backend?.latencyMs, 2);
  const basic = await checker.check("basic");
  assert.deepEqual(Object.keys(basic.components).sort(), ["backend", "circuitBreaker", "pool"]);
  assert.equal(basic.components.circuitBreaker?.details?.state, "closed");
  assert.deepEqual(basic.components.pool?.details, { connections: 4, poolSize: 10 });
  const full = await checker.check("full");
  for (
    const c of ["backend", "circuitBreaker", "pool", "timeout", "backpressure", "l1", "metrics"]
  ) {
    assert.ok(c in full.components, c);
  }
  assert.equal(full.components.backend?.details?.url, "redis://x");
  assert.equal(full.components.circuitBreaker?.details?.failures, 0);
  assert.deepEqual(full.components.metrics?.details?.hits, { l1: 2, l2: 0 });
  assert.deepEqual(full.components.metrics?.details?.misses, { l1: 0, l2: 1 });
  assert.equal(full.status, "healthy");
  await guarded.close();
});

test("health: a failing probe is unhealthy (or degraded when configured so)", async () => {
  const down = probeable(() =>
    Promise.resolve({
      healthy: false,
      latencyMs: 0,
      backendType: "probe",
      details: { error: "ECONNREFUSED" },
    })
  );
  const r = await new HealthChecker({ backend: down }).check("ping");
  assert.equal(r.status, "unhealthy");
  assert.equal(r.components.backend?.message, "ECONNREFUSED");
  const soft = await new HealthChecker({ backend: down, backendDownStatus: "degraded" }).check();
  assert.equal(soft.status, "degraded");
  const throwing = probeable(() => Promise.reject(new Error("probe threw")));
  assert.equal((await new HealthChecker({ backend: throwing }).check()).status, "unhealthy");
});

test("health: slow probe is degraded; a hung probe times out as unhealthy", async () => {
  const slow = probeable(okProbe(250));
  const r = await new HealthChecker({ backend: slow }).check("ping");
  assert.equal(r.status, "degraded");
  assert.match(r.components.backend!.message!, /latency 250 ms over 100 ms/);
  const hung = probeable(() => new Promise(() => {}));
  const t0 = performance.now();
  const h = await new HealthChecker({ backend: hung, probeTimeoutMs: 50 }).check("ping");
  assert.ok(performance.now() - t0 < 10_000, "did not wait for the hung probe"); // it never ends
  assert.equal(h.status, "unhealthy");
  assert.match(h.components.backend!.message!, /timed out/);
});

test("health: an open circuit is degraded while the backend answers its probe", async () => {
  const inner = probeable(okProbe());
  const guarded = new GuardedBackend(inner, { circuitBreaker: { failureThreshold: 2 } });
  inner.failGets = true;
  await guarded.get("k").catch(() => {});
  await guarded.get("k").catch(() => {});
  const r = await new HealthChecker({ backend: guarded }).check("basic");
  assert.equal(r.components.circuitBreaker?.status, "degraded");
  assert.equal(r.components.circuitBreaker?.details?.state, "open");
  assert.match(r.components.circuitBreaker!.message!, /circuit open/);
  assert.equal(r.status, "degraded");
  const ping = await new HealthChecker({ backend: guarded }).check("ping");
  assert.equal(ping.status, "healthy", "ping looks at the backend only");
  await guarded.close();
});

test("health: levels parse case-insensitively; bad levels and options are config errors", () => {
  assert.equal(parseHealthLevel(" Full "), "full");
  assert.throws(() => parseHealthLevel("deep"), CacheConfigError);
  assert.throws(() => new HealthChecker({ degradedLatencyMs: 0 }), CacheConfigError);
  assert.throws(
    // deno-lint-ignore no-explicit-any
    () => new HealthChecker({ backendDownStatus: "fine" as any }),
    CacheConfigError,
  );
});

// ---- the handler on a real loopback server --------------------------------------------------

type Handler = (req: Request) => Promise<Response>;
// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** Serve `handler` on 127.0.0.1, port 0: Deno.serve on Deno, node:http elsewhere. */
async function serve(handler: Handler): Promise<{ url: string; close: () => Promise<void> }> {
  if (g.Deno?.serve) {
    const server = g.Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, handler);
    return {
      url: `http://127.0.0.1:${server.addr.port}`,
      close: () => server.shutdown(),
    };
  }
  const http = await import("node:http");
  const server = http.createServer(async (req, res) => {
    const response = await handler(
      new Request(`http://127.0.0.1${req.url}`, { method: req.method }),
    );
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(await response.text());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

test("health handler: over real HTTP, 200 healthy/degraded, 503 unhealthy, ?level=, 400", async () => {
  let healthy = true;
  let latency = 1;
  const backend = probeable(() =>
    Promise.resolve({ healthy, latencyMs: latency, backendType: "probe" })
  );
  const handler = healthCheckHandler({ backend, l1: () => ({ bytes: 5, entries: 1 }) });
  const server = await serve(handler);
  try {
    let res = await fetch(`${server.url}/health`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type")!, /^application\/json/);
    let body = (await res.json()) as HealthReport;
    assert.equal(body.status, "healthy");
    assert.equal(body.level, "basic");

    res = await fetch(`${server.url}/health?level=full`);
    body = await res.json();
    assert.equal(body.level, "full");
    assert.equal(body.components.l1?.details?.bytes, 5);

    latency = 500;
    res = await fetch(`${server.url}/health?level=ping`);
    body = await res.json();
    assert.equal(res.status, 200);
    assert.equal(body.status, "degraded");

    healthy = false;
    res = await fetch(`${server.url}/health`);
    body = await res.json();
    assert.equal(res.status, 503);
    assert.equal(body.status, "unhealthy");

    res = await fetch(`${server.url}/health?level=everything`);
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { error: string }).error, /level/);
  } finally {
    await server.close();
  }
});

test("metrics handler: over real HTTP with the Prometheus content type", async () => {
  const metrics = new CacheMetrics();
  metrics.recordHit("users", "l1");
  const server = await serve(metricsHandler(metrics));
  try {
    const res = await fetch(`${server.url}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.match(
      await res.text(),
      /^cache_hits_total\{namespace="users",function="",layer="l1"\} 1$/m,
    );
  } finally {
    await server.close();
  }
});
