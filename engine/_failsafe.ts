/**
 * Fail-safe for the engine (option `staleTtl`, with `softTimeout`): expired values are kept for
 * `staleTtl` more seconds and served when the function fails or is too slow.
 *
 * - **Where stale values live.** L1: an entry keeps living until `expiresAt + staleTtl` (the
 *   cache's `staleMs`, or the entry's own window from a key-based call's `staleTtl`:
 *   `L1Cache.staleMsOf`) but is no hit past `expiresAt` ({@linkcode L1Cache.stale} finds it).
 *   L2: the entry is written with TTL `ttl + staleTtl` and its logical expiry in the wire document's
 *   `metadata.fresh_until` (Unix seconds; cachekit-py 0.3.0 ignores the field and reads the entry
 *   as fresh for the whole `ttl + staleTtl`), or, with the envelope wire, in the framed header's
 *   `fresh_until` field (float64 ms; `protocol/stored_value.ts`). A reader past `fresh_until` treats it as a miss and
 *   keeps the value as the fallback of this call. Interop mode stores plain MessagePack without
 *   metadata: there only L1 keeps stale values.
 * - **Function fails** (throws or rejects) and a stale value exists: the stale value is the answer;
 *   the error is logged at warning level (LogTape category `cachekit.engine.failsafe`) with a fresh
 *   correlation id, and counted (`cacheInfo().staleHits`, `cache_stale_hits_total{reason="error"}`).
 *   Without a stale value the error propagates as before.
 * - **Soft timeout** (`softTimeout`): when a stale value exists and the function has not answered
 *   within `softTimeout`, the stale value is served now (`reason="soft_timeout"`) and the call
 *   goes on in the background; its result is stored when it lands — unless the function was
 *   invalidated meanwhile (the engine's invalidation counter, checked by its store step). Calls for
 *   the same key that arrive while that background call runs join it (no second call of the
 *   function in this process, no wait on the stampede lock it holds), unless they come after an
 *   invalidation: those compute anew.
 * - **Throttle** (`failSafeThrottle`, default 30 s, FusionCache's `FailSafeThrottleDuration`): once
 *   a failure was answered from stale, that stale value is reused for `failSafeThrottle` seconds
 *   without calling the function again (each such answer is a stale hit, `reason="throttled"`,
 *   logged at debug level only); the first call after the window tries the function again. A
 *   failing source is then called once per window and key, not once per call. The window ends
 *   early when the key gets a fresh value (a computation that succeeds, a remote write event) or
 *   is invalidated. Held per key in a bounded map ({@linkcode MAX_THROTTLED} keys, oldest first out).
 * - **Newest stale wins.** A call may know two stale values: the L2 entry it just read and the
 *   L1 entry. The one written last is served ({@linkcode FailSafe.newest}): an L1 copy whose L2
 *   write failed is newer than the older entry L2 still holds, and an entry another instance wrote
 *   to L2 is newer than this process's L1 copy. Compared by logical expiry (`fresh_until` for L2),
 *   L1's shifted by the expiry buffer (for the same write L1 expires `ttl - l1Ttl` sooner): with
 *   one TTL that orders them by write time; with per-result TTLs (`ttl` as a function) the value
 *   fresh the longest wins. A tie goes to L1.
 * - Invalidation (`invalidate`, `cacheClear`, tags, namespaces, remote events) removes stale values
 *   too: an invalidated value is never served, stale or not (nor reused by the throttle).
 *
 * Hand-written: the fail-safe of FusionCache / BentoCache ("grace period") is tied to their own
 * cache stacks; ours must sit inside this engine's single flight, invalidation counter and wire
 * format.
 *
 * @module
 */
import type { L1Cache } from "./l1.ts";
import type { ArgKey } from "./_argkey.ts";
import type { CacheMetrics } from "../health/metrics.ts";
import { getCacheLogger, withCorrelationId } from "../health/logging.ts";
import { callCorrelationId } from "./_call_log.ts";
import type { KeyCtx } from "./_keys.ts";
import { type CallRecord, recordStale } from "./_call_record.ts";
import type { CacheEventDetail, CacheEventType } from "./_events.ts";

const log = getCacheLogger("engine", "failsafe");

/** Keys whose stale value is held by the throttle at most (the oldest is dropped beyond). */
export const MAX_THROTTLED: number = 10_000;

/** A stale value available to the current call. */
export interface StaleValue {
  /** Where it was found. */
  source: "l1" | "l2";
  /** Logical expiry of the value, ms since the epoch (`NaN` when unknown). */
  expiredAt: number;
  /** The value (decoded on demand; may be a promise for sealed L1 entries). */
  read(): unknown;
}

/** What the fail-safe needs from its engine. */
export interface FailSafeHost {
  /** The function identity (logs). */
  readonly identity: string;
  /** The engine's L1, or `null`. */
  readonly l1: L1Cache | null;
  /** Prometheus metrics, or `null`. */
  readonly metrics: CacheMetrics | null;
  /** The `namespace` label. */
  readonly metricNs: string;
  /** Statistics (`staleHits` is counted here). */
  readonly stats: { staleHits: number };
  /** Whether an event listener is registered (`_events.ts`). */
  readonly listening: boolean;
  /** Emit an event (`_events.ts` `emit`). */
  emitEvent(type: CacheEventType, extra: Partial<CacheEventDetail>): void;
  /** Decode an L1 entry's value. */
  entryValue(e: import("./l1.ts").L1Entry): unknown;
  /** L1 lifetime of an entry, ms (L1 expires `ttl - l1Ttl` sooner than L2 for one write). */
  readonly l1TtlMs: number;
  /** `ttl` (`null` with none, or with a function of the result) and `failSafeThrottle`, seconds. */
  readonly config: { readonly ttl: number | null; readonly failSafeThrottle: number };
}

function errMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Per-engine fail-safe state. */
export class FailSafe {
  /** Extra lifetime of expired values, ms. */
  readonly staleMs: number;
  /** Soft timeout, ms (`0`: off). */
  readonly softMs: number;
  readonly #host: FailSafeHost;
  /** Throttle window after a failure answered from stale, ms (`0`: off). */
  readonly throttleMs: number;
  /** Computations still running after their callers got a stale value, by L1 key. */
  readonly #background = new Map<ArgKey, Promise<unknown>>();
  /**
   * Invalidations seen ({@linkcode FailSafe.forget}): a computation that started before one and
   * fails after it does not hold its stale value for the throttle (that value was invalidated).
   */
  #forgotten = 0;
  /** Stale values reused until `until` (ms since the epoch) after a failure, by L1 key. */
  readonly #throttled = new Map<
    ArgKey,
    { until: number; stale: StaleValue; backendKey: string | undefined }
  >();

  /**
   * @param host The engine.
   * @param staleTtl Seconds expired values are kept.
   * @param softTimeout Seconds before a stale value is served while the function runs (0: off).
   */
  constructor(host: FailSafeHost, staleTtl: number, softTimeout: number) {
    this.#host = host;
    this.staleMs = staleTtl * 1000;
    this.softMs = softTimeout * 1000;
    this.throttleMs = host.config.failSafeThrottle * 1000;
  }

  /**
   * The stale value the throttle holds for `key`, while its window is open, else `null`: the
   * call answers it ({@linkcode FailSafe.reuse}) without calling the function.
   */
  held(key: ArgKey): StaleValue | null {
    if (this.#throttled.size === 0) return null;
    const t = this.#throttled.get(key);
    if (t === undefined) return null;
    if (t.until > Date.now()) return t.stale;
    this.#throttled.delete(key);
    return null;
  }

  /** Answer the stale value the throttle holds (a stale hit, `reason="throttled"`). */
  reuse(stale: StaleValue, rec: CallRecord | null = null): unknown {
    const h = this.#host;
    if (rec !== null) {
      const ttlMs = stale.source === "l1" ? h.l1TtlMs : (h.config.ttl ?? NaN) * 1000;
      recordStale(rec, stale.source, stale.expiredAt, ttlMs);
    }
    h.stats.staleHits++;
    h.metrics?.recordStaleHit(h.metricNs, "throttled", h.identity);
    log.debug("{identity}: reusing the stale {source} value within failSafeThrottle", {
      identity: h.identity,
      source: stale.source,
    });
    return stale.read();
  }

  /**
   * End the throttle windows of the entries under the L2 keys `targets` (another instance wrote or
   * deleted them: its event on the bus). Found by L2 key: a stale value held from L2 has no L1
   * entry through which the event's L1 eviction would find it.
   */
  releaseBackendKeys(targets: readonly string[]): void {
    if (this.#throttled.size === 0) return;
    const set = new Set(targets);
    for (const [k, t] of this.#throttled) {
      if (t.backendKey !== undefined && set.has(t.backendKey)) this.#throttled.delete(k);
    }
  }

  /** End the throttle window of `key` (a fresh value is known: a write, or a fresh L2 entry). */
  release(key: ArgKey): void {
    if (this.#throttled.size !== 0) this.#throttled.delete(key);
  }

  /**
   * The newer of the call's stale L2 value (`l2`, or `null`) and the stale L1 entry of `key`, by
   * write time (see the module documentation); `null` when neither exists.
   */
  newest(l2: StaleValue | null, key: ArgKey): StaleValue | null {
    const l1 = this.l1Stale(key);
    if (l1 === null || l2 === null) return l1 ?? l2;
    // Compared by logical expiry, L1's shifted by how much sooner L1 expires than L2 for the same
    // write (`ttl - l1Ttl`: the expiry buffer); a tie, or an unknown expiry, goes to L1.
    const ttl = this.#host.config.ttl;
    const shift = ttl === null ? 0 : Math.max(0, ttl * 1000 - this.#host.l1TtlMs);
    return l2.expiredAt > l1.expiredAt + shift ? l2 : l1;
  }

  #hold(key: ArgKey, stale: StaleValue, backendKey: string | undefined): void {
    if (this.throttleMs <= 0) return;
    const now = Date.now();
    this.#throttled.delete(key);
    // Oldest first (one window length for all): drop the ended windows at the front, and the
    // oldest open one beyond the bound.
    for (const [k, t] of this.#throttled) {
      if (t.until > now && this.#throttled.size < MAX_THROTTLED) break;
      this.#throttled.delete(k);
    }
    this.#throttled.set(key, { until: now + this.throttleMs, stale, backendKey });
  }

  /** Whether any background computation runs. */
  get running(): boolean {
    return this.#background.size !== 0;
  }

  /** The background computation of `key`, if one runs (callers join it, skipping the lock). */
  pending(key: ArgKey): Promise<unknown> | undefined {
    return this.#background.get(key);
  }

  /**
   * Invalidation: background computations started before it are no longer joined by new calls
   * (their result is not stored either: the engine's store step checks its invalidation counter).
   */
  forget(): void {
    this.#forgotten++;
    this.#background.clear();
    this.#throttled.clear();
  }

  /** The stale L1 value of `key`, if any. */
  l1Stale(key: ArgKey): StaleValue | null {
    const l1 = this.#host.l1;
    const e = l1?.stale(key);
    if (e === undefined) return null;
    const expiredAt = l1!.base + e.expiresAt; // entry times count from the L1's base
    return { source: "l1", expiredAt, read: () => this.#host.entryValue(e) };
  }

  /**
   * Run `compute` (the function call and its store step) for `key` under the fail-safe rules.
   *
   * @param key The call's L1 key.
   * @param compute Calls the function and stores its result; resolves the result.
   * @param stale The stale value of this call (`null`: none, errors propagate).
   * @param softMs This call's soft timeout, ms (default: the engine's).
   * @param rec The record of an observed call (`_call_record.ts`), or `null`.
   * @param ctx The call's keys (its logs' protocol key and correlation id), or `null`.
   */
  run(
    key: ArgKey,
    compute: () => Promise<unknown>,
    stale: StaleValue | null,
    softMs: number = this.softMs,
    rec: CallRecord | null = null,
    ctx: KeyCtx | null = null,
  ): Promise<unknown> {
    // The throttle holds `stale` only if no invalidation came while the work ran (its callers,
    // which asked before it, may still get it).
    const since = this.#forgotten;
    let p = this.#background.get(key);
    if (p === undefined) {
      p = compute();
      if (this.#throttled.size > 0) p.then(() => this.#throttled.delete(key), () => {});
      if (stale === null) return p;
      if (softMs > 0) {
        const running = p;
        this.#background.set(key, running);
        const done = () => {
          if (this.#background.get(key) === running) this.#background.delete(key);
        };
        running.then(done, done);
      }
    }
    if (stale === null) return p;
    const work = p;
    const held = () => this.#forgotten === since ? key : null;
    if (softMs <= 0) return work.catch((e) => this.#serve(stale, "error", e, held(), rec, ctx));
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        work.catch((e) => {
          if (this.#forgotten === since) this.#hold(key, stale, ctx?.backendKey);
          this.#logLate(e, stale, ctx);
        });
        try {
          resolve(this.#serve(stale, "soft_timeout", null, null, rec, ctx));
        } catch (e) {
          reject(e);
        }
      }, softMs);
      work.then((v) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(v);
      }, (e) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          resolve(this.#serve(stale, "error", e, held(), rec, ctx));
        } catch (err) {
          reject(err);
        }
      });
    });
  }

  /**
   * Synchronous fallback (L1-only synchronous functions): the stale value of `key` for `error`, or
   * `error` rethrown.
   */
  fallback(
    key: ArgKey,
    error: unknown,
    rec: CallRecord | null = null,
    ctx: KeyCtx | null = null,
  ): unknown {
    const stale = this.l1Stale(key);
    if (stale === null) throw error;
    return this.#serve(stale, "error", error, key, rec, ctx);
  }

  /** Serve `stale` after a hard timeout (`_hard_timeout.ts`): counted and logged as stale hits are. */
  serveStale(
    stale: StaleValue,
    reason: "hard_timeout",
    rec: CallRecord | null = null,
    ctx: KeyCtx | null = null,
  ): unknown {
    return this.#serve(stale, reason, null, null, rec, ctx);
  }

  /** Serve `stale` for `reason`; after an error, hold it for the throttle window of `key`. */
  #serve(
    stale: StaleValue,
    reason: "error" | "soft_timeout" | "hard_timeout",
    error: unknown,
    key: ArgKey | null,
    rec: CallRecord | null,
    ctx: KeyCtx | null,
  ): unknown {
    const h = this.#host;
    if (reason === "error" && key !== null) this.#hold(key, stale, ctx?.backendKey);
    if (reason !== "error" && h.listening) {
      const timeout = reason === "soft_timeout" ? "soft" : "hard";
      h.emitEvent("timeout", { timeout, layer: stale.source });
    }
    if (rec !== null) {
      const ttlMs = stale.source === "l1" ? h.l1TtlMs : (h.config.ttl ?? NaN) * 1000;
      recordStale(rec, stale.source, stale.expiredAt, ttlMs);
    }
    h.stats.staleHits++;
    h.metrics?.recordStaleHit(h.metricNs, reason, h.identity);
    const props = {
      identity: h.identity,
      source: stale.source,
      expiredMsAgo: Number.isNaN(stale.expiredAt) ? null : Math.round(Date.now() - stale.expiredAt),
      reason,
      ...(error !== null ? { error: errMessage(error), cause: error } : {}),
    };
    const l = this.#callLog(stale, ctx);
    if (reason === "error") {
      l.warn(
        "{identity}: the function failed ({error}); serving the stale {source} value " +
          "(expired {expiredMsAgo} ms ago)",
        props,
      );
    } else {
      l.info(
        "{identity}: the function is slower than {reason}; serving the stale {source} value " +
          "now, the refresh continues in the background",
        { ...props, reason: reason === "soft_timeout" ? "softTimeout" : "hardTimeout" },
      );
    }
    return stale.read();
  }

  /** The fail-safe's logger for the call of `ctx` (its key, the stale layer, its correlation id). */
  #callLog(stale: StaleValue, ctx: KeyCtx | null) {
    const l = log.with({ key: ctx?.protoKey ?? null, layer: stale.source });
    return withCorrelationId(l, callCorrelationId(ctx));
  }

  #logLate(error: unknown, stale: StaleValue, ctx: KeyCtx | null): void {
    this.#callLog(stale, ctx).warn(
      "{identity}: background refresh after a soft timeout failed: {error}",
      { identity: this.#host.identity, error: errMessage(error), cause: error },
    );
  }
}
