/**
 * Factory context (adaptive caching): decisions about one computed result that the options
 * cannot express, taken inside the cached function while it runs. A `cache(fn)` function reaches
 * the context of its own computation through {@linkcode cacheContext}; the same
 * {@linkcode FactoryContext} object is what a key-based `getOrSet(key, factory)` hands its factory.
 *
 * - `setTtl(seconds)`: this result's TTL (L1, L2 and the fail-safe freshness), instead of the
 *   `ttl` option; `0` answers without caching.
 * - `setTags(tags)`: tags of this result's entry, besides those of the `tags` and `resultTags`
 *   options (for `invalidateTags`).
 * - `skip()`: answer this result without caching it (what `cacheIf` returning `false` does).
 * - `fail(error)`: give up: the fail-safe's stale value answers when there is one (`staleTtl`),
 *   else `error` is thrown to the caller. It throws, so `return ctx.fail(e)` ends the function.
 * - `stale` / `hasStale`: the stale value the fail-safe would answer on failure (an expired L1
 *   entry, or an L2 entry past its `fresh_until`), for a function that would rather build on it.
 * - `signal`: an `AbortSignal` for the function's own I/O. It aborts only when every caller waiting
 *   for this computation has aborted its own signal (`f.withSignal(signal, ...)`, `getOrSet`'s
 *   `signal` option); a computation a caller without a signal waits for is never aborted.
 *
 * The context follows the computation through `await`, timers and callbacks (`AsyncLocalStorage`
 * from `node:async_hooks`, as `withTenant` does) and works for synchronous functions
 * too. Outside a computation (a direct call, `f.uncached(...)`, code a cached function started but
 * did not await), `cacheContext()` answers a detached context: its setters change nothing, `fail`
 * throws the error, `hasStale` is `false`; so one function body serves both. `cached` tells them
 * apart. A nested cached function has its own context while it computes; the outer one's is back
 * when it returns.
 *
 * Hand-written rather than taken from FusionCache or bentocache (whose factory contexts these
 * mirror) because the context must sit inside this engine's single flight and store step.
 *
 * @example Do not cache an empty answer; a short TTL for a small one
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, cacheContext } from "@cachekit/core";
 *
 * let calls = 0;
 * const search = cache((q: string): string[] => {
 *   calls++;
 *   const hits = q === "none" ? [] : [q, q + "!"];
 *   const ctx = cacheContext();
 *   if (hits.length === 0) ctx.skip();
 *   else if (hits.length < 3) ctx.setTtl(5);
 *   return hits;
 * }, { name: "docs.factory_context", backend: null });
 * search("none");
 * search("none");
 * assert.equal(calls, 2); // the empty answer was not cached
 * search("a");
 * search("a");
 * assert.equal(calls, 3);
 * ```
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";

/**
 * What a computation may decide about its own result (see the module documentation). `T` is the
 * result type (awaited).
 */
export interface FactoryContext<T = unknown> {
  /**
   * Whether this is the context of a computation the cache will store (`false`: the detached
   * context of a call outside one, whose setters change nothing).
   */
  readonly cached: boolean;
  /**
   * Set this result's TTL in seconds (a finite number ≥ 0; `0`: do not cache it; `null`: no
   * expiry). It applies to L1, L2 and the fail-safe freshness, and overrides the `ttl` option.
   *
   * @throws {CacheConfigError} Not a finite number ≥ 0 nor `null`.
   */
  setTtl(seconds: number | null): void;
  /**
   * Set tags of this result's entry (strings), besides those of the `tags` and `resultTags`
   * options; a second call replaces what the first set.
   *
   * @throws {CacheConfigError} Not an array of strings.
   */
  setTags(tags: readonly string[]): void;
  /** Answer this result without caching it (L1 and L2 are left as they are). */
  skip(): void;
  /**
   * Give up this computation: the caller gets the fail-safe's stale value when there is one
   * (`hasStale`, counted and logged as a stale hit), else `error`. Always throws (`error`), so
   * `return ctx.fail(e)` ends the function.
   */
  fail(error: unknown): never;
  /** Whether a stale value exists for this call (fail-safe, `staleTtl`). */
  readonly hasStale: boolean;
  /** The stale value (see {@linkcode FactoryContext.hasStale}), else `undefined`. */
  readonly stale: T | undefined;
  /**
   * Passed on to the function's own I/O: aborted once every caller waiting for this computation
   * has aborted (see the module documentation).
   */
  readonly signal: AbortSignal;
}

const storage = new AsyncLocalStorage<FactoryContext>();
/**
 * The context of the computation whose synchronous part runs now (innermost first), else
 * `undefined`; after an `await`, the `AsyncLocalStorage` store answers.
 */
let current: FactoryContext | undefined;
const NEVER_ABORTED: AbortSignal = new AbortController().signal;

/** The context of a call outside any computation: it decides nothing. */
const DETACHED: FactoryContext = Object.freeze({
  cached: false,
  setTtl(): void {},
  setTags(): void {},
  skip(): void {},
  fail(error: unknown): never {
    throw error;
  },
  hasStale: false,
  stale: undefined,
  signal: NEVER_ABORTED,
});

/**
 * The {@linkcode FactoryContext} of the computation running now: inside a cached function while
 * the cache computes its result, that computation's context; elsewhere a detached one whose
 * setters change nothing (`cached: false`). `T` is the function's result type (not checked).
 *
 * @returns The context.
 *
 * @example Tags from the result
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, cacheContext, invalidateTags } from "@cachekit/core";
 *
 * let calls = 0;
 * const order = cache((id: number) => {
 *   calls++;
 *   const o = { id, customer: "c7" };
 *   cacheContext<typeof o>().setTags([`customer:${o.customer}`]);
 *   return o;
 * }, { name: "docs.cache_context", backend: null });
 * order(1);
 * await invalidateTags("customer:c7");
 * order(1);
 * assert.equal(calls, 2);
 * assert.equal(cacheContext().cached, false); // outside a computation
 * ```
 */
export function cacheContext<T = unknown>(): FactoryContext<T> {
  return (current ?? storage.getStore() ?? DETACHED) as FactoryContext<T>;
}

/**
 * Run `fn` with `ctx` as the current factory context, for the whole computation (its synchronous
 * part and everything it awaits): the engine's side of {@linkcode cacheContext} for functions that
 * may return a promise.
 *
 * @param ctx The context.
 * @param fn The computation.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheContext } from "@cachekit/core";
 * import { runInFactoryContext } from "./factory_context.ts";
 *
 * const ctx = cacheContext();
 * const seen = await runInFactoryContext(ctx, async () => {
 *   await null;
 *   return cacheContext();
 * });
 * assert.equal(seen, ctx);
 * ```
 */
export function runInFactoryContext<R>(ctx: FactoryContext, fn: () => R): R {
  return storage.run(ctx, runSyncInFactoryContext, ctx, fn);
}

/**
 * Run `fn` with `ctx` as the current factory context during its synchronous execution only: the
 * engine's side of {@linkcode cacheContext} for a synchronous function, whose result is stored as
 * soon as it returns. An `AsyncLocalStorage` run costs about a microsecond under Deno (measured: a
 * synchronous L1-only miss took 1.5× as long with one); this costs two assignments.
 *
 * @param ctx The context.
 * @param fn The computation.
 * @returns What `fn` returns.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheContext } from "@cachekit/core";
 * import { runSyncInFactoryContext } from "./factory_context.ts";
 *
 * const ctx = cacheContext();
 * assert.equal(runSyncInFactoryContext(ctx, () => cacheContext()), ctx);
 * ```
 */
export function runSyncInFactoryContext<R>(ctx: FactoryContext, fn: () => R): R {
  const outer = current;
  current = ctx;
  try {
    return fn();
  } finally {
    current = outer;
  }
}

/** A signal that is never aborted (the {@linkcode FactoryContext.signal} no caller can abort). */
export const neverAborted: AbortSignal = NEVER_ABORTED;
