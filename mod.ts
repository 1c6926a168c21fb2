/**
 * `@cachekit/core`: caching for Deno, Bun and Node that shares its cache with the Python and Rust
 * cachekit SDKs. One line around a function: an in-process L1 in front of an L2 backend (a file
 * directory by default, Redis when `CACHEKIT_REDIS_URL` / `REDIS_URL` is set, or any `Backend`),
 * with presets, group invalidation, stampede protection, a reliability layer, and optional
 * per-tenant encryption.
 *
 * This entry holds what an application calls. The parts advanced users reach for have their own
 * entry points:
 *
 * - `@cachekit/core/backends`: the backends with their defaults and helpers (`parseRedisUrl`,
 *   `defaultCacheDirectory`, ...), to write or wrap a `Backend`;
 * - `@cachekit/core/protocol`: cachekit protocol v1.0 keys, the ByteStorage envelope, per-tenant
 *   encryption and the stored wire document, to read or write entries another SDK shares;
 * - `@cachekit/core/serializers`: the MessagePack and JSON serializers, and `CalendarDate` /
 *   `TimeOfDay` for Python `date` and `time` values;
 * - `@cachekit/core/reliability`: the circuit breaker, adaptive timeout, backpressure and the
 *   guarded backend that `cache()` puts in front of every L2;
 * - `@cachekit/core/health`: the health checker, Prometheus metrics registry (with its observer
 *   hook for OpenTelemetry) and the LogTape logging helpers.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, MemoryBackend } from "@cachekit/core";
 *
 * const getUser = cache(async (id: number) => ({ id, name: `user ${id}` }), {
 *   name: "docs.users.get",
 *   ttl: 60,
 *   backend: new MemoryBackend(),
 * });
 * assert.equal((await getUser(42)).name, "user 42");
 * assert.equal(getUser.cacheInfo().misses, 1);
 * ```
 *
 * @module
 */

// Errors (each says what to do)
export * from "./errors.ts";
export { TenantRequiredError } from "./tenant.ts";
export { WireFormatError } from "./protocol/stored_value.ts";
export { CircuitOpenError } from "./reliability/circuit_breaker.ts";
export { BackpressureError } from "./reliability/backpressure.ts";

// cache(), its presets, the decorator, invalidation, tenants, the default backend
export {
  cache,
  type CacheControls,
  type CachedFunction,
  type CacheFunction,
  type CacheInfo,
  type CacheWithPresets,
  clearFunction,
  type ClearFunctionOptions,
  clearNamespace,
  type FunctionHealth,
  type GroupInvalidationOptions,
  invalidateTags,
  type L1OnlyOptions,
  type WithStatus,
} from "./cache.ts";
export {
  type AddListenerOptions,
  CacheEvent,
  type CacheEventDetail,
  type CacheEventListener,
  cacheEvents,
  CacheEventTarget,
  type CacheEventType,
  type CallInfo,
  type CallLayer,
  type CallRecord,
  type CallResult,
  type CallStatus,
  type CallTrace,
  type EventTargetListener,
  type RemoveListenerOptions,
} from "./engine/internal.ts";
export {
  cached,
  cachedControls,
  type CachedMethodDecorator,
  type CachedMethodOptions,
  type MethodControls,
  type MethodDecorator,
  type MethodKeys,
} from "./decorator.ts";
export { cacheContext, type FactoryContext } from "./factory_context.ts";
export {
  type CacheObject,
  createCache,
  type CreateCacheFunction,
  type CreateCacheOptions,
  type CreateCacheWithPresets,
} from "./cache_object.ts";
export { currentTenant, withTenant } from "./tenant.ts";
export { type CacheLogger, currentCorrelationId, withCorrelationId } from "./health/logging.ts";
export { closeDefaultBackend } from "./engine/internal.ts";

// Health and metrics endpoints for every cached function
export {
  type BackendHealthEntry,
  cacheHealthHandler,
  type CacheHealthReport,
  cacheMetricsHandler,
  checkCacheHealth,
} from "./cache_health.ts";
export type {
  HealthComponent,
  HealthLevel,
  HealthReport,
  HealthStatus,
} from "./health/health_checker.ts";
export type { HealthCheckHandlerOptions } from "./health/handlers.ts";
export type { CircuitState } from "./reliability/circuit_breaker.ts";

// Options: the option groups of `cache()`, and what they resolve to (`fn.config`)
export type * from "./config/options.ts";
export { SecretKey } from "./config/secret_key.ts";
export { pythonKwargs } from "./config/python_kwargs.ts";
export type { Serializer } from "./serializers/types.ts";

// Backends: the contract and the three implementations (more in `@cachekit/core/backends`)
export type * from "./backends/types.ts";
export {
  MemoryBackend,
  type MemoryBackendCapabilities,
  type MemoryBackendOptions,
} from "./backends/memory.ts";
export {
  FileBackend,
  type FileBackendCapabilities,
  type FileBackendOptions,
  type PruneReport,
} from "./backends/file.ts";
export { RedisBackend, type RedisBackendOptions, type RedisTlsSettings } from "./backends/redis.ts";
