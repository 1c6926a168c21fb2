/**
 * A background refresh (stale-while-revalidate, `eagerRefresh`) is work on its key in flight: it
 * computed before another instance's deletion of the key was heard, so it must not store its
 * result after it. It checks, once its computation ends, that its L1 entry is still there (the
 * event evicts it); but the store that follows takes its time when the value is encrypted, and an
 * event heard then found no single flight of the key here (`worksOn` in `_invalidation.ts`), so
 * it moved no epoch: the refresh stored its older value in L1 and L2 after the deletion, and every
 * instance answered it until it expired. Now a background refresh of a named key counts as work on
 * it (the epoch moves, as it did for every such event before, and the store is skipped).
 *
 * Deterministic: the other instance's deletion is played when the refresh's store encrypts.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { shiftDateNow } from "../_timing.ts";
import { cache, createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

const masterKey = Array.from(
  crypto.getRandomValues(new Uint8Array(32)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");

/**
 * Run `then` once, as the next `crypto.subtle.encrypt` starts; `encrypted` resolves once that
 * encryption is done; `restore` undoes the hook.
 */
function onNextEncrypt(
  then: () => void | Promise<void>,
): { restore: () => void; encrypted: Promise<void> } {
  let encrypted!: () => void;
  const done = new Promise<void>((r) => encrypted = r);
  const subtle = globalThis.crypto.subtle as unknown as Record<string, unknown>;
  const own = Object.getOwnPropertyDescriptor(subtle, "encrypt");
  const original = subtle.encrypt as (...a: unknown[]) => Promise<unknown>;
  const restore = () => {
    if (own !== undefined) Object.defineProperty(subtle, "encrypt", own);
    else delete subtle.encrypt;
  };
  Object.defineProperty(subtle, "encrypt", {
    configurable: true,
    writable: true,
    value: async function (this: unknown, ...a: unknown[]) {
      restore();
      await then();
      try {
        return await original.apply(globalThis.crypto.subtle, a);
      } finally {
        encrypted();
      }
    },
  });
  return { restore, encrypted: done };
}

for (const kind of ["cache(fn)", "createCache"] as const) {
  test(
    `${kind}: another instance's deletion heard while a background refresh stores (encrypting) ` +
      "its result: not stored",
    async () => {
      const clock = shiftDateNow();
      let hook: ReturnType<typeof onNextEncrypt> | null = null;
      try {
        const inner = new MemoryBackend();
        const { backend, deliver, read } = drivenBackend({ inner, bus: true });
        let version = "old";
        let gate: Promise<void> | null = null;
        let computing!: () => void;
        let calls = 0;
        const work = async () => {
          calls++;
          const mine = version;
          if (gate !== null) {
            const g = gate;
            gate = null;
            computing();
            await g;
          }
          return mine;
        };
        const o = {
          ...bare,
          ttl: 60,
          eagerRefresh: 0.5,
          backend,
          l1: { invalidation: true, swrEnabled: false },
          encryption: { masterKey, singleTenant: true },
        };
        let call: () => Promise<unknown>;
        if (kind === "cache(fn)") {
          const f = cache((_x: number) => work(), { ...o, name: "refresh-remote-delete" });
          call = () => f(1) as Promise<unknown>;
        } else {
          const c = createCache({ ...o, namespace: "refresh-remote-delete" });
          call = () => c.getOrSet("k", work);
        }
        assert.equal(await call(), "old");
        const key = read.at(-1)!;
        clock.advance(31_000); // due for its refresh (30 s)
        let release!: () => void;
        gate = new Promise<void>((r) => release = r);
        const started = new Promise<void>((r) => computing = r);
        assert.equal(await call(), "old", "served; the refresh starts");
        await started;
        // The other instance deletes the key (and announces it) as the refresh's store encrypts.
        hook = onNextEncrypt(async () => {
          await inner.delete(key);
          version = "new";
          deliver({ level: "key", targets: [key], reason: "delete" });
        });
        release();
        await hook.encrypted;
        await new Promise((r) => setTimeout(r, 0)); // the refresh ends (memory backend: no I/O)
        assert.equal(version, "new");
        assert.ok(await inner.get(key) === null, "the older value is not in L2");
        const before = calls;
        assert.equal(await call(), "new", "nor in L1");
        assert.equal(calls, before + 1);
      } finally {
        hook?.restore();
        clock.restore();
      }
    },
  );
}
