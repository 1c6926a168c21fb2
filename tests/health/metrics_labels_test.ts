// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Labelled metrics parsed from the Prometheus text of the process-wide registry (what
// `cacheMetricsHandler()` serves), on the Memory, File and Redis backends: the `function` label on
// hits, misses and L2 latency, its bound, the backend families named after the backend that
// answered, and one `get` per call in `cache_operations_total` (a miss under the stampede lock
// reads L2 twice).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { type Family, parsePrometheus, type Sample } from "../_prometheus.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import {
  type Backend,
  cache,
  cacheMetricsHandler,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";
import {
  backendMetricPrefix,
  CacheMetrics,
  FUNCTION_LABEL_OVERFLOW,
  getDefaultMetrics,
} from "../../health/mod.ts";
import { GuardedBackend } from "../../reliability/mod.ts";
import { CacheConfigError } from "../../errors.ts";

async function scrape(): Promise<Map<string, Family>> {
  const res = await cacheMetricsHandler()(new Request("http://x/metrics"));
  return parsePrometheus(await res.text());
}

function samples(fams: Map<string, Family>, name: string, labels: Record<string, string>) {
  return (fams.get(name)?.samples ?? []).filter((s: Sample) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
}

function value(fams: Map<string, Family>, name: string, labels: Record<string, string>): number {
  return samples(fams, name, labels).reduce((n, s) => n + s.value, 0);
}

const KINDS: { type: string; make: () => { backend: Backend; done: () => Promise<void> } }[] = [
  {
    type: "memory",
    make: () => {
      const backend = new MemoryBackend();
      return { backend, done: () => backend.close() };
    },
  },
  {
    type: "file",
    make: () => {
      const dir = mkdtempSync(join(tmpdir(), "ck-metrics-"));
      const backend = new FileBackend({ directory: dir });
      return {
        backend,
        done: async () => {
          await backend.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  },
  {
    type: "redis",
    make: () => {
      const backend = new RedisBackend({
        url: "redis://127.0.0.1:6379",
        keyPrefix: uniquePrefix("metrics"),
      });
      return { backend, done: () => backend.close() };
    },
  },
];

for (const kind of KINDS) {
  test(
    `metrics on ${kind.type}: function label on hits, misses and latency; ${kind.type}_ families; one get per call`,
    async () => {
      const { backend, done } = kind.make();
      const ns = `lbl${kind.type}`;
      const name = `metrics.labels.${kind.type}`;
      const secretArg = `secret-arg-${crypto.randomUUID()}`;
      try {
        const work = async (s: string) => ({ s });
        // The preset's adaptive timeout starts a local backend at its 0.1 s floor: on a loaded host
        // the miss's lock round trip outlasted it, answered uncached, and left no L2 hit to count.
        // A timeout only a hang reaches keeps every call on the path the counts are about.
        const timeout = { initial: 30, min: 30, max: 30 };
        const opts = { name, namespace: ns, ttl: 60, backend, timeout };
        const f = cache.production(work, opts);
        await f(secretArg); // miss: L1, L2 (read, stampede lock, read again), compute, write
        await f(secretArg); // L1 hit
        // The same function wrapped again (another instance): its L1 is empty, so it hits L2.
        const g = cache.production(work, opts);
        await g(secretArg);

        const fams = await scrape();
        // The process-wide registry admits 100 identities: where the test runner shares one
        // process between files (Bun), earlier files may have filled it, and this function's calls
        // are then counted under the overflow value. Its namespace keeps the counts apart.
        const label = getDefaultMetrics().functionLabel(name);
        const fn = { namespace: ns, function: label };
        assert.equal(value(fams, "cache_hits_total", { ...fn, layer: "l1" }), 1);
        assert.equal(value(fams, "cache_hits_total", { ...fn, layer: "l2" }), 1);
        assert.equal(value(fams, "cache_misses_total", { ...fn, layer: "l1" }), 1);
        assert.equal(value(fams, "cache_misses_total", { ...fn, layer: "l2" }), 1);
        // One get per call that consulted L2 (the miss, the L2 hit), however many round trips.
        assert.equal(
          value(fams, "cache_operations_total", { operation: "get", namespace: ns }),
          2,
          "cache_operations_total counts one get per call",
        );
        const size = samples(fams, "cache_operation_size_bytes", {
          operation: "get",
          namespace: ns,
        }).find((s) => s.name.endsWith("_count"));
        assert.equal(size?.value, 1, "the L2 hit's size is observed once");

        // Backend families named after the backend that answered, with its label.
        const ops = `${kind.type}_cache_operations_total`;
        const latency = `${kind.type}_cache_operation_duration_seconds`;
        assert.equal(fams.get(ops)?.type, "counter", ops);
        assert.equal(fams.get(latency)?.type, "histogram", latency);
        const gets = value(fams, ops, { operation: "get", backend: kind.type, status: "success" });
        assert.ok(gets >= 2, `${ops} counts the round trips (${gets})`);
        const mine = samples(fams, latency, { operation: "get", function: label })
          .find((s) => s.name === `${latency}_count`);
        assert.ok(mine !== undefined && mine.value >= 2, "get latency labelled by function");
        assert.ok(
          samples(fams, latency, { operation: "set", function: label }).length > 0,
          "set latency labelled by function",
        );
        if (kind.type !== "redis") {
          assert.equal(
            samples(fams, "redis_cache_operations_total", { backend: kind.type }).length,
            0,
            `no redis_ series for the ${kind.type} backend`,
          );
        }
        // Identities only: no label value anywhere holds a key or an argument.
        for (const fam of fams.values()) {
          for (const s of fam.samples) {
            for (const v of Object.values(s.labels)) {
              assert.ok(!v.includes(secretArg), `${s.name} carries an argument`);
              assert.ok(!v.startsWith("t:") && !v.includes(":args:"), `${s.name} carries a key`);
            }
          }
        }
      } finally {
        await done();
      }
    },
    kind.type === "redis" ? { ...sharedRedisTestOptions, sanitize: false } : { sanitize: false },
  );
}

test("metrics: the function label is bounded (maxFunctions, then the overflow value)", () => {
  const m = new CacheMetrics(undefined, { maxFunctions: 2 });
  for (const id of ["a.one", "a.two", "a.three", "a.four", "a.one"]) m.recordHit("ns", "l1", id);
  const fams = parsePrometheus(m.registry.exposition());
  const values = new Map(
    fams.get("cache_hits_total")!.samples.map((s) => [s.labels.function, s.value]),
  );
  assert.deepEqual(
    [...values.keys()].sort(),
    ["a.one", "a.two", FUNCTION_LABEL_OVERFLOW].sort(),
  );
  assert.equal(values.get("a.one"), 2, "an admitted identity stays itself");
  assert.equal(values.get(FUNCTION_LABEL_OVERFLOW), 2);
  assert.throws(
    () => new CacheMetrics(undefined, { maxFunctions: 0 }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "maxFunctions",
  );
});

test("metrics: the process-wide registry bounds function labels across many cached functions", () => {
  // L1-only synchronous functions (their misses are counted too).
  for (let i = 0; i < 120; i++) {
    const f = cache.production((n: number) => n + i, {
      name: `metrics.bound.f${i}`,
      namespace: "lblbound",
      ttl: 60,
      backend: null,
    });
    f(1);
    f(1);
  }
  const fams = parsePrometheus(getDefaultMetrics().registry.exposition());
  const distinct = new Set(
    fams.get("cache_misses_total")!.samples.map((s) => s.labels.function),
  );
  assert.ok(distinct.size <= 101, `at most 100 identities + overflow (${distinct.size})`);
  const mine = samples(fams, "cache_misses_total", { namespace: "lblbound", layer: "l1" });
  assert.equal(mine.reduce((n, s) => n + s.value, 0), 120, "every miss is counted");
  assert.ok(
    mine.some((s) => s.labels.function === FUNCTION_LABEL_OVERFLOW),
    "functions past the bound share the overflow value",
  );
  const hits = samples(fams, "cache_hits_total", { namespace: "lblbound", layer: "l1" });
  assert.equal(hits.reduce((n, s) => n + s.value, 0), 120);
});

test("metrics: a custom backend's families take its type as prefix", async () => {
  const metrics = new CacheMetrics();
  const inner = new MemoryBackend();
  const custom: Backend = {
    type: "My-Store.v2",
    capabilities: {},
    get: (k) => inner.get(k),
    set: (k, v, ttl) => inner.set(k, v, ttl),
    delete: (k) => inner.delete(k),
    exists: (k) => inner.exists(k),
    healthCheck: () => inner.healthCheck(),
  };
  const g = new GuardedBackend(custom, { metrics });
  await g.set("k", new Uint8Array([1]), null, { metricFunction: "app.f" });
  await g.get("k");
  const fams = parsePrometheus(metrics.registry.exposition());
  assert.equal(backendMetricPrefix("My-Store.v2"), "my_store_v2");
  assert.equal(
    value(fams, "my_store_v2_cache_operations_total", { backend: "My-Store.v2" }),
    2,
  );
  const lat = fams.get("my_store_v2_cache_operation_duration_seconds")!;
  const fnOf = (op: string) =>
    lat.samples.find((s) => s.name.endsWith("_count") && s.labels.operation === op)?.labels
      .function;
  assert.equal(fnOf("set"), "app.f");
  assert.equal(fnOf("get"), "", 'an operation no function made has function=""');
  await g.close();
});
