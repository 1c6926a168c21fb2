/**
 * A circuit breaker for one L2 backend, with the Python cachekit defaults.
 *
 * ```
 *            failureThreshold failures            recoveryTimeout elapsed
 *  closed ───────────────────────────────▶ open ─────────────────────────▶ half_open
 *    ▲      (within failureWindow, no              ▲                          │
 *    │       success in between)                   └──── any probe fails ─────┤
 *    └──────────────── successThreshold probes succeed ───────────────────────┘
 * ```
 *
 * - **closed**: every call goes through. A failure is remembered for `failureWindow` seconds; a
 *   success clears the remembered failures (so the count is of *consecutive* failures, as in the
 *   Python library, but old ones age out instead of adding up forever).
 * - **open**: calls are refused at once ({@linkcode CircuitOpenError}, a `BackendError` of kind
 *   `transient`) until `recoveryTimeout` seconds have passed since the circuit opened.
 * - **half_open**: at most `halfOpenRequests` probe calls are let through in this half-open
 *   period (a total, not a concurrency limit, as in Python); `successThreshold` successful probes
 *   close the circuit, any failed probe re-opens it and restarts the recovery timer.
 *
 * Errors for which `excludedErrors(err)` is true are not failures: they pass through unchanged and
 * do not move the state (a probe that ends that way gives its slot back).
 *
 * Hand-written rather than taken from npm: `opossum` is Node-centric (EventEmitter, percentage
 * windows) and `cockatiel`'s breaker lets one half-open probe through and closes on its first
 * success; neither has cachekit-py's `halfOpenRequests`/`successThreshold` pair nor an injectable
 * clock for deterministic tests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CircuitBreaker } from "@cachekit/core/reliability";
 *
 * let now = 0;
 * const breaker = new CircuitBreaker({ failureThreshold: 2, recoveryTimeout: 1, clock: () => now });
 * for (let i = 0; i < 2; i++) {
 *   await breaker.execute(() => Promise.reject(new Error("down"))).catch(() => {});
 * }
 * assert.equal(breaker.state, "open");
 * now += 1000;
 * assert.equal(breaker.state, "half_open");
 * ```
 *
 * @module
 */

import { BackendError, CacheConfigError } from "../errors.ts";
import { fnOption, intOption, numOption } from "./_validate.ts";
import { withoutStack } from "./_cheap_error.ts";

/** The three states of a {@linkcode CircuitBreaker}. */
export type CircuitState = "closed" | "open" | "half_open";

/**
 * Numeric value of each state for the `circuit_breaker_state` gauge (the Python library's enum
 * values): closed 0, open 1, half-open 2.
 */
export const CIRCUIT_STATE_VALUE: Readonly<Record<CircuitState, number>> = Object.freeze({
  closed: 0,
  open: 1,
  half_open: 2,
});

/** A state transition, passed to {@linkcode CircuitBreakerOptions.onStateChange}. */
export interface CircuitStateChange {
  /** Breaker name (usually the backend type). */
  name: string;
  /** State before. */
  from: CircuitState;
  /** State after. */
  to: CircuitState;
  /** Why: e.g. `"5 failures in 60 s"`, `"recovery timeout elapsed"`, `"probe failed"`. */
  reason: string;
  /** The error that caused the transition to `open`, if any. */
  error?: unknown;
  /** Clock time (ms) of the transition. */
  at: number;
}

/** Options of {@linkcode CircuitBreaker}; times in seconds like cachekit-py. */
export interface CircuitBreakerOptions {
  /** Failures (within `failureWindow`) that open the circuit. Default 5. */
  failureThreshold?: number;
  /** Successful half-open probes that close the circuit. Default 3; at most `halfOpenRequests`. */
  successThreshold?: number;
  /** Seconds the circuit stays open before letting probes through. Default 30. */
  recoveryTimeout?: number;
  /** Probe calls allowed per half-open period. Default 3. */
  halfOpenRequests?: number;
  /** Seconds a failure is remembered while closed. Default 60. */
  failureWindow?: number;
  /** Errors that are not failures (they pass through and leave the state alone). */
  excludedErrors?: ((error: unknown) => boolean) | null;
  /** Called after every state change (exceptions thrown by it are ignored). */
  onStateChange?: (change: CircuitStateChange) => void;
  /** Name used in errors, logs and metrics. Default `"backend"`. */
  name?: string;
  /** Millisecond clock; inject a fake one in tests. Default `performance.now`. */
  clock?: () => number;
}

/** Counts and timings of a breaker, for health checks. */
export interface CircuitBreakerSnapshot {
  /** Breaker name. */
  name: string;
  /** Current state. */
  state: CircuitState;
  /** Failures currently remembered (closed) toward `failureThreshold`. */
  failures: number;
  /** Successful probes in the current half-open period. */
  halfOpenSuccesses: number;
  /** Probes let through in the current half-open period. */
  halfOpenAttempts: number;
  /** Probes still running. */
  halfOpenInFlight: number;
  /** Calls that succeeded, ever. */
  totalSuccesses: number;
  /** Calls that failed (counted toward the breaker), ever. */
  totalFailures: number;
  /** Calls refused because the circuit was open or out of probes, ever. */
  totalRejected: number;
  /** Times the circuit opened, ever. */
  timesOpened: number;
  /** Milliseconds until probes are allowed (0 unless open). */
  retryInMs: number;
  /** The configuration in force. */
  config: {
    failureThreshold: number;
    successThreshold: number;
    recoveryTimeout: number;
    halfOpenRequests: number;
    failureWindow: number;
  };
}

/**
 * Thrown (or rejected) when the circuit refuses a call: a `BackendError` of kind `transient` whose
 * message says the circuit is open. `skipL2` tells the engine to go to L1 or the function.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CircuitOpenError } from "@cachekit/core/reliability";
 * const e = new CircuitOpenError("redis", "get", 1200);
 * assert.equal(e.kind, "transient");
 * assert.ok(e.skipL2);
 * assert.ok(e.message.includes("circuit open"));
 * ```
 */
export class CircuitOpenError extends BackendError {
  /** Always `true`: the call was not attempted; skip L2. */
  readonly skipL2: true = true;
  /** Milliseconds until the breaker lets probes through (0 when half-open and out of probes). */
  readonly retryInMs: number;

  /**
   * Create the object from its options (validated at once).
   *
   * @param backend Backend (breaker) name.
   * @param operation The refused operation.
   * @param retryInMs Milliseconds until probes are allowed.
   */
  constructor(backend: string, operation: string, retryInMs: number) {
    super(
      `${backend} ${operation} refused: circuit open (L2 skipped; retry in ${
        Math.ceil(retryInMs)
      } ms)`,
      { kind: "transient", backend, operation },
    );
    this.retryInMs = retryInMs;
  }
}

/** The breaker. See the module documentation for the state machine. */
export class CircuitBreaker {
  /** Breaker name (errors, logs, metrics). */
  readonly name: string;
  readonly #failureThreshold: number;
  readonly #successThreshold: number;
  readonly #recoveryMs: number;
  readonly #halfOpenRequests: number;
  readonly #windowMs: number;
  readonly #excluded: ((error: unknown) => boolean) | undefined;
  readonly #listeners: Array<(change: CircuitStateChange) => void> = [];
  readonly #clock: () => number;

  #state: CircuitState = "closed";
  #failureTimes: number[] = [];
  #openedAt = 0;
  #halfOpenAttempts = 0;
  #halfOpenInFlight = 0;
  #halfOpenSuccesses = 0;
  #totalSuccesses = 0;
  #totalFailures = 0;
  #totalRejected = 0;
  #timesOpened = 0;

  /**
   * Create the object from its options (validated at once).
   *
   * @param options Thresholds and callbacks; see {@linkcode CircuitBreakerOptions}.
   * @throws {CacheConfigError} on an invalid option.
   */
  constructor(options: CircuitBreakerOptions = {}) {
    const p = "circuitBreaker.";
    this.#failureThreshold = intOption(p + "failureThreshold", options.failureThreshold, 5, 1);
    this.#successThreshold = intOption(p + "successThreshold", options.successThreshold, 3, 1);
    this.#recoveryMs = numOption(p + "recoveryTimeout", options.recoveryTimeout, 30, 0) * 1000;
    this.#halfOpenRequests = intOption(p + "halfOpenRequests", options.halfOpenRequests, 3, 1);
    this.#windowMs = numOption(p + "failureWindow", options.failureWindow, 60, 0, true) * 1000;
    if (this.#successThreshold > this.#halfOpenRequests) {
      throw new CacheConfigError(
        p + "successThreshold",
        this.#successThreshold,
        `an integer <= halfOpenRequests (${this.#halfOpenRequests}), or the circuit could never close`,
      );
    }
    this.#excluded = fnOption(p + "excludedErrors", options.excludedErrors);
    const onChange = fnOption<(c: CircuitStateChange) => void>(
      p + "onStateChange",
      options.onStateChange,
    );
    if (onChange) this.#listeners.push(onChange);
    this.#clock = fnOption<() => number>(p + "clock", options.clock) ?? (() => performance.now());
    this.name = options.name ?? "backend";
  }

  /** Current state (an open circuit whose recovery timeout elapsed reads as `half_open`). */
  get state(): CircuitState {
    if (this.#state === "open" && this.#clock() - this.#openedAt >= this.#recoveryMs) {
      this.#transition("half_open", "recovery timeout elapsed");
    }
    return this.#state;
  }

  /**
   * Add a state-change listener (in addition to `onStateChange`).
   *
   * @param listener Called after every transition.
   * @returns A function that removes the listener.
   */
  onStateChange(listener: (change: CircuitStateChange) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      const i = this.#listeners.indexOf(listener);
      if (i >= 0) this.#listeners.splice(i, 1);
    };
  }

  /**
   * Ask to make a call. `true`: go ahead, then report exactly one of {@linkcode recordSuccess},
   * {@linkcode recordFailure} or {@linkcode recordIgnored}. `false`: the circuit refuses (counted in
   * `totalRejected`); do not call and do not report.
   */
  tryAcquire(): boolean {
    if (this.#state === "closed") return true;
    const state = this.state; // may move open → half_open
    if (state === "half_open" && this.#halfOpenAttempts < this.#halfOpenRequests) {
      this.#halfOpenAttempts++;
      this.#halfOpenInFlight++;
      return true;
    }
    this.#totalRejected++;
    return false;
  }

  /** Milliseconds until an open circuit lets probes through (0 when not open). */
  retryInMs(): number {
    if (this.#state !== "open") return 0;
    return Math.max(0, this.#recoveryMs - (this.#clock() - this.#openedAt));
  }

  /** Report that an acquired call succeeded. */
  recordSuccess(): void {
    this.#totalSuccesses++;
    if (this.#state === "closed") {
      if (this.#failureTimes.length > 0) this.#failureTimes.length = 0;
      return;
    }
    if (this.#state === "half_open") {
      this.#halfOpenInFlight = Math.max(0, this.#halfOpenInFlight - 1);
      this.#halfOpenSuccesses++;
      if (this.#halfOpenSuccesses >= this.#successThreshold) {
        this.#transition("closed", `${this.#halfOpenSuccesses} successful probes`);
      }
    }
    // open: a call acquired before the circuit opened finished late; it changes nothing.
  }

  /**
   * Report that an acquired call failed. An error matched by `excludedErrors` is treated as
   * {@linkcode recordIgnored}.
   *
   * @param error The failure (passed to `excludedErrors` and to listeners).
   */
  recordFailure(error?: unknown): void {
    if (this.#excluded && error !== undefined && this.#isExcluded(error)) {
      this.recordIgnored();
      return;
    }
    this.#totalFailures++;
    const now = this.#clock();
    if (this.#state === "closed") {
      const times = this.#failureTimes;
      times.push(now);
      while (times.length > 0 && now - times[0] > this.#windowMs) times.shift();
      if (times.length > this.#failureThreshold) times.shift();
      if (times.length >= this.#failureThreshold) {
        this.#transition(
          "open",
          `${times.length} failures within ${this.#windowMs / 1000} s`,
          error,
        );
      }
    } else if (this.#state === "half_open") {
      this.#halfOpenInFlight = Math.max(0, this.#halfOpenInFlight - 1);
      this.#transition("open", "a half-open probe failed", error);
    }
  }

  /** Report that an acquired call ended in a way that says nothing about health (gives back a probe). */
  recordIgnored(): void {
    if (this.#state === "half_open" && this.#halfOpenInFlight > 0) {
      this.#halfOpenInFlight--;
      this.#halfOpenAttempts = Math.max(0, this.#halfOpenAttempts - 1);
    }
  }

  /**
   * Run `fn` under the breaker: refused at once with {@linkcode CircuitOpenError} while open.
   *
   * @param fn The protected call.
   * @param operation Operation name for the refusal error. Default `"call"`.
   * @returns What `fn` resolves.
   */
  async execute<T>(fn: () => Promise<T>, operation = "call"): Promise<T> {
    if (!this.tryAcquire()) {
      throw withoutStack(() => new CircuitOpenError(this.name, operation, this.retryInMs()));
    }
    let result: T;
    try {
      result = await fn();
    } catch (error) {
      this.recordFailure(error);
      throw error;
    }
    this.recordSuccess();
    return result;
  }

  /** Force the circuit closed and forget failures (operator action, tests). */
  reset(): void {
    this.#failureTimes.length = 0;
    if (this.#state !== "closed") this.#transition("closed", "reset");
  }

  /** Counts and timings for health checks. */
  snapshot(): CircuitBreakerSnapshot {
    const state = this.state;
    return {
      name: this.name,
      state,
      failures: this.#failureTimes.length,
      halfOpenSuccesses: this.#halfOpenSuccesses,
      halfOpenAttempts: this.#halfOpenAttempts,
      halfOpenInFlight: this.#halfOpenInFlight,
      totalSuccesses: this.#totalSuccesses,
      totalFailures: this.#totalFailures,
      totalRejected: this.#totalRejected,
      timesOpened: this.#timesOpened,
      retryInMs: this.retryInMs(),
      config: {
        failureThreshold: this.#failureThreshold,
        successThreshold: this.#successThreshold,
        recoveryTimeout: this.#recoveryMs / 1000,
        halfOpenRequests: this.#halfOpenRequests,
        failureWindow: this.#windowMs / 1000,
      },
    };
  }

  #isExcluded(error: unknown): boolean {
    try {
      return this.#excluded!(error) === true;
    } catch {
      return false;
    }
  }

  #transition(to: CircuitState, reason: string, error?: unknown): void {
    const from = this.#state;
    if (from === to) return;
    const at = this.#clock();
    this.#state = to;
    this.#failureTimes.length = 0;
    this.#halfOpenAttempts = 0;
    this.#halfOpenInFlight = 0;
    this.#halfOpenSuccesses = 0;
    if (to === "open") {
      this.#openedAt = at;
      this.#timesOpened++;
    }
    const change: CircuitStateChange = { name: this.name, from, to, reason, at };
    if (error !== undefined) change.error = error;
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // A listener must never break the call path.
      }
    }
  }
}
