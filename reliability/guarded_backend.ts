/**
 * `GuardedBackend`: a {@linkcode Backend} decorator that puts a circuit breaker, an adaptive
 * timeout and backpressure in front of any L2 backend, classifies its errors by
 * `BackendError.kind`, and reports to metrics and logs. The engine wraps its L2 with it and treats
 * every rejection as "skip L2": answer from L1 or the function.
 *
 * Per operation, in order:
 * 1. **Circuit breaker** (`circuitBreaker`): while open the call fails at once with
 *    {@linkcode CircuitOpenError} (kind `transient`, message "circuit open"): no waiting on a dead
 *    server.
 * 2. **Backpressure** (`backpressure`): at most `maxConcurrent` operations run at once; others
 *    wait up to `waitTimeout` in a bounded queue, then fail with {@linkcode BackpressureError}.
 *    Neither refusal counts as a backend failure.
 * 3. **Timeout** (`timeout`): the deadline is the adaptive timeout (or the caller's `timeoutMs`,
 *    whichever is shorter); cold, it is `initial`, or `min` when the backend is `local`. A backend
 *    advertising `capabilities.timeouts` gets it as
 *    `OperationOptions.timeoutMs` (and the caller's `signal`) and is trusted to honour it; any other
 *    backend is raced against one shared coarse timer (10 ms ticks: a deadline fires at most one
 *    tick late, never early). A timeout is a `BackendError` of kind `timeout`.
 * 4. **Classification** of a failure (anything not a `BackendError` becomes one of kind `unknown`,
 *    with the original as `cause`):
 *    - `timeout`, `transient`, `unknown`: count toward the breaker.
 *    - `authentication`: counts toward the breaker (a backend refusing our credentials is unusable)
 *      and is **loud**: logged at error level every time (the breaker bounds the rate) and
 *      rethrown, so the engine can surface it at start-up.
 *    - `permanent` (e.g. out of memory with `noeviction` on `set`, value too large): rethrown but
 *      not counted: the server answered, so reads keep flowing.
 *    - errors matched by `circuitBreaker.excludedErrors` (called with the classified
 *      `BackendError`; the original is its `cause`): rethrown, not counted.
 *    - a caller's own `signal` aborting: rethrown as kind `timeout`, not counted.
 *
 * Every feature is switched by its config key: omitted = on with cachekit-py's defaults, `false` or
 * `{ enabled: false }` = off. `healthCheck()` is forwarded unguarded (but bounded by the timeout
 * maximum) so health probes see the backend even while the circuit is open.
 *
 * Capabilities are forwarded: `ttl` and `fetchLock` go through the full guard; `prefix`, `tags` and `lock` go
 * through the breaker and backpressure but not the adaptive timeout (bulk operations and lock
 * waits legitimately take longer than a `GET`), except `tags.setWithTags`, a write guarded like
 * `set`; `invalidation` is passed through as is. The guarded backend advertises `timeouts: true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { Backend } from "@cachekit/core";
 * import { GuardedBackend } from "@cachekit/core/reliability";
 *
 * const store = new Map<string, Uint8Array>();
 * const inner: Backend = {
 *   type: "tiny",
 *   capabilities: {},
 *   get: (k) => Promise.resolve(store.get(k) ?? null),
 *   set: (k, v) => { store.set(k, v); return Promise.resolve(); },
 *   delete: (k) => Promise.resolve(store.delete(k)),
 *   exists: (k) => Promise.resolve(store.has(k)),
 *   healthCheck: () => Promise.resolve({ healthy: true, latencyMs: 0, backendType: "tiny" }),
 * };
 * const l2 = new GuardedBackend(inner, { backpressure: { maxConcurrent: 50 }, timeout: false });
 * await l2.set("k", new Uint8Array([1, 2]));
 * assert.equal((await l2.get("k"))?.length, 2);
 * assert.equal(l2.circuitBreaker?.state, "closed");
 * await l2.close();
 * ```
 *
 * @module
 */

import type {
  Backend,
  BackendCapabilities,
  BackendHealth,
  OperationOptions,
} from "../backends/types.ts";
import type { Logger } from "@logtape/logtape";
import { BackendError, type BackendErrorKind } from "../errors.ts";
import {
  AdaptiveTimeout,
  type AdaptiveTimeoutOptions,
  type AdaptiveTimeoutSnapshot,
} from "./adaptive_timeout.ts";
import {
  Backpressure,
  BackpressureError,
  type BackpressureOptions,
  type BackpressureSnapshot,
} from "./backpressure.ts";
import {
  CIRCUIT_STATE_VALUE,
  CircuitBreaker,
  type CircuitBreakerOptions,
  type CircuitBreakerSnapshot,
  CircuitOpenError,
  type CircuitStateChange,
} from "./circuit_breaker.ts";
import { DeadlineSweeper } from "./_deadlines.ts";
import { withoutStack } from "./_cheap_error.ts";
import { guardCapabilities } from "./_guard_capabilities.ts";
import { guardLogger, logFailure, logStateChange } from "./_guard_log.ts";
import { turnNow } from "./_turn_clock.ts";
import { GuardHook } from "./_guard_hook.ts";
import { GuardSeries } from "./_guard_metrics.ts";

/**
 * Where a {@linkcode GuardedBackend} counts operations, latency, errors and circuit state: the
 * part of `CacheMetrics` (from `health/`) it uses, which a `CacheMetrics` satisfies. Declared here
 * so that the reliability layer does not depend on the health layer that reports on it.
 */
export interface GuardMetrics {
  /**
   * `<backend>_cache_operations_total` (named after the backend, e.g. `redis_…`, `memory_…`): one
   * counter series per operation, backend and status.
   */
  backendOperationsFamily(backend: string): {
    labels(labels: { operation: string; backend: string; status: string }): { inc(): void };
  };
  /**
   * `<backend>_cache_operation_duration_seconds`: one histogram series per operation, backend and
   * function (the caller's {@linkcode GuardedOperationOptions.metricFunction}, `""` without one).
   */
  backendDurationFamily(backend: string): {
    labels(
      labels: { operation: string; backend: string; function: string },
    ): { observe(value: number): void };
  };
  /** Count an error of `kind`. */
  recordError(operation: string, backend: string, kind: string): void;
  /** Set the circuit state gauge of `backend` (0 closed, 1 open, 2 half-open). */
  setCircuitState(backend: string, value: number): void;
}

/** A feature's options plus `enabled` (default `true`). */
export type Switchable<T> = T & { enabled?: boolean };

/** Configuration of {@linkcode GuardedBackend}. Omitted feature = on with defaults. */
export interface GuardedBackendConfig {
  /** Circuit breaker options, or `false` to turn it off. */
  circuitBreaker?: Switchable<CircuitBreakerOptions> | false;
  /** Adaptive timeout options, or `false` to turn it off. */
  timeout?: Switchable<AdaptiveTimeoutOptions> | false;
  /** Backpressure options, or `false` to turn it off. */
  backpressure?: Switchable<BackpressureOptions> | false;
  /** Where to count operations, latency, errors and circuit state (a `CacheMetrics`). Default: none. */
  metrics?: GuardMetrics | null;
  /** Millisecond clock (breaker, durations, deadlines); inject a fake one in tests. Default `performance.now`. */
  clock?: () => number;
  /** Granularity of the shared deadline timer, ms. Default 10. */
  timerResolutionMs?: number;
}

/** Per-call options of a guarded operation: the backend's, plus a correlation id for logs. */
export interface GuardedOperationOptions extends OperationOptions {
  /** Carried by every log record this call produces. */
  correlationId?: string;
  /**
   * The `function` label of this operation's latency series: the identity of the cached function
   * that made it, already bounded by the caller (`CacheMetrics.functionLabel`). Never a key.
   */
  metricFunction?: string;
}

/** Counts and feature snapshots of a {@linkcode GuardedBackend}, for health checks. */
export interface GuardedBackendStats {
  /** The inner backend's type. */
  backend: string;
  /** Breaker snapshot, `null` when off. */
  circuitBreaker: CircuitBreakerSnapshot | null;
  /** Adaptive timeout snapshot, `null` when off. */
  timeout: AdaptiveTimeoutSnapshot | null;
  /** Backpressure snapshot, `null` when off. */
  backpressure: BackpressureSnapshot | null;
  /** Operations that reached the backend and succeeded. */
  successes: number;
  /** Failures by kind (after classification). */
  failures: Record<BackendErrorKind, number>;
  /** Calls refused by the open circuit. */
  rejectedByCircuit: number;
  /** Calls refused by backpressure. */
  rejectedByBackpressure: number;
}

/** Rejection used when the caller's own signal aborts (not a backend failure). */
class CallerAbortError extends BackendError {}

function enabled<T extends object>(v: Switchable<T> | false | undefined): Switchable<T> | null {
  if (v === false) return null;
  if (v === undefined) return {} as Switchable<T>;
  return v.enabled === false ? null : v;
}

function toBackendError(error: unknown, backend: string, operation: string): BackendError {
  if (error instanceof BackendError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new BackendError(`${backend} ${operation} failed: ${message}`, {
    kind: "unknown",
    backend,
    operation,
    cause: error,
  });
}

type Invoke<T> = (opts: OperationOptions | undefined) => Promise<T>;

/** The guarding decorator. See the module documentation. */
export class GuardedBackend implements Backend, AsyncDisposable {
  /** The wrapped backend. */
  readonly inner: Backend;
  /** The inner backend's type. */
  readonly type: string;
  /** The inner backend's capabilities, guarded, plus `timeouts: true`. */
  readonly capabilities: BackendCapabilities;
  /** Whether the inner backend is on this host (its cold adaptive timeout is `min`). */
  readonly local: boolean;
  /** The breaker, `null` when off. */
  readonly circuitBreaker: CircuitBreaker | null;
  /** The adaptive timeout, `null` when off. */
  readonly adaptiveTimeout: AdaptiveTimeout | null;
  /** The concurrency bound, `null` when off. */
  readonly backpressure: Backpressure | null;

  readonly #clock: () => number;
  /** The clock of operations' ends: `#clock`, or read once per burst (`_turn_clock.ts`). */
  readonly #opClock: () => number;
  /** Whether `#clock` is `performance.now()` (its readings may then go to the inner backend). */
  readonly #realClock: boolean;
  readonly #sweeper: DeadlineSweeper;
  readonly #innerTimeouts: boolean;
  readonly #metrics: GuardMetrics | null;
  readonly #log: Logger = guardLogger();
  /** The metrics series of this backend's operations, or `null` without metrics. */
  readonly #series: GuardSeries | null;
  readonly #maxWaitMs: number;
  #successes = 0;
  #failures = { transient: 0, permanent: 0, timeout: 0, authentication: 0, closed: 0, unknown: 0 };
  #rejectedByCircuit = 0;
  #rejectedByBackpressure = 0;
  #closed = false;

  /**
   * Create the object from its options (validated at once).
   *
   * @param inner The backend to guard.
   * @param config Features and their options; see {@linkcode GuardedBackendConfig}.
   * @throws {CacheConfigError} on an invalid option.
   */
  constructor(inner: Backend, config: GuardedBackendConfig = {}) {
    this.inner = inner;
    this.type = inner.type;
    this.local = inner.local === true;
    this.#clock = config.clock ?? (() => performance.now());
    this.#opClock = config.clock ?? turnNow;
    this.#realClock = config.clock === undefined;
    this.#metrics = config.metrics ?? null;
    this.#series = this.#metrics === null ? null : new GuardSeries(this.#metrics, inner.type);
    this.#innerTimeouts = inner.capabilities.timeouts === true;

    const cb = enabled(config.circuitBreaker);
    this.circuitBreaker = cb
      ? new CircuitBreaker({ name: inner.type, clock: this.#clock, ...cb })
      : null;
    this.circuitBreaker?.onStateChange((c) => this.#onStateChange(c));
    const to = enabled(config.timeout);
    this.adaptiveTimeout = to ? new AdaptiveTimeout({ local: this.local, ...to }) : null;
    this.#maxWaitMs = this.adaptiveTimeout
      ? this.adaptiveTimeout.snapshot().config.max * 1000
      : 5000;
    const bp = enabled(config.backpressure);
    this.backpressure = bp ? new Backpressure({ name: inner.type, ...bp }) : null;
    this.#sweeper = new DeadlineSweeper(config.timerResolutionMs ?? 10, this.#clock);
    this.#metrics?.setCircuitState(inner.type, CIRCUIT_STATE_VALUE.closed);

    this.capabilities = guardCapabilities(
      inner.capabilities,
      (operation, invoke, opts, useTimeout, hookable) =>
        this.#run(operation, invoke, opts, useTimeout, hookable === true),
    );
  }

  /** Guarded `get`. */
  get(key: string, opts?: GuardedOperationOptions): Promise<Uint8Array | null> {
    return this.#run("get", (o) => this.inner.get(key, o), opts, true, true);
  }

  /** Guarded `set`. */
  set(
    key: string,
    value: Uint8Array,
    ttlSeconds?: number | null,
    opts?: GuardedOperationOptions,
  ): Promise<void> {
    return this.#run("set", (o) => this.inner.set(key, value, ttlSeconds, o), opts, true, true);
  }

  /** Guarded `delete`. */
  delete(key: string, opts?: GuardedOperationOptions): Promise<boolean> {
    return this.#run("delete", (o) => this.inner.delete(key, o), opts, true, false);
  }

  /** Guarded `exists`. */
  exists(key: string, opts?: GuardedOperationOptions): Promise<boolean> {
    return this.#run("exists", (o) => this.inner.exists(key, o), opts, true, false);
  }

  /**
   * The inner backend's health check, not gated by the breaker (so it sees recovery), bounded by
   * the timeout maximum (a probe that does not answer in time reports `healthy: false`).
   */
  healthCheck(): Promise<BackendHealth> {
    const start = this.#clock();
    let probe: Promise<BackendHealth>;
    try {
      probe = this.inner.healthCheck();
    } catch (e) {
      probe = Promise.reject(e);
    }
    const timeoutMs = this.#maxWaitMs;
    return new Promise<BackendHealth>((resolve) => {
      const entry = {
        deadline: start + timeoutMs,
        done: false,
        expire: () =>
          resolve({
            healthy: false,
            latencyMs: this.#clock() - start,
            backendType: this.type,
            details: { error: `health check timed out after ${timeoutMs} ms` },
          }),
      };
      this.#sweeper.add(entry);
      probe.then((h) => {
        if (entry.done) return;
        entry.done = true;
        resolve(h);
      }, (e) => {
        if (entry.done) return;
        entry.done = true;
        resolve({
          healthy: false,
          latencyMs: this.#clock() - start,
          backendType: this.type,
          details: { error: e instanceof Error ? e.message : String(e) },
        });
      });
    });
  }

  /** Counts and snapshots for health checks and `cacheInfo()`. */
  stats(): GuardedBackendStats {
    return {
      backend: this.type,
      circuitBreaker: this.circuitBreaker?.snapshot() ?? null,
      timeout: this.adaptiveTimeout?.snapshot() ?? null,
      backpressure: this.backpressure?.snapshot() ?? null,
      successes: this.#successes,
      failures: { ...this.#failures },
      rejectedByCircuit: this.#rejectedByCircuit,
      rejectedByBackpressure: this.#rejectedByBackpressure,
    };
  }

  /** Stop the deadline timer and close the inner backend. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#sweeper.close();
    await this.inner.close?.();
  }

  /** Same as {@linkcode close}, for `await using`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  // ---- the guard -------------------------------------------------------------------------------

  /**
   * One guarded operation. `hookable`: `invoke` returns the inner backend's promise for the
   * operation as it is, so its options may be a settle hook (`backends/_settle_hook.ts`).
   */
  #run<T>(
    operation: string,
    invoke: Invoke<T>,
    opts: GuardedOperationOptions | undefined,
    useTimeout: boolean,
    hookable: boolean,
  ): Promise<T> {
    const cb = this.circuitBreaker;
    if (cb !== null && !cb.tryAcquire()) {
      this.#rejectedByCircuit++;
      this.#series?.count(operation, "rejected");
      return Promise.reject(
        withoutStack(() => new CircuitOpenError(this.type, operation, cb.retryInMs())),
      );
    }
    const bp = this.backpressure;
    if (bp !== null && !bp.tryAcquire()) {
      return bp.acquire(operation).then(
        () => this.#attempt(operation, invoke, opts, useTimeout, hookable),
        (error: unknown) => {
          cb?.recordIgnored();
          this.#rejectedByBackpressure++;
          this.#series?.count(operation, "rejected");
          throw error;
        },
      );
    }
    return this.#attempt(operation, invoke, opts, useTimeout, hookable);
  }

  #attempt<T>(
    operation: string,
    invoke: Invoke<T>,
    opts: GuardedOperationOptions | undefined,
    useTimeout: boolean,
    hookable: boolean,
  ): Promise<T> {
    const at = useTimeout ? this.adaptiveTimeout : null;
    let timeoutMs = at !== null ? at.timeoutMs : Infinity;
    const callerTimeout = opts?.timeoutMs;
    if (callerTimeout !== undefined && callerTimeout >= 0 && callerTimeout < timeoutMs) {
      timeoutMs = callerTimeout;
    }
    const signal = opts?.signal;
    // The clock is read only when a duration or a deadline needs it.
    const start = at !== null || this.#metrics !== null || timeoutMs !== Infinity
      ? this.#clock()
      : 0;
    let o: OperationOptions | undefined;
    let hook: GuardHook<GuardedOperationOptions> | undefined;
    if (timeoutMs !== Infinity || signal !== undefined) {
      if (!this.#innerTimeouts) {
        return this.#race(operation, invoke, opts, start, timeoutMs, signal, at);
      }
      // `get`, `set` and the stampede lock's attempt and write pass their bookkeeping as a settle
      // hook (`backends/_settle_hook.ts`): a backend that takes it settles the guard itself, and
      // no `then` is chained here.
      o = hookable
        ? hook = new GuardHook(this.#settleHook, operation, start, at, timeoutMs, opts)
        : {};
      if (timeoutMs !== Infinity) {
        o.timeoutMs = timeoutMs;
        // The deadline counts from the clock read just made (the backend need not read it again).
        if (this.#realClock) o.startedAt = start;
      }
      if (signal !== undefined) o.signal = signal;
    }
    const p = this.#invoke(invoke, o);
    if (hook !== undefined && hook.hooked) return p;
    return p.then(
      (value) => {
        this.#settle(operation, start, at, null, timeoutMs, opts);
        return value;
      },
      (error: unknown) => {
        throw this.#settle(operation, start, at, error, timeoutMs, opts);
      },
    );
  }

  #invoke<T>(invoke: Invoke<T>, o: OperationOptions | undefined): Promise<T> {
    try {
      return invoke(o);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Race the inner call against the shared deadline timer (and the caller's signal). */
  #race<T>(
    operation: string,
    invoke: Invoke<T>,
    opts: GuardedOperationOptions | undefined,
    start: number,
    timeoutMs: number,
    signal: AbortSignal | undefined,
    at: AdaptiveTimeout | null,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let onAbort: (() => void) | undefined;
      const finish = (error: unknown, value?: T) => {
        if (onAbort !== undefined) signal!.removeEventListener("abort", onAbort);
        const err = this.#settle(operation, start, at, error, timeoutMs, opts);
        if (err === null) resolve(value as T);
        else reject(err);
      };
      const entry = {
        deadline: start + timeoutMs,
        done: false,
        expire: () =>
          finish(
            new BackendError(
              `${this.type} ${operation} timed out after ${Math.round(timeoutMs)} ms`,
              { kind: "timeout", backend: this.type, operation },
            ),
          ),
      };
      if (signal !== undefined) {
        const abort = () => {
          if (entry.done) return;
          entry.done = true;
          finish(
            new CallerAbortError(`${this.type} ${operation} aborted by the caller`, {
              kind: "timeout",
              backend: this.type,
              operation,
              cause: signal.reason,
            }),
          );
        };
        if (signal.aborted) {
          abort();
          return;
        }
        onAbort = abort;
        signal.addEventListener("abort", onAbort, { once: true });
      }
      if (timeoutMs !== Infinity) this.#sweeper.add(entry);
      this.#invoke(invoke, undefined).then((value) => {
        if (entry.done) return;
        entry.done = true;
        finish(null, value);
      }, (error: unknown) => {
        if (entry.done) return;
        entry.done = true;
        finish(error);
      });
    });
  }

  readonly #settleHook = (h: GuardHook<GuardedOperationOptions>, error: unknown) =>
    this.#settle(h.operation, h.start, h.at, error, h.limitMs, h.opts);

  /** Book-keeping after an attempt; returns the classified error to rethrow (or `null`). */
  #settle(
    operation: string,
    start: number,
    at: AdaptiveTimeout | null,
    error: unknown,
    timeoutMs: number,
    opts: GuardedOperationOptions | undefined,
  ): BackendError | null {
    this.backpressure?.release();
    const duration = start === 0 && at === null && this.#metrics === null
      ? 0
      : this.#opClock() - start;
    const cb = this.circuitBreaker;
    if (error === null) {
      this.#successes++;
      cb?.recordSuccess();
      at?.record(duration);
      if (this.#metrics !== null) {
        this.#series!.observe(operation, "success", duration, opts?.metricFunction ?? "");
      }
      return null;
    }
    const err = toBackendError(error, this.type, operation);
    this.#failures[err.kind]++;
    if (err instanceof CallerAbortError) {
      cb?.recordIgnored();
    } else if (err.kind === "permanent" || err.kind === "closed") {
      cb?.recordIgnored();
    } else {
      cb?.recordFailure(err); // excludedErrors is applied inside
    }
    if (err.kind === "timeout" && !(err instanceof CallerAbortError)) {
      at?.record(Math.max(duration, timeoutMs === Infinity ? duration : timeoutMs));
    }
    if (this.#metrics !== null) {
      this.#series!.observe(operation, "error", duration, opts?.metricFunction ?? "");
      this.#metrics.recordError(operation, this.type, err.kind);
    }
    logFailure(this.#log, opts?.correlationId, this.type, operation, err, duration);
    return err;
  }

  #onStateChange(change: CircuitStateChange): void {
    this.#metrics?.setCircuitState(this.type, CIRCUIT_STATE_VALUE[change.to]);
    logStateChange(this.#log, this.type, change);
  }
}

/**
 * Whether `error` means "L2 was skipped without being tried" (open circuit or backpressure), as
 * opposed to a failure of the backend itself.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CircuitOpenError, isSkipL2Error } from "@cachekit/core/reliability";
 * assert.ok(isSkipL2Error(new CircuitOpenError("redis", "get", 10)));
 * assert.equal(isSkipL2Error(new Error("boom")), false);
 * ```
 */
export function isSkipL2Error(error: unknown): boolean {
  return error instanceof CircuitOpenError || error instanceof BackpressureError;
}
