/**
 * The built-in defaults of every option group (cachekit-py 0.3.0's, the Python SDK), the bottom
 * layer of `resolveConfig`'s precedence. A data table of its own so that the group
 * resolvers and the public `DEFAULTS` export read one object.
 *
 * @module
 */
import type {
  BackpressureOptions,
  CircuitBreakerOptions,
  L1Options,
  MonitoringOptions,
  Resolved,
  StampedeOptions,
  TimeoutOptions,
} from "./options.ts";

/** Built-in defaults of every group (cachekit-py 0.3.0's, the Python SDK). */
export const DEFAULTS: {
  readonly l1: Readonly<Resolved<Omit<L1Options, "storeReferences">>>;
  readonly circuitBreaker: Readonly<Resolved<Omit<CircuitBreakerOptions, "excludedErrors">>>;
  readonly timeout: Readonly<Resolved<TimeoutOptions>>;
  readonly backpressure: Readonly<Resolved<BackpressureOptions>>;
  readonly monitoring: Readonly<Resolved<MonitoringOptions>>;
  readonly stampede: Readonly<Resolved<StampedeOptions>>;
  readonly ttlRefreshThreshold: number;
  readonly failSafeThrottle: number;
} = Object.freeze({
  l1: Object.freeze({
    enabled: true,
    maxBytes: 100 * 1024 * 1024,
    maxEntries: 10_000,
    copy: "clone",
    swrEnabled: true,
    swrThreshold: 0.5,
    swrJitter: 0.1,
    invalidation: true,
    expiryBuffer: 1,
    defaultTtl: 300,
  }),
  circuitBreaker: Object.freeze({
    enabled: true,
    failureThreshold: 5,
    successThreshold: 3,
    recoveryTimeout: 30,
    halfOpenRequests: 3,
  }),
  timeout: Object.freeze({
    enabled: true,
    initial: 1.0,
    min: 0.1,
    max: 5.0,
    window: 1000,
    percentile: 95,
  }),
  backpressure: Object.freeze({
    enabled: true,
    maxConcurrent: 100,
    queueSize: 1000,
    waitTimeout: 0.1,
  }),
  monitoring: Object.freeze({
    collectStats: true,
    structuredLogging: true,
    prometheus: true,
    tracing: false,
  }),
  stampede: Object.freeze({ enabled: true, lease: 30, wait: 5 }),
  ttlRefreshThreshold: 0.5,
  // Seconds a stale value answered after a failure is reused (FusionCache's FailSafeThrottleDuration).
  failSafeThrottle: 30,
});
