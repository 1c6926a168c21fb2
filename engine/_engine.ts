/**
 * The state of one cached function (`Engine`): its configuration, L1, L2 backend (resolved
 * lazily, with its invalidation-bus subscription), memos, statistics and failure record.
 *
 * The behaviour lives beside it, one concern a file, as functions of the engine: `_call.ts` (the
 * call flow, where `cache.ts` enters), `_keys.ts`, `_l2.ts`, `_stored.ts`, `_invalidation.ts`,
 * `_status.ts`, `_registry.ts`. Plain functions rather than methods of several classes: a call
 * costs what a method call cost, with no object or closure between the layers.
 *
 * Internal: the public surface is `cache.ts`, `decorator.ts` and the wrapper's methods.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import type { ResolvedConfig } from "../config/options.ts";
import type { Serializer } from "../serializers/types.ts";
import { BackendError, CacheConfigError } from "../errors.ts";
import { KEY_PREFIX_LENGTH, type SerializerName } from "../protocol/keys.ts";
import { type ReadPolicy, type StoredCodec, wireName } from "../protocol/stored_value.ts";
import { storedFraming } from "../protocol/internal.ts";
import type { TenantCipher } from "../protocol/encryption.ts";
import { type CacheLogger, getCacheLogger, plainTextLogger } from "../health/logging.ts";
import type { HealthReport } from "../health/health_checker.ts";
import { type CacheMetrics, type CounterChild, getDefaultMetrics } from "../health/metrics.ts";
import { unrefTimer } from "../backends/internal.ts";
import type { GuardedOperationOptions } from "../reliability/guarded_backend.ts";
import type { ArgKey } from "./_argkey.ts";
import type { CallKeys } from "./_keys.ts";
import { defaultBackendGeneration, guard, resolveBackend } from "./_backend.ts";
import { FailSafe } from "./_failsafe.ts";
import { eagerMs, l1TtlMs, l2Ttl, swrMs } from "./_ttl.ts";
import { InflightTable } from "./_inflight.ts";
import { onBusGap, onRemoteEvent } from "./_invalidation.ts";
import { deleteLateWrites, LateWrites } from "./_late_writes.ts";
import { L1Cache, type L1Entry } from "./l1.ts";
import { EngineSeries } from "./_metrics.ts";
import { registerEngine, trackL1 } from "./_registry.ts";
import { watchMeter } from "./_otel_metrics.ts";
import { SecureKeys } from "./_secure.ts";
import { copiesInput, prefixDecoder, resolveSerializer } from "./_serializer.ts";
import { errMessage, recordFailure } from "./_status.ts";
import { l1EntryValue } from "./_l1_store.ts";
import { WriteMarks } from "./_write_marks.ts";
import {
  type CacheEventDetail,
  type CacheEventTarget,
  type CacheEventType,
  emit,
  engineEvents,
  updateObserved,
  watchCircuit,
} from "./_events.ts";
import { rootlessIdentity, rootlessMessage } from "./identity.ts";
import { consoleMessage } from "../health/internal.ts";
import { envConfig } from "../config/env.ts";

const log = getCacheLogger("engine");

/**
 * A function with an L2 whose identity is its module's absolute path (no package root found,
 * `identity.ts`): its keys change with the checkout's location. A warning record, and the first of
 * each kind on the console while no logging is configured.
 */
function warnRootless(eng: Engine): void {
  const rootless = rootlessIdentity(eng.identity);
  if (rootless === undefined) return;
  const message = rootlessMessage(eng.identity, rootless);
  consoleMessage(`identity-${rootless.reason}`, message, envConfig().consoleNotices);
  eng.log.warn("{message}", { message });
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
  /**
   * A key-based cache (`createCache`): the start of its protocol keys (`obj:…`, or its interop
   * prefix), instead of the function layout. Its entries carry per-call tags.
   */
  objectPrefix?: string;
}

const SERIALIZER_NAMES: Record<string, SerializerName> = {
  s: "std",
  a: "auto",
  o: "orjson",
  w: "arrow",
};

/** After a failed invalidation-bus subscription, the next attempt waits this long (ms). */
const SUBSCRIBE_RETRY_MS = 1000;
/** Unsubscribes the bus handler of an engine that was garbage-collected. */
const unsubscribeOnCollect = new FinalizationRegistry<Promise<() => Promise<void>>>((sub) => {
  sub.then((unsubscribe) => unsubscribe()).catch(() => {});
});

/** One cached function's state. */
export class Engine {
  // The engine's state is shared by the files of engine/ (hence public); it is not an API.
  /** The wrapped function. */
  readonly fn: (...args: unknown[]) => unknown;
  readonly config: ResolvedConfig;
  readonly identity: string;
  /** This function's logger (`monitoring.structuredLogging` decides its records' shape). */
  readonly log: CacheLogger;
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
  readonly metricNs: string;
  /** The `function` label of this function's series (its identity, bounded), or `""`. */
  readonly metricFn: string;
  /**
   * Options of this function's L2 `get` and `set` (the `function` label of the guard's latency
   * series), or `undefined` without metrics. One object for every call.
   */
  readonly l2Opts: GuardedOperationOptions | undefined;
  /** Pre-bound Prometheus series (hot paths), or `null`. */
  readonly series: EngineSeries | null;
  /** Fail-safe (`staleTtl`), or `null`. */
  readonly failsafe: FailSafe | null;
  /** TTL written to L2: `ttl + staleTtl` with the fail-safe, else `ttl`. */
  readonly l2Ttl: number | null;
  /** Whether the wrapper returns promises (L2 configured, or the function is asynchronous). */
  returnsPromise: boolean;
  readonly collectStats: boolean;
  readonly inflight: InflightTable;
  /** L1 entries whose stale-while-revalidate refresh is running (rare: a side table). */
  readonly refreshing: Set<L1Entry> = new Set();
  /** Bumped by every invalidation: a computation that started before one does not store. */
  epoch = 0;
  /** Hard timeout, ms (`0`: off; `_hard_timeout.ts`). */
  readonly hardMs: number;
  /** Computations still running after a hard timeout, by L1 key (`_hard_timeout.ts`). */
  readonly lateWork: Map<ArgKey, Promise<unknown>> = new Map();
  /**
   * A cache object's `expire` calls reading L2 to write the entry back, and key rotation's rewrites
   * of entries read under a previous master key (`rotate` in `_l2.ts`), counted by backend key: a
   * write of the key meanwhile (`supersede`, or one announced by another instance) stops them.
   */
  readonly expiring: Map<string, number> = new Map();
  /** The writes an L1 fill from an earlier L2 read must not undo (`_write_marks.ts`). */
  readonly writes: WriteMarks = new WriteMarks();
  /**
   * L2 writes issued and not landed yet (`writeL2`): an invalidation deletes after them
   * (`writesLanded` in `_invalidation.ts`), so that none lands after its deletion.
   */
  readonly l2Writes: Set<Promise<void>> = new Set();
  /**
   * Recent writes of computed values, checked against the bus's invalidations that arrive after
   * them (`_late_writes.ts`); made when the engine subscribes to a bus.
   */
  lateWrites: LateWrites | null = null;
  /** A key-based cache (`createCache`): tags come with each call, not from a `tags` option. */
  readonly objectCache: boolean;
  readonly l1TtlMs: number;
  readonly swrMs: number;
  /**
   * Eager refresh point, ms after an entry is stored (`eagerRefresh` of the TTL, or of the L1
   * lifetime when that comes first); `Infinity` when off. The entry's refresh point is the earlier
   * of this and the jittered {@linkcode swrMs}.
   */
  readonly eagerMs: number;
  readonly tenantAware: boolean;
  /** Start of this function's protocol keys (`ns:…:func:…:args:` or the interop prefix). */
  readonly keyPrefix: string;
  /**
   * What every backend key of this function holds: {@linkcode Engine.keyPrefix} as a final key
   * has it (spaces and line breaks as `_`), cut to its first `KEY_PREFIX_LENGTH` code points (a
   * long key is shortened to those and a hash: `finalizeKey`, `customKey`). Remote key events are
   * matched against it (`_invalidation.ts`).
   */
  readonly keyMark: string;
  /** The serializer's protocol name (a key segment). */
  readonly serializerName: SerializerName;
  /** What this function accepts from L2 (`_stored_read.ts`), from its configuration alone. */
  readonly readPolicy: ReadPolicy;
  /** The stored-value codec of this function (`protocol/_stored_codec.ts`), fixed at wrap time. */
  readonly codec: StoredCodec;
  /** L2 reads started (picks the sampled ones; see `readL2` in `_l2.ts`). */
  l2Started = 0;
  /** The score of recent first reads, misses up and hits down (`firstReadLocks` in `_l2_lock.ts`). */
  firstReads = 1;
  /** Whether a value over `maxValueSize` was reported (once per function). */
  warnedTooLarge = false;
  /**
   * Whether the serializer's `prepare` (loading `apache-arrow` for `"arrow"`) has resolved: `load`
   * awaits it before the first call reaches L2 or the function.
   */
  serializerReady = true;
  /** Secure mode: the tenant cipher, or `null`. */
  readonly cipher: TenantCipher | null;
  /** Secure mode: key ring and tenant segments (see `_secure.ts`), or `null`. */
  readonly secure: SecureKeys | null;
  /** The L2 backend: `undefined` until the default is resolved, `null` for L1 only. */
  l2Backend: Backend | null | undefined;
  /** The default backend being resolved, or `null`. */
  backendPromise: Promise<Backend | null> | null = null;
  /** `closeDefaultBackend()` generation the default backend was resolved in. */
  backendGen = -1;
  /** Whether the backend is the process default (resolved again after `closeDefaultBackend()`). */
  readonly sharedDefault: boolean;
  /** The invalidation-bus subscription (resolves to its unsubscribe), or `null`. */
  unsubscribe: Promise<() => Promise<void>> | null = null;
  /** No new subscription attempt before this time (ms since the epoch). */
  subscribeRetryAt = 0;
  /** The pending self-retry of a failed subscription (cleared by any later attempt). */
  subscribeRetryTimer: ReturnType<typeof setTimeout> | null = null;
  /** The bus subscription failed and no later one succeeded yet (remote events are missed). */
  busLost = false;
  /**
   * L1 key by backend key (remote key events), while {@linkcode indexLive}; read it through
   * `backendIndex` (`_l1_store.ts`), which builds it when it is not.
   */
  readonly byBackendKey: Map<string, ArgKey> = new Map();
  /**
   * Whether {@linkcode byBackendKey} is kept up to date by every L1 store: from the first remote
   * key event on, until as many stores as would fill it twice went by without one (then it is
   * dropped, and the next event builds it again from the entries).
   */
  indexLive = false;
  /** Stores since the last remote key event, while {@linkcode indexLive}. */
  indexIdle = 0;
  /**
   * Whether remote invalidation events can reach this L1 (an L2 and `l1.invalidation`): only
   * then do entries keep their backend key and {@linkcode byBackendKey} index them.
   */
  readonly indexL1: boolean;
  /** Protocol key by user key, for a cache object's keys (`_object_keys.ts`). */
  readonly protoKeys: Map<ArgKey, string> = new Map();
  /** The call keys' memo and shared parts, from the first keyed call (`keyContext`, `_keys.ts`). */
  callKeys: CallKeys | null = null;
  /** Backend keys of tenant-less calls by protocol key (`backendKeyOf` in `_keys.ts`). */
  readonly defaultBackendKeys: Map<string, string> = new Map();
  /** Backend keys this process wrote (deleted by `cacheClear()` even where a prefix misses). */
  readonly tracked: Set<string> = new Set();
  /** Backend keys this process wrote, by tag. */
  readonly tagIndex: Map<string, Set<string>> = new Map();
  /** Failure record (`_status.ts`): consecutive failed L2 operations, last error, its kind. */
  consecutiveErrors = 0;
  lastError: string | null = null;
  lastErrorKind: string | null = null;
  /** The last `checkHealth()` report, or `null`. */
  lastReport: HealthReport | null = null;
  /** Whether an authentication failure was logged (once per function). */
  authReported = false;
  /** The last backend probe of `checkHealth()`, or `null`. */
  lastProbe: { latencyMs: number; details?: Record<string, unknown> } | null = null;
  /** This function's events (`f.events`; `_events.ts`). */
  readonly events: CacheEventTarget;
  /** Whether an event listener (this function's or the global one) is registered. */
  listening = false;
  /** Whether calls leave the wrapper's inlined hit for the observed path (listener or tracing). */
  observed = false;

  constructor(spec: EngineSpec) {
    const c = spec.config;
    this.fn = spec.fn as (...args: unknown[]) => unknown;
    this.config = c;
    this.inflight = new InflightTable(c.l1.copy !== "none");
    this.identity = spec.identity;
    // monitoring.structuredLogging: records carry the function's context as properties a sink can
    // index, or are one line of plain text each.
    this.log = c.monitoring.structuredLogging
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
    this.serializerName = name;
    // cachekit-py 0.3.0 writes "default" for its MessagePack serializer and refuses other names.
    this.readPolicy = {
      serializer: this.serializer,
      acceptNames: new Set([wireName(this.serializer), this.serializer.name]),
      integrityChecking: c.integrityChecking,
      // A declared size over `maxValueSize` is refused before anything is allocated.
      limits: { maxSize: c.maxValueSize },
      // A built-in serializer copies what it keeps: decompress into the shared scratch buffer.
      scratch: copiesInput(this.serializer),
      // std reads the envelope's data where the codec left it, in a view reused by every read.
      prefix: prefixDecoder(this.serializer),
      // auto stores what cachekit-py 0.3.0's auto stores, not our envelope (arrow takes the
      // digest layout by its format, `protocol/_digest_layout.ts`).
      framing: c.serializer === "auto" ? storedFraming(c.serializer) : null,
    };
    this.serializerReady = this.serializer.prepare === undefined;
    // Not yet cross-checked with cachekit-py's encryption for these: refused rather than guessed.
    if (
      (c.serializer === "arrow" || c.serializer === "auto") && (c.encryption.enabled || c.interop)
    ) {
      throw new CacheConfigError(
        "serializer",
        this.serializer.name,
        `"std" or "json" with ${
          c.interop ? "interop" : "encryption"
        } (serializer "${this.serializer.name}" does not support it yet)`,
      );
    }
    this.l1 = c.l1.enabled
      ? new L1Cache({
        maxBytes: c.l1.maxBytes,
        maxEntries: c.l1.maxEntries,
        staleMs: c.staleTtl * 1000,
      })
      : null;
    this.indexL1 = c.l1.enabled && c.l1.invalidation && c.backend !== null;
    this.sharedDefault = c.backend === "default" && c.preset !== "test";
    this.l2Backend = c.backend === "default"
      ? undefined
      : c.backend === null
      ? null
      : guard(c.backend, c);
    this.returnsPromise = c.backend !== null ||
      (spec.fn as { constructor?: { name?: string } }).constructor?.name === "AsyncFunction";
    // L1 entries expire `expiryBuffer` s before the L2 TTL (never below half of it); L1 only: the TTL.
    this.l1TtlMs = l1TtlMs(c, c.ttl);
    this.swrMs = swrMs(c, this.l1TtlMs);
    this.eagerMs = eagerMs(c, c.ttl, this.l1TtlMs);
    this.tenantAware = c.encryption.enabled || typeof c.encryption.tenant === "function" ||
      typeof c.encryption.tenant === "string";
    const ns = c.namespace;
    this.objectCache = spec.objectPrefix !== undefined;
    this.keyPrefix = spec.objectPrefix ??
      (c.interop
        ? `${c.interop.namespace}:${c.interop.operation}:`
        : (ns ? `ns:${ns}:func:` : "func:") + this.identity + ":args:");
    this.keyMark = Array.from(this.keyPrefix.replace(/[ \n\r]/g, "_")).slice(0, KEY_PREFIX_LENGTH)
      .join("");
    this.hardMs = c.hardTimeout * 1000;
    this.secure = c.encryption.enabled ? new SecureKeys(c.encryption) : null;
    this.cipher = this.secure?.cipher ?? null;
    this.codec = {
      identity: this.identity,
      serializer: this.serializer,
      policy: this.readPolicy,
      wire: c.wire,
      envelopeProtocol: c.envelopeProtocol,
      secure: this.secure,
    };
    this.metricNs = (c.interop ? c.interop.namespace : c.namespace) ?? "default";
    this.metrics = c.monitoring.prometheus ? getDefaultMetrics() : null;
    this.metricFn = this.metrics?.functionLabel(this.identity) ?? "";
    this.l2Opts = this.metrics !== null ? { metricFunction: this.metricFn } : undefined;
    this.l1HitCounter = this.metrics?.hits.labels({
      namespace: this.metricNs,
      function: this.metricFn,
      layer: "l1",
    }) ?? null;
    this.series = this.metrics !== null
      ? new EngineSeries(this.metrics, this.metricNs, this.metricFn, this.serializer.name)
      : null;
    this.failsafe = c.staleTtl > 0 ? new FailSafe(this, c.staleTtl, c.softTimeout) : null;
    this.l2Ttl = l2Ttl(c, c.ttl);
    this.events = engineEvents(this);
    updateObserved(this);
    watchCircuit(this, this.l2Backend);
    registerEngine(this);
    watchMeter(); // OpenTelemetry's call counters read every function's counts (`_otel_metrics.ts`)
    if (this.metrics !== null && this.l1 !== null) trackL1(this.metrics, this.metricNs, this);
    if (c.backend !== null && c.preset !== "test") warnRootless(this);
  }

  /** Emit `type` to this function's listeners (fail-safe events; see `_events.ts`). */
  emitEvent(type: CacheEventType, extra: Partial<CacheEventDetail>): void {
    emit(this, type, extra.layer ?? null, extra.durationMs ?? null, extra.key ?? null, extra);
  }

  /** Read an L1 entry's value (any kind; see `_l1_store.ts`). */
  entryValue(e: L1Entry): unknown {
    return l1EntryValue(this, e);
  }

  /** The L2 backend (created lazily for `"default"`), or `null`. */
  backend(): Backend | null | Promise<Backend | null> {
    if (this.l2Backend !== undefined) {
      if (this.sharedDefault && this.backendGen !== defaultBackendGeneration()) {
        // closeDefaultBackend() was called: resolve the (new) default again.
        this.l2Backend = undefined;
        this.unsubscribe = null;
      } else return this.l2Backend;
    }
    const gen = defaultBackendGeneration();
    return this.backendPromise ??= resolveBackend(this.config).then((b) => {
      this.l2Backend = b;
      watchCircuit(this, b);
      this.backendGen = gen;
      this.backendPromise = null;
      this.subscribe(b);
      return b;
    }, (e) => {
      this.backendPromise = null;
      recordFailure(this, "create", e);
      return null;
    });
  }

  /** The L2 backend, awaited (subscribing to its bus if not yet done), or `null`. */
  async backendAsync(): Promise<Backend | null> {
    const b = this.backend();
    if (b === null || !(b instanceof Promise)) {
      if (b !== null && this.unsubscribe === null) this.subscribe(b);
      return b;
    }
    return await b;
  }

  /** Subscribe to the backend's invalidation bus (once; retried after a failure). */
  subscribe(b: Backend | null): void {
    if (b === null || this.unsubscribe !== null || !this.config.l1.invalidation) return;
    const bus = b.capabilities.invalidation;
    if (!bus || this.l1 === null || Date.now() < this.subscribeRetryAt) return;
    if (this.subscribeRetryTimer !== null) {
      clearTimeout(this.subscribeRetryTimer);
      this.subscribeRetryTimer = null;
    }
    const ref = new WeakRef(this);
    this.lateWrites ??= new LateWrites();
    const sub = bus.subscribe(
      (ev) => {
        const self = ref.deref();
        if (self === undefined) return;
        onRemoteEvent(self, ev);
        deleteLateWrites(self, b, ev);
      },
      () => {
        const self = ref.deref();
        if (self !== undefined) onBusGap(self);
      },
      () => {
        const self = ref.deref();
        if (self !== undefined && self.listening) {
          emit(self, "bus", "l2", null, null, { bus: "disconnected", backend: b.type });
        }
      },
    );
    this.unsubscribe = sub;
    // A collected engine's handler (a dead WeakRef) would stay on the bus for good: release it.
    unsubscribeOnCollect.register(this, sub, sub);
    sub.then(() => {
      // Subscribed again after a failed attempt: what was cached meanwhile may have missed events.
      if (this.busLost) onBusGap(this);
    }, (e) => {
      if (this.listening && !this.busLost) {
        emit(this, "bus", "l2", null, null, { bus: "disconnected", backend: b.type });
      }
      // Failed (e.g. Redis unreachable at first use): try again on a later miss, at most once per
      // SUBSCRIBE_RETRY_MS, instead of running without remote invalidations for good.
      unsubscribeOnCollect.unregister(sub);
      if (this.unsubscribe === sub) this.unsubscribe = null;
      this.busLost = true;
      this.subscribeRetryAt = Date.now() + SUBSCRIBE_RETRY_MS;
      const kind = e instanceof BackendError ? e.kind : "unknown";
      if (kind === "closed") {
        // The application closed the backend: nothing to retry, nothing to warn about.
        this.log.debug("{identity}: invalidation subscribe not done: {error}", {
          identity: this.identity,
          error: errMessage(e),
        });
        return;
      }
      if (kind !== "permanent") {
        // Retry by itself too: a function answered from L1 alone never misses, so it would never
        // resubscribe (and never clear what it cached while missing events).
        const timer = setTimeout(() => {
          const self = ref.deref();
          if (self === undefined) return;
          self.subscribeRetryTimer = null;
          if (self.l2Backend !== b) return;
          self.subscribeRetryAt = 0;
          self.subscribe(b);
        }, SUBSCRIBE_RETRY_MS);
        unrefTimer(timer);
        this.subscribeRetryTimer = timer;
      }
      this.log.warn("{identity}: invalidation subscribe failed (retried later): {error}", {
        identity: this.identity,
        error: errMessage(e),
      });
    });
  }

  /** The namespace that `clearNamespace(ns)` matches for this function. */
  get namespace(): string | null {
    return this.config.interop ? this.config.interop.namespace : this.config.namespace;
  }
}
