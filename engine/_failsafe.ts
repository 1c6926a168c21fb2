/**
 * Fail-safe for the engine (option `staleTtl`, with `softTimeout`): expired values are kept for
 * `staleTtl` more seconds and served when the function fails or is too slow.
 *
 * - **Where stale values live.** L1: an entry keeps living until `expiresAt + staleTtl` (the
 *   cache's `staleMs`) but is no hit past `expiresAt` ({@linkcode L1Cache.stale} finds it). L2: the entry is
 *   written with TTL `ttl + staleTtl` and its logical expiry in the wire document's
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
 * - Invalidation (`invalidate`, `cacheClear`, tags, namespaces, remote events) removes stale values
 *   too: an invalidated value is never served, stale or not.
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
import { getCacheLogger, newCorrelationId, withCorrelationId } from "../health/logging.ts";

const log = getCacheLogger("engine", "failsafe");

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
  /** Decode an L1 entry's value. */
  entryValue(e: import("./l1.ts").L1Entry): unknown;
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
  /** Computations still running after their callers got a stale value, by L1 key. */
  readonly #background = new Map<ArgKey, Promise<unknown>>();

  /**
   * @param host The engine.
   * @param staleTtl Seconds expired values are kept.
   * @param softTimeout Seconds before a stale value is served while the function runs (0: off).
   */
  constructor(host: FailSafeHost, staleTtl: number, softTimeout: number) {
    this.#host = host;
    this.staleMs = staleTtl * 1000;
    this.softMs = softTimeout * 1000;
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
    this.#background.clear();
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
   */
  run(
    key: ArgKey,
    compute: () => Promise<unknown>,
    stale: StaleValue | null,
    softMs: number = this.softMs,
  ): Promise<unknown> {
    let p = this.#background.get(key);
    if (p === undefined) {
      p = compute();
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
    if (softMs <= 0) return work.catch((e) => this.#serve(stale, "error", e));
    return new Promise<unknown>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        const id = newCorrelationId();
        work.catch((e) => this.#logLate(e, id));
        try {
          resolve(this.#serve(stale, "soft_timeout", null, id));
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
          resolve(this.#serve(stale, "error", e));
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
  fallback(key: ArgKey, error: unknown): unknown {
    const stale = this.l1Stale(key);
    if (stale === null) throw error;
    return this.#serve(stale, "error", error);
  }

  /** Serve `stale` after a hard timeout (`_hard_timeout.ts`): counted and logged as stale hits are. */
  serveStale(stale: StaleValue, reason: "hard_timeout"): unknown {
    return this.#serve(stale, reason, null);
  }

  #serve(
    stale: StaleValue,
    reason: "error" | "soft_timeout" | "hard_timeout",
    error: unknown,
    correlationId: string = newCorrelationId(),
  ): unknown {
    const h = this.#host;
    h.stats.staleHits++;
    h.metrics?.recordStaleHit(h.metricNs, reason, h.identity);
    const props = {
      identity: h.identity,
      source: stale.source,
      expiredMsAgo: Number.isNaN(stale.expiredAt) ? null : Math.round(Date.now() - stale.expiredAt),
      reason,
      ...(error !== null ? { error: errMessage(error), cause: error } : {}),
    };
    const l = withCorrelationId(log, correlationId);
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

  #logLate(error: unknown, correlationId: string): void {
    withCorrelationId(log, correlationId).warn(
      "{identity}: background refresh after a soft timeout failed: {error}",
      { identity: this.#host.identity, error: errMessage(error), cause: error },
    );
  }
}
