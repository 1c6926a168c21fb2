/**
 * The cache engine behind `cache()` and `@cached`: L1 lookup, single flight, the L2 read/write
 * path (keys, wire document, envelope, encryption), stampede locks, invalidation and statistics.
 *
 * Internal: the public surface is `cache.ts`, `decorator.ts` and the wrapper's methods.
 *
 * @module
 */
import type { Backend, InvalidationEvent, OperationOptions } from "./backends/types.ts";
import type { ResolvedConfig } from "./config/options.ts";
import type { Serializer } from "./serializers/types.ts";
import {
  BackendError,
  CacheConfigError,
  CacheKeyError,
  CacheKitError,
  SerializationError,
} from "./errors.ts";
import {
  cacheKey,
  decodeInteropValue,
  encodeInteropValue,
  interopKey,
  type SerializerName,
} from "./protocol/keys.ts";
import { encodeEnvelope } from "./protocol/envelope.ts";
import {
  acceptEntry,
  checkValueSize,
  openEntry,
  type ReadPolicy,
  ValueTooLargeError,
} from "./protocol/stored_value.ts";
import { parseEnvelope } from "./protocol/_envelope_msgpack.ts";
import { undefinedEnvelope } from "./protocol/_undefined_envelope.ts";
import type { TenantCipher } from "./protocol/encryption.ts";
import { knownHashedSegments, SecureKeys } from "./_engine_secure.ts";
import { L1Cache, type L1Entry } from "./l1.ts";
import {
  decodeWire,
  encodeWire,
  wireAadExtension,
  type WireDocument,
  WireFormatError,
  wireOriginalType,
} from "./protocol/stored_value.ts";
import { type ArgKey, argKey, customKey } from "./_engine_argkey.ts";
import { InflightTable } from "./_engine_inflight.ts";
import { currentTenant, quoteTenant, tenantContextUsed, TenantRequiredError } from "./tenant.ts";
import { type CacheLogger, getCacheLogger, plainTextLogger } from "./health/logging.ts";
import { consoleNotice } from "./health/_console_notice.ts";
import { envConfig } from "./config/env.ts";
import type {
  HealthComponent,
  HealthLevel,
  HealthReport,
  HealthStatus,
} from "./health/health_checker.ts";
import { backendReport, type ProbeCache, worstStatus } from "./_engine_health.ts";
import type { CircuitState } from "./reliability/circuit_breaker.ts";
import { GuardedBackend, isSkipL2Error } from "./reliability/guarded_backend.ts";
import { type CacheMetrics, type CounterChild, getDefaultMetrics } from "./health/metrics.ts";
import {
  createdDefaultL2,
  defaultBackendGeneration,
  defaultL2,
  guard,
  resolveBackend,
  setTagged,
} from "./_engine_backend.ts";
import { underAnyTenant } from "./backends/_common.ts";
import { unrefTimer } from "./backends/_redis_deadlines.ts";
import { copiesInput, reshapes, resolveSerializer } from "./_engine_serializer.ts";
import { interopReshapes } from "./protocol/_interop_reshapes.ts";
import { FailSafe, type StaleValue } from "./_engine_failsafe.ts";
import { EngineSeries } from "./_engine_metrics.ts";

/** One L2 read in this many is timed for `l2AvgLatencyMs` (a power of two; the first is). */
const LATENCY_SAMPLE = 8;
const log = getCacheLogger("engine");

/** Statistics of one cached function (cachekit-py's `CacheInfo`, camelCase). */
export interface CacheInfo {
  /** Calls answered from a cache (L1 + L2). */
  hits: number;
  /** Calls that ran the function. */
  misses: number;
  /** Hits answered by the in-process L1. */
  l1Hits: number;
  /** Hits answered by the L2 backend. */
  l2Hits: number;
  /** Failed L2 operations (degraded to the function or L1). */
  l2Errors: number;
  /** Fail-safe: stale values served because the function failed or passed `softTimeout`. */
  staleHits: number;
  /** Mean latency of L2 reads, milliseconds (0 before the first). */
  l2AvgLatencyMs: number;
  /** L1 entries. */
  size: number;
  /** L1 bytes counted against `l1.maxBytes`. */
  bytes: number;
  /** `l1.maxEntries` (0 when L1 is off). */
  maxSize: number;
  /** `l1.maxBytes` (0 when L1 is off). */
  maxBytes: number;
  /** Time of the last call, ms since the epoch, or `null`. */
  lastOperationAt: number | null;
}

/** Health of one cached function. */
export interface FunctionHealth {
  /**
   * `healthy`; `degraded` (L2 failing, answers from L1/function; or the invalidation bus
   * subscription is down, so L1 may miss remote invalidations); `unhealthy` (L2 down).
   */
  status: HealthStatus;
  /** The function identity. */
  identity: string;
  /** Backend type, or `null` for L1 only. */
  backend: string | null;
  /** L1 state. */
  l1: { enabled: boolean; entries: number; bytes: number; maxBytes: number; maxEntries: number };
  /** Circuit breaker state of the L2 guard, or `null` when there is no breaker. */
  circuit: CircuitState | null;
  /** Consecutive failed L2 operations. */
  consecutiveErrors: number;
  /** Message of the last L2 error, or `null`. */
  lastError: string | null;
  /** `BackendError.kind` of the last L2 error (`authentication`: fix the credentials), or `null`. */
  lastErrorKind: string | null;
  /** Fail-safe: stale values served so far. */
  staleHits: number;
  /** Round trip of the last backend health probe, ms (from `checkHealth()`), or `null`. */
  latencyMs: number | null;
  /** Backend details from the last probe. */
  details?: Record<string, unknown>;
  /** Level of the last `checkHealth(level)`, or `null` before the first. */
  level: HealthLevel | null;
  /** ISO time of the last `checkHealth()`, or `null`. */
  checkedAt: string | null;
  /**
   * Components of the last `checkHealth(level)` (`HealthChecker`: `backend` with ping latency,
   * `circuitBreaker`, `pool`, at `full` also `timeout`, `backpressure`, `metrics`) and `l1`;
   * `invalidation` (`degraded`) while the invalidation bus subscription is down.
   */
  components: HealthReport["components"];
}

/** How an engine is set up. */
export interface EngineSpec {
  /** The wrapped function. */
  // deno-lint-ignore no-explicit-any
  fn: (...args: any[]) => unknown;
  /** Resolved configuration. */
  config: ResolvedConfig;
  /** Function identity (`func:` segment). */
  identity: string;
  /** Method decorator: key part taken from the instance. */
  instanceKey?: ((self: unknown) => string) | null;
}

interface KeyCtx {
  l1Key: ArgKey;
  protoKey: string;
  backendKey: string;
  tenant: string | null;
  tags: readonly string[] | null;
}

interface L2Hit {
  value: unknown;
  payload: Uint8Array | null;
  stored: Uint8Array;
  /** Fail-safe: past its logical expiry (`metadata.fresh_until`): not a hit, only a fallback. */
  stale: boolean;
  /** Logical expiry, ms since the epoch, or `null`. */
  freshUntil: number | null;
}

type Sealed = { protoKey: string; tenant: string };

const SERIALIZER_NAMES: Record<string, SerializerName> = {
  s: "std",
  a: "auto",
  o: "orjson",
  w: "arrow",
};
const MAX_TRACKED_KEYS = 100_000;
/** Protocol keys remembered per engine (by L1 key); the memo starts over when full. */
const MAX_KEY_MEMO = 10_000;
const DEFAULT_SEGMENT = quoteTenant("default");

/** After a failed invalidation-bus subscription, the next attempt waits this long (ms). */
const SUBSCRIBE_RETRY_MS = 1000;
/** Unsubscribes the bus handler of an engine that was garbage-collected. */
const unsubscribeOnCollect = new FinalizationRegistry<Promise<() => Promise<void>>>((sub) => {
  sub.then((unsubscribe) => unsubscribe()).catch(() => {});
});

const engines = new Set<WeakRef<Engine>>();
const seenTenants = new Set<string>(["default"]);

/** Tenant segments of every tenant this process has seen (plain and hashed). */
function tenantSegments(): string[] {
  return [...[...seenTenants].map(quoteTenant), ...knownHashedSegments()];
}

/** A prefix target `t:*:{rest}` stands for `{rest}` under every tenant segment. */
const ANY_TENANT = "t:*:";

/** Whether backend key `key` falls under the prefix target `target` (see {@linkcode ANY_TENANT}). */
function underTarget(key: string, target: string): boolean {
  return target.startsWith(ANY_TENANT)
    ? underAnyTenant(key, target.slice(ANY_TENANT.length))
    : key.startsWith(target);
}

/** Whether two prefix targets can match a common key. */
function overlaps(p: string, q: string): boolean {
  if (p.startsWith(ANY_TENANT) !== q.startsWith(ANY_TENANT)) {
    const [any, other] = p.startsWith(ANY_TENANT) ? [p, q] : [q, p];
    const end = other.startsWith("t:") ? other.indexOf(":", 2) : -1;
    if (end < 0) return false;
    p = any.slice(ANY_TENANT.length);
    q = other.slice(end + 1);
  }
  return p.startsWith(q) || q.startsWith(p);
}

/**
 * Delete every key under the prefix targets: `t:*:` ones through `deleteByTenantPrefix`, or, on a
 * backend without it, under the tenant segments this process has seen.
 */
async function deleteTargets(
  b: Backend,
  targets: string[],
  opts?: OperationOptions,
): Promise<void> {
  const cap = b.capabilities.prefix;
  if (!cap) return;
  for (const t of targets) {
    if (!t.startsWith(ANY_TENANT)) await cap.deleteByPrefix(t, opts);
    else {
      const rest = t.slice(ANY_TENANT.length);
      if (cap.deleteByTenantPrefix) await cap.deleteByTenantPrefix(rest, opts);
      else for (const seg of tenantSegments()) await cap.deleteByPrefix(`t:${seg}:${rest}`, opts);
    }
  }
}

/** Live engines (for module-level invalidation). */
export function liveEngines(): Engine[] {
  const out: Engine[] = [];
  for (const ref of engines) {
    const e = ref.deref();
    if (e === undefined) engines.delete(ref);
    else out.push(e);
  }
  return out;
}

function isPrimitive(v: unknown): boolean {
  return v === null || (typeof v !== "object" && typeof v !== "function");
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === "object" &&
    typeof (v as { then?: unknown }).then === "function";
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A serialized value over `maxValueSize`: answered, not cached. */

/** The L1 key of a call: the argument key, prefixed by the tenant when there is one. */
function tenantL1Key(key: ArgKey, tenant: string | null): ArgKey {
  return tenant === null ? key : quoteTenant(tenant) + "\u0000" + key;
}

/** Matches L1 entries carrying any of `tags`. */
function taggedWith(tags: ReadonlySet<string>): (e: L1Entry) => boolean {
  return (e) => e.tags !== null && e.tags.some((t) => tags.has(t));
}

function l2Stale(hit: L2Hit): StaleValue {
  return { source: "l2", expiredAt: hit.freshUntil ?? NaN, read: () => hit.value };
}

/** One cached function's state. */
export class Engine {
  readonly fn: (...args: unknown[]) => unknown;
  readonly config: ResolvedConfig;
  readonly identity: string;
  /** This function's logger (`monitoring.structuredLogging` decides its records' shape). */
  readonly #log: CacheLogger;
  readonly instanceKey: ((self: unknown) => string) | null;
  readonly l1: L1Cache | null;
  readonly serializer: Serializer;
  readonly stats = {
    hits: 0,
    misses: 0,
    l1Hits: 0,
    l2Hits: 0,
    l2Errors: 0,
    staleHits: 0,
    l2Reads: 0,
    /** Reads whose latency was timed (every {@linkcode LATENCY_SAMPLE}th read). */
    l2Timed: 0,
    l2ReadMs: 0,
    last: null as number | null,
  };
  /** Prometheus metrics (`monitoring.prometheus`), or `null`. */
  readonly metrics: CacheMetrics | null;
  /** Pre-bound L1 hit counter series (hot path), or `null`. */
  readonly l1HitCounter: CounterChild | null;
  readonly #metricNs: string;
  /** Pre-bound Prometheus series (hot paths), or `null`. */
  readonly #series: EngineSeries | null;
  /** Fail-safe (`staleTtl`), or `null`. */
  readonly failsafe: FailSafe | null;
  /** TTL written to L2: `ttl + staleTtl` with the fail-safe, else `ttl`. */
  readonly l2Ttl: number | null;
  /** Whether the wrapper returns promises (L2 configured, or the function is asynchronous). */
  returnsPromise: boolean;
  readonly collectStats: boolean;
  readonly inflight: InflightTable = new InflightTable();
  /** Bumped by every invalidation: a computation that started before one does not store. */
  epoch = 0;
  readonly l1TtlMs: number;
  readonly swrMs: number;
  readonly tenantAware: boolean;
  readonly #keyPrefix: string;
  readonly #serializerName: SerializerName;
  /** What this function accepts from L2 (`_stored_read.ts`), from its configuration alone. */
  readonly #readPolicy: ReadPolicy;
  /** L2 reads started (picks the sampled ones; see `#readL2`). */
  #l2Started = 0;
  /** Whether a value over `maxValueSize` was reported (once per function). */
  #warnedTooLarge = false;
  readonly #cipher: TenantCipher | null;
  /** Secure mode: key ring and tenant segments (see `_engine_secure.ts`), or `null`. */
  readonly #secure: SecureKeys | null;
  #backend: Backend | null | undefined;
  #backendPromise: Promise<Backend | null> | null = null;
  #backendGen = -1;
  readonly #sharedDefault: boolean;
  #unsubscribe: Promise<() => Promise<void>> | null = null;
  #subscribeRetryAt = 0;
  /** The pending self-retry of a failed subscription (cleared by any later attempt). */
  #subscribeRetryTimer: ReturnType<typeof setTimeout> | null = null;
  /** The bus subscription failed and no later one succeeded yet (remote events are missed). */
  #busLost = false;
  readonly #byBackendKey = new Map<string, ArgKey>();
  readonly #protoKeys = new Map<ArgKey, string>();
  /** Backend keys of tenant-less calls by protocol key (see `keys`). */
  readonly #defaultBackendKeys = new Map<string, string>();
  readonly #tracked = new Set<string>();
  readonly #tagIndex = new Map<string, Set<string>>();
  #consecutiveErrors = 0;
  #lastError: string | null = null;
  #lastErrorKind: string | null = null;
  #lastReport: HealthReport | null = null;
  #authReported = false;
  #lastProbe: { latencyMs: number; details?: Record<string, unknown> } | null = null;

  constructor(spec: EngineSpec) {
    const c = spec.config;
    this.fn = spec.fn as (...args: unknown[]) => unknown;
    this.config = c;
    this.identity = spec.identity;
    // monitoring.structuredLogging: records carry the function's context as properties a sink can
    // index, or are one line of plain text each.
    this.#log = c.monitoring.structuredLogging
      ? log.with({ identity: this.identity, namespace: c.namespace ?? null })
      : plainTextLogger(log);
    this.instanceKey = spec.instanceKey ?? null;
    this.collectStats = c.monitoring.collectStats;
    this.serializer = resolveSerializer(c.serializer);
    const name = SERIALIZER_NAMES[this.serializer.code];
    if (name === undefined) {
      throw new CacheConfigError(
        "serializer.code",
        this.serializer.code,
        `one of the protocol's serializer codes (${Object.keys(SERIALIZER_NAMES).join(", ")})`,
      );
    }
    this.#serializerName = name;
    // cachekit-py 0.3.0 writes "default" for its MessagePack serializer and refuses other names.
    const wireName = this.serializer.name === "std" ? "default" : this.serializer.name;
    this.#readPolicy = {
      serializer: this.serializer,
      acceptNames: new Set([wireName, this.serializer.name]),
      integrityChecking: c.integrityChecking,
      // A declared size over `maxValueSize` is refused before anything is allocated.
      limits: { maxSize: c.maxValueSize },
      // A built-in serializer copies what it keeps: decompress into the shared scratch buffer.
      scratch: copiesInput(this.serializer),
    };
    this.l1 = c.l1.enabled
      ? new L1Cache({ maxBytes: c.l1.maxBytes, maxEntries: c.l1.maxEntries })
      : null;
    this.#sharedDefault = c.backend === "default" && c.preset !== "test";
    this.#backend = c.backend === "default"
      ? undefined
      : c.backend === null
      ? null
      : guard(c.backend, c);
    this.returnsPromise = c.backend !== null ||
      (spec.fn as { constructor?: { name?: string } }).constructor?.name === "AsyncFunction";
    const ttl = c.ttl;
    // L1 entries expire `expiryBuffer` s before the L2 TTL (never below half of it); L1 only: the TTL.
    const l1Ttl = ttl === null
      ? c.l1.defaultTtl
      : c.backend === null
      ? ttl
      : Math.max(ttl - c.l1.expiryBuffer, ttl / 2);
    this.l1TtlMs = l1Ttl * 1000;
    this.swrMs = c.l1.swrEnabled ? this.l1TtlMs * c.l1.swrThreshold : Infinity;
    this.tenantAware = c.encryption.enabled || typeof c.encryption.tenant === "function" ||
      typeof c.encryption.tenant === "string";
    const ns = c.namespace;
    this.#keyPrefix = c.interop
      ? `${c.interop.namespace}:${c.interop.operation}:`
      : (ns ? `ns:${ns}:func:` : "func:") + this.identity + ":args:";
    this.#secure = c.encryption.enabled ? new SecureKeys(c.encryption) : null;
    this.#cipher = this.#secure?.cipher ?? null;
    this.#metricNs = (c.interop ? c.interop.namespace : c.namespace) ?? "default";
    this.metrics = c.monitoring.prometheus ? getDefaultMetrics() : null;
    this.l1HitCounter = this.metrics?.hits.labels({ namespace: this.#metricNs, layer: "l1" }) ??
      null;
    this.#series = this.metrics !== null
      ? new EngineSeries(this.metrics, this.#metricNs, this.serializer.name)
      : null;
    this.failsafe = c.staleTtl > 0 ? new FailSafe(this, c.staleTtl, c.softTimeout) : null;
    this.l2Ttl = ttl === null ? null : ttl + c.staleTtl;
    engines.add(new WeakRef(this));
    if (this.metrics !== null && this.l1 !== null) trackL1(this.metrics, this.#metricNs, this);
  }

  /** The `namespace` label of this function's metrics. */
  get metricNs(): string {
    return this.#metricNs;
  }

  // ------------------------------------------------------------------ keys

  /** The tenant of a call: option (fixed or function), `withTenant` context, or `null` (= default). */
  tenantOf(args: unknown[]): string | null {
    const t = this.config.encryption.tenant;
    if (typeof t === "string") return t;
    if (typeof t === "function") {
      const v = (t as (...a: unknown[]) => unknown)(...args);
      if (typeof v === "string" && v !== "") return v;
      if (v !== undefined && v !== null && v !== "") {
        throw new CacheConfigError(
          "encryption.tenant",
          typeof v,
          "a function returning a non-empty tenant id (or undefined: none for this call)",
        );
      }
    }
    const ctx = tenantContextUsed() ? currentTenant() : undefined;
    if (ctx !== undefined) return ctx;
    if (
      !this.config.encryption.singleTenant &&
      (this.config.encryption.enabled || typeof t === "function")
    ) {
      throw new TenantRequiredError(this.identity);
    }
    return null;
  }

  /** The tenant of a call when tenants can apply to it (else `null`, without any lookup). */
  callTenant(args: unknown[]): string | null {
    return this.tenantAware || tenantContextUsed() ? this.tenantOf(args) : null;
  }

  /** The cheap L1 key (without tenant), or `undefined` when the protocol key is needed. */
  fastKey(self: unknown, args: unknown[]): ArgKey | undefined {
    const kf = this.config.key;
    if (kf !== null) return "k" + (kf as (...a: unknown[]) => string)(...args);
    if (this.instanceKey !== null) return argKey([this.instanceKey(self), ...args]);
    return argKey(args);
  }

  /** Full key context of a call. */
  keys(self: unknown, args: unknown[], fast: ArgKey | undefined, tenant: string | null): KeyCtx {
    const c = this.config;
    // The protocol key of the same L1 key is the same (see `_engine_argkey.ts`): remembered, so
    // a repeated call does not hash its arguments again (L1 off, or a miss after eviction).
    const memo = fast !== undefined && c.key === null ? this.#protoKeys.get(fast) : undefined;
    let protoKey: string;
    if (memo !== undefined) protoKey = memo;
    else if (c.interop) {
      const keyArgs = this.instanceKey !== null ? [this.instanceKey(self), ...args] : args;
      protoKey = interopKey(c.interop.namespace, c.interop.operation, keyArgs);
    } else if (c.key !== null) {
      const custom = (c.key as (...a: unknown[]) => string)(...args);
      if (typeof custom !== "string") {
        throw new CacheKeyError(
          "key()",
          `the key function returned ${typeof custom}, not a string`,
        );
      }
      protoKey = customKey(this.#keyPrefix, custom);
    } else {
      const keyArgs = this.instanceKey !== null ? [this.instanceKey(self), ...args] : args;
      protoKey = cacheKey({
        namespace: c.namespace,
        func: this.identity,
        args: keyArgs,
        kwargs: {},
        integrityChecking: c.integrityChecking,
        serializer: this.#serializerName,
      });
    }
    if (memo === undefined && fast !== undefined && c.key === null) {
      if (this.#protoKeys.size >= MAX_KEY_MEMO) this.#protoKeys.clear();
      this.#protoKeys.set(fast, protoKey);
    }
    const sec = this.#secure;
    if (tenant !== null && (sec === null || sec.mode === "plain")) seenTenants.add(tenant);
    let backendKey: string;
    if (c.interop) backendKey = protoKey;
    else if (tenant === null && sec === null) {
      // The common case, remembered per protocol key: a key built anew on every call is a rope
      // (ConsString) that each Map lookup or socket write has to flatten first.
      const known = this.#defaultBackendKeys.get(protoKey);
      if (known !== undefined) backendKey = known;
      else {
        backendKey = `t:${DEFAULT_SEGMENT}:${protoKey}`;
        if (this.#defaultBackendKeys.size >= MAX_KEY_MEMO) this.#defaultBackendKeys.clear();
        this.#defaultBackendKeys.set(protoKey, backendKey);
      }
    } else {
      backendKey = `t:${
        sec !== null ? sec.segment(tenant ?? "default") : quoteTenant(tenant!)
      }:${protoKey}`;
    }
    const l1Key = tenantL1Key(fast ?? "p" + protoKey, tenant);
    const tags = c.tags ? (c.tags as (...a: unknown[]) => readonly string[])(...args) : null;
    return { l1Key, protoKey, backendKey, tenant, tags };
  }

  // ------------------------------------------------------------------ L1

  /** Read an L1 entry's value (hit path of the wrapper). */
  entryValue(e: L1Entry): unknown {
    if (e.bytes === null) return e.value;
    const sealed = e.sealed as Sealed | null;
    if (sealed !== null) return this.decodeStored(e.bytes, sealed.protoKey, sealed.tenant);
    return this.decodePayload(e.bytes);
  }

  decodePayload(bytes: Uint8Array): unknown {
    return this.config.interop ? decodeInteropValue(bytes) : this.serializer.deserialize(bytes);
  }

  #storeL1(
    ctx: KeyCtx,
    value: unknown,
    payload: Uint8Array | null,
    stored: Uint8Array | null,
  ): void {
    const l1 = this.l1;
    if (l1 === null) return;
    let entry: L1Entry;
    if (this.#cipher !== null && stored !== null) {
      // Secure: L1 holds the encrypted document, decrypted on every hit.
      entry = L1Cache.entry(undefined, stored, 0, this.l1TtlMs, this.#swrDelay());
      entry.sealed = { protoKey: ctx.protoKey, tenant: ctx.tenant ?? "default" } satisfies Sealed;
    } else if (this.config.l1.storeReferences || isPrimitive(value)) {
      const size = payload?.byteLength ?? (typeof value === "string" ? 2 * value.length : 16);
      entry = L1Cache.entry(value, null, size, this.l1TtlMs, this.#swrDelay());
    } else if (payload !== null) {
      entry = L1Cache.entry(undefined, payload, 0, this.l1TtlMs, this.#swrDelay());
    } else return;
    entry.backendKey = ctx.backendKey;
    entry.tags = ctx.tags;
    if (this.failsafe !== null) entry.staleUntil = entry.expiresAt + this.failsafe.staleMs;
    if (l1.set(ctx.l1Key, entry)) {
      this.#byBackendKey.set(ctx.backendKey, ctx.l1Key);
      if (this.#byBackendKey.size > 2 * l1.size + 1024) this.#rebuildIndex();
    }
  }

  #swrDelay(): number {
    if (this.swrMs === Infinity) return Infinity;
    const j = this.config.l1.swrJitter;
    return this.swrMs * (1 + (Math.random() * 2 - 1) * j);
  }

  #rebuildIndex(): void {
    this.#byBackendKey.clear();
    if (this.l1 === null) return;
    for (const [k, e] of this.l1.map) {
      if (e.backendKey !== null) this.#byBackendKey.set(e.backendKey, k as ArgKey);
    }
  }

  // ------------------------------------------------------------------ backend

  /** The L2 backend (created lazily for `"default"`), or `null`. */
  backend(): Backend | null | Promise<Backend | null> {
    if (this.#backend !== undefined) {
      if (this.#sharedDefault && this.#backendGen !== defaultBackendGeneration()) {
        // closeDefaultBackend() was called: resolve the (new) default again.
        this.#backend = undefined;
        this.#unsubscribe = null;
      } else return this.#backend;
    }
    const gen = defaultBackendGeneration();
    return this.#backendPromise ??= resolveBackend(this.config).then((b) => {
      this.#backend = b;
      this.#backendGen = gen;
      this.#backendPromise = null;
      this.#subscribe(b);
      return b;
    }, (e) => {
      this.#backendPromise = null;
      this.#fail("create", e);
      return null;
    });
  }

  async backendAsync(): Promise<Backend | null> {
    const b = this.backend();
    if (b === null || !(b instanceof Promise)) {
      if (b !== null && this.#unsubscribe === null) this.#subscribe(b);
      return b;
    }
    return await b;
  }

  #subscribe(b: Backend | null): void {
    if (b === null || this.#unsubscribe !== null || !this.config.l1.invalidation) return;
    const bus = b.capabilities.invalidation;
    if (!bus || this.l1 === null || Date.now() < this.#subscribeRetryAt) return;
    if (this.#subscribeRetryTimer !== null) {
      clearTimeout(this.#subscribeRetryTimer);
      this.#subscribeRetryTimer = null;
    }
    const ref = new WeakRef(this);
    const sub = bus.subscribe(
      (ev) => ref.deref()?.onRemoteEvent(ev),
      () => ref.deref()?.onBusGap(),
    );
    this.#unsubscribe = sub;
    // A collected engine's handler (a dead WeakRef) would stay on the bus for good: release it.
    unsubscribeOnCollect.register(this, sub, sub);
    sub.then(() => {
      // Subscribed again after a failed attempt: what was cached meanwhile may have missed events.
      if (this.#busLost) this.onBusGap();
    }, (e) => {
      // Failed (e.g. Redis unreachable at first use): try again on a later miss, at most once per
      // SUBSCRIBE_RETRY_MS, instead of running without remote invalidations for good.
      unsubscribeOnCollect.unregister(sub);
      if (this.#unsubscribe === sub) this.#unsubscribe = null;
      this.#busLost = true;
      this.#subscribeRetryAt = Date.now() + SUBSCRIBE_RETRY_MS;
      if (!(e instanceof BackendError && e.kind === "permanent")) {
        // Retry by itself too: a function answered from L1 alone never misses, so it would never
        // resubscribe (and never clear what it cached while missing events).
        const timer = setTimeout(() => {
          const self = ref.deref();
          if (self === undefined) return;
          self.#subscribeRetryTimer = null;
          if (self.#backend !== b) return;
          self.#subscribeRetryAt = 0;
          self.#subscribe(b);
        }, SUBSCRIBE_RETRY_MS);
        unrefTimer(timer);
        this.#subscribeRetryTimer = timer;
      }
      this.#log.warn("{identity}: invalidation subscribe failed (retried later): {error}", {
        identity: this.identity,
        error: errMessage(e),
      });
    });
  }

  #opts(): OperationOptions | undefined {
    return undefined;
  }

  #fail(operation: string, e: unknown): void {
    const kind = e instanceof BackendError ? e.kind : "unknown";
    this.stats.l2Errors++;
    if (isSkipL2Error(e)) {
      // Open circuit or backpressure: L2 skipped on purpose (the guard logged and counted it).
      this.#log.debug("{identity}: L2 {operation} skipped: {error}", {
        identity: this.identity,
        operation,
        error: errMessage(e),
      });
      return;
    }
    this.metrics?.recordError(operation, this.#backend?.type ?? "default", kind);
    this.#consecutiveErrors++;
    this.#lastError = errMessage(e);
    this.#lastErrorKind = kind;
    consoleNotice(kind, this.#backend?.type ?? "L2", this.#lastError, envConfig().consoleNotices);
    if (kind === "authentication" && !this.#authReported) {
      // Loud once per function at first use (the guard also logs every refusal at error level).
      this.#authReported = true;
      this.#log.error(
        "{identity}: the L2 backend refused our credentials ({error}); every call answers " +
          "without L2 until the credentials are fixed. checkHealth() reports it too.",
        { identity: this.identity, operation, kind, error: this.#lastError },
      );
      return;
    }
    this.#log.warn("{identity}: L2 {operation} failed, answering without it: {error}", {
      identity: this.identity,
      operation,
      kind,
      error: this.#lastError,
    });
  }

  #ok(): void {
    this.#consecutiveErrors = 0;
  }

  // ------------------------------------------------------------------ stored form

  /** Encode a value for L2 (and the plain payload for L1). */
  async encodeStored(
    value: unknown,
    ctx: KeyCtx,
  ): Promise<{ payload: Uint8Array; stored: Uint8Array }> {
    const c = this.config;
    if (c.interop) {
      const payload = encodeInteropValue(value === undefined ? null : value);
      checkValueSize(payload, c.maxValueSize);
      return { payload, stored: payload };
    }
    const undef = value === undefined;
    const payload = checkValueSize(this.serializer.serialize(undef ? null : value), c.maxValueSize);
    const format = this.serializer.format;
    const data = !c.integrityChecking ? payload : undef // the checksum itself says `undefined` (see protocol/_undefined_envelope.ts)
      ? undefinedEnvelope(payload, format, c.envelopeProtocol)
      : encodeEnvelope(payload, format, { protocol: c.envelopeProtocol });
    const doc: WireDocument = {
      data,
      compressed: c.integrityChecking,
      serializer: this.serializer.name === "std" ? "default" : this.serializer.name,
      format: this.serializer.format,
      encryption: null,
      jsUndefined: undef,
      freshUntil: this.failsafe !== null && c.ttl !== null ? Date.now() + c.ttl * 1000 : null,
    };
    if (this.#cipher !== null) {
      const cipher = this.#cipher;
      const tenant = ctx.tenant ?? "default";
      // A failure here is the cache's (WebCrypto, nonce exhaustion), not the value's: a
      // CacheKitError, so #store degrades (logs, answers uncached) instead of failing the call.
      try {
        // The AAD: cachekit-py's v0x03, with the document's original_type as 0.3.0 seals it
        // (none on the envelope wire), then an extension covering the wire's metadata (framed
        // header, or the document's js_undefined / fresh_until), which names the key fingerprint:
        // known before sealing.
        doc.encryption = {
          tenantId: this.#secure!.label(tenant),
          keyFingerprint: await cipher.fingerprintFor(tenant),
        };
        const sealed = await cipher.encryptFor(
          tenant,
          ctx.protoKey,
          data,
          doc.format,
          doc.compressed,
          wireOriginalType(doc, c.wire),
          wireAadExtension(doc, c.wire) ?? undefined,
        );
        if (c.wire === "document" && doc.compressed) {
          doc.envelopeChecksum = parseEnvelope(data).checksumHex; // for ck_check
        }
        doc.data = sealed.ciphertext;
      } catch (e) {
        if (e instanceof CacheKitError) throw e;
        throw new CacheKitError(
          `${this.identity}: encryption failed: ${errMessage(e)}`,
          "CACHE_ENCRYPTION",
          { cause: e },
        );
      }
    }
    return { payload, stored: encodeWire(doc, c.wire) };
  }

  /** Decode bytes read from L2. Throws on anything unreadable (the caller treats it as a miss). */
  decodeStored(
    bytes: Uint8Array,
    protoKey: string,
    tenant: string,
    meta?: { freshUntil: number | null },
  ): unknown {
    const limit = this.config.maxValueSize;
    if (this.config.interop) return decodeInteropValue(checkValueSize(bytes, limit));
    const doc = decodeWire(bytes);
    if (meta !== undefined) meta.freshUntil = doc.freshUntil ?? null;
    const policy = this.#readPolicy;
    acceptEntry(doc, policy);
    const finish = (data: Uint8Array): unknown => openEntry(doc, data, policy);
    if (this.#cipher !== null) {
      if (!doc.encryption) throw new WireFormatError("a plaintext entry under an encrypted config");
      if (!this.#secure!.accepts(tenant, doc.encryption.tenantId)) {
        throw new WireFormatError("entry of another tenant");
      }
      return this.#cipher.decryptFor(
        tenant,
        protoKey,
        doc.data,
        this.serializer.format,
        doc.compressed,
        doc.encryption.keyFingerprint,
        doc.originalType || undefined,
        doc.aad ?? undefined,
      ).then(finish);
    }
    if (doc.encryption) throw new WireFormatError("an encrypted entry and no key configured");
    return finish(doc.data);
  }

  async #readL2(b: Backend, ctx: KeyCtx, io?: { failed: boolean }): Promise<L2Hit | null> {
    let bytes: Uint8Array | null;
    // The clock is read only for `cacheInfo().l2AvgLatencyMs` (monitoring.collectStats), and only
    // on every LATENCY_SAMPLE-th read: a clock read is a runtime call that costs as much as the
    // rest of an L2 hit's bookkeeping, and a sampled mean is as good for the average. Reads are
    // counted as they start (`l2Reads` counts them as they end: 100 concurrent reads would all
    // see the same count and all be timed, or none).
    const timed = this.collectStats && (this.#l2Started++ & (LATENCY_SAMPLE - 1)) === 0;
    const t0 = timed ? performance.now() : 0;
    try {
      bytes = await b.get(ctx.backendKey, this.#opts());
      this.#ok();
    } catch (e) {
      this.#fail("get", e);
      if (io !== undefined) io.failed = true;
      return null;
    }
    let from: string | null = null; // key rotation: found under a previous key's tenant segment
    if (bytes === null && this.#secure?.rotating) {
      ({ bytes, from } = await this.#secure.findPrevious(
        b,
        ctx.backendKey,
        ctx.tenant ?? "default",
      ));
    }
    if (this.collectStats) {
      this.stats.l2Reads++;
      if (timed) {
        this.stats.l2Timed++;
        this.stats.l2ReadMs += performance.now() - t0;
      }
    }
    this.#series?.read(bytes !== null ? bytes.byteLength : null);
    if (bytes === null) return null;
    let value: unknown;
    const meta = { freshUntil: null as number | null };
    try {
      value = this.decodeStored(bytes, ctx.protoKey, ctx.tenant ?? "default", meta);
      // Only a decryption is asynchronous: a plain entry is answered without another hop.
      if (value instanceof Promise) value = await value;
    } catch (e) {
      this.#log.warn("{identity}: unreadable L2 entry {key} treated as a miss: {error}", {
        identity: this.identity,
        key: ctx.backendKey,
        error: errMessage(e),
      });
      b.delete(ctx.backendKey, this.#opts()).catch(() => {});
      return null;
    }
    if (this.#secure?.rotating) {
      this.#secure.migrate(b, bytes, from, ctx.backendKey, {
        tenant: ctx.tenant ?? "default",
        protoKey: ctx.protoKey,
        tags: ctx.tags,
        ttl: this.config.ttl,
        wire: this.config.wire,
      });
    }
    const stale = meta.freshUntil !== null && meta.freshUntil <= Date.now();
    if (
      !stale && this.config.refreshTtlOnGet && this.config.ttl !== null && b.capabilities.ttl
    ) {
      try {
        const left = await b.capabilities.ttl.ttl(ctx.backendKey, this.#opts());
        if (
          left !== null && left !== Infinity &&
          left < this.l2Ttl! * this.config.ttlRefreshThreshold
        ) {
          await b.capabilities.ttl.expire(ctx.backendKey, this.l2Ttl!, this.#opts());
        }
      } catch (e) {
        this.#fail("expire", e);
      }
    }
    let payload: Uint8Array | null = null;
    if (
      this.l1 !== null && this.#cipher === null && !isPrimitive(value) &&
      !this.config.l1.storeReferences
    ) {
      payload = this.config.interop ? bytes : this.serializer.serialize(value);
    }
    return { value, payload, stored: bytes, stale, freshUntil: meta.freshUntil };
  }

  async #writeL2(b: Backend, ctx: KeyCtx, stored: Uint8Array): Promise<void> {
    try {
      await setTagged(b, ctx.backendKey, stored, this.l2Ttl, ctx.tags, this.#opts());
      this.#ok();
      this.#series?.write(stored.byteLength);
      this.#track(ctx);
      this.publish(b, { level: "key", targets: [ctx.backendKey], reason: "write" });
    } catch (e) {
      this.#fail("set", e);
    }
  }

  #track(ctx: KeyCtx): void {
    if (this.#tracked.size < MAX_TRACKED_KEYS) this.#tracked.add(ctx.backendKey);
    if (ctx.tags) {
      for (const t of ctx.tags) {
        let s = this.#tagIndex.get(t);
        if (!s) this.#tagIndex.set(t, s = new Set());
        if (s.size < MAX_TRACKED_KEYS) s.add(ctx.backendKey);
      }
    }
  }

  /** Broadcast an L1 invalidation event when the bus exists and `l1.invalidation` is on. */
  publish(b: Backend | null, event: Omit<InvalidationEvent, "sender">): void {
    if (b === null || !this.config.l1.invalidation) return;
    const bus = b.capabilities.invalidation;
    if (!bus) return;
    bus.publish(event).catch((e) =>
      this.#log.warn("invalidation publish failed: {error}", { error: e })
    );
  }

  // ------------------------------------------------------------------ calls

  /** Synchronous miss (L1-only configuration, synchronous function). */
  missSync(self: unknown, args: unknown[], fast: ArgKey | undefined, l1Checked: boolean): unknown {
    let tenant: string | null = null;
    let ctx: KeyCtx;
    try {
      tenant = this.callTenant(args);
      if (!l1Checked && fast !== undefined && this.l1 !== null) {
        const lk = tenantL1Key(fast, tenant);
        const e = this.l1.get(lk);
        if (e !== undefined) return this.#hitL1(e, self, args);
        l1Checked = true;
      }
      ctx = this.keys(self, args, fast, tenant);
    } catch (e) {
      if (!this.config.safeMode || !(e instanceof CacheKeyError)) throw e;
      return this.#uncached(self, args, e);
    }
    if (!l1Checked && this.l1 !== null) {
      const e = this.l1.get(ctx.l1Key);
      if (e !== undefined) return this.#hitL1(e, self, args);
    }
    const p = this.inflight.get(ctx.l1Key);
    if (p !== undefined) return p;
    if (this.collectStats) {
      this.stats.misses++;
      this.stats.last = Date.now();
    }
    const epoch = this.epoch;
    const fs = this.failsafe;
    let result: unknown;
    if (fs === null) result = this.fn.apply(self, args);
    else {
      try {
        result = this.fn.apply(self, args);
      } catch (e) {
        return fs.fallback(ctx.l1Key, e);
      }
    }
    if (isThenable(result)) {
      this.returnsPromise = true;
      let settled = Promise.resolve(result).then((v) =>
        this.epoch === epoch ? this.#storeLocal(ctx, v) : v
      );
      if (fs !== null) settled = settled.catch((e) => fs.fallback(ctx.l1Key, e));
      this.inflight.track(ctx.l1Key, settled);
      return settled;
    }
    return this.#storeLocal(ctx, result);
  }

  /** `safeMode`: the arguments cannot form a key (`e`): call the function uncached. */
  #uncached(self: unknown, args: unknown[], e: CacheKeyError): unknown {
    this.#log.warn("{identity}: no cache key ({error}); calling uncached", {
      identity: this.identity,
      error: errMessage(e),
    });
    return this.fn.apply(self, args);
  }

  /** Answer from an L1 entry (counts, starts a stale-while-revalidate refresh when due). */
  #hitL1(e: L1Entry, self: unknown, args: unknown[]): unknown {
    this.#countHit(true);
    if (e.refreshAt <= Date.now()) this.refresh(e, self, args);
    if (e.bytes === null) return this.returnsPromise ? Promise.resolve(e.value) : e.value;
    return this.hitBytes(e, self, args);
  }

  /** The value of an L1 entry stored as bytes (plain: deserialized; sealed: decrypted). */
  hitBytes(e: L1Entry, self: unknown, args: unknown[]): unknown {
    if (e.sealed === null) {
      const v = this.decodePayload(e.bytes!);
      return this.returnsPromise ? Promise.resolve(v) : v;
    }
    return (this.entryValue(e) as Promise<unknown>).catch(() => {
      this.l1?.delete(e.key);
      return this.missAsync(self, args, this.fastKey(self, args), true);
    });
  }

  /** Store a synchronous miss's `value` in L1; returns what the caller gets (see #answer). */
  #storeLocal(ctx: KeyCtx, value: unknown): unknown {
    let payload: Uint8Array | null = null;
    let answer = value;
    // Primitives skip the serializer, except the ones it may change (as the async path does).
    const mayChange = !isPrimitive(value) || typeof value === "bigint" || Object.is(value, -0);
    if (mayChange && !this.config.l1.storeReferences) {
      try {
        payload = this.#l1Payload(value);
        answer = this.#answer(value, payload);
      } catch (e) {
        if (e instanceof ValueTooLargeError) this.#warnTooLarge(e);
        else if (!this.config.safeMode) throw e;
        else {
          this.#log.warn("{identity}: value not cacheable: {error}", {
            identity: this.identity,
            error: errMessage(e),
          });
        }
        return value;
      }
    }
    this.#storeL1(ctx, answer, payload, null);
    return answer;
  }

  /**
   * What a miss answers for `value`, serialized as `payload`: what every later hit returns. That
   * is `value` itself when the serializer vouches that it comes back unchanged (the usual case: no
   * decoding); otherwise (a `Map` read back as an object, `undefined` in an array read back as
   * `null`, any value of a custom serializer) the payload decoded. Top-level `undefined` is kept
   * apart from the payload (L2 flags it) and stays `undefined`, except in interop mode, whose
   * entries hold `null`.
   */
  #answer(value: unknown, payload: Uint8Array): unknown {
    if (this.config.interop) return interopReshapes(value) ? decodeInteropValue(payload) : value;
    if (value === undefined || !reshapes(this.serializer, payload)) return value;
    return this.serializer.deserialize(payload);
  }

  /** The serialized form L1 keeps of `value`; throws ValueTooLargeError over `maxValueSize`. */
  #l1Payload(value: unknown): Uint8Array {
    const c = this.config;
    const payload = c.interop ? encodeInteropValue(value) : this.serializer.serialize(value);
    return checkValueSize(payload, c.maxValueSize);
  }

  /** A value over `maxValueSize` is answered uncached: say so once per function. */
  #warnTooLarge(e: ValueTooLargeError): void {
    if (this.#warnedTooLarge) return;
    this.#warnedTooLarge = true;
    this.#log.warn("{identity}: value not cached: {error} (reported once per function)", {
      identity: this.identity,
      error: e.message,
    });
  }

  #countHit(l1: boolean): void {
    if (l1) this.l1HitCounter?.inc();
    else this.#series?.l2Hit();
    if (!this.collectStats) return;
    this.stats.hits++;
    if (l1) this.stats.l1Hits++;
    else this.stats.l2Hits++;
    this.stats.last = Date.now();
  }

  /** Asynchronous miss: single flight, L2, stampede lock, compute, store. */
  missAsync(
    self: unknown,
    args: unknown[],
    fast: ArgKey | undefined,
    l1Checked: boolean,
  ): Promise<unknown> {
    let ctx: KeyCtx;
    try {
      const tenant = this.callTenant(args);
      if (fast !== undefined) {
        const lk = tenantL1Key(fast, tenant);
        const p = this.inflight.get(lk);
        if (p !== undefined) return p;
        if (!l1Checked && this.l1 !== null) {
          const e = this.l1.get(lk);
          if (e !== undefined) return this.#hitL1(e, self, args) as Promise<unknown>;
          l1Checked = true;
        }
      }
      ctx = this.keys(self, args, fast, tenant);
    } catch (e) {
      if (!this.config.safeMode || !(e instanceof CacheKeyError)) return Promise.reject(e);
      return Promise.resolve(this.#uncached(self, args, e));
    }
    const p = this.inflight.get(ctx.l1Key);
    if (p !== undefined) return p;
    if (!l1Checked && this.l1 !== null) {
      const e = this.l1.get(ctx.l1Key);
      if (e !== undefined) return this.#hitL1(e, self, args) as Promise<unknown>;
    }
    const shared = this.#load(self, args, ctx);
    this.inflight.track(ctx.l1Key, shared);
    return shared;
  }

  async #load(self: unknown, args: unknown[], ctx: KeyCtx): Promise<unknown> {
    const epoch = this.epoch;
    const resolved = this.backend();
    const b = resolved instanceof Promise ? await resolved : resolved;
    if (b !== null && this.#unsubscribe === null) this.#subscribe(b);
    let stale: StaleValue | null = null;
    if (b !== null) {
      const io = { failed: false };
      const hit = await this.#readL2(b, ctx, io);
      if (hit !== null && !hit.stale) {
        this.#countHit(false);
        if (this.epoch === epoch) this.#storeL1(ctx, hit.value, hit.payload, hit.stored);
        return hit.value;
      }
      if (hit !== null) stale = l2Stale(hit);
      // L2 failing (error, open circuit, backpressure): no stampede lock, and the write of the
      // result does not hold up the answer (a call costs at most one L2 timeout).
      if (io.failed) return await this.#compute(self, args, ctx, b, epoch, stale, false);
      const st = this.config.stampede;
      const lock = b.capabilities.lock;
      if (st.enabled && lock && this.failsafe?.pending(ctx.l1Key) === undefined) {
        let handle = null;
        try {
          handle = await lock.acquire(ctx.backendKey + ":lock", {
            leaseMs: st.lease * 1000,
            waitMs: st.wait * 1000,
          });
        } catch (e) {
          this.#fail("lock", e);
        }
        try {
          // Whoever held the lock may have stored the value meanwhile.
          const again = await this.#readL2(b, ctx, io);
          if (again !== null && !again.stale) {
            this.#countHit(false);
            if (this.epoch === epoch) this.#storeL1(ctx, again.value, again.payload, again.stored);
            return again.value;
          }
          if (again !== null) stale = l2Stale(again);
          return await this.#compute(self, args, ctx, b, epoch, stale, !io.failed);
        } finally {
          if (handle !== null) {
            const release = () => {
              handle.release().catch((e) => this.#fail("unlock", e));
            };
            // A refresh that went on in the background (soft timeout) keeps the lock until it lands.
            const bg = this.failsafe?.pending(ctx.l1Key);
            if (bg === undefined) release();
            else bg.then(release, release);
          }
        }
      }
    }
    return await this.#compute(self, args, ctx, b, epoch, stale, true);
  }

  async #compute(
    self: unknown,
    args: unknown[],
    ctx: KeyCtx,
    b: Backend | null,
    epoch: number,
    stale: StaleValue | null,
    awaitWrite: boolean,
  ): Promise<unknown> {
    if (this.collectStats) {
      this.stats.misses++;
      this.stats.last = Date.now();
    }
    if (this.metrics !== null) {
      this.#series!.miss(this.l1 !== null, b !== null);
    }
    const fs = this.failsafe;
    if (fs === null) {
      const value = await this.fn.apply(self, args);
      return await this.#store(ctx, value, b, epoch, awaitWrite);
    }
    return await fs.run(ctx.l1Key, async () => {
      const value = await this.fn.apply(self, args);
      return await this.#store(ctx, value, b, epoch, awaitWrite);
    }, stale ?? fs.l1Stale(ctx.l1Key));
  }

  /** Store a computed `value` in L1 and L2; returns what the caller gets (see #answer). */
  async #store(
    ctx: KeyCtx,
    value: unknown,
    b: Backend | null,
    epoch: number,
    awaitWrite = true,
  ): Promise<unknown> {
    if (this.epoch !== epoch) return value; // invalidated meanwhile: do not resurrect
    let enc: { payload: Uint8Array; stored: Uint8Array } | null = null;
    let answer = value;
    try {
      if (b !== null || this.#cipher !== null) enc = await this.encodeStored(value, ctx);
      else if (!this.config.l1.storeReferences && value !== undefined) {
        const payload = this.#l1Payload(value);
        enc = { payload, stored: payload };
      }
      if (enc !== null) answer = this.#answer(value, enc.payload);
    } catch (e) {
      if (e instanceof ValueTooLargeError) {
        this.#warnTooLarge(e);
        return value;
      }
      if (!this.config.safeMode && e instanceof SerializationError) throw e;
      if (!this.config.safeMode && !(e instanceof CacheKitError)) {
        throw new SerializationError(
          `${this.identity}: cannot serialize the result: ${errMessage(e)}`,
          {
            cause: e,
          },
        );
      }
      this.#log.warn("{identity}: value not cacheable: {error}", {
        identity: this.identity,
        error: errMessage(e),
      });
      return value;
    }
    if (this.epoch !== epoch) return answer;
    this.#storeL1(ctx, answer, enc?.payload ?? null, enc?.stored ?? null);
    if (b !== null && enc !== null) {
      const write = this.#writeL2(b, ctx, enc.stored); // never rejects
      if (awaitWrite) await write;
    }
    return answer;
  }

  /** Stale-while-revalidate: refresh `e` in the background (one refresh at a time). */
  refresh(e: L1Entry, self: unknown, args: unknown[]): void {
    if (e.refreshing) return;
    e.refreshing = true;
    const epoch = this.epoch;
    queueMicrotask(() => {
      void (async () => {
        try {
          const tenant = this.callTenant(args);
          const ctx = this.keys(self, args, this.fastKey(self, args), tenant);
          const b = this.returnsPromise ? await this.backendAsync() : null;
          const value = await this.fn.apply(self, args);
          if (this.epoch === epoch && this.l1?.map.get(ctx.l1Key) === e) {
            await this.#store(ctx, value, b, epoch);
          }
        } catch (err) {
          this.#log.warn("{identity}: background refresh failed: {error}", {
            identity: this.identity,
            error: errMessage(err),
          });
        } finally {
          e.refreshing = false;
        }
      })();
    });
  }

  // ------------------------------------------------------------------ invalidation

  #bump(): void {
    this.epoch++;
    this.inflight.clear();
    this.failsafe?.forget();
  }

  /**
   * Mark in-flight work stale and evict the L1 entries matching `pred` (all when omitted).
   *
   * Invalidations call it twice: before their L2 deletion (so work already running does not
   * store) and after it, because a call made while the deletion was in flight could still read
   * the old L2 entry and put it back into L1.
   */
  evictLocal(pred?: (e: L1Entry) => boolean): void {
    this.#bump();
    if (pred !== undefined) {
      this.l1?.deleteWhere(pred);
      return;
    }
    this.l1?.clear();
    this.#byBackendKey.clear();
  }

  /** Remove the entry of one call from L1 and L2. */
  async invalidate(self: unknown, args: unknown[]): Promise<void> {
    const tenant = this.callTenant(args);
    const ctx = this.keys(self, args, this.fastKey(self, args), tenant);
    this.#bump();
    this.l1?.delete(ctx.l1Key);
    const b = await this.backendAsync();
    if (b === null) return;
    try {
      await b.delete(ctx.backendKey, this.#opts());
      this.#tracked.delete(ctx.backendKey);
    } catch (e) {
      this.#fail("delete", e);
    }
    this.#bump();
    this.l1?.delete(ctx.l1Key);
    this.publish(b, { level: "key", targets: [ctx.backendKey], reason: "delete" });
  }

  /** Prefix targets of this function's backend keys (every tenant: see {@linkcode ANY_TENANT}). */
  prefixes(): string[] {
    if (this.config.interop) return [this.#keyPrefix];
    return [ANY_TENANT + this.#keyPrefix];
  }

  /** Clear this function's entries in L1 and L2 (every tenant's). */
  async clear(): Promise<void> {
    this.evictLocal();
    const b = await this.backendAsync();
    if (b === null) return;
    const prefixes = this.prefixes();
    await this.#deletePrefixes(b, prefixes, [...this.#tracked]);
    this.#tracked.clear();
    this.#tagIndex.clear();
    this.evictLocal();
    this.publish(b, { level: "prefix", targets: prefixes });
  }

  async #deletePrefixes(b: Backend, prefixes: string[], tracked: string[]): Promise<void> {
    try {
      await deleteTargets(b, prefixes, this.#opts());
      // Keys the prefix may miss (truncated long keys) or a backend without prefix deletion.
      for (const k of tracked) await b.delete(k, this.#opts());
    } catch (e) {
      this.#fail("deleteByPrefix", e);
    }
  }

  /** The namespace that `clearNamespace(ns)` matches for this function. */
  get namespace(): string | null {
    return this.config.interop ? this.config.interop.namespace : this.config.namespace;
  }

  /** Evict L1 entries of a namespace and mark in-flight work stale (L2 is handled by the caller). */
  clearNamespaceLocal(): string[] {
    this.evictLocal();
    const tracked = [...this.#tracked];
    this.#tracked.clear();
    this.#tagIndex.clear();
    return tracked;
  }

  /** Evict L1 entries carrying any of `tags`; returns the L2 keys this process wrote with them. */
  invalidateTagsLocal(tags: ReadonlySet<string>): string[] {
    if (this.config.tags === null) return [];
    this.evictLocal(taggedWith(tags));
    const keys: string[] = [];
    for (const t of tags) {
      const s = this.#tagIndex.get(t);
      if (s) {
        keys.push(...s);
        this.#tagIndex.delete(t);
      }
    }
    return keys;
  }

  /**
   * Apply an invalidation event from another instance. Only events that concern this function
   * evict and mark in-flight work stale (other functions' writes on the same bus do not).
   */
  onRemoteEvent(ev: InvalidationEvent): void {
    const l1 = this.l1;
    if (l1 === null) return;
    switch (ev.level) {
      case "all":
        this.evictLocal();
        break;
      case "key": {
        let hit = false;
        for (const k of ev.targets) {
          const lk = this.#byBackendKey.get(k);
          if (lk !== undefined && l1.map.get(lk)?.backendKey === k) {
            l1.delete(lk);
            hit = true;
          }
          if (!hit && k.includes(this.#keyPrefix)) hit = true;
        }
        // A remote write only makes our L1 copy stale (evicted above); results computed here in
        // the meantime are just as fresh, so in-flight work stays. A remote deletion (or an event
        // without a reason) must stop work that started before it from storing its result.
        if (hit && ev.reason !== "write") this.#bump();
        break;
      }
      case "prefix": {
        const mine = this.prefixes();
        const relevant = ev.targets.some((p) => mine.some((q) => overlaps(p, q)));
        if (!relevant) break;
        this.#bump();
        l1.deleteWhere((e) =>
          e.backendKey !== null && ev.targets.some((p) => underTarget(e.backendKey!, p))
        );
        break;
      }
      case "tags": {
        if (this.config.tags !== null) this.evictLocal(taggedWith(new Set(ev.targets)));
        break;
      }
    }
  }

  /**
   * The invalidation bus is back after a gap (its subscription was lost, or failed and has now
   * succeeded): the events published meanwhile were missed and cannot be known, so every L1 entry
   * and every computation in flight may be stale. Drop them all.
   */
  onBusGap(): void {
    this.#busLost = false;
    if (this.l1 === null) return;
    const n = this.l1.size;
    this.evictLocal();
    this.#log.info("{identity}: invalidation bus reconnected; cleared {entries} L1 entries", {
      identity: this.identity,
      entries: n,
    });
  }

  /** Whether this function is missing remote invalidations now (its bus subscription is down). */
  #busDown(): boolean {
    if (this.#busLost) return true;
    const b = this.#backend;
    if (this.#unsubscribe === null || b === null || b === undefined) return false;
    return b.capabilities.invalidation?.subscriptionUp === false;
  }

  // ------------------------------------------------------------------ info & health

  info(): CacheInfo {
    const s = this.stats;
    return {
      hits: s.hits,
      misses: s.misses,
      l1Hits: s.l1Hits,
      l2Hits: s.l2Hits,
      l2Errors: s.l2Errors,
      staleHits: s.staleHits,
      l2AvgLatencyMs: s.l2Timed === 0 ? 0 : s.l2ReadMs / s.l2Timed,
      size: this.l1?.size ?? 0,
      bytes: this.l1?.bytes ?? 0,
      maxSize: this.l1 ? this.config.l1.maxEntries : 0,
      maxBytes: this.l1 ? this.config.l1.maxBytes : 0,
      lastOperationAt: s.last,
    };
  }

  /**
   * Health from what the last operations saw (no I/O); `fresh` is a report just made by
   * `checkHealth()`, whose status then counts too.
   */
  health(fresh: HealthReport | null = null): FunctionHealth {
    const b = this.#backend;
    const n = this.#consecutiveErrors;
    const threshold = this.config.circuitBreaker.failureThreshold;
    const circuit = b instanceof GuardedBackend ? b.circuitBreaker?.state ?? null : null;
    let status: HealthStatus = circuit === "open" || n >= threshold
      ? "unhealthy"
      : n === 0 && circuit !== "half_open"
      ? "healthy"
      : "degraded";
    if (this.#lastErrorKind === "authentication" && n > 0) status = "unhealthy";
    const l1 = {
      enabled: this.l1 !== null,
      entries: this.l1?.size ?? 0,
      bytes: this.l1?.bytes ?? 0,
      maxBytes: this.config.l1.maxBytes,
      maxEntries: this.config.l1.maxEntries,
    };
    const report = fresh ?? this.#lastReport;
    const components: HealthReport["components"] = { ...report?.components };
    const l1c: HealthComponent = { status: "healthy", details: { ...l1 } };
    components.l1 = l1c;
    if (fresh) status = worstStatus(status, fresh.status);
    if (this.#busDown()) {
      // L1 may serve values another instance invalidated: the events are not arriving.
      components.invalidation = {
        status: "degraded",
        message: "invalidation bus subscription is down: remote invalidations are being " +
          "missed (L1 is cleared when it is back)",
      };
      status = worstStatus(status, "degraded");
    }
    return {
      status,
      identity: this.identity,
      backend: b === null ? null : b === undefined ? "default" : b.type,
      l1,
      circuit,
      consecutiveErrors: n,
      lastError: this.#lastError,
      lastErrorKind: this.#lastErrorKind,
      staleHits: this.stats.staleHits,
      latencyMs: this.#lastProbe?.latencyMs ?? null,
      ...(this.#lastProbe?.details ? { details: this.#lastProbe.details } : {}),
      level: report?.level ?? null,
      checkedAt: report?.timestamp ?? null,
      components,
    };
  }

  /**
   * Probe the backend now through a `HealthChecker` at `level` and return the health.
   *
   * @param level `ping`, `basic` (default) or `full`.
   * @param probes Reports of backends already probed in the same check (shared backends).
   */
  async checkHealth(level: HealthLevel = "basic", probes?: ProbeCache): Promise<FunctionHealth> {
    const b = await this.backendAsync();
    if (b !== null) {
      const report = await backendReport(b, level, this.metrics, probes);
      this.#lastReport = report;
      const c = report.components.backend;
      const details = c?.details;
      this.#lastProbe = { latencyMs: c?.latencyMs ?? 0, details };
      if (c !== undefined && c.status !== "unhealthy") this.#ok();
      else {
        this.#consecutiveErrors = Math.max(
          this.#consecutiveErrors,
          this.config.circuitBreaker.failureThreshold,
        );
        this.#lastError = c?.message ?? "health check failed";
        if (typeof details?.kind === "string") this.#lastErrorKind = details.kind;
        else if (/WRONGPASS|NOAUTH|NOPERM|auth/i.test(this.#lastError)) {
          this.#lastErrorKind = "authentication";
        }
      }
    } else {
      this.#lastReport = {
        status: "healthy",
        level,
        timestamp: new Date().toISOString(),
        durationMs: 0,
        components: {},
      };
    }
    return this.health(this.#lastReport);
  }
}

// ------------------------------------------------------------------ metrics

const l1Tracked = new Map<string, Set<WeakRef<Engine>>>();

/** Report the L1 size of every function of a namespace (one provider per namespace). */
function trackL1(metrics: CacheMetrics, ns: string, engine: Engine): void {
  let set = l1Tracked.get(ns);
  if (set === undefined) {
    const refs = new Set<WeakRef<Engine>>();
    l1Tracked.set(ns, set = refs);
    metrics.trackL1(ns, () => {
      let bytes = 0;
      let entries = 0;
      for (const r of refs) {
        const e = r.deref();
        if (e === undefined) refs.delete(r);
        else if (e.l1 !== null) {
          bytes += e.l1.bytes;
          entries += e.l1.size;
        }
      }
      return { bytes, entries };
    });
  }
  set.add(new WeakRef(engine));
}

// ------------------------------------------------------------------ module-level invalidation

/** Where a module-level invalidation acts on L2 (`invalidateTags`, `clearNamespace`, …). */
export interface GroupInvalidationOptions {
  /**
   * The L2 backend to act on (and whose invalidation bus to publish on), instead of the backends
   * of this process's cached functions and the default backend.
   */
  backend?: Backend;
}

function unwrapped(b: Backend): Backend {
  return b instanceof GuardedBackend ? b.inner : b;
}

/**
 * The L2 backends a module-level invalidation acts on, each with the live engines using it: the
 * explicit `backend`, else the backends of the live engines plus the process default backend when
 * it exists or when no live engine has an L2 (a process that wraps nothing: an admin script, a
 * webhook worker).
 */
async function groupBackends(
  list: Engine[],
  explicit: Backend | undefined,
): Promise<Map<Backend, Engine[]>> {
  const out = new Map<Backend, Engine[]>();
  for (const e of list) {
    const b = await e.backendAsync();
    if (b === null) continue;
    const arr = out.get(b);
    if (arr) arr.push(e);
    else out.set(b, [e]);
  }
  if (explicit !== undefined) {
    const target = unwrapped(explicit);
    const es = [...out].filter(([b]) => unwrapped(b) === target).flatMap(([, es]) => es);
    return new Map([[explicit, es]]);
  }
  const pending = createdDefaultL2() ?? (out.size === 0 ? defaultL2() : null);
  const d = pending === null ? null : await pending.catch((err) => {
    log.warn("the default backend could not be created: {error}", { error: errMessage(err) });
    return null;
  });
  if (d !== null && ![...out.keys()].some((b) => unwrapped(b) === d)) out.set(d, []);
  return out;
}

/**
 * Publish `event` on `b`'s invalidation bus (awaited: a script that exits next still sends it),
 * unless every engine using `b` has `l1.invalidation` off.
 */
async function broadcast(
  b: Backend,
  es: Engine[],
  event: Omit<InvalidationEvent, "sender">,
): Promise<void> {
  const bus = b.capabilities.invalidation;
  if (!bus || (es.length > 0 && !es.some((e) => e.config.l1.invalidation))) return;
  try {
    await bus.publish(event);
  } catch (e) {
    log.warn("invalidation publish failed: {error}", { error: errMessage(e) });
  }
}

/** Invalidate every entry carrying any of `tags`, in every cached function of this process and L2. */
export async function invalidateTagsEverywhere(
  tags: string[],
  opts: GroupInvalidationOptions = {},
): Promise<void> {
  const set = new Set(tags);
  const list = liveEngines();
  const tracked = new Map<Engine, string[]>();
  for (const e of list) tracked.set(e, e.invalidateTagsLocal(set));
  for (const [b, es] of await groupBackends(list, opts.backend)) {
    try {
      if (b.capabilities.tags) await b.capabilities.tags.invalidateTags(tags);
      else for (const e of es) for (const k of tracked.get(e) ?? []) await b.delete(k);
    } catch (err) {
      log.warn("invalidateTags on {backend} failed: {error}", {
        backend: b.type,
        error: errMessage(err),
      });
    }
    // Calls made while L2 was being cleared may have read old entries back into L1.
    for (const e of es) if (e.config.tags !== null) e.evictLocal(taggedWith(set));
    await broadcast(b, es, { level: "tags", targets: tags });
  }
}

/**
 * Clear the prefix targets in L2 and the L1 of `matching` (the live engines they cover), on the
 * backends of every live engine (see {@linkcode groupBackends}), and broadcast them.
 */
async function clearEverywhere(
  what: string,
  matching: Engine[],
  prefixes: string[],
  opts: GroupInvalidationOptions,
): Promise<void> {
  const tracked = new Map<Engine, string[]>();
  for (const e of matching) tracked.set(e, e.clearNamespaceLocal());
  for (const [b, es] of await groupBackends(liveEngines(), opts.backend)) {
    try {
      await deleteTargets(b, prefixes);
      for (const e of es) for (const k of tracked.get(e) ?? []) await b.delete(k);
    } catch (err) {
      log.warn("{what} on {backend} failed: {error}", {
        what,
        backend: b.type,
        error: errMessage(err),
      });
    }
    // Calls made while L2 was being cleared may have read old entries back into L1.
    for (const e of es) if (tracked.has(e)) e.evictLocal();
    await broadcast(b, es, { level: "prefix", targets: prefixes });
  }
}

/** Clear namespace `ns` (every tenant) in every cached function of this process and in L2. */
export function clearNamespaceEverywhere(
  ns: string,
  opts: GroupInvalidationOptions = {},
): Promise<void> {
  const matching = liveEngines().filter((e) => e.namespace === ns);
  // `:func:` ends the namespace (`validateKeyPart`): `ns:a:` would also match namespace `a:b`.
  const prefixes = [`${ANY_TENANT}ns:${ns}:func:`];
  // Interop keys are bare: delete `{ns}:` only when an interop function of this process owns it.
  if (matching.some((e) => e.config.interop !== null)) prefixes.push(`${ns}:`);
  return clearEverywhere("clearNamespace", matching, prefixes, opts);
}

/**
 * Clear every entry (every tenant) of the cached function with identity `identity` in namespace
 * `ns`, whether or not this process wraps it.
 */
export function clearFunctionEverywhere(
  identity: string,
  ns: string | null,
  opts: GroupInvalidationOptions = {},
): Promise<void> {
  const matching = liveEngines().filter((e) =>
    e.config.interop === null && e.identity === identity && e.config.namespace === ns
  );
  const prefix = `${ANY_TENANT}${ns ? `ns:${ns}:func:` : "func:"}${identity}:args:`;
  return clearEverywhere("clearFunction", matching, [prefix], opts);
}
