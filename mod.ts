/**
 * `@cachekit/core`: caching for Deno, Bun and Node that shares its cache with the Python and Rust
 * cachekit SDKs. One line around a function: an in-process L1 in front of an L2 backend (a file
 * directory by default, Redis when `CACHEKIT_REDIS_URL` / `REDIS_URL` is set, or any `Backend`),
 * with presets, group invalidation, stampede protection, a reliability layer, and optional
 * per-tenant encryption.
 *
 * @example
 * ```ts
 * import { cache, MemoryBackend } from "@cachekit/core";
 *
 * const getUser = cache(async (id: number) => ({ id, name: `user ${id}` }), {
 *   name: "docs.users.get",
 *   ttl: 60,
 *   backend: new MemoryBackend(),
 * });
 * console.log((await getUser(42)).name); // user 42
 * console.log(getUser.cacheInfo().misses); // 1
 * ```
 *
 * @module
 */

// Errors
export * from "./errors.ts";

// The engine: cache(), presets, decorator, invalidation, tenants, identity, L1, wire format
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
} from "./cache.ts";
export { cached, type CachedMethodOptions, type MethodDecorator } from "./decorator.ts";
export {
  currentTenant,
  quoteTenant,
  tenantContextUsed,
  TenantRequiredError,
  validateTenant,
  withTenant,
} from "./tenant.ts";
export {
  callerModule,
  deriveIdentity,
  type IdentityInput,
  modulePath,
  registerIdentity,
} from "./engine/identity.ts";
export { L1_ENTRY_OVERHEAD, L1Cache, type L1Entry, type L1Limits } from "./engine/l1.ts";
export {
  decodeWire,
  encodeWire,
  type WireDocument,
  type WireEncryption,
  type WireForm,
  WireFormatError,
} from "./wire.ts";
export { closeDefaultBackend } from "./engine/_backend.ts";
export {
  cacheHealthHandler,
  type CacheHealthReport,
  cacheMetricsHandler,
  checkCacheHealth,
} from "./cache_health.ts";

// Configuration (the option groups of `cache()`; the reliability classes' own option types are
// exported as CircuitBreakerSettings / BackpressureSettings)
export type * from "./config/options.ts";
export type { BackpressureOptions, CircuitBreakerOptions } from "./config/options.ts";
export { DEFAULTS, resolveConfig } from "./config/resolve.ts";
export { PRESETS } from "./config/presets.ts";
export { SecretKey } from "./config/secret_key.ts";
export {
  type EnvConfig,
  envConfig,
  type EnvSource,
  type FileBackendEnvOptions,
  fileBackendOptionsFromEnv,
  readEnvConfig,
  redisUrlFromEnv,
  resetEnvConfig,
} from "./config/env.ts";

// Backends
export * from "./backends/types.ts";
export * from "./backends/memory.ts";
export * from "./backends/file.ts";
export * from "./backends/redis.ts";

// Serializers
export {
  CalendarDate,
  JsonSerializer,
  type Serializer,
  StdSerializer,
  TimeOfDay,
} from "./serializers/mod.ts";

// Reliability
export * from "./reliability/mod.ts";
export type {
  BackpressureOptions as BackpressureSettings,
  CircuitBreakerOptions as CircuitBreakerSettings,
} from "./reliability/mod.ts";

// Health, metrics, logging
export * from "./health/mod.ts";
