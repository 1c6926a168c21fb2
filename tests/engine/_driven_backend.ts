/**
 * A memory backend the test drives, for the tests of work in flight as something else happens:
 * its next `get` after `hold()` reads L2 at once but answers only when the test calls `release`
 * (what L2 held when it was read), every `get` is recorded, and, with `bus`, an invalidation bus
 * whose events the test delivers as another instance's (`deliver`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { type Backend, MemoryBackend } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";

/** A held read: `read` resolves once it has read L2; it answers after `release()`. */
export interface HeldRead {
  /** Resolves when the held `get` has read L2 (and waits). */
  read: Promise<void>;
  /** Let it answer. */
  release: () => void;
}

/** What {@linkcode drivenBackend} gives. */
export interface DrivenBackend {
  /** The backend to give the cache under test. */
  backend: Backend;
  /** The memory backend under it (another instance's view of the same L2). */
  inner: MemoryBackend;
  /** Hold the next `get`. */
  hold: () => HeldRead;
  /** The keys read so far, in order. */
  read: string[];
  /** Deliver another instance's event on the bus (with `bus`). */
  deliver: (e: Omit<InvalidationEvent, "sender">) => void;
  /** The events published on the bus so far, in order (with `bus`). */
  published: Omit<InvalidationEvent, "sender">[];
}

/**
 * `inner` (a new memory backend by default) behind a proxy whose `get` can be held and is
 * recorded; with `bus`, its `capabilities.invalidation` is a bus the test drives.
 */
export function drivenBackend(
  opts: { inner?: MemoryBackend; bus?: boolean } = {},
): DrivenBackend {
  const inner = opts.inner ?? new MemoryBackend();
  const handlers = new Set<(e: InvalidationEvent) => void>();
  const read: string[] = [];
  const published: Omit<InvalidationEvent, "sender">[] = [];
  let next: { reached: () => void; released: Promise<void> } | null = null;
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "get") {
        return async (key: string, o?: Parameters<Backend["get"]>[1]) => {
          read.push(key);
          const got = await t.get(key, o);
          const h = next;
          if (h !== null) {
            next = null;
            h.reached();
            await h.released;
          }
          return got;
        };
      }
      if (p === "capabilities" && opts.bus === true) {
        return {
          ...t.capabilities,
          invalidation: {
            instanceId: "this",
            publish: (e: Omit<InvalidationEvent, "sender">) => {
              published.push(e);
              return Promise.resolve();
            },
            subscribe: (h: (e: InvalidationEvent) => void) => {
              handlers.add(h);
              return Promise.resolve(() => Promise.resolve(void handlers.delete(h)));
            },
          },
        };
      }
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as Backend;
  const hold = (): HeldRead => {
    let reached!: () => void;
    let release!: () => void;
    const readP = new Promise<void>((r) => reached = r);
    next = { reached, released: new Promise<void>((r) => release = r) };
    return { read: readP, release };
  };
  const deliver = (e: Omit<InvalidationEvent, "sender">) => {
    assert.ok(handlers.size > 0, "subscribed to the bus");
    for (const h of handlers) h({ ...e, sender: "other" });
  };
  return { backend, inner, hold, read, deliver, published };
}
