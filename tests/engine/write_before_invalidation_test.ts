// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * A result that passed its store step's epoch check just before an invalidation has its L2 write
 * under way when the invalidation deletes the key. The deletion must not overtake it: a backend
 * need not apply operations in the order they were issued (the file backend writes a tagged
 * entry in several steps, and a large one with asynchronous I/O; Redis writes a value above
 * `chunkSizeBytes` as chunks, then its manifest once they are acknowledged), while a deletion is
 * one step. Before, the deletion ran first and the write landed after it, so L2 held the old value
 * after the invalidation had returned, and every later call (here, after L1, and in every other
 * instance) answered it until its TTL ended. Now the invalidation waits for the writes issued
 * before it (`writesLanded`).
 *
 * Deterministic: the backend starts the invalidation from inside the write call (the write is
 * issued; it has not landed), so the deletion is issued before any I/O of the write completes.
 * The memory backend applies operations in order: it is the control.
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import {
  type Backend,
  cache,
  clearFunction,
  createCache,
  FileBackend,
  invalidateTags,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 600 } as const;

/** A value above Redis's chunk size here (1 KiB) even compressed: random base64. */
function big(tag: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6 * 1024));
  return `${tag}|${btoa(String.fromCharCode(...bytes))}`;
}
const tagOf = (v: unknown) => String(v).split("|")[0];

/** Two instances of one store (two processes: their own clients) and its removal. */
interface Store {
  open(): Backend;
  close(): Promise<void>;
}

const STORES: [string, () => Store, { ignore?: boolean; ignoreReason?: string }][] = [
  ["memory", () => {
    const b = new MemoryBackend();
    return { open: () => b, close: () => b.close() };
  }, {}],
  ["file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ck-write-inv-"));
    const opened: Backend[] = [];
    return {
      open: () => {
        const b = new FileBackend({ directory: dir });
        opened.push(b);
        return b;
      },
      close: async () => {
        for (const b of opened) await b.close?.();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }, {}],
  ["redis (chunked)", () => {
    const prefix = uniquePrefix("write-inv");
    const opened: Backend[] = [];
    return {
      open: () => {
        const b = new RedisBackend({
          url: "redis://127.0.0.1:6379",
          keyPrefix: prefix,
          invalidationChannel: `${prefix}inv`,
          chunkSizeBytes: 1024,
        });
        opened.push(b);
        return b;
      },
      close: async () => {
        for (const b of opened) await b.close?.();
      },
    };
  }, sharedRedisTestOptions],
];

/**
 * `inner`, whose next value write after `arm(then)` (`set`, the tags capability's `setWithTags`,
 * or the stampede lock's `setAndUnlock`) calls `then` as soon as it is issued, before it can land.
 */
function onWrite(inner: Backend) {
  let armed: (() => void) | null = null;
  const fire = () => {
    const f = armed;
    armed = null;
    f?.();
  };
  const hooked = <T extends object>(target: T, name: string): T =>
    new Proxy(target, {
      get: (t, p) => {
        const v = Reflect.get(t, p, t);
        // Redis's lock with its lease in the key is a capability of its own.
        if (p === "inKey" && v != null) return hooked(v as object, name);
        if (typeof v !== "function") return v;
        if (p !== name) return v.bind(t);
        return (...a: unknown[]) => {
          const r = v.apply(t, a);
          fire();
          return r;
        };
      },
    });
  const caps = new Proxy(inner.capabilities, {
    get: (t, p) => {
      const v = Reflect.get(t, p, t);
      if (v === undefined) return v;
      if (p === "tags") return hooked(v, "setWithTags");
      if (p === "fetchLock") return hooked(v, "setAndUnlock"); // the write under the lock
      return v;
    },
  });
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "capabilities") return caps;
      if (p === "set") return hooked(t, "set").set;
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as Backend;
  return { backend, arm: (then: () => void) => armed = then };
}

type Fn = ((x: number) => Promise<unknown>) & {
  invalidate(x: number): Promise<void>;
  cacheClear(): Promise<void>;
};
const FN_INVALIDATIONS: [string, (f: Fn, b: Backend, name: string) => Promise<void>][] = [
  ["f.invalidate", (f) => f.invalidate(1)],
  ["cacheClear", (f) => f.cacheClear()],
  ["invalidateTags", (_f, backend) => invalidateTags("wi", { backend })],
  ["clearFunction", (_f, backend, name) => clearFunction(name, { backend })],
];

type Obj = ReturnType<typeof createCache>;
const OBJ_INVALIDATIONS: [string, (c: Obj) => Promise<void>][] = [
  ["delete", (c) => c.delete("k")],
  ["clear", (c) => c.clear()],
  ["deleteByTags", (c) => c.deleteByTags("wi")],
  ["expire (no stale window: a deletion)", (c) => c.expire("k")],
];

let n = 0;

for (const [kind, open, options] of STORES) {
  for (const [what, invalidate] of FN_INVALIDATIONS) {
    test(
      `cache(fn) on ${kind}: ${what} while the result's L2 write is under way: the write does not land after it`,
      async () => {
        const s = open();
        try {
          const { backend, arm } = onWrite(s.open());
          let version = "old";
          const work = async (_x: number) => big(version);
          const o = { ...bare, name: `write-inv-${n++}`, tags: () => ["wi"] };
          const f = cache(work, { ...o, backend }) as unknown as Fn;
          let invalidated: Promise<void> | undefined;
          arm(() => {
            version = "new"; // the source changes, and the invalidation says so…
            invalidated = invalidate(f, backend, o.name); // …while "old" is being written
          });
          assert.equal(tagOf(await f(1)), "old", "its caller asked before the invalidation");
          assert.ok(invalidated !== undefined, "the invalidation started during the write");
          await invalidated;
          assert.equal(tagOf(await f(1)), "new", "computed again");
          version = "newer";
          const other = cache(work, { ...o, backend: s.open(), l1: false }); // another instance
          assert.equal(tagOf(await other(1)), "new", "L2 holds what was computed after it");
        } finally {
          await s.close();
        }
      },
      { ...options, sanitize: false },
    );
  }

  for (const [what, invalidate] of OBJ_INVALIDATIONS) {
    test(
      `createCache on ${kind}: ${what} while a getOrSet's L2 write is under way: the write does not land after it`,
      async () => {
        const s = open();
        try {
          const { backend, arm } = onWrite(s.open());
          const o = { ...bare, namespace: `write-inv-${n++}` };
          const c = createCache({ ...o, backend });
          let version = "old";
          const factory = async () => big(version);
          let invalidated: Promise<void> | undefined;
          arm(() => {
            version = "new";
            invalidated = invalidate(c);
          });
          assert.equal(tagOf(await c.getOrSet("k", factory, { tags: ["wi"] })), "old");
          assert.ok(invalidated !== undefined, "the invalidation started during the write");
          await invalidated;
          assert.equal(tagOf(await c.getOrSet("k", factory, { tags: ["wi"] })), "new");
          const other = createCache({ ...o, backend: s.open(), l1: false });
          assert.equal(tagOf(await other.get("k")), "new", "L2 holds what was computed after it");
        } finally {
          await s.close();
        }
      },
      { ...options, sanitize: false },
    );
  }
}
