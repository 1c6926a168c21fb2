/**
 * Which L2 backend a cached function uses, and its reliability guard.
 *
 * - An explicit `Backend`: used as given, behind a `GuardedBackend` (circuit breaker, adaptive
 *   timeout, backpressure per the resolved config; one guard per backend and settings, so
 *   functions sharing a backend share its breaker).
 * - `"default"` under the `test` preset: a fresh `MemoryBackend` per function.
 * - `"default"` otherwise: one backend per process, created on first use: `RedisBackend` when
 *   `CACHEKIT_REDIS_URL` / `REDIS_URL` is set (imported dynamically, so the Redis client is not
 *   loaded when unused), else a `FileBackend` in the OS cache directory (`CACHEKIT_FILE_*`).
 *
 * @module
 */
import type { Backend, OperationOptions } from "../backends/types.ts";
import type { ResolvedConfig } from "../config/options.ts";
import { MemoryBackend } from "../backends/memory.ts";
import { GuardedBackend, type GuardedBackendConfig } from "../reliability/guarded_backend.ts";
import { fileBackendOptionsFromEnv, redisUrlFromEnv } from "../config/env.ts";
import { getDefaultMetrics } from "../health/metrics.ts";
import { dropRecovery } from "./_recovery.ts";

let defaultBackend: Promise<Backend> | null = null;
let generation = 0;

/** Bumped by {@linkcode closeDefaultBackend}: engines holding the old default resolve it again. */
export function defaultBackendGeneration(): number {
  return generation;
}
const guards = new WeakMap<Backend, Map<string, GuardedBackend>>();

function guardConfig(c: ResolvedConfig): GuardedBackendConfig | null {
  const cb = c.circuitBreaker.enabled;
  const to = c.timeout.enabled;
  const bp = c.backpressure.enabled;
  if (!cb && !to && !bp) return null;
  const { excludedErrors, ...breaker } = c.circuitBreaker;
  return {
    circuitBreaker: cb ? { ...breaker, excludedErrors } : false,
    timeout: to ? { ...c.timeout } : false,
    backpressure: bp ? { ...c.backpressure } : false,
    metrics: c.monitoring.prometheus ? getDefaultMetrics() : null,
  };
}

/** `backend` behind the guard the config asks for (shared per backend and settings). */
export function guard(backend: Backend, c: ResolvedConfig): Backend {
  if (backend instanceof GuardedBackend) return backend;
  const gc = guardConfig(c);
  if (gc === null) return backend;
  const shareable = c.circuitBreaker.excludedErrors === null;
  const sig = JSON.stringify([gc.circuitBreaker, gc.timeout, gc.backpressure, !!gc.metrics]);
  let byBackend = guards.get(backend);
  if (shareable && byBackend?.has(sig)) return byBackend.get(sig)!;
  const g = new GuardedBackend(backend, gc);
  if (shareable) {
    if (!byBackend) guards.set(backend, byBackend = new Map());
    byBackend.set(sig, g);
  }
  return g;
}

/** The (unguarded) process-wide default backend, created once. */
export function defaultL2(): Promise<Backend> {
  return defaultBackend ??= createDefault().catch((e) => {
    defaultBackend = null;
    throw e;
  });
}

/** The default backend if it was created (or is being created), else `null`; creates nothing. */
export function createdDefaultL2(): Promise<Backend> | null {
  return defaultBackend;
}

async function createDefault(): Promise<Backend> {
  const url = redisUrlFromEnv();
  if (url) {
    const { RedisBackend } = await import("../backends/redis.ts");
    return new RedisBackend({ url });
  }
  const { FileBackend } = await import("../backends/file.ts");
  return new FileBackend(fileBackendOptionsFromEnv());
}

/**
 * Close the process-wide default backend (if it was created); the next use (by any cached function)
 * creates a new one. Writes already in flight finish first (bounded: the Redis backend waits up to
 * 1 s). Not needed for a script to exit: idle connections and timers do not keep it alive.
 * Invalidations still queued for retry on it (auto-recovery after an outage) are dropped.
 *
 * @example
 * ```ts
 * import { closeDefaultBackend } from "@cachekit/core";
 * await closeDefaultBackend();
 * ```
 */
export async function closeDefaultBackend(): Promise<void> {
  const p = defaultBackend;
  defaultBackend = null;
  generation++;
  const b = p === null ? null : await p.catch(() => null);
  if (b === null) return;
  dropRecovery(b); // its queued invalidations cannot run on a closed backend
  await b.close?.();
}

/** The L2 backend of a config (guarded), or `null` for L1 only. */
export async function resolveBackend(c: ResolvedConfig): Promise<Backend | null> {
  if (c.backend === null) return null;
  if (c.backend !== "default") return guard(c.backend, c);
  if (c.preset === "test") return guard(new MemoryBackend(), c);
  return guard(await defaultL2(), c);
}

/**
 * Store `value` under `key` with its `tags` (none: a plain `set`) so that `invalidateTags` can
 * always find it: through `setWithTags` (value and tag index in one step) when the backend has it,
 * else the tag index first, so a failure between the two leaves a tag without its value
 * (harmless), never a value without its tags.
 */
export async function setTagged(
  b: Backend,
  key: string,
  value: Uint8Array,
  ttl: number | null,
  tags: readonly string[] | null,
  opts?: OperationOptions,
): Promise<void> {
  const cap = tags !== null && tags.length > 0 ? b.capabilities.tags : undefined;
  if (cap?.setWithTags) return await cap.setWithTags(key, value, ttl, tags!, opts);
  if (cap) await cap.addTags(key, tags!, ttl);
  await b.set(key, value, ttl, opts);
}
