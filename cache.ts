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
 * a thrown error is not cached; an L2 failure never turns a successful call into an error (it is
 * logged and the call answers from L1 or the function). See the README for the options, presets
 * and the function-identity rule ({@link ./identity.ts}).
 *
 * @example
 * ```ts
 * import { cache, MemoryBackend } from "@cachekit/core";
 *
 * let calls = 0;
 * const square = cache(async (n: number) => {
 *   calls++;
 *   return n * n;
 * }, { name: "docs.square", ttl: 60, backend: new MemoryBackend() });
 * console.log(await square(4), await square(4), calls); // 16 16 1
 * console.log(square.cacheInfo().l1Hits); // 1
 * ```
 *
 * @module
 */
import type { CacheOptions, PresetName, ResolvedConfig } from "./config/options.ts";
import { resolveConfig } from "./config/resolve.ts";
import { CacheConfigError } from "./errors.ts";
import { deriveIdentity, registerIdentity, validateKeyPart } from "./identity.ts";
import {
  type CacheInfo,
  clearNamespaceEverywhere,
  Engine,
  type FunctionHealth,
  invalidateTagsEverywhere,
} from "./_engine.ts";
import { type ArgKey, argKey } from "./_engine_argkey.ts";
import { tenantContextUsed } from "./tenant.ts";
import type { HealthLevel } from "./health/health_checker.ts";

export type { CacheInfo, FunctionHealth } from "./_engine.ts";

/** The methods every cached function carries. `A` is the wrapped function's parameter list. */
export interface CacheControls<A extends unknown[]> {
  /** Hit/miss statistics and L1 size (the seed's `cache_info()`). */
  cacheInfo(): CacheInfo;
  /** Remove every entry of this function from L1 and L2 (all tenants this process has seen). */
  cacheClear(): Promise<void>;
  /** Remove the entry of one call (same arguments as the function). */
  invalidate(...args: A): Promise<void>;
  /** Remove every entry carrying any of `tags`, in every cached function and their backends. */
  invalidateTags(...tags: string[]): Promise<void>;
  /** Remove every entry of namespace `ns` (default: this function's namespace). */
  clearNamespace(ns?: string): Promise<void>;
  /** Health from what the last operations saw (no I/O). */
  getHealthStatus(): FunctionHealth;
  /**
   * Probe the backend now through a `HealthChecker` at `level` (`ping`, `basic` (default), `full`)
   * and return the health (components: backend ping and latency, circuit, pool, L1, …).
   */
  checkHealth(level?: HealthLevel): Promise<FunctionHealth>;
  /** The function identity used in keys (`func:` segment). */
  readonly identity: string;
  /** The resolved configuration. */
  readonly config: ResolvedConfig;
}

/** A cached function: the call signature `(...args: A) => R` plus {@linkcode CacheControls}. */
export type CachedFunction<A extends unknown[], R> = ((...args: A) => R) & CacheControls<A>;

/** Options that make a cache L1-only (`backend: null`): the wrapper keeps the function's type. */
export type L1OnlyOptions<A extends unknown[]> = CacheOptions<A> & { backend: null };

/** The signature of `cache` and of each preset. */
export interface CacheFunction {
  /** L1 only: the wrapper has `fn`'s exact type (a sync function stays sync). */
  <A extends unknown[], R>(fn: (...args: A) => R, options: L1OnlyOptions<A>): CachedFunction<A, R>;
  /** With an L2 backend (default): the wrapper returns a `Promise` of the result. */
  <A extends unknown[], R>(
    fn: (...args: A) => R,
    options?: CacheOptions<A>,
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
  options: CacheOptions<A> | undefined,
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
  const simpleKey = config.key === null && engine.instanceKey === null;
  const tenantAware = engine.tenantAware;
  const collect = engine.collectStats;
  const stats = engine.stats;
  const hitCounter = engine.l1HitCounter;

  /** A key/instanceKey function threw: an asynchronous wrapper rejects, it never throws. */
  const keyFailed = (e: unknown): unknown => {
    if (engine.returnsPromise) return Promise.reject(e);
    throw e;
  };

  const wrapper = function (this: unknown, ...args: unknown[]): unknown {
    let fast: ArgKey | undefined;
    if (simpleKey) fast = argKey(args);
    else {
      try {
        fast = engine.fastKey(this, args);
      } catch (e) {
        return keyFailed(e);
      }
    }
    if (map !== undefined && fast !== undefined && !tenantAware && !tenantContextUsed()) {
      const e = map.get(fast);
      if (e !== undefined) {
        const now = Date.now();
        if (e.expiresAt > now) {
          l1!.touch(e);
          if (hitCounter !== null) hitCounter.inc();
          if (collect) {
            stats.hits++;
            stats.l1Hits++;
            stats.last = now;
          }
          if (e.refreshAt <= now) engine.refresh(e, this, args);
          if (e.bytes === null) return engine.returnsPromise ? Promise.resolve(e.value) : e.value;
          return engine.hitBytes(e, this, args);
        }
      }
      return engine.returnsPromise
        ? engine.missAsync(this, args, fast, true)
        : engine.missSync(this, args, fast, true);
    }
    return engine.returnsPromise
      ? engine.missAsync(this, args, fast, false)
      : engine.missSync(this, args, fast, false);
  };

  const controls: CacheControls<A> = {
    cacheInfo: () => engine.info(),
    cacheClear: () => engine.clear(),
    invalidate: (...args: A) => engine.invalidate(undefined, args),
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
    getHealthStatus: () => engine.health(),
    checkHealth: (level?: HealthLevel) => engine.checkHealth(level),
    identity,
    config,
  };
  Object.defineProperty(wrapper, "name", { value: fn.name, configurable: true });
  return Object.assign(wrapper, controls) as unknown as CachedFunction<A, R>;
}

function presetFn(preset: PresetName | undefined): CacheFunction {
  return (<A extends unknown[], R>(fn: (...args: A) => R, options?: CacheOptions<A>) =>
    wrap(fn, options, preset)) as CacheFunction;
}

/**
 * Cache a function. See the module documentation; presets: `cache.minimal`, `cache.dev`,
 * `cache.test`, `cache.production`, `cache.secure`.
 *
 * @example L1 only: a synchronous function stays synchronous
 * ```ts
 * import { cache } from "@cachekit/core";
 *
 * const fib = cache((n: number): number => (n < 2 ? n : fib(n - 1) + fib(n - 2)), {
 *   name: "docs.fib",
 *   backend: null,
 * });
 * console.log(fib(80)); // 23416728348467684
 * ```
 */
export const cache: CacheWithPresets = Object.assign(presetFn(undefined), {
  minimal: presetFn("minimal"),
  dev: presetFn("dev"),
  test: presetFn("test"),
  production: presetFn("production"),
  secure: presetFn("secure"),
});

/**
 * Remove every entry carrying any of `tags` from every cached function of this process (L1) and
 * their backends (L2: through the backend's tag index, or the keys this process wrote), and tell
 * other instances (L1 invalidation bus) when configured.
 *
 * @param tags Tags as returned by the `tags` option.
 *
 * @example
 * ```ts
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
 * console.log(user(1).n); // 2
 * ```
 */
export function invalidateTags(...tags: string[]): Promise<void> {
  return invalidateTagsEverywhere(tags);
}

/**
 * Remove every entry of namespace `ns` from every cached function of this process (L1) and their
 * backends (L2, by key prefix for every tenant this process has seen), and tell other instances.
 *
 * @param ns The namespace.
 *
 * @example
 * ```ts
 * import { cache, clearNamespace } from "@cachekit/core";
 *
 * const f = cache((x: number) => x * 2, { name: "docs.ns", namespace: "docs", backend: null });
 * f(1);
 * await clearNamespace("docs");
 * console.log(f.cacheInfo().size); // 0
 * ```
 */
export function clearNamespace(ns: string): Promise<void> {
  if (typeof ns !== "string" || ns === "") {
    return Promise.reject(new CacheConfigError("namespace", ns, "a non-empty namespace"));
  }
  return clearNamespaceEverywhere(ns);
}
