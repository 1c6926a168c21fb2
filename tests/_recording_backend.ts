/**
 * A pass-through backend that records every write (`set`, and `tags.setWithTags` and
 * `fetchLock.setAndUnlock` when the inner backend has them), for tests that look at what the engine stored:
 * the keys in write order (repeats included), each write's TTL, and which written keys still exist.
 *
 * @module
 */
import { type Backend, MemoryBackend, type OperationOptions } from "../backends/mod.ts";

/** What {@linkcode recording} returns. */
export interface Recording<B extends Backend> {
  /** The pass-through to give the engine. */
  backend: Backend;
  /** The wrapped backend (reads here are not recorded). */
  inner: B;
  /** Keys written, in order (a key written twice appears twice). */
  keys: string[];
  /** Each write's key and TTL (`null`: none). */
  writes: { key: string; ttl: number | null }[];
  /** The distinct written keys that still exist in `inner`, in first-write order. */
  live(): Promise<string[]>;
}

/** Wrap `inner` (default: a new `MemoryBackend`) so that every `set` is recorded. */
export function recording<B extends Backend = MemoryBackend>(
  inner: B = new MemoryBackend() as unknown as B,
): Recording<B> {
  const keys: string[] = [];
  const writes: { key: string; ttl: number | null }[] = [];
  const record = (k: string, t: number | null | undefined) => {
    keys.push(k);
    writes.push({ key: k, ttl: t ?? null });
  };
  const tags = inner.capabilities.tags;
  const setWithTags = tags?.setWithTags?.bind(tags);
  const capabilities = tags && setWithTags
    ? {
      ...inner.capabilities,
      tags: {
        addTags: tags.addTags.bind(tags),
        invalidateTags: tags.invalidateTags.bind(tags),
        setWithTags: (
          k: string,
          v: Uint8Array,
          t: number | null | undefined,
          tg: readonly string[],
          o?: OperationOptions,
        ) => {
          record(k, t);
          return setWithTags(k, v, t, tg, o);
        },
      },
    }
    : { ...inner.capabilities };
  const fetchLock = inner.capabilities.fetchLock;
  if (fetchLock !== undefined) {
    capabilities.fetchLock = {
      fetchOrLock: fetchLock.fetchOrLock.bind(fetchLock),
      unlock: fetchLock.unlock.bind(fetchLock),
      setAndUnlock: (k, v, t, tg, token, o) => {
        record(k, t);
        return fetchLock.setAndUnlock(k, v, t, tg, token, o);
      },
    };
  }
  const backend: Backend = {
    type: inner.type,
    capabilities,
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => {
      record(k, t);
      return inner.set(k, v, t, o);
    },
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
    close: () => inner.close?.() ?? Promise.resolve(),
  };
  const live = async () => {
    const out: string[] = [];
    for (const k of new Set(keys)) if (await inner.exists(k)) out.push(k);
    return out;
  };
  return { backend, inner, keys, writes, live };
}
