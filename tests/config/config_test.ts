import assert from "node:assert/strict";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import { CacheConfigError } from "../../errors.ts";
import { fileBackendOptionsFromEnv, readEnvConfig, redisUrlFromEnv } from "../../config/env.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { PRESETS } from "../../config/presets.ts";
import { revealSecretKey, SecretKey } from "../../config/secret_key.ts";
import { toHex } from "../../protocol/_hex.ts";
import type { PresetName } from "../../config/options.ts";

const ENV = readEnvConfig({});
const KEY = "cf959c069c186c236d41f83765d895c55a30d2e0a2cd2c5e79d3d06f649d3db7";

function configError(fn: () => unknown, option: string): CacheConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CacheConfigError, `expected CacheConfigError, got ${e}`);
    assert.equal(e.option, option);
    return e;
  }
  assert.fail(`expected a CacheConfigError for ${option}`);
}

test("config: defaults follow cachekit-py", () => {
  const c = resolveConfig({ name: "f" }, undefined, ENV);
  assert.equal(c.ttl, 3600);
  assert.equal(c.integrityChecking, true);
  assert.equal(c.safeMode, false);
  assert.equal(c.serializer, "std");
  assert.equal(c.backend, "default");
  assert.equal(c.refreshTtlOnGet, false);
  assert.equal(c.ttlRefreshThreshold, 0.5);
  // The protocol: a writer writes envelope protocol 1.1 by default, 1.0 on request.
  assert.equal(c.envelopeProtocol, "1.1");
  // L2 values: the protocol bytes by default; cachekit-py 0.3.0's JSON document on request.
  assert.equal(c.wire, "envelope");
  assert.equal(resolveConfig({ name: "f", wire: "document" }, undefined, ENV).wire, "document");
  assert.equal(
    resolveConfig({ name: "f", envelopeProtocol: "1.0" }, undefined, ENV).envelopeProtocol,
    "1.0",
  );
  assert.deepEqual(
    { ...c.circuitBreaker },
    {
      enabled: true,
      failureThreshold: 5,
      successThreshold: 3,
      recoveryTimeout: 30,
      halfOpenRequests: 3,
      excludedErrors: null,
    },
  );
  assert.deepEqual({ ...c.timeout }, {
    enabled: true,
    initial: 1,
    min: 0.1,
    max: 5,
    window: 1000,
    percentile: 95,
  });
  assert.deepEqual({ ...c.backpressure }, {
    enabled: true,
    maxConcurrent: 100,
    queueSize: 1000,
    waitTimeout: 0.1,
  });
  assert.equal(c.l1.maxBytes, 100 * 1024 * 1024);
  assert.equal(c.l1.swrThreshold, 0.5);
  assert.equal(c.l1.swrJitter, 0.1);
  assert.equal(c.l1.expiryBuffer, 1);
  assert.equal(c.l1.defaultTtl, 300);
  assert.equal(c.encryption.enabled, false);
  assert.equal(c.stampede.lease, 30);
  assert.equal(c.stampede.wait, 5);
});

// cachekit-py's intent table, restated from its documentation (not from presets.ts).
const TABLE: Record<
  PresetName,
  [boolean, boolean, boolean, boolean, boolean, boolean, boolean, boolean]
> = {
  //          integrity breaker timeout backpr  swr    l1inv  stats  prom
  minimal: [false, false, false, true, false, false, false, false],
  dev: [true, true, true, true, true, false, false, false],
  test: [false, false, false, false, false, false, false, false],
  production: [true, true, true, true, true, true, true, true],
  secure: [true, true, true, true, true, true, true, true],
};

for (const [preset, row] of Object.entries(TABLE) as [PresetName, typeof TABLE["dev"]][]) {
  test(`config: preset ${preset} matches cachekit-py's intent table`, () => {
    const extra = preset === "secure" ? { encryption: { masterKey: KEY } } : {};
    const c = resolveConfig({ name: "f", ...extra }, preset, ENV);
    assert.deepEqual(
      [
        c.integrityChecking,
        c.circuitBreaker.enabled,
        c.timeout.enabled,
        c.backpressure.enabled,
        c.l1.swrEnabled,
        c.l1.invalidation,
        c.monitoring.collectStats,
        c.monitoring.prometheus,
      ],
      row,
    );
    assert.equal(c.l1.enabled, true);
    assert.equal(c.encryption.enabled, preset === "secure");
    assert.equal(c.preset, preset);
  });
}

test("config: dev preset logs but collects no stats", () => {
  const c = resolveConfig({ name: "f" }, "dev", ENV);
  assert.equal(c.monitoring.structuredLogging, true);
  assert.equal(c.monitoring.collectStats, false);
});

test("config: explicit options override a preset, groups merge field by field", () => {
  const c = resolveConfig(
    {
      name: "f",
      integrityChecking: true,
      circuitBreaker: { failureThreshold: 9 },
      l1: { maxEntries: 7 },
    },
    "minimal",
    ENV,
  );
  assert.equal(c.integrityChecking, true);
  assert.equal(c.circuitBreaker.enabled, false, "preset's enabled:false kept");
  assert.equal(c.circuitBreaker.failureThreshold, 9);
  assert.equal(c.l1.maxEntries, 7);
  assert.equal(c.l1.swrEnabled, false);
  const d = resolveConfig({ name: "f", circuitBreaker: false, l1: false }, "production", ENV);
  assert.equal(d.circuitBreaker.enabled, false);
  assert.equal(d.l1.enabled, false);
});

test("config: cache.secure requires a master key and keeps integrity checking", () => {
  const e = configError(() => resolveConfig({ name: "f" }, "secure", ENV), "encryption.masterKey");
  assert.match(e.message, /CACHEKIT_MASTER_KEY/);
  configError(
    () =>
      resolveConfig(
        { name: "f", integrityChecking: false, encryption: { masterKey: KEY } },
        "secure",
        ENV,
      ),
    "integrityChecking",
  );
  configError(
    () =>
      resolveConfig({ name: "f", encryption: { enabled: false, masterKey: KEY } }, "secure", ENV),
    "encryption.enabled",
  );
  const c = resolveConfig({ name: "f" }, "secure", readEnvConfig({ CACHEKIT_MASTER_KEY: KEY }));
  assert.equal(c.encryption.masterKey?.byteLength, 32);
  assert.equal(revealSecretKey(c.encryption.masterKey!)[0], 0xcf);
});

test("config: master keys are validated and never echoed", () => {
  const weak = KEY.slice(0, 32); // 16 bytes: too short
  const e = configError(
    () => resolveConfig({ name: "f", encryption: { masterKey: weak } }, undefined, ENV),
    "encryption.masterKey",
  );
  assert.ok(!e.message.includes(weak), "the key is not in the message");
  configError(
    () => resolveConfig({ name: "f", encryption: { masterKey: "00".repeat(32) } }, undefined, ENV),
    "encryption.masterKey",
  );
  configError(
    () =>
      resolveConfig({ name: "f", encryption: { masterKey: new Uint8Array(32) } }, undefined, ENV),
    "encryption.masterKey",
  );
  const bad = "zz".repeat(32);
  const e2 = configError(() => readEnvConfig({ CACHEKIT_MASTER_KEY: bad }), "CACHEKIT_MASTER_KEY");
  assert.ok(!e2.message.includes(bad));
  assert.equal(e2.value, "<redacted>");
  const prev = resolveConfig(
    {
      name: "f",
      encryption: {
        masterKey: KEY,
        previousKeys: ["96c165b745a9607a79e432573bdffdc0ea6c89901eac44e621b861d9953cfb8e"],
      },
    },
    undefined,
    ENV,
  );
  assert.equal(revealSecretKey(prev.encryption.previousKeys[0])[0], 0x96);
});

/** Every way a config object gets dumped: deep inspection on each runtime, JSON, descriptors, clones. */
function dumps(value: unknown): string[] {
  // deno-lint-ignore no-explicit-any
  const deno = (globalThis as any).Deno;
  const out = [
    inspect(value),
    inspect(value, { showHidden: true, depth: Infinity, customInspect: false }),
    inspect(value, { showHidden: true, depth: Infinity }),
    JSON.stringify(value),
    inspect(Object.getOwnPropertyDescriptors(value), { showHidden: true, depth: Infinity }),
    inspect(structuredClone(value), { showHidden: true, depth: Infinity }),
    inspect({ ...(value as object) }, { showHidden: true, depth: Infinity }),
    String(Object.values(value as object)),
  ];
  if (deno?.inspect) {
    out.push(deno.inspect(value, { showHidden: true, depth: Infinity }));
    out.push(deno.inspect(value, { showHidden: true, depth: Infinity, customInspect: false }));
  }
  return out;
}

test("env: CACHEKIT_MASTER_KEY is a SecretKey, shown by no inspection, JSON or clone", () => {
  const env = readEnvConfig({ CACHEKIT_MASTER_KEY: KEY });
  assert.ok(env.masterKey instanceof SecretKey);
  assert.equal(toHex(revealSecretKey(env.masterKey)), KEY);
  const upper = KEY.toUpperCase();
  for (const [i, d] of dumps(env).entries()) {
    assert.ok(!d.toLowerCase().includes(KEY.slice(0, 16)), `dump ${i} shows the key: ${d}`);
    assert.ok(!d.includes(upper.slice(0, 16)));
  }
  assert.equal(readEnvConfig({}).masterKey, null);
  // The key resolves through the same validation as an explicit one.
  const c = resolveConfig({ name: "f" }, "secure", env);
  assert.equal(revealSecretKey(c.encryption.masterKey!)[0], 0xcf);
});

test("env: a Redis URL's password is shown by no inspection; redisUrlFromEnv gives the URL", async () => {
  const url = "redis://app:s3cret-pw@127.0.0.1:6379/0";
  const env = readEnvConfig({ CACHEKIT_REDIS_URL: url });
  assert.equal(env.redisUrl, "redis://app:<redacted>@127.0.0.1:6379/0");
  assert.equal(redisUrlFromEnv(env), url);
  assert.equal(redisUrlFromEnv({ ...env, defaultTtl: 90 }), url, "a copy still connects");
  for (const [i, d] of dumps(env).entries()) {
    assert.ok(!d.includes("s3cret-pw"), `dump ${i} shows the password: ${d}`);
  }
  // envConfig() too (the cached process settings).
  const { envConfig, resetEnvConfig } = await import("../../config/env.ts");
  resetEnvConfig(env);
  try {
    for (const d of dumps(envConfig())) assert.ok(!d.includes("s3cret-pw"));
    assert.equal(redisUrlFromEnv(), url);
  } finally {
    resetEnvConfig();
  }
});

test("config: a key under a misspelt or misplaced option is not echoed either", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ encryption: { master_key: KEY } }, "encryption.master_key"],
    [{ encryption: { masterkey: KEY } }, "encryption.masterkey"],
    [{ encryption: { previous_keys: [KEY] } }, "encryption.previous_keys"],
    [{ masterKey: KEY }, "masterKey"],
    [{ encryption: KEY }, "encryption"],
  ];
  for (const [options, option] of cases) {
    const e = configError(() => resolveConfig({ name: "f", ...options }, undefined, ENV), option);
    assert.ok(!e.message.includes(KEY.slice(0, 16)), `${option}: ${e.message}`);
    assert.equal(e.value, "<redacted>");
  }
  // Other typos still show their value.
  assert.equal(
    configError(() => resolveConfig({ name: "f", ...{ tll: 60 } }, undefined, ENV), "tll").value,
    60,
  );
});

const BAD: [string, Record<string, unknown>, string][] = [
  ["negative ttl", { ttl: -1 }, "ttl"],
  ["zero ttl", { ttl: 0 }, "ttl"],
  ["NaN ttl", { ttl: NaN }, "ttl"],
  ["string ttl", { ttl: "60" }, "ttl"],
  ["threshold above 1", { ttlRefreshThreshold: 1.5 }, "ttlRefreshThreshold"],
  ["threshold below 0", { ttlRefreshThreshold: -0.1 }, "ttlRefreshThreshold"],
  ["unknown option (typo)", { tll: 60 }, "tll"],
  ["unknown nested option", { l1: { maxbytes: 5 } }, "l1.maxbytes"],
  ["bad serializer", { serializer: "pickle" }, "serializer"],
  ["bad safeMode", { safeMode: "yes" }, "safeMode"],
  ["bad key fn", { key: "k" }, "key"],
  ["bad tags", { tags: ["a"] }, "tags"],
  ["empty name", { name: "" }, "name"],
  ["name with spaces", { name: "a b" }, "name"],
  ["empty namespace", { namespace: "" }, "namespace"],
  ["namespace holding :func:", { namespace: "p:func:q" }, "namespace"],
  ["namespace ending in :func", { namespace: "p:func" }, "namespace"],
  ["name holding :args:", { name: "f:args:x" }, "name"],
  ["name ending in :args", { name: "f:args" }, "name"],
  ["bad backend", { backend: {} }, "backend"],
  ["l1 maxBytes 0", { l1: { maxBytes: 0 } }, "l1.maxBytes"],
  ["l1 maxEntries fraction", { l1: { maxEntries: 1.5 } }, "l1.maxEntries"],
  ["l1 swrThreshold 1", { l1: { swrThreshold: 1 } }, "l1.swrThreshold"],
  [
    "breaker threshold 0",
    { circuitBreaker: { failureThreshold: 0 } },
    "circuitBreaker.failureThreshold",
  ],
  [
    "breaker recovery negative",
    { circuitBreaker: { recoveryTimeout: -1 } },
    "circuitBreaker.recoveryTimeout",
  ],
  ["breaker group not object", { circuitBreaker: 5 }, "circuitBreaker"],
  ["timeout min > max", { timeout: { min: 2, max: 1, initial: 1.5 } }, "timeout.min"],
  ["timeout initial outside", { timeout: { initial: 10 } }, "timeout.initial"],
  ["timeout percentile", { timeout: { percentile: 101 } }, "timeout.percentile"],
  ["backpressure negative queue", { backpressure: { queueSize: -1 } }, "backpressure.queueSize"],
  ["monitoring non-boolean", { monitoring: { prometheus: 1 } }, "monitoring.prometheus"],
  ["staleTtl negative", { staleTtl: -5 }, "staleTtl"],
  ["softTimeout without staleTtl", { softTimeout: 1 }, "softTimeout"],
  ["envelope protocol", { envelopeProtocol: "2.0" }, "envelopeProtocol"],
  ["wire", { wire: "json" }, "wire"],
  ["wire null", { wire: null }, "wire"],
  [
    "storeReferences beside another copy",
    { l1: { storeReferences: true, copy: "clone" } },
    "l1.storeReferences",
  ],
  ["copy unknown", { l1: { copy: "deep" } }, "l1.copy"],
  ["L1 off and no backend", { backend: null, l1: false }, "l1.enabled"],
  ["interop without namespace", { interop: true, name: "op" }, "interop.namespace"],
  ["interop bad operation", { interop: true, namespace: "ns", name: "Op!" }, "interop.operation"],
  ["interop with key fn", { interop: true, namespace: "ns", name: "op", key: () => "x" }, "key"],
  ["stampede lease 0", { stampede: { lease: 0 } }, "stampede.lease"],
];
for (const [what, opts, option] of BAD) {
  test(`config error: ${what} → ${option}`, () => {
    const e = configError(
      () => resolveConfig({ name: "f", ...opts } as never, undefined, ENV),
      option,
    );
    assert.match(e.message, /Expected /);
    assert.equal(e.code, "CACHE_CONFIG");
  });
}

test("config: interop takes namespace and name as segments", () => {
  const c = resolveConfig({ name: "get-user", namespace: "users", interop: true }, undefined, ENV);
  assert.deepEqual(c.interop, { namespace: "users", operation: "get-user" });
  const d = resolveConfig(
    { name: "f", interop: { namespace: "a.b", operation: "c_d" } },
    undefined,
    ENV,
  );
  assert.deepEqual(d.interop, { namespace: "a.b", operation: "c_d" });
});

test("env: every variable parsed, defaults from cachekit-py", () => {
  const d = readEnvConfig({});
  assert.equal(d.defaultTtl, 3600);
  assert.equal(d.ttlMin, 60);
  assert.equal(d.ttlMax, 86400);
  assert.equal(d.maxKeySize, 1024);
  assert.equal(d.maxValueSize, 100 * 1024 * 1024);
  assert.equal(d.maxChunkSizeMb, 50);
  assert.equal(d.compressionLevel, 6);
  assert.equal(d.maxRetries, 3);
  assert.equal(d.retryDelayMs, 100);
  assert.equal(d.earlyRefreshRatio, 0.9);
  assert.equal(d.redisUrl, null);
  const o = fileBackendOptionsFromEnv(d);
  assert.deepEqual(o, {
    maxSizeBytes: 1024 * 1024 * 1024,
    maxValueBytes: 100 * 1024 * 1024,
    maxEntries: 10000,
    lockTimeoutMs: 5000,
    fileMode: 0o600,
    dirMode: 0o700,
  });
  const e = readEnvConfig({
    CACHEKIT_DEFAULT_TTL: "120",
    CACHEKIT_REDIS_URL: "redis://a:6379",
    REDIS_URL: "redis://b:6379",
    CACHEKIT_FILE_CACHE_DIR: "/tmp/x",
    CACHEKIT_FILE_PERMISSIONS: "0640",
    CACHEKIT_ENABLE_PROMETHEUS_METRICS: "false",
    CACHEKIT_DEV_MODE: "yes",
  });
  assert.equal(e.defaultTtl, 120);
  assert.equal(redisUrlFromEnv(e), "redis://a:6379", "CACHEKIT_REDIS_URL wins over REDIS_URL");
  assert.equal(
    redisUrlFromEnv(readEnvConfig({ REDIS_URL: "rediss://b:6380/2" })),
    "rediss://b:6380/2",
  );
  assert.equal(fileBackendOptionsFromEnv(e).directory, "/tmp/x");
  assert.equal(fileBackendOptionsFromEnv(e).fileMode, 0o640);
  assert.equal(e.devMode, true);
  assert.equal(resolveConfig({ name: "f" }, undefined, e).ttl, 120, "env default TTL used");
  assert.equal(resolveConfig({ name: "f", ttl: 5 }, undefined, e).ttl, 5, "explicit option wins");
  assert.equal(resolveConfig({ name: "f" }, undefined, e).monitoring.prometheus, false);
});

const BAD_ENV: [Record<string, string>, string][] = [
  [{ CACHEKIT_DEFAULT_TTL: "abc" }, "CACHEKIT_DEFAULT_TTL"],
  [{ CACHEKIT_DEFAULT_TTL: "10" }, "CACHEKIT_DEFAULT_TTL"], // below TTL_MIN 60
  [{ CACHEKIT_TTL_MAX: "30" }, "CACHEKIT_TTL_MAX"],
  [{ CACHEKIT_MAX_RETRIES: "-1" }, "CACHEKIT_MAX_RETRIES"],
  [{ CACHEKIT_ENABLE_COMPRESSION: "maybe" }, "CACHEKIT_ENABLE_COMPRESSION"],
  [{ CACHEKIT_COMPRESSION_LEVEL: "13" }, "CACHEKIT_COMPRESSION_LEVEL"],
  [{ CACHEKIT_EARLY_REFRESH_RATIO: "1.5" }, "CACHEKIT_EARLY_REFRESH_RATIO"],
  [{ CACHEKIT_FILE_PERMISSIONS: "rw-------" }, "CACHEKIT_FILE_PERMISSIONS"],
  [{ CACHEKIT_FILE_MAX_ENTRY_COUNT: "0" }, "CACHEKIT_FILE_MAX_ENTRY_COUNT"],
  [{ CACHEKIT_REDIS_URL: "http://user:secret@host" }, "CACHEKIT_REDIS_URL"],
  [{ REDIS_URL: "localhost:6379" }, "REDIS_URL"],
  [{ CACHEKIT_DEPLOYMENT_UUID: "not a uuid!" }, "CACHEKIT_DEPLOYMENT_UUID"],
];
for (const [vars, option] of BAD_ENV) {
  test(`env error: ${option}=${Object.values(vars)[0]}`, () => {
    const e = configError(() => readEnvConfig(vars), option);
    assert.ok(!e.message.includes("secret"), "credentials in URLs are not echoed");
  });
}

test("config: monitoring.tracing is a boolean, off by default, on in the production presets", () => {
  assert.equal(resolveConfig({ name: "f" }, undefined, ENV).monitoring.tracing, false);
  assert.equal(resolveConfig({ name: "f" }, "production", ENV).monitoring.tracing, true);
  assert.equal(PRESETS.secure.monitoring?.tracing, true);
  assert.equal(resolveConfig({ name: "f" }, "dev", ENV).monitoring.tracing, false);
  assert.equal(
    resolveConfig({ name: "f", monitoring: { tracing: true } }, undefined, ENV).monitoring.tracing,
    true,
  );
  assert.throws(
    () => resolveConfig({ name: "f", monitoring: { tracing: "yes" } } as never, undefined, ENV),
    (e: unknown) => e instanceof CacheConfigError && /monitoring\.tracing/.test(e.message),
  );
});
