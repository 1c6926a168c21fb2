/**
 * `createCache(options)`: a cache object with keys of your own (`getOrSet`, `get`, `set`, `has`,
 * `delete`, `deleteByTags`, `expire`, `clear`, and the batch forms), for code that thinks in keys
 * rather than functions, as bentocache, cacheable or FusionCache users do. It runs on the same
 * engine as `cache(fn)`: L1 in front of L2, single flight, the cross-process stampede lock,
 * fail-safe, timeouts, encryption and tenants, tags, the invalidation bus and the reliability
 * guards, with the same options, presets (`createCache.production(...)`, …) and defaults.
 *
 * **Keys** are any strings. In L2 a key `k` lives at `t:{tenant}:obj:key:{k}` (with a `namespace`
 * `ns`, `t:{tenant}:obj:ns:{ns}:key:{k}`; `%`, spaces and line breaks percent-encoded, a key over
 * 250 characters in all cut to 50 and a Blake2b digest), a key space no `cache(fn)` function
 * can reach, bound to its tenant and, when encrypting, authenticated with the key (the AAD
 * carries it) as function entries are.
 * Two caches with the same namespace (and backend) share their entries. With
 * `{ interop: true, namespace, name }` the key is the interop key of the one argument `k`
 * (`{namespace}:{name}:{hash}`) and the value plain MessagePack, which a Python or Rust cachekit
 * reads in interop mode.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCache, MemoryBackend } from "@cachekit/core";
 *
 * const users = createCache({ namespace: "users", ttl: 60, backend: new MemoryBackend() });
 * let calls = 0;
 * const load = async (id: number) => ({ id, name: `user ${id}`, n: ++calls });
 * const u = await users.getOrSet("user:1", () => load(1), { tags: ["team:a"] });
 * assert.equal(u.name, "user 1"); // typed from the factory
 * assert.equal((await users.getOrSet("user:1", () => load(1))).n, 1); // a hit
 * assert.equal((await users.get<{ id: number }>("user:1"))?.id, 1);
 * await users.deleteByTags("team:a");
 * assert.equal(await users.has("user:1"), false);
 * ```
 *
 * @module
 */
import type {
  CacheEntryOptions,
  CacheOptions,
  PresetName,
  ResolvedConfig,
} from "./config/options.ts";
import { resolveConfig } from "./config/resolve.ts";
import { CacheConfigError } from "./errors.ts";
import {
  type CacheEventTarget,
  type CacheInfo,
  cacheInfo,
  type CallResult,
  checkFunctionHealth,
  clearEngine,
  Engine,
  type FunctionHealth,
  functionHealth,
  mustObserve,
  objectOps,
  observedObjectCall,
} from "./engine/internal.ts";
import type { HealthLevel } from "./health/health_checker.ts";
import type { FactoryContext } from "./factory_context.ts";

/** Options of {@linkcode createCache}: those of `cache()` without the per-function ones. */
export type CreateCacheOptions = Omit<CacheOptions<[key: string]>, "key" | "pythonArgs" | "tags">;

/** A cache object (see {@linkcode createCache}). Every method returns a promise. */
export interface CacheObject {
  /**
   * The value of `key`; on a miss `factory` computes it (once for concurrent callers in this
   * process, and once across processes with the stampede lock) and it is stored. The factory gets
   * its computation's {@linkcode FactoryContext} (`setTtl`, `setTags`, `skip`, `fail`, `stale`,
   * `signal`), the one `cacheContext()` returns inside a `cache(fn)` function.
   */
  getOrSet<T>(
    key: string,
    factory: (ctx: FactoryContext<T>) => T | PromiseLike<T>,
    options: CacheEntryOptions & { withStatus: true },
  ): Promise<CallResult<T>>;
  /** As above, resolving the value. */
  getOrSet<T>(
    key: string,
    factory: (ctx: FactoryContext<T>) => T | PromiseLike<T>,
    options?: CacheEntryOptions,
  ): Promise<T>;
  /** The fresh value of `key` with how it was found (`{ withStatus: true }`). */
  get<T = unknown>(
    key: string,
    options: CacheEntryOptions & { withStatus: true },
  ): Promise<CallResult<T | undefined>>;
  /** The fresh value of `key`, or `undefined` (a miss, or only a stale value). */
  get<T = unknown>(key: string, options?: CacheEntryOptions): Promise<T | undefined>;
  /**
   * This cache's events (`hit`, `miss`, `stale`, `set`, `delete`, `invalidate`, `error`, …), as a
   * cached function's `f.events`; the global `cacheEvents` carries them too.
   */
  readonly events: CacheEventTarget;
  /** Store `value` under `key` (L1, L2, and other instances' L1 are told). */
  set<T>(key: string, value: T, options?: CacheEntryOptions): Promise<void>;
  /** Whether a fresh value of `key` exists. */
  has(key: string, options?: CacheEntryOptions): Promise<boolean>;
  /** Remove the entries of `keys` (L1, L2, other instances' L1). */
  delete(...keys: string[]): Promise<void>;
  /** Remove every entry carrying any of `tags` (this cache's backend, every cache's L1). */
  deleteByTags(...tags: string[]): Promise<void>;
  /**
   * Soft delete: the next read recomputes, and the old value stays the fail-safe's stale answer
   * for the stale window the entry was written with (its per-call `staleTtl`, else the cache's)
   * from now on, never past the end it already had: an entry already stale is left as it is, and
   * one written with a `staleTtl` of 0 is deleted. Without `staleTtl` (or in interop mode) a
   * deletion. A `delete` or `set` of the key while it runs wins.
   */
  expire(key: string): Promise<void>;
  /** Remove every entry of this cache (its namespace's key space, every tenant's). */
  clear(): Promise<void>;
  /** The values of `keys` (`undefined` for each miss), read together (one round trip on Redis). */
  getMany<T = unknown>(
    keys: readonly string[],
    options?: CacheEntryOptions,
  ): Promise<(T | undefined)[]>;
  /** Store each `[key, value]` of `entries` (written together). */
  setMany(
    entries: ReadonlyArray<readonly [key: string, value: unknown]>,
    options?: CacheEntryOptions,
  ): Promise<void>;
  /** Remove the entries of `keys` (deleted together). */
  deleteMany(keys: readonly string[]): Promise<void>;
  /** Hit/miss statistics and L1 size. */
  cacheInfo(): CacheInfo;
  /** Health from what the last operations saw (no I/O). */
  getHealthStatus(): FunctionHealth;
  /** Probe the backend now (see `CacheControls.checkHealth`). */
  checkHealth(level?: HealthLevel): Promise<FunctionHealth>;
  /** The resolved configuration. */
  readonly config: ResolvedConfig;
}

/** The signature of {@linkcode createCache} and of each of its presets. */
export type CreateCacheFunction = (options?: CreateCacheOptions) => CacheObject;

/** {@linkcode createCache} with the presets of `cache` attached. */
export interface CreateCacheWithPresets extends CreateCacheFunction {
  /** See `cache.minimal`. */
  readonly minimal: CreateCacheFunction;
  /** See `cache.dev`. */
  readonly dev: CreateCacheFunction;
  /** See `cache.test`. */
  readonly test: CreateCacheFunction;
  /** See `cache.production`. */
  readonly production: CreateCacheFunction;
  /** See `cache.secure`. */
  readonly secure: CreateCacheFunction;
}

const PER_FUNCTION = ["key", "pythonArgs", "tags"] as const;

function build(
  options: CreateCacheOptions | undefined,
  preset: PresetName | undefined,
): CacheObject {
  const o = (options ?? {}) as CacheOptions<unknown[]>;
  for (const k of PER_FUNCTION) {
    if (o[k] !== undefined) {
      throw new CacheConfigError(
        k,
        o[k],
        k === "tags"
          ? "tags per call: getOrSet(key, factory, { tags })"
          : "no such option on a cache object",
      );
    }
  }
  const config = resolveConfig(o, preset);
  const io = config.interop;
  const identity = io !== null ? io.operation : config.name ?? "cache";
  const engine = new Engine({
    fn: objectOps.trampoline,
    config,
    identity,
    objectPrefix: io !== null
      ? `${io.namespace}:${io.operation}:`
      : objectOps.objectPrefix(config.namespace),
  });
  const many = <T>(keys: readonly string[], opts?: CacheEntryOptions) =>
    Array.isArray(keys)
      ? Promise.all(keys.map((k) => objectOps.get(engine, k, opts))) as Promise<(T | undefined)[]>
      : Promise.reject(notArray("keys", keys, "an array of string keys"));
  return {
    getOrSet:
      ((key: string, factory: objectOps.ObjectFactory, opts?: CacheEntryOptions) =>
        mustObserve(engine, opts)
          ? observedObjectCall(
            engine,
            opts?.withStatus === true,
            (rec) => objectOps.getOrSet(engine, key, factory, opts, rec),
          )
          : objectOps.getOrSet(engine, key, factory, opts)) as CacheObject["getOrSet"],
    get: ((key: string, opts?: CacheEntryOptions) =>
      mustObserve(engine, opts)
        ? observedObjectCall(
          engine,
          opts?.withStatus === true,
          (rec) => objectOps.get(engine, key, opts, rec),
        )
        : objectOps.get(engine, key, opts)) as CacheObject["get"],
    events: engine.events,
    set: (key: string, value: unknown, opts?: CacheEntryOptions) =>
      objectOps.set(engine, key, value, opts),
    has: (key: string, opts?: CacheEntryOptions) => objectOps.has(engine, key, opts),
    delete: (...keys: string[]) => objectOps.deleteKeys(engine, keys),
    deleteByTags: (...tags: string[]) => objectOps.deleteByTags(engine, tags),
    expire: (key: string) => objectOps.expire(engine, key),
    clear: () => clearEngine(engine),
    getMany: many,
    setMany: async (entries, opts) => {
      if (!Array.isArray(entries) || !entries.every((e) => Array.isArray(e) && e.length >= 1)) {
        throw notArray("entries", entries, "an array of [key, value] pairs");
      }
      await Promise.all(entries.map(([k, v]) => objectOps.set(engine, k, v, opts)));
    },
    deleteMany: (keys: readonly string[]) =>
      Array.isArray(keys)
        ? objectOps.deleteKeys(engine, keys)
        : Promise.reject(notArray("keys", keys, "an array of string keys")),
    cacheInfo: () => cacheInfo(engine),
    getHealthStatus: () => functionHealth(engine),
    checkHealth: (level?: HealthLevel) => checkFunctionHealth(engine, level),
    config,
  };
}

/** The error of a batch method given something else than an array. */
function notArray(name: string, v: unknown, expected: string): CacheConfigError {
  return new CacheConfigError(name, Array.isArray(v) ? "[…]" : typeof v, expected);
}

function presetFn(preset: PresetName | undefined): CreateCacheFunction {
  return (options?: CreateCacheOptions) => build(options, preset);
}

/**
 * Create a cache object (see the module documentation). Presets: `createCache.minimal`, `.dev`,
 * `.test`, `.production`, `.secure`, as for `cache`.
 *
 * @example Fail-safe: `expire` keeps the old value as the fallback of the next computation
 * ```ts
 * import assert from "node:assert/strict";
 * import { createCache } from "@cachekit/core";
 *
 * const rates = createCache.test({ ttl: 60, staleTtl: 300 });
 * await rates.set("eur", 1.08);
 * await rates.expire("eur");
 * assert.equal(await rates.get("eur"), undefined); // no longer fresh
 * const eur = await rates.getOrSet("eur", () => {
 *   throw new Error("rates service down");
 * });
 * assert.equal(eur, 1.08); // the stale value answers the failure
 * ```
 */
export const createCache: CreateCacheWithPresets = Object.assign(presetFn(undefined), {
  minimal: presetFn("minimal"),
  dev: presetFn("dev"),
  test: presetFn("test"),
  production: presetFn("production"),
  secure: presetFn("secure"),
});
