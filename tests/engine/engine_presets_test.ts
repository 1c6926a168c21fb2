// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Presets: each one's settings (cachekit-py's intent table, as literals), their effect on what is
// written, the test preset's private MemoryBackend, and secure (encrypted L2 entries).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import {
  type Backend,
  cache,
  CacheConfigError,
  MemoryBackend,
  type PresetName,
  withTenant,
} from "../../mod.ts";
import { metricsHandler } from "../../health/handlers.ts";
import { getDefaultMetrics } from "../../health/mod.ts";

// cachekit-py's table: integrity, breaker, adaptive timeout, backpressure, L1, SWR, L1
// invalidation, stats, structured logs, Prometheus, encryption.
const TABLE: Record<PresetName, boolean[]> = {
  minimal: [false, false, false, true, true, false, false, false, false, false, false],
  dev: [true, true, true, true, true, true, false, false, true, false, false],
  test: [false, false, false, false, true, false, false, false, false, false, false],
  production: [true, true, true, true, true, true, true, true, true, true, false],
  secure: [true, true, true, true, true, true, true, true, true, true, true],
};

const KEY = Array.from(
  crypto.getRandomValues(new Uint8Array(32)),
  (b) => b.toString(16).padStart(2, "0"),
)
  .join("");

for (const preset of Object.keys(TABLE) as PresetName[]) {
  test(`preset ${preset}: settings follow cachekit-py's table`, () => {
    const extra = preset === "secure" ? { encryption: { masterKey: KEY } } : {};
    const f = cache[preset]((x: number) => x, {
      name: `presets.table.${preset}`,
      backend: null,
      ...extra,
    });
    const c = f.config;
    assert.equal(c.preset, preset);
    assert.deepEqual([
      c.integrityChecking,
      c.circuitBreaker.enabled,
      c.timeout.enabled,
      c.backpressure.enabled,
      c.l1.enabled,
      c.l1.swrEnabled,
      c.l1.invalidation,
      c.monitoring.collectStats,
      c.monitoring.structuredLogging,
      c.monitoring.prometheus,
      c.encryption.enabled,
    ], TABLE[preset]);
  });
}

test("explicit options override a preset; secure refuses to weaken", () => {
  const f = cache.minimal((x: number) => x, {
    name: "presets.override",
    backend: null,
    integrityChecking: true,
    l1: { swrEnabled: true },
  });
  assert.equal(f.config.integrityChecking, true);
  assert.equal(f.config.l1.swrEnabled, true);
  assert.throws(
    () =>
      cache.secure((x: number) => x, {
        name: "presets.secure.weak",
        encryption: { masterKey: KEY, enabled: false },
      }),
    CacheConfigError,
  );
});

const docOf = async (b: Backend, k: string) =>
  JSON.parse(new TextDecoder().decode((await b.get(k))!));

test("minimal writes plain msgpack in the document; production writes the envelope", async () => {
  const m = recording(new MemoryBackend());
  const fm = cache.minimal(async (x: number) => ({ x }), {
    name: "presets.wire.minimal",
    wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
    ttl: 60,
    backend: m.backend,
  });
  await fm(1);
  const dm = await docOf(m.inner, m.keys[0]);
  assert.equal(dm.metadata.compressed, false);
  assert.match(m.keys[0], /:0s$/);
  assert.equal(fm.cacheInfo().hits + fm.cacheInfo().misses, 0, "minimal collects no stats");

  const p = recording(new MemoryBackend());
  const fp = cache.production(async (x: number) => ({ x }), {
    name: "presets.wire.production",
    wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
    ttl: 60,
    backend: p.backend,
  });
  await fp(1);
  const dp = await docOf(p.inner, p.keys[0]);
  assert.equal(dp.metadata.compressed, true);
  assert.match(p.keys[0], /:1s$/);
  assert.equal(fp.cacheInfo().misses, 1);
}, { sanitize: false }); // production's guard keeps a deadline timer

test("test preset: each wrapper gets its own MemoryBackend", async () => {
  let n = 0;
  const fn = async (x: number) => ({ x, n: ++n });
  const a = cache.test(fn, { name: "presets.test.private" });
  const b = cache.test(fn, { name: "presets.test.private" });
  assert.equal((await a(1)).n, 1);
  assert.equal((await b(1)).n, 2, "b does not see a's L2");
  assert.equal((await a(1)).n, 1);
  assert.equal((await b.checkHealth()).backend, "memory");
});

test("secure: L2 entries are encrypted documents, readable by a fresh instance", async () => {
  const r = recording(new MemoryBackend());
  let n = 0;
  const work = async (id: number) => ({ id, secret: "plaintext-marker", n: ++n });
  const mk = () =>
    cache.secure(work, {
      name: "presets.secure",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      ttl: 60,
      backend: r.backend,
      encryption: { masterKey: KEY },
    });
  const f = mk();
  assert.equal((await f(1)).n, 1);
  const raw = (await r.inner.get(r.keys[0]))!;
  const text = new TextDecoder().decode(raw);
  assert.ok(!text.includes("plaintext-marker"));
  const doc = JSON.parse(text);
  assert.equal(doc.metadata.encrypted, true);
  assert.equal(doc.metadata.encryption_algorithm, "AES-256-GCM");
  assert.match(doc.metadata.key_fingerprint, /^[0-9a-f]{32}$/);
  assert.ok(!atob(doc.data).includes("plaintext-marker"));
  const g = mk();
  assert.deepEqual(await g(1), { id: 1, secret: "plaintext-marker", n: 1 });
  assert.equal(await g(1).then((v) => v.n), 1, "L1 hit (decrypted from sealed bytes)");
  assert.equal(g.cacheInfo().l2Hits, 1);
  assert.equal(g.cacheInfo().l1Hits, 1);
  // Another master key cannot read it: a miss, recomputed.
  const other = cache.secure(work, {
    name: "presets.secure",
    wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
    ttl: 60,
    backend: r.backend,
    encryption: { masterKey: KEY.split("").reverse().join("") },
  });
  assert.equal((await other(1)).n, 2);
}, { sanitize: false });

test(
  "secure multi-tenant: a call without a tenant is an error; tenants never share entries",
  async () => {
    const r = recording(new MemoryBackend());
    let n = 0;
    const f = cache.secure(async (id: number) => ({ id, n: ++n }), {
      name: "presets.secure.mt",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      ttl: 60,
      backend: r.backend,
      encryption: { masterKey: KEY, singleTenant: false, tenantKeys: "plain" },
    });
    await assert.rejects(f(1), (e: unknown) => (e as { code?: string }).code === "CACHE_TENANT");
    assert.equal(n, 0);
    assert.equal((await withTenant("acme", () => f(1))).n, 1);
    assert.equal((await withTenant("globex", () => f(1))).n, 2);
    assert.equal((await withTenant("acme", () => f(1))).n, 1);
    const docs = await Promise.all(r.keys.map((k) => docOf(r.inner, k)));
    assert.deepEqual(docs.map((d) => d.metadata.tenant_id).sort(), ["acme", "globex"]);
    // Ciphertext moved to the other tenant's key fails authentication: a miss, recomputed.
    const [ka, kg] = [
      r.keys.find((k) => k.includes("acme"))!,
      r.keys.find((k) => k.includes("globex"))!,
    ];
    const moved = await docOf(r.inner, ka);
    moved.metadata.tenant_id = "globex"; // even relabelled, the acme ciphertext fails for globex
    await r.inner.set(kg, new TextEncoder().encode(JSON.stringify(moved)), 60);
    const g = cache.secure(async (id: number) => ({ id, n: ++n }), {
      name: "presets.secure.mt",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      ttl: 60,
      backend: r.backend,
      encryption: { masterKey: KEY, singleTenant: false, tenantKeys: "plain" },
    });
    assert.equal((await withTenant("globex", () => g(1))).n, 3);
  },
  { sanitize: false },
);

test(
  "production: hits, misses, L2 operations and L1 size reach the Prometheus exposition",
  async () => {
    const f = cache.production(async (id: number) => ({ id }), {
      name: "presets.metrics",
      namespace: "metricsns",
      ttl: 60,
      backend: new MemoryBackend(),
    });
    await f(1);
    await f(1);
    await f(1);
    const text = await (await metricsHandler()(new Request("http://x/metrics"))).text();
    const value = (name: string, labels: string) => {
      const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(" ") + 1));
    };
    // The label the process-wide registry gives this identity (the overflow value when earlier
    // tests sharing the process, on Bun, admitted 100 others); the namespace keeps counts apart.
    const fn = `namespace="metricsns",function="${
      getDefaultMetrics().functionLabel("presets.metrics")
    }"`;
    assert.equal(value("cache_hits_total", `${fn},layer="l1"`), 2);
    assert.equal(value("cache_misses_total", `${fn},layer="l2"`), 1);
    assert.equal(
      value("cache_operations_total", 'operation="set",namespace="metricsns",success="true"'),
      1,
    );
    assert.equal(value("cache_l1_entries", 'namespace="metricsns"'), 1);
  },
  { sanitize: false },
);
