/**
 * The presets (intents) of cachekit-py 0.3.0, the Python SDK: what each turns on and off. Explicit
 * options override a preset, except that `secure` cannot turn integrity checking off and requires a
 * master key.
 *
 * | setting | minimal | dev | test | production | secure |
 * |---|---|---|---|---|---|
 * | integrity checking | off | on | off | on | on, fixed |
 * | circuit breaker | off | on | off | on | on |
 * | adaptive timeout | off | on | off | on | on |
 * | backpressure | on | on | off | on | on |
 * | L1 | on | on | on | on | on (holds encrypted bytes) |
 * | L1 stale-while-revalidate | off | on | off | on | on |
 * | L1 invalidation across instances | off | off | off | on | on |
 * | stats / structured logs | off | logs | off | all | all |
 * | Prometheus metrics | off | off | off | on | on |
 * | OpenTelemetry spans (`monitoring.tracing`) | off | off | off | on | on |
 * | encryption | off | off | off | off | required |
 *
 * `cache.test` also defaults to a fresh in-memory backend per wrapper (no disk, no server) and
 * turns off jitter and cross-process locking, so tests are deterministic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { PRESETS } from "./presets.ts";
 * assert.equal(PRESETS.minimal.integrityChecking, false);
 * assert.ok(PRESETS.secure.encryption?.enabled);
 * ```
 *
 * @module
 */
import type { CacheOptions, PresetName } from "./options.ts";

const on = { enabled: true } as const;
const off = { enabled: false } as const;

/** The option values each preset sets (merged under the user's explicit options). */
export const PRESETS: Readonly<Record<PresetName, Readonly<CacheOptions>>> = Object.freeze(
  {
    minimal: {
      integrityChecking: false,
      circuitBreaker: off,
      timeout: off,
      backpressure: on,
      l1: { enabled: true, swrEnabled: false, invalidation: false },
      monitoring: {
        collectStats: false,
        structuredLogging: false,
        prometheus: false,
        tracing: false,
      },
      encryption: off,
    },
    dev: {
      integrityChecking: true,
      circuitBreaker: on,
      timeout: on,
      backpressure: on,
      l1: { enabled: true, swrEnabled: true, invalidation: false },
      monitoring: {
        collectStats: false,
        structuredLogging: true,
        prometheus: false,
        tracing: false,
      },
      encryption: off,
    },
    test: {
      integrityChecking: false,
      circuitBreaker: off,
      timeout: off,
      backpressure: off,
      l1: { enabled: true, swrEnabled: false, swrJitter: 0, invalidation: false },
      monitoring: {
        collectStats: false,
        structuredLogging: false,
        prometheus: false,
        tracing: false,
      },
      encryption: off,
      stampede: off,
    },
    production: {
      integrityChecking: true,
      circuitBreaker: on,
      timeout: on,
      backpressure: on,
      l1: { enabled: true, swrEnabled: true, invalidation: true },
      monitoring: { collectStats: true, structuredLogging: true, prometheus: true, tracing: true },
      encryption: off,
    },
    secure: {
      integrityChecking: true,
      circuitBreaker: on,
      timeout: on,
      backpressure: on,
      l1: { enabled: true, swrEnabled: true, invalidation: true },
      monitoring: { collectStats: true, structuredLogging: true, prometheus: true, tracing: true },
      encryption: on,
    },
  } satisfies Record<PresetName, CacheOptions>,
);
