/**
 * `cache(fn, options?)`: one line around a function, values kept in an in-process L1 in front of
 * an L2 backend, with the presets `cache.minimal`, `cache.dev`, `cache.test`, `cache.production`
 * and `cache.secure` (same signature).
 *
 * Types: parameters and the return type of `fn` are kept. With `backend: null` (L1 only) the
 * wrapper has exactly `fn`'s type, so a synchronous function stays synchronous; with an L2 (the
 * default) the wrapper returns a `Promise` of the result.
 *
 * Behaviour: concurrent callers of one cold key share one call (single flight); a rejected call or
 * a thrown error is not cached; a result can choose its own TTL and tags, or not to be cached
 * (`ttl` as a function, `cacheIf`, `resultTags`, and `cacheContext()` inside the function: see
 * `factory_context.ts`); `f.uncached(...)` bypasses the cache and `f.refresh(...)` recomputes; an L2 failure never turns a successful call into an error (it is
 * logged and the call answers from L1 or the function). See the README for the options, presets
 * and the function-identity rule ({@link ./identity.ts}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, MemoryBackend } from "@cachekit/core";
 *
 * let calls = 0;
 * const square = cache(async (n: number) => {
 *   calls++;
 *   return n * n;
 * }, { name: "docs.square", ttl: 60, backend: new MemoryBackend() });
 * assert.equal(await square(4), 16);
 * assert.equal(await square(4), 16);
 * assert.equal(calls, 1);
 * assert.equal(square.cacheInfo().l1Hits, 1);
 * ```
 *
 * @module
 */
import type { CacheOptions, PresetName, ResolvedConfig } from "./config/options.ts";
import { resolveConfig } from "./config/resolve.ts";
import { CacheConfigError } from "./errors.ts";
import { deriveIdentity, registerIdentity, validateKeyPart } from "./engine/identity.ts";
import {
  type ArgKey,
  argKey,
  type CacheInfo,
  cacheInfo,
  callUncached,
  canonicalArgKeys,
  checkFunctionHealth,
  checkSignal,
  clearEngine,
  clearFunctionEverywhere,
  clearNamespaceEverywhere,
  Engine,
  fastKey,
  Flight,
  flightOf,
  forceRefresh,
  type FunctionHealth,
  functionHealth,
  type GroupInvalidationOptions,
  hitNow,
  hitValue,
  invalidateCall,
  invalidateTagsEverywhere,
  lookupAsync,
  lookupSync,
  missAsync,
  missSync,
  observedCall,
  pythonKeyed,
  refresh,
  tracingActive,
  waitFor,
} from "./engine/internal.ts";
import type { CacheEventTarget, CallResult } from "./engine/internal.ts";
import { type L1Entry, sharedAnswer } from "./engine/l1.ts";
import { tenantContextUsed } from "./tenant.ts";
import type { HealthLevel } from "./health/health_checker.ts";

export type { CacheInfo, FunctionHealth, GroupInvalidationOptions } from "./engine/internal.ts";

/**
 * What `f.withStatus(...args)` returns for a wrapper returning `R`: a promise of a
 * {@linkcode CallResult} for an asynchronous wrapper, the `CallResult` itself for a synchronous
 * (L1-only) one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache } from "@cachekit/core";
 *
 * const double = cache((n: number) => n * 2, { name: "docs.status.sync", backend: null });
 * const r = double.withStatus(21); // synchronous: a CallResult<number>
 * assert.equal(r.value, 42);
 * assert.equal(double.withStatus(21).status, "hit");
 * ```
 */
export type WithStatus<R> = R extends PromiseLike<infer U> ? Promise<CallResult<U>> : CallResult<R>;

/**
 * The methods every cached function carries. `A` is the wrapped function's parameter list, `R`
 * what a call of the wrapper returns (a `Promise` of the result with an L2).
 */
export interface CacheControls<A extends unknown[], R = unknown> {
  /**
   * Call the function as the wrapper does and say how the call was answered: `{ value, status,
   * layer, ageMs, expiresInMs, key }` (status `hit`, `stale`, `miss`, `joined`, `uncached`;
   * layer `l1`, `l2`, `source`). Plain calls pay nothing for it.
   */
  withStatus(...args: A): WithStatus<R>;
  /**
   * This function's events (`hit`, `miss`, `stale`, `set`, `delete`, `invalidate`, `error`,
   * `circuit`, `timeout`, `bus`): an `EventTarget` of {@linkcode CacheEvent}s. Nothing is built
   * while no listener is registered here or on the global `cacheEvents`.
   */
  readonly events: CacheEventTarget;
  /** Hit/miss statistics and L1 size (cachekit-py's `cache_info()`). */
  cacheInfo(): CacheInfo;
  /** Remove every entry of this function from L1 and L2 (every tenant's). */
  cacheClear(): Promise<void>;
  /** Remove the entry of one call (same arguments as the function). */
  invalidate(...args: A): Promise<void>;
  /**
   * Call the function itself, bypassing the cache: nothing is read, stored or counted
   * (cachekit-py's `_bypass_cache=True`). Returns what the wrapper would (a `Promise` with an L2).
   */
  uncached(...args: A): R;
  /**
   * Recompute the entry of one call now, whatever L1 and L2 hold, store the result and answer it.
   * Concurrent refreshes of one call share one computation, calls of it that miss meanwhile join
   * it, and across processes it takes the stampede lock; it counts as a miss. The fail-safe, the
   * factory context and the adaptive options apply as on a miss.
   */
  refresh(...args: A): R;
  /** Remove every entry carrying any of `tags`, in every cached function and their backends. */
  invalidateTags(...tags: string[]): Promise<void>;
  /** Remove every entry of namespace `ns` (default: this function's namespace), every tenant's. */
  clearNamespace(ns?: string): Promise<void>;
  /** Health from what the last operations saw (no I/O). */
  getHealthStatus(): FunctionHealth;
  /**
   * Probe the backend now through a `HealthChecker` at `level` (`ping`, `basic` (default), `full`)
   * and return the health (components: backend ping and latency, circuit, pool, L1, …).
   */
  checkHealth(level?: HealthLevel): Promise<FunctionHealth>;
  /**
   * Call the function with a signal: when `signal` aborts, this call stops waiting and rejects
   * with the signal's reason. The computation goes on for the other callers sharing it; its own
   * signal (`cacheContext().signal`) aborts only when every caller waiting for it has aborted.
   * The result is a promise even for a synchronous L1-only function.
   */
  withSignal(signal: AbortSignal, ...args: A): Promise<Awaited<R>>;
  /** The function identity used in keys (`func:` segment). */
  readonly identity: string;
  /** The resolved configuration. */
  readonly config: ResolvedConfig;
}

/** A cached function: the call signature `(...args: A) => R` plus {@linkcode CacheControls}. */
export type CachedFunction<A extends unknown[], R> = ((...args: A) => R) & CacheControls<A, R>;

/** Options that make a cache L1-only (`backend: null`): the wrapper keeps the function's type. */
export type L1OnlyOptions<A extends unknown[], R = unknown> = CacheOptions<A, R> & {
  backend: null;
};

/** The signature of `cache` and of each preset. */
export interface CacheFunction {
  /** L1 only: the wrapper has `fn`'s exact type (a sync function stays sync). */
  <A extends unknown[], R>(
    fn: (...args: A) => R,
    options: L1OnlyOptions<A, Awaited<R>>,
  ): CachedFunction<A, R>;
  /** With an L2 backend (default): the wrapper returns a `Promise` of the result. */
  <A extends unknown[], R>(
    fn: (...args: A) => R,
    options?: CacheOptions<A, Awaited<R>>,
  ): CachedFunction<A, Promise<Awaited<R>>>;
}

/** `cache` with its presets attached. */
export interface CacheWithPresets extends CacheFunction {
  /** Speed first: no integrity envelope, no breaker/timeout, no SWR, no stats. */
  readonly minimal: CacheFunction;
  /** Development: integrity, breaker, timeouts, SWR and structured logs. */
  readonly dev: CacheFunction;
  /** Tests: a fresh `MemoryBackend` per function unless given one; no reliability layers, no SWR. */
  readonly test: CacheFunction;
  /** Production: everything on, L1 invalidation across instances, metrics. */
  readonly production: CacheFunction;
  /** Production + encryption (master key required; integrity checking cannot be turned off). */
  readonly secure: CacheFunction;
}

/** Internal knobs used by the decorator. */
export interface WrapInternals {
  /** Identity computed by the caller (skips derivation). */
  identity?: string;
  /** Instance key of a decorated method. */
  instanceKey?: ((self: unknown) => string) | null;
  /** Config already resolved (decorator: at decoration time). */
  config?: ResolvedConfig;
}

/**
 * Wrap `fn` (shared by `cache`, the presets and the decorator).
 *
 * @param fn The function.
 * @param options Options.
 * @param preset Preset name.
 * @param internals Decorator internals.
 * @returns The cached function.
 */
export function wrap<A extends unknown[], R>(
  fn: (...args: A) => R,
  options: CacheOptions<A, Awaited<R>> | undefined,
  preset: PresetName | undefined,
  internals: WrapInternals = {},
): CachedFunction<A, R> {
  if (typeof fn !== "function") throw new CacheConfigError("fn", fn, "a function to cache");
  const config = internals.config ?? resolveConfig(options ?? {}, preset);
  let identity: string;
  let space: string;
  if (config.interop) {
    identity = config.interop.operation;
    space = `interop:${config.interop.namespace}`;
  } else {
    identity = internals.identity ??
      deriveIdentity(fn as (...args: never[]) => unknown, {
        name: config.name,
        namespace: config.namespace,
      });
    validateKeyPart("name", identity);
    space = config.namespace ?? "";
  }
  registerIdentity(space, identity, fn as (...args: never[]) => unknown);
  const engine = new Engine({
    fn: fn as (...args: unknown[]) => unknown,
    config,
    identity,
    instanceKey: internals.instanceKey ?? null,
  });
  const l1 = engine.l1;
  const map = l1?.map;
  // `pythonArgs`: the key of the Python call it maps to, built by `fastKey` (engine/_keys.ts).
  const simpleKey = config.key === null && engine.instanceKey === null && !pythonKeyed(config);
  /** Arguments hashed alike share one L1 key (`engine/_keys.ts`). */
  const canonicalKeys = canonicalArgKeys(config);
  const tenantAware = engine.tenantAware;
  const collect = engine.collectStats;
  const stats = engine.stats;
  const hitCounter = engine.l1HitCounter;

  /** A key/instanceKey function threw: an asynchronous wrapper rejects, it never throws. */
  const keyFailed = (e: unknown): unknown => {
    if (engine.returnsPromise) return Promise.reject(e);
    throw e;
  };

  /**
   * The bookkeeping of an inlined L1 hit (`wrapper`, `unary`): recency, the hit counter and stats;
   * the hit's time kept as a small integer (`stats.last` would cost a heap number: `l1.ts`).
   */
  const countL1Hit = (fast: ArgKey, e: L1Entry, t: number): void => {
    l1!.touch(fast, e);
    if (hitCounter !== null) hitCounter.inc();
    if (collect) {
      stats.hits++;
      stats.l1Hits++;
      l1!.lastHit = t;
    }
  };

  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    // A listener, or tracing with an SDK registered: the observed path (engine/_observed.ts).
    if (engine.observed && (engine.listening || tracingActive())) {
      return observedCall(engine, this, args, false);
    }
    let fast: ArgKey | undefined;
    if (simpleKey) fast = argKey(args, canonicalKeys);
    else {
      try {
        fast = fastKey(engine, this, args);
      } catch (e) {
        return keyFailed(e);
      }
    }
    if (map !== undefined && fast !== undefined && !tenantAware && !tenantContextUsed()) {
      // The L1 hit, inlined here so that the common hit makes no call into the engine. Its twin,
      // for calls this cannot answer (a tenant, or no cheap key), is `hitL1` in engine/_call.ts:
      // a change to one is a change to both.
      const e = map.get(fast);
      if (e !== undefined) {
        const t = hitNow() - l1!.base; // entry times count from the L1's base (engine/l1.ts)
        if (e.expiresAt > t) {
          countL1Hit(fast, e, t);
          if (e.refreshAt <= t) refresh(engine, e, this, args);
          // kind 0 is L1_SHARED: the value itself (a primitive, "none", "freeze").
          if (e.kind === 0) return engine.returnsPromise ? sharedAnswer(e) : e.value;
          return hitValue(engine, e, this, args);
        }
      }
      return engine.returnsPromise
        ? missAsync(engine, this, args, fast)
        : missSync(engine, this, args, fast);
    }
    return engine.returnsPromise
      ? lookupAsync(engine, this, args, fast)
      : lookupSync(engine, this, args, fast);
  };

  /**
   * The wrapper of a one-parameter function whose calls the inlined hit can answer (no tenant, no
   * custom key): a call with one number or string argument takes its L1 key from it directly,
   * without the rest-arguments array `wrapper` builds (made only when the call leaves the hit);
   * every other call goes to `wrapper`. The hit itself is `wrapper`'s (`countL1Hit` shared).
   */
  const unary = function (this: unknown, a: unknown): unknown {
    let fast: ArgKey;
    if (typeof a === "number") fast = a === 0 ? 0 : a; // argKey's key of one number or string
    else if (typeof a === "string") fast = "s" + a;
    else return wrapper.apply(this, arguments as unknown as unknown[]);
    if (arguments.length !== 1 || engine.observed || tenantContextUsed()) {
      return wrapper.apply(this, arguments as unknown as unknown[]);
    }
    const e = map!.get(fast);
    if (e !== undefined) {
      const t = hitNow() - l1!.base;
      if (e.expiresAt > t) {
        countL1Hit(fast, e, t);
        if (e.refreshAt <= t) refresh(engine, e, this, [a]);
        if (e.kind === 0) return engine.returnsPromise ? sharedAnswer(e) : e.value;
        return hitValue(engine, e, this, [a]);
      }
    }
    return engine.returnsPromise
      ? missAsync(engine, this, [a], fast)
      : missSync(engine, this, [a], fast);
  };

  const controlsFor = (self: unknown): CacheControls<A, R> => ({
    withStatus: (...args: A) => observedCall(engine, self, args, true) as WithStatus<R>,
    events: engine.events,
    cacheInfo: () => cacheInfo(engine),
    cacheClear: () => clearEngine(engine),
    invalidate: (...args: A) => invalidateCall(engine, self, args),
    uncached: (...args: A) => callUncached(engine, self, args) as R,
    refresh: (...args: A) => forceRefresh(engine, self, args) as R,
    invalidateTags: (...tags: string[]) => invalidateTagsEverywhere(tags),
    clearNamespace: (ns?: string) => {
      const target = ns ?? engine.namespace;
      if (!target) {
        return Promise.reject(
          new CacheConfigError("namespace", target, "a namespace (this function has none)"),
        );
      }
      return clearNamespaceEverywhere(target);
    },
    getHealthStatus: () => functionHealth(engine),
    checkHealth: (level?: HealthLevel) => checkFunctionHealth(engine, level),
    withSignal(signal: AbortSignal, ...args: A): Promise<Awaited<R>> {
      try {
        checkSignal(signal);
      } catch (e) {
        return Promise.reject(e);
      }
      if (signal.aborted) return Promise.reject(signal.reason);
      let p: Promise<unknown>;
      if (!engine.returnsPromise) {
        try {
          p = Promise.resolve(wrapper.apply(self, args));
        } catch (e) {
          p = Promise.reject(e);
        }
        return waitFor(p, signal, undefined) as Promise<Awaited<R>>;
      }
      try {
        p = lookupAsync(engine, self, args, fastKey(engine, self, args), new Flight());
      } catch (e) {
        return Promise.reject(e);
      }
      return waitFor(p, signal, flightOf.get(p)) as Promise<Awaited<R>>;
    },
    identity,
    config,
  });
  // A one-parameter function (its `length`: callers usually pass what it declares) gets `unary`.
  const face = fn.length === 1 && map !== undefined && simpleKey && !tenantAware ? unary : wrapper;
  Object.defineProperty(face, "name", { value: fn.name, configurable: true });
  const cachedFn = Object.assign(face, controlsFor(undefined)) as unknown as CachedFunction<
    A,
    R
  >;
  binders.set(cachedFn, controlsFor as (self: unknown) => CacheControls<unknown[], unknown>);
  return cachedFn;
}

/** Each cached function's controls, for a given `this` (a decorated method's instance). */
const binders = new WeakMap<object, (self: unknown) => CacheControls<unknown[], unknown>>();

/**
 * The controls of cached function `f` acting for `self` (the instance of a decorated method:
 * `invalidate`, `uncached` and `refresh` then key and call on it). Internal (decorator.ts).
 *
 * @param f A function returned by {@linkcode wrap}.
 * @param self The `this` of the calls.
 * @returns The controls.
 */
export function controlsFor<A extends unknown[], R>(
  f: CachedFunction<A, R>,
  self: unknown,
): CacheControls<A, R> {
  return binders.get(f)!(self) as unknown as CacheControls<A, R>;
}

function presetFn(preset: PresetName | undefined): CacheFunction {
  return (<A extends unknown[], R>(fn: (...args: A) => R, options?: CacheOptions<A, Awaited<R>>) =>
    wrap(fn, options, preset)) as CacheFunction;
}

/**
 * Cache a function. See the module documentation; presets: `cache.minimal`, `cache.dev`,
 * `cache.test`, `cache.production`, `cache.secure`.
 *
 * @example L1 only: a synchronous function stays synchronous
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache } from "@cachekit/core";
 *
 * const fib = cache((n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2)), {
 *   name: "docs.fib",
 *   backend: null,
 * });
 * assert.equal(fib(80), 23416728348467684);
 * ```
 */
export const cache: CacheWithPresets = Object.assign(presetFn(undefined), {
  minimal: presetFn("minimal"),
  dev: presetFn("dev"),
  test: presetFn("test"),
  production: presetFn("production"),
  secure: presetFn("secure"),
});

function badGroupOptions(options: unknown): CacheConfigError | null {
  if (options === undefined) return null;
  if (Array.isArray(options)) {
    return new CacheConfigError("tags", options, "tags as separate string arguments, not an array");
  }
  if (typeof options !== "object" || options === null) {
    return new CacheConfigError("options", options, "an object like { backend }");
  }
  const b = (options as GroupInvalidationOptions).backend;
  if (b !== undefined && (typeof b !== "object" || b === null || typeof b.get !== "function")) {
    return new CacheConfigError("backend", b, "a Backend");
  }
  return null;
}

/**
 * Remove every entry carrying any of `tags` from every cached function of this process (L1) and
 * from L2, and tell other instances (L1 invalidation bus). L2 is, with a trailing
 * `{ backend }`, that backend; else the backends of this process's cached functions plus the
 * process default backend (`CACHEKIT_REDIS_URL` / `REDIS_URL`, else the file directory) when it
 * is in use or when none of them has an L2 — so a process that wraps nothing (an admin script, a
 * webhook worker) reaches the shared cache too.
 * Deletion goes through the backend's tag index (keys written by any process), or, on a backend
 * without one, the keys this process wrote. An L2 failure is logged, not thrown.
 *
 * @param args Tags as returned by the `tags` option, optionally followed by
 * {@linkcode GroupInvalidationOptions}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, invalidateTags } from "@cachekit/core";
 *
 * let n = 0;
 * const user = cache((id: number) => ({ id, n: ++n }), {
 *   name: "docs.tagged",
 *   backend: null,
 *   tags: (id) => [`user:${id}`],
 * });
 * user(1);
 * await invalidateTags("user:1");
 * assert.equal(user(1).n, 2);
 * ```
 *
 * @example From a process that wraps nothing, on a given backend
 * ```ts
 * import assert from "node:assert/strict";
 * import { invalidateTags, MemoryBackend } from "@cachekit/core";
 *
 * const backend = new MemoryBackend();
 * await backend.capabilities.tags.setWithTags("t:default:k", new Uint8Array([1]), 60, ["user:1"]);
 * await invalidateTags("user:1", { backend });
 * assert.equal(await backend.exists("t:default:k"), false);
 * ```
 */
export function invalidateTags(...tags: string[]): Promise<void>;
/**
 * {@inheritDoc invalidateTags}
 *
 * @param args Tags, then {@linkcode GroupInvalidationOptions}.
 */
export function invalidateTags(
  ...args: [...tags: string[], options: GroupInvalidationOptions]
): Promise<void>;
export function invalidateTags(...args: (string | GroupInvalidationOptions)[]): Promise<void> {
  const last = args[args.length - 1];
  const options = typeof last === "object" && last !== null
    ? args.pop() as GroupInvalidationOptions
    : undefined;
  const bad = badGroupOptions(options);
  if (bad !== null) return Promise.reject(bad);
  if (args.some((t) => typeof t !== "string")) {
    return Promise.reject(new CacheConfigError("tags", args, "tags as separate string arguments"));
  }
  return invalidateTagsEverywhere(args as string[], options);
}

/**
 * Remove every entry of namespace `ns`, for every tenant, from every cached function of this
 * process (L1) and from L2 (by key prefix: Redis `SCAN MATCH`, a scan of the memory or file
 * backend, so tenants this process never saw go too), and tell other instances. L2 is chosen as
 * for {@linkcode invalidateTags}: `options.backend`, else the cached functions' backends plus the
 * default backend.
 *
 * @param ns The namespace.
 * @param options Which backend; see {@linkcode GroupInvalidationOptions}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, clearNamespace } from "@cachekit/core";
 *
 * const f = cache((x: number) => x * 2, { name: "docs.ns", namespace: "docs", backend: null });
 * f(1);
 * await clearNamespace("docs");
 * assert.equal(f.cacheInfo().size, 0);
 * ```
 */
export function clearNamespace(ns: string, options?: GroupInvalidationOptions): Promise<void> {
  if (typeof ns !== "string" || ns === "") {
    return Promise.reject(new CacheConfigError("namespace", ns, "a non-empty namespace"));
  }
  const bad = badGroupOptions(options);
  if (bad !== null) return Promise.reject(bad);
  return clearNamespaceEverywhere(ns, options);
}

/** Options of {@linkcode clearFunction}. */
export interface ClearFunctionOptions extends GroupInvalidationOptions {
  /** The function's `namespace` option (default: none). */
  namespace?: string;
}

/**
 * Remove every entry of one cached function, for every tenant, by its identity (the `name`
 * option, or the derived `module:function` name that `fn.identity` shows): what
 * `fn.cacheClear()` does, from a process that need not wrap the function. L2 is chosen as for
 * {@linkcode invalidateTags}; other instances are told.
 *
 * @param name The function identity.
 * @param options Its namespace, and which backend; see {@linkcode ClearFunctionOptions}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, clearFunction, MemoryBackend } from "@cachekit/core";
 *
 * const backend = new MemoryBackend();
 * const user = cache(async (id: number) => ({ id }), { name: "docs.user", namespace: "app", backend });
 * await user(1);
 * await clearFunction("docs.user", { namespace: "app", backend });
 * assert.equal(backend.size, 0);
 * ```
 */
export function clearFunction(name: string, options: ClearFunctionOptions = {}): Promise<void> {
  if (typeof name !== "string" || name === "") {
    return Promise.reject(new CacheConfigError("name", name, "a function identity"));
  }
  const bad = badGroupOptions(options);
  if (bad !== null) return Promise.reject(bad);
  const ns = options.namespace;
  if (ns !== undefined && (typeof ns !== "string" || ns === "")) {
    return Promise.reject(new CacheConfigError("namespace", ns, "a non-empty namespace"));
  }
  return clearFunctionEverywhere(name, ns ?? null, options);
}
