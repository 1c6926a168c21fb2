/**
 * L2 backends of `@cachekit/core`: the {@linkcode Backend} contract with its optional
 * capabilities, the in-process {@linkcode MemoryBackend}, the multi-process
 * {@linkcode FileBackend} and the shared {@linkcode RedisBackend} (Redis or Redis Cluster; the
 * Redis client is only loaded when a `RedisBackend` first connects).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Backend, MemoryBackend } from "@cachekit/core/backends";
 *
 * const backend: Backend = new MemoryBackend();
 * await backend.set("k", new Uint8Array([42]), 10);
 * assert.ok(await backend.exists("k"));
 * assert.ok(backend.capabilities.lock !== undefined);
 * ```
 *
 * @module
 */

export { CacheKitError } from "../errors.ts";
export * from "./types.ts";
export * from "./memory.ts";
export * from "./file.ts";
export * from "./redis.ts";
