/**
 * Options accepted by `cache()` and its presets, their defaults (those of cachekit-py 0.3.0, the
 * Python SDK, in camelCase), and the fully resolved configuration the engine runs on.
 *
 * Times are in **seconds** (as in cachekit-py and the Redis TTL semantics), sizes in bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { CacheOptions } from "@cachekit/core";
 *
 * const options: CacheOptions<[number]> = {
 *   name: "users.get",
 *   ttl: 60,
 *   namespace: "users",
 *   tags: (id) => [`user:${id}`],
 *   l1: { maxBytes: 10 * 1024 * 1024 },
 * };
 * assert.equal(options.ttl, 60);
 * ```
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import type { Serializer } from "../serializers/types.ts";
import type { SecretKey } from "./secret_key.ts";

/**
 * A call as cachekit-py 0.3.0 hashes it: `f(*args, **kwargs)` (see `CacheOptions.pythonArgs`).
 */
export interface PythonCall {
  /** The positional arguments. */
  args: unknown[];
  /** The keyword arguments by their Python names (default `{}`). */
  kwargs?: Record<string, unknown>;
}

/** In-process L1 cache options. */
export interface L1Options {
  /** Keep an in-process L1 in front of L2. Default `true`. */
  enabled?: boolean;
  /** Upper bound of the bytes L1 holds (estimated heap sizes; see `engine/l1.ts`). Default 100 MiB. */
  maxBytes?: number;
  /** Upper bound of the entries L1 holds. Default 10,000. */
  maxEntries?: number;
  /**
   * What an L1 hit hands out of an object value (primitives are immutable and always shared):
   * - `"clone"` (default): L1 keeps the value and every hit gets its own deep copy (a structural
   *   copy specialised to the serializer's values: plain objects, arrays, `Date`, `Uint8Array`,
   *   `Map`, bigint, the time types). A caller mutating what it got never changes what the next
   *   caller gets. A value outside that space (a class instance of a custom serializer) is kept
   *   serialized and deserialized on every hit instead.
   * - `"freeze"`: a deep-frozen copy is made once when stored, and the miss and every hit return
   *   that same frozen value (mutating it throws in strict code). `Object.freeze` cannot stop
   *   `setTime` or `Map.prototype.set`: a `Date` or `Map` in the value becomes a read-only subclass
   *   (`instanceof Date`/`Map` holds; its mutators throw). A `Uint8Array` cannot be frozen: a value
   *   holding one is copied per hit, as with `"clone"`.
   * - `"none"`: the miss and every hit return the same object; the caller promises not to mutate
   *   it (a mutation would change what every later hit returns). Without an L2 (`backend: null`)
   *   nothing is serialized either: the function's very value is kept, whatever its type.
   *
   * Allowed with any backend. An encrypted L1 (`cache.secure`) keeps ciphertext whatever the mode.
   */
  copy?: "clone" | "freeze" | "none";
  /**
   * @deprecated Use `copy: "none"` (what this now means, with any backend).
   */
  storeReferences?: boolean;
  /** Stale-while-revalidate: a hit past `swrThreshold` of the TTL refreshes in the background. */
  swrEnabled?: boolean;
  /** Fraction of the TTL after which a hit triggers a background refresh (0..1). Default 0.5. */
  swrThreshold?: number;
  /** Random jitter applied to `swrThreshold` (0..1, ± fraction). Default 0.1. */
  swrJitter?: number;
  /** Evict L1 entries in other instances on invalidate/clear/write (needs a bus, e.g. Redis). */
  invalidation?: boolean;
  /** L1 entries expire this many seconds before the L2 TTL. Default 1. */
  expiryBuffer?: number;
  /** L1 TTL when no TTL is known. Default 300. */
  defaultTtl?: number;
}

/** Circuit breaker options (per backend). */
export interface CircuitBreakerOptions {
  /** Default `true` (presets may turn it off). */
  enabled?: boolean;
  /** Failures that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Successes in half-open that close it. Default 3. */
  successThreshold?: number;
  /** Seconds the circuit stays open before half-open probes. Default 30. */
  recoveryTimeout?: number;
  /** Probe requests allowed while half-open. Default 3. */
  halfOpenRequests?: number;
  /** Errors that never count as failures. */
  excludedErrors?: (error: unknown) => boolean;
}

/** Adaptive per-operation timeout options. */
export interface TimeoutOptions {
  /** Default `true` (presets may turn it off). */
  enabled?: boolean;
  /**
   * Timeout before enough samples exist, seconds, for a remote backend. Default 1.0. A backend on
   * this host (`Backend.local`: memory, file, Redis on a loopback address) starts at `min` instead.
   */
  initial?: number;
  /** Lower bound, seconds. Default 0.1. */
  min?: number;
  /** Upper bound, seconds. Default 5.0. */
  max?: number;
  /** Number of recent durations considered. Default 1000. */
  window?: number;
  /** Percentile of recent durations the timeout follows (0..100). Default 95. */
  percentile?: number;
}

/** Backpressure options: a bound on concurrent L2 operations. */
export interface BackpressureOptions {
  /** Default `true`. */
  enabled?: boolean;
  /** Concurrent L2 operations. Default 100. */
  maxConcurrent?: number;
  /** Waiting operations beyond that; further ones skip L2 at once. Default 1000. */
  queueSize?: number;
  /** Seconds a queued operation waits before skipping L2. Default 0.1. */
  waitTimeout?: number;
}

/** Monitoring options. */
export interface MonitoringOptions {
  /** Count hits/misses (`cacheInfo()`). Default `true`. */
  collectStats?: boolean;
  /** Structured logs through LogTape (silent unless the application configures LogTape). Default `true`. */
  structuredLogging?: boolean;
  /** Prometheus metrics. Default `true` (env `CACHEKIT_ENABLE_PROMETHEUS_METRICS`). */
  prometheus?: boolean;
  /**
   * OpenTelemetry spans: a `cachekit.call` span per call (children for the L2 read, the lock wait
   * and the function), through `@opentelemetry/api` (a no-op until the application registers an
   * SDK). Default `false` (`cache.production` and `cache.secure`: `true`).
   */
  tracing?: boolean;
}

/** Encryption options (AES-256-GCM, per-tenant HKDF keys). */
export interface EncryptionOptions<A extends unknown[] = unknown[]> {
  /** Encrypt every value written to L2. Default `false` (`cache.secure`: `true`). */
  enabled?: boolean;
  /** Master key, hex (≥ 32 bytes) or bytes. Default: `CACHEKIT_MASTER_KEY`. Never logged. */
  masterKey?: string | Uint8Array;
  /** Previous master keys still accepted for reading (key rotation). */
  previousKeys?: ReadonlyArray<string | Uint8Array>;
  /**
   * The tenant: a fixed id, or a function of the call's arguments. Without it the tenant comes from
   * `withTenant()` context, and in multi-tenant mode a call without a tenant is an error. Not with
   * `interop` (its keys carry no tenant; a call under `withTenant` is a `CacheKeyError` there).
   */
  tenant?: string | ((...args: A) => string);
  /** One tenant for everything (`"default"`). Default `false` when `tenant` is a function. */
  singleTenant?: boolean;
  /**
   * Deployment id (env `CACHEKIT_DEPLOYMENT_UUID`): validated and kept in the resolved config
   * (cachekit-py's setting); not used in keys or key derivation.
   */
  deploymentUuid?: string;
  /**
   * How the tenant appears in backend keys (`t:{tenant}:…`). `"hashed"` (default when encrypting):
   * `t:@{32 hex}:`, a keyed hash (HMAC-SHA256) of the tenant id under a key derived from the master
   * key, so no tenant id is ever written to a backend in plaintext (nor in the entry's metadata).
   * `"plain"`: the percent-encoded id, exactly as cachekit-py 0.3.0 writes it, so that Python
   * reads and writes the same entries; the tenant id is then visible in keys and metadata.
   * Without encryption tenants are always `"plain"` (there is no key to hash with).
   */
  tenantKeys?: "hashed" | "plain";
}

/** Cross-process stampede protection (a distributed lock around the computation on a miss). */
export interface StampedeOptions {
  /** Default `true` when the backend advertises locking. */
  enabled?: boolean;
  /** Lock lease, seconds: a crashed owner blocks others at most this long. Default 30. */
  lease?: number;
  /** Seconds a waiter waits before computing itself. Default 5. */
  wait?: number;
}

/**
 * `A` where it must not be inferred from (the extra arguments of the result callbacks, which may
 * declare fewer than `A` has): an indexed access, which inference does not look into and which is
 * `A` itself once `A` is known. (`NoInfer<A>` blocks inference too, but then a callback declaring
 * fewer parameters no longer fits; a conditional type does not block it.)
 */
export type NoInferArgs<A extends unknown[]> = [A][A extends unknown ? 0 : never];

/**
 * Options of `cache(fn, options)` and the presets. `A` is the wrapped function's parameter list, so
 * `key`, `tags` and `encryption.tenant` see typed arguments; `R` is its result (awaited), which
 * `ttl` (as a function), `cacheIf` and `resultTags` see.
 */
export interface CacheOptions<A extends unknown[] = unknown[], R = unknown> {
  /**
   * Function identity in keys (`func:` segment). Overrides the derived default,
   * `{module}.{function}` with the caller's path relative to its package root (see
   * `engine/identity.ts`). Pin it (`{ name: "users.get_user" }`) when entries must be shared across builds or bundles
   * (`src/` run as TypeScript vs compiled `dist/`), with a Python function (its `module.qualname`),
   * or must survive moving the code. No white space, no `:args:`, not ending in `:args` (it could
   * share keys with another function's).
   */
  name?: string;
  /**
   * Time to live in seconds. Default (unset): env `CACHEKIT_DEFAULT_TTL`, 3600. `null`: no expiry
   * in L2 (L1 entries then live `l1.defaultTtl`).
   *
   * Or a function of the result (awaited) and the arguments returning seconds, or `null` for no
   * expiry (adaptive caching: e.g. a short TTL for an empty answer); `0` answers that result
   * without caching it. The TTL it returns applies to the entry in L1 and L2 and to its fail-safe
   * freshness (`fresh_until`, which such an entry always records); the default above applies where
   * no result is at hand. `setTtl` of the factory context (`cacheContext()`) overrides it.
   */
  ttl?: number | null | ((result: R, ...args: NoInferArgs<A>) => number | null);
  /**
   * Whether to cache a result: `false` answers it without caching (the common "do not cache
   * empty answers"). Called with the result (awaited) and the arguments. Default: cache all.
   */
  cacheIf?: (result: R, ...args: NoInferArgs<A>) => boolean;
  /**
   * Key namespace (`ns:{namespace}:`); also the unit of `clearNamespace`. No white space, no
   * `:func:`, not ending in `:func` (it could share keys with another namespace's).
   */
  namespace?: string;
  /**
   * `"std"` (MessagePack, default), `"json"` (this library's JSON, in the LZ4 + xxHash3 envelope),
   * `"orjson"` (cachekit-py 0.3.0's `serializer="orjson"` entries, shared with Python), `"arrow"`
   * (Apache Arrow tables, cachekit-py's `serializer="arrow"`; needs `apache-arrow`, loaded on
   * first use), `"auto"` (cachekit-py's `serializer="auto"`: plain values, and NumPy arrays and
   * Arrow tables read), or an object implementing `Serializer`.
   */
  serializer?: "std" | "json" | "orjson" | "arrow" | "auto" | Serializer;
  /**
   * When true, cache failures are swallowed and the function answers: arguments without a cache
   * key (unsupported types, cycles, nesting beyond 256 levels) and unserializable results run
   * uncached. Default `false`.
   */
  safeMode?: boolean;
  /** Wrap values in the ByteStorage envelope (LZ4 + xxHash3-64). Default `true`. */
  integrityChecking?: boolean;
  /**
   * Custom key function: returns the `args` part of the key (`%`, spaces and line breaks
   * percent-encoded, so `"a b"` and `"a_b"` stay two entries). Not allowed with `interop`.
   */
  key?: (...args: A) => string;
  /**
   * The Python call a call stands for: the positional arguments and keyword arguments that
   * cachekit-py 0.3.0 hashes as `[[args...], {kwargs}]` for `f(*args, **kwargs)`. Without it a
   * call's arguments are all positional and `kwargs` is `{}`. cachekit-py does not bind arguments
   * to the signature: `get_user(42, include_deleted=True)` and `get_user(42, True)` are two keys,
   * so return the spelling the Python callers use. A keyword argument whose value is `undefined`
   * is left out (as a Python call that does not pass it), and so is `_bypass_cache`, which 0.3.0
   * leaves out of its keys. {@linkcode pythonKwargs} builds the common case. Not allowed with
   * `key` or `interop`.
   */
  pythonArgs?: (...args: A) => PythonCall;
  /**
   * Protocol interop mode: `{namespace}:{operation}:{hash}` keys and plain MessagePack values, the
   * way SDKs in other languages share entries. `true` takes `namespace` and `name` as the segments.
   */
  interop?: boolean | { namespace?: string; operation?: string };
  /** Refresh the L2 TTL on a hit when less than `ttlRefreshThreshold` of it remains. Default `false`. */
  refreshTtlOnGet?: boolean;
  /** Fraction of the TTL (0..1). Default 0.5. */
  ttlRefreshThreshold?: number;
  /**
   * L2 backend: a `Backend`, or `null` for L1 only. Default: Redis when `CACHEKIT_REDIS_URL` /
   * `REDIS_URL` is set, else a `FileBackend` in the OS cache directory.
   */
  backend?: Backend | null;
  /** Tags of an entry (for `invalidateTags`), computed from the arguments. */
  tags?: (...args: A) => readonly string[];
  /**
   * More tags of an entry, computed from the result (awaited) and the arguments: the entry carries
   * these, those of `tags` and those of the factory context's `setTags`.
   */
  resultTags?: (result: R, ...args: NoInferArgs<A>) => readonly string[];
  /** Keep expired values this many extra seconds and serve them when the function fails (fail-safe). */
  staleTtl?: number;
  /** With `staleTtl`: seconds after which a slow refresh continues in the background and stale is served. */
  softTimeout?: number;
  /**
   * Eager refresh (FusionCache's `EagerRefreshThreshold`): a hit after this fraction of the TTL
   * (0 < x < 1, e.g. `0.9`) returns the cached value at once and refreshes the entry in the
   * background, before it expires, so a hot key never misses. `true` takes
   * `CACHEKIT_EARLY_REFRESH_RATIO` (default 0.9). Default: off.
   *
   * The point is measured from when this process stored or read the value (an L2 entry's age is
   * not known on a hit), on the L2 TTL (`ttl`), or on the L1 lifetime when that point would come
   * after the L1 entry's own expiry (a short `ttl`). It sits beside L1 stale-while-revalidate
   * (`l1.swrThreshold`): the earlier of the two points triggers the refresh. Needs L1 (the refresh
   * point is kept on the L1 entry).
   *
   * Across processes the refresh takes the key's stampede lock (`stampede`, a backend with the
   * lock capability): N processes refresh a hot key once. A process that finds the lock taken
   * keeps serving its value and picks the new one up from L2 (or is told by the invalidation bus).
   */
  eagerRefresh?: number | boolean;
  /**
   * Seconds after which a caller stops waiting for the function (hard timeout, default 0: off):
   * it gets the stale value when one exists (`staleTtl`), else a `FactoryTimeoutError`. The
   * function keeps running and its result is cached when it arrives. With `softTimeout` the
   * timeline is: soft (stale served, the computation continues), then hard (nobody waits).
   */
  hardTimeout?: number;
  /**
   * Envelope protocol written to L2 (readers accept both). Default `"1.1"` (compressed block as
   * MessagePack `bin`, cachekit-core ≥ 0.4); `"1.0"` (block as an array of integers) is the only
   * form cachekit-py 0.3.0 reads: set it when sharing entries with that version.
   */
  envelopeProtocol?: "1.0" | "1.1";
  /**
   * How values are laid out in L2 (readers accept both, whatever this says). Default `"envelope"`:
   * the protocol bytes themselves (the ByteStorage envelope, or a small binary header around the
   * payload when metadata is needed), the lean form. `"document"`: cachekit-py 0.3.0's JSON
   * document (base64 data + metadata); set it, together with `envelopeProtocol: "1.0"`, when
   * cachekit-py 0.3.0 must read the entries. Not allowed with `interop` (plain MessagePack values).
   */
  wire?: "document" | "envelope";
  /**
   * Fail-safe throttle, seconds: once a failure of the function was answered from a stale value
   * (`staleTtl`), that value is reused this long for the same arguments without calling the
   * function again; the first call after it tries again. Default 30 (FusionCache's
   * `FailSafeThrottleDuration`). `0`: try the function on every call.
   */
  failSafeThrottle?: number;
  /**
   * Largest serialized value cached, bytes (before compression). Default: env
   * `CACHEKIT_MAX_VALUE_SIZE`, 100 MiB. A larger result is answered but not cached (in L1 or L2),
   * with a warning once per function. On a read, an entry whose declared (uncompressed) size is
   * larger is a miss, refused before anything is allocated for it, and deleted: the guard against
   * decompression bombs in a shared cache.
   */
  maxValueSize?: number;
  /** L1 options, or `false` to turn L1 off. */
  l1?: L1Options | false;
  /** Circuit breaker options, or `false`. */
  circuitBreaker?: CircuitBreakerOptions | false;
  /** Adaptive timeout options, or `false`. */
  timeout?: TimeoutOptions | false;
  /** Backpressure options, or `false`. */
  backpressure?: BackpressureOptions | false;
  /** Monitoring options. */
  monitoring?: MonitoringOptions;
  /** Encryption options. */
  encryption?: EncryptionOptions<A>;
  /** Cross-process stampede protection, or `false`. */
  stampede?: StampedeOptions | false;
}

/**
 * Options of one call of a key-based cache (`createCache`: `getOrSet`, `get`, `set`, …). Each
 * one absent takes the cache's option of the same name.
 */
export interface CacheEntryOptions {
  /** TTL of the entry written, seconds; `null`: no expiry in L2. */
  ttl?: number | null;
  /** Seconds the entry stays usable as a stale value after its TTL (needs the cache's `staleTtl` > 0). */
  staleTtl?: number;
  /** Tags of the entry written (for `deleteByTags` / `invalidateTags`). */
  tags?: readonly string[];
  /** With a stale value: seconds after which it is served and the factory goes on in the background. */
  softTimeout?: number;
  /**
   * Seconds after which the caller stops waiting for the factory: the stale value, else a
   * `FactoryTimeoutError`; the factory goes on and its result is cached when it lands.
   */
  hardTimeout?: number;
  /**
   * Stops this caller's wait (it rejects with the signal's reason). The factory's `ctx.signal`
   * aborts only when every caller sharing the computation has aborted.
   */
  signal?: AbortSignal;
  /** Do not look the key up in L1 (`getOrSet`, `get`, `has`). */
  skipL1Read?: boolean;
  /** Do not keep the value in L1. */
  skipL1Write?: boolean;
  /** Do not read L2 (nor take the stampede lock). */
  skipL2Read?: boolean;
  /** Do not write the value to L2. */
  skipL2Write?: boolean;
  /** Do not tell other instances (invalidation bus) about the write. */
  skipBus?: boolean;
  /**
   * `getOrSet` and `get`: resolve `{ value, status, layer, ageMs, expiresInMs, key }` (a
   * `CallResult`, as `f.withStatus(...)` does) instead of the value. For `get`, `miss` means no
   * fresh value was found (`layer: "source"`, nothing computed).
   */
  withStatus?: boolean;
}

/** A fully resolved group: every field present. */
export type Resolved<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/** The configuration the engine runs on: defaults, preset, environment and options merged and validated. */
export interface ResolvedConfig {
  /** Preset used, or `"default"`. */
  preset: PresetName | "default";
  /** Explicit `name`, if any (identity is derived by the engine otherwise). */
  name: string | null;
  /** TTL in seconds, `null` for no expiry in L2 (the default when `ttl` is a function). */
  ttl: number | null;
  /** The `ttl` option when it is a function of the result, else `null`. */
  ttlFn: ((result: never, ...args: never[]) => number | null) | null;
  /** See {@linkcode CacheOptions.cacheIf}; `null` when unset. */
  cacheIf: ((result: never, ...args: never[]) => boolean) | null;
  /** See {@linkcode CacheOptions.resultTags}; `null` when unset. */
  resultTags: ((result: never, ...args: never[]) => readonly string[]) | null;
  /** Namespace or `null`. */
  namespace: string | null;
  /** The serializer selection. */
  serializer: "std" | "json" | "orjson" | "arrow" | "auto" | Serializer;
  /** See {@linkcode CacheOptions.safeMode}. */
  safeMode: boolean;
  /** See {@linkcode CacheOptions.integrityChecking}. */
  integrityChecking: boolean;
  /** Custom key function or `null`. */
  key: ((...args: never[]) => string) | null;
  /** See {@linkcode CacheOptions.pythonArgs}; `null` when unset. */
  pythonArgs: ((...args: never[]) => PythonCall) | null;
  /** Interop segments, or `null` when off. */
  interop: { namespace: string; operation: string } | null;
  /** See {@linkcode CacheOptions.refreshTtlOnGet}. */
  refreshTtlOnGet: boolean;
  /** See {@linkcode CacheOptions.ttlRefreshThreshold}. */
  ttlRefreshThreshold: number;
  /** The L2 backend or `null` (L1 only). `"default"`: the engine creates the default backend. */
  backend: Backend | null | "default";
  /** Tag function or `null`. */
  tags: ((...args: never[]) => readonly string[]) | null;
  /** Fail-safe stale window, seconds (0 = off). */
  staleTtl: number;
  /** Fail-safe soft timeout, seconds (0 = off). */
  softTimeout: number;
  /** Eager refresh point, a fraction of the TTL (`0`: off; see {@linkcode CacheOptions.eagerRefresh}). */
  eagerRefresh: number;
  /** Hard timeout of the function, seconds (0 = off; see {@linkcode CacheOptions.hardTimeout}). */
  hardTimeout: number;
  /** Envelope protocol written (default `"1.1"`). */
  envelopeProtocol: "1.0" | "1.1";
  /** L2 value layout written (default `"envelope"`; see {@linkcode CacheOptions.wire}). */
  wire: "document" | "envelope";
  /** Largest serialized value cached or read back, bytes (see {@linkcode CacheOptions.maxValueSize}). */
  maxValueSize: number;
  /** Fail-safe throttle, seconds (0 = off; see {@linkcode CacheOptions.failSafeThrottle}). */
  failSafeThrottle: number;
  /** L1 settings (`enabled: false` when off). */
  l1: Resolved<Omit<L1Options, "storeReferences">>;
  /** Breaker settings (`enabled: false` when off). */
  circuitBreaker: Resolved<Omit<CircuitBreakerOptions, "excludedErrors">> & {
    excludedErrors: ((error: unknown) => boolean) | null;
  };
  /** Timeout settings. */
  timeout: Resolved<TimeoutOptions>;
  /** Backpressure settings. */
  backpressure: Resolved<BackpressureOptions>;
  /** Monitoring settings. */
  monitoring: Resolved<MonitoringOptions>;
  /**
   * Encryption settings. The master keys are {@linkcode SecretKey}s: never shown by JSON, inspect or
   * string conversion, never logged.
   */
  encryption: {
    enabled: boolean;
    masterKey: SecretKey | null;
    previousKeys: SecretKey[];
    tenant: string | ((...args: never[]) => string) | null;
    singleTenant: boolean;
    deploymentUuid: string | null;
    tenantKeys: "hashed" | "plain";
  };
  /** Stampede settings. */
  stampede: Resolved<StampedeOptions>;
}

/** Names of the presets: `cache.minimal`, `cache.production`, `cache.secure`, `cache.dev`, `cache.test`. */
export type PresetName = "minimal" | "production" | "secure" | "dev" | "test";
