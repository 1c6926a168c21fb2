/**
 * The engine's side of adaptive caching: the {@linkcode FactoryContext} of one computation
 * ({@linkcode FactoryCall}), running the function inside it, and the entry a result gets from the
 * options (`ttl` as a function, `cacheIf`, `resultTags`) and from what the function decided
 * (`setTtl`, `setTags`, `skip`). `fail` throws, so the fail-safe's usual error path serves the
 * stale value.
 *
 * Not tied to argument lists: {@linkcode FactoryCall} needs only the call's stale value, and
 * {@linkcode entryOf} takes the option callbacks' extra arguments as an array (a function's
 * arguments; a key-based factory passes none), so a key-based `getOrSet` can hand the same object
 * to its factory.
 *
 * Separate from the call flow (`_call.ts`) so that the flow only asks "which entry, if any" after
 * the function answered; the common case (no adaptive option, nothing decided) costs one object
 * and no copy of the key context.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import {
  type FactoryContext,
  neverAborted,
  runInFactoryContext,
  runSyncInFactoryContext,
} from "../factory_context.ts";
import type { Engine } from "./_engine.ts";
import type { StaleValue } from "./_failsafe.ts";
import type { KeyCtx } from "./_keys.ts";

/** Engines that stored an entry with tags not from their `tags` option. */
const dynamicallyTagged = new WeakSet<Engine>();

/**
 * Tag invalidations that passed over an engine not known to carry tags (`mayCarryTags` false: its
 * epoch did not move). A computation running meanwhile that gives its result tags (`setTags`) is
 * not stored: it may be computed from the state that invalidation replaced.
 */
let tagsPassedOver = 0;

/** A tag invalidation passed over an engine that carries no tags (see {@linkcode entryOf}). */
export function noteTagsPassedOver(): void {
  tagsPassedOver++;
}

/** The context of one computation (a {@linkcode FactoryContext} that records its decisions). */
export class FactoryCall<T = unknown> implements FactoryContext<T> {
  /** A computation the cache stores. */
  readonly cached = true;
  /** `setTtl`: seconds (`null`: no expiry), or `undefined` when not called. */
  ttl: number | null | undefined = undefined;
  /** `setTags`, or `null` when not called. */
  tags: readonly string[] | null = null;
  /** `skip()` was called. */
  skipped = false;
  /**
   * See {@linkcode FactoryContext.signal}: the flight's signal when a caller that can abort
   * started the computation (`_flight.ts`), else one never aborted.
   */
  signal: AbortSignal = neverAborted;
  /** See {@linkcode FactoryContext.hasStale}. */
  readonly hasStale: boolean;
  /** See {@linkcode FactoryContext.stale}. */
  readonly stale: T | undefined;
  /** The count of tag invalidations passed over when the computation started (`entryOf`). */
  readonly tagMark: number = tagsPassedOver;

  /**
   * @param hasStale Whether a stale value exists.
   * @param stale The stale value (already decoded).
   */
  constructor(hasStale = false, stale?: T) {
    this.hasStale = hasStale;
    this.stale = stale;
  }

  /** See {@linkcode FactoryContext.setTtl}. */
  setTtl(seconds: number | null): void {
    this.ttl = checkTtl(seconds, "setTtl(seconds)");
  }

  /** See {@linkcode FactoryContext.setTags}. */
  setTags(tags: readonly string[]): void {
    this.tags = checkTags(tags, "setTags(tags)");
  }

  /** See {@linkcode FactoryContext.skip}. */
  skip(): void {
    this.skipped = true;
  }

  /** See {@linkcode FactoryContext.fail}. */
  fail(error: unknown): never {
    throw error;
  }
}

/**
 * A computation's context with its stale value read (a sealed L1 value is decrypted first; a stale
 * value that cannot be read is none). Synchronous unless the value must be decrypted.
 */
export function factoryCall(stale: StaleValue | null): FactoryCall | Promise<FactoryCall> {
  if (stale === null) return new FactoryCall();
  let v: unknown;
  try {
    v = stale.read();
  } catch {
    return new FactoryCall();
  }
  if (v instanceof Promise) {
    return v.then((x) => new FactoryCall(true, x), () => new FactoryCall());
  }
  return new FactoryCall(true, v);
}

/**
 * Call `fn` with `self` and `args` inside the context `fc` (see `cacheContext`), for a computation
 * whose result is awaited: the context follows it through its awaits.
 */
export function invoke(
  fc: FactoryCall,
  fn: (...args: unknown[]) => unknown,
  self: unknown,
  args: unknown[],
): unknown {
  return runInFactoryContext(fc, () => fn.apply(self, args));
}

/**
 * {@linkcode invoke} for a function expected to be synchronous (its result is stored as it
 * returns): the context covers its synchronous part only, at a fraction of the cost. A promise it
 * returns after all is stored when it settles; the engine then takes the asynchronous path (and
 * {@linkcode invoke}) from the next call on.
 */
export function invokeSync(
  fc: FactoryCall,
  fn: (...args: unknown[]) => unknown,
  self: unknown,
  args: unknown[],
): unknown {
  return runSyncInFactoryContext(fc, () => fn.apply(self, args));
}

/**
 * The key context a result is stored under, or `null` when it is answered uncached (`skip()`,
 * `cacheIf` false, a TTL of 0). It is `ctx` itself unless the result has its own TTL or tags. An
 * option callback that throws (or returns a bad TTL or tags) makes the call fail, as a `key`
 * function does; under `safeMode` the result is answered uncached instead, with a warning.
 *
 * @param eng The engine (options).
 * @param ctx The call's key context (tags from the `tags` option).
 * @param fc The computation's context.
 * @param value The result (awaited).
 * @param args The arguments the option callbacks see after the result.
 */
export function entryOf(
  eng: Engine,
  ctx: KeyCtx,
  fc: FactoryCall,
  value: unknown,
  args: readonly unknown[],
): KeyCtx | null {
  if (fc.skipped) return null;
  if (!eng.config.safeMode) return decide(eng, ctx, fc, value, args);
  try {
    return decide(eng, ctx, fc, value, args);
  } catch (e) {
    // `safeMode`: a failing option callback (or a TTL it got wrong) answers the result uncached.
    eng.log.warn("{identity}: result not cached: {error}", {
      identity: eng.identity,
      error: e instanceof Error ? e.message : String(e),
    });
    return null;
  }
}

/** {@linkcode entryOf} once `skip()` is ruled out; throws what an option callback throws. */
function decide(
  eng: Engine,
  ctx: KeyCtx,
  fc: FactoryCall,
  value: unknown,
  args: readonly unknown[],
): KeyCtx | null {
  const c = eng.config;
  if (
    c.cacheIf !== null && !(c.cacheIf as (v: unknown, ...a: unknown[]) => unknown)(value, ...args)
  ) {
    return null;
  }
  // setTtl, then a key-based call's own `ttl` option, then the `ttl` function.
  let ttl = fc.ttl ?? ctx.ttl;
  if (fc.ttl === null) ttl = null;
  if (ttl === undefined && c.ttlFn !== null) {
    ttl = checkTtl((c.ttlFn as (v: unknown, ...a: unknown[]) => unknown)(value, ...args), "ttl()");
  }
  if (ttl === 0) return null;
  let tags = ctx.tags;
  if (c.resultTags !== null) {
    const f = c.resultTags as (v: unknown, ...a: unknown[]) => unknown;
    tags = union(tags, checkTags(f(value, ...args), "resultTags()"));
  }
  if (fc.tags !== null) tags = union(tags, fc.tags);
  if (ttl === undefined && tags === ctx.tags) return ctx;
  if (tags !== ctx.tags) {
    dynamicallyTagged.add(eng);
    // A tag invalidation passed over this engine while it computed (no tags known yet, so its
    // epoch stayed): the result may predate it and carry one of its tags. Not stored.
    if (fc.tagMark !== tagsPassedOver) return null;
  }
  return { ...ctx, tags, ttl };
}

/**
 * The key context an L2 hit goes into L1 under: with the tags of the `resultTags` option (the
 * computing process's tags are not stored with the value; those of `setTags` stay unknown here),
 * and, when the entry records its logical expiry (`freshUntil`, ms: an entry with its own TTL, or
 * a fail-safe entry), no longer than L2 holds it fresh; else with the configured TTL, never the
 * reading call's own `ttl`. `ctx` itself when none of this applies.
 */
export function hitEntry(
  eng: Engine,
  ctx: KeyCtx,
  value: unknown,
  freshUntil: number | null,
  args: readonly unknown[],
): KeyCtx {
  const f = eng.config.resultTags as ((v: unknown, ...a: unknown[]) => unknown) | null;
  // A key-based entry read from L2 may carry tags its writer gave (per call, `setTags`) that this
  // reader cannot know: its L1 copy is evicted by any tag invalidation (`hasUnknownTags`).
  const unknown = eng.objectCache;
  if (freshUntil === null && f === null && !unknown) return readerTtlDropped(ctx);
  let tags = ctx.tags;
  if (f !== null) {
    try {
      tags = union(tags, checkTags(f(value, ...args), "resultTags()"));
    } catch (e) {
      eng.log.warn("{identity}: resultTags failed on an L2 hit: {error}", {
        identity: eng.identity,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  }
  if (unknown) tags = withUnknownTags(tags);
  if (freshUntil === null) return readerTtlDropped({ ...ctx, tags });
  return { ...ctx, tags, ttl: Math.max(0.001, (freshUntil - Date.now()) / 1000) };
}

/**
 * `ctx` without the TTL the reading call gave (`getOrSet(key, f, { ttl })`): that TTL is the one
 * of an entry the call writes. An entry read from L2 without its logical expiry was written with
 * its cache's TTL, so its L1 copy lives as long as this cache's configured TTL allows, not as long
 * as the reader asked for its own writes (which could keep a copy past the entry's life in L2).
 */
function readerTtlDropped(ctx: KeyCtx): KeyCtx {
  if (ctx.ttl === undefined) return ctx;
  const { ttl: _, ...rest } = ctx;
  return rest;
}

/** Tag lists of L1 entries that may carry more tags than they list (see `hitEntry`). */
const partialTags: WeakSet<readonly string[]> = new WeakSet();
const UNKNOWN_TAGS: readonly string[] = Object.freeze([]);
partialTags.add(UNKNOWN_TAGS);

function withUnknownTags(tags: readonly string[] | null): readonly string[] {
  if (tags === null || tags.length === 0) return UNKNOWN_TAGS;
  const out = [...tags];
  partialTags.add(out);
  return out;
}

/**
 * Whether an L1 entry's tag list may be incomplete (a key-based entry filled from L2, whose
 * writer's tags are not stored with it): tag invalidation evicts such an entry whatever the tags.
 */
export function hasUnknownTags(tags: readonly string[]): boolean {
  return partialTags.has(tags);
}

/**
 * Whether entries of `eng` may carry tags (the `tags` or `resultTags` option, or `setTags`): tag
 * invalidation skips the engines that cannot hold any.
 */
export function mayCarryTags(eng: Engine): boolean {
  return eng.config.tags !== null || eng.config.resultTags !== null ||
    eng.objectCache || dynamicallyTagged.has(eng);
}

function checkTtl(v: unknown, where: string): number | null {
  if (v !== null && (typeof v !== "number" || !Number.isFinite(v) || v < 0)) {
    throw new CacheConfigError(
      where,
      v,
      "a finite number of seconds >= 0 (0: do not cache), or null for no expiry",
    );
  }
  return v;
}

function checkTags(v: unknown, where: string): readonly string[] {
  if (!Array.isArray(v) || v.some((t) => typeof t !== "string")) {
    throw new CacheConfigError(where, v, "an array of tag strings");
  }
  return v as readonly string[];
}

function union(a: readonly string[] | null, b: readonly string[]): readonly string[] {
  if (b.length === 0) return a ?? b;
  if (a === null || a.length === 0) return b;
  return [...new Set([...a, ...b])];
}
