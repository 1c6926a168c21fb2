// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * The index of L1 entries by backend key, which remote key events use to evict (`backendIndex`
 * in `engine/_l1_store.ts`): misses do not maintain it until a remote key event arrives (an L1
 * that never gets one pays nothing per store), the first event builds it from the entries, later
 * stores keep it, and after a long quiet spell it is dropped and built again by the next event.
 * Whatever its state, a remote write or deletion of a key evicts exactly that key's entry.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { type Backend, cache, MemoryBackend } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";
import { liveEngines } from "../../engine/_registry.ts";
import type { Engine } from "../../engine/_engine.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** A memory backend with an invalidation bus the test drives (`deliver`). */
function busBackend() {
  const inner = new MemoryBackend();
  let handler: ((e: InvalidationEvent) => void) | null = null;
  const backend: Backend = {
    type: "busmem",
    capabilities: {
      ...inner.capabilities,
      invalidation: {
        instanceId: "test",
        publish: () => Promise.resolve(),
        subscribe: (h: (e: InvalidationEvent) => void) => {
          handler = h;
          return Promise.resolve(() => Promise.resolve());
        },
      },
    },
    get: (k, o) => inner.get(k, o),
    set: (k, v, t, o) => inner.set(k, v, t, o),
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
  return {
    backend,
    deliver: (targets: string[]) =>
      handler!({ level: "key", targets, reason: "write", sender: "other" }),
  };
}

function engineNamed(name: string): Engine {
  const e = liveEngines().find((x) => x.identity.includes(name));
  assert.ok(e !== undefined, name);
  return e;
}

function backendKeyOf(eng: Engine, arg: number): string {
  const e = eng.l1!.map.get(arg);
  assert.ok(e !== undefined && e.backendKey !== null, `entry of ${arg}`);
  return e.backendKey;
}

let seq = 0;

test("backend index: built by the first remote key event, then kept by stores", async () => {
  const bus = busBackend();
  const name = `l1index.first.${seq++}`;
  let calls = 0;
  const f = cache(async (n: number) => ({ n, calls: ++calls }), {
    name,
    ...bare,
    backend: bus.backend,
    l1: { invalidation: true },
  });
  for (let i = 0; i < 5; i++) await f(i);
  const eng = engineNamed(name);
  assert.equal(eng.indexLive, false);
  assert.equal(eng.byBackendKey.size, 0, "misses did not index");
  bus.deliver([backendKeyOf(eng, 2)]);
  assert.equal(eng.indexLive, true);
  assert.equal(eng.l1!.map.has(2), false, "the written key was evicted");
  assert.equal(eng.l1!.size, 4, "and nothing else");
  assert.equal(eng.byBackendKey.size, 5, "built from the 5 entries (an evicted one stays listed)");
  await f(7);
  assert.equal(eng.byBackendKey.size, 6, "a live index is kept by stores");
  bus.deliver([backendKeyOf(eng, 7)]);
  assert.equal(eng.l1!.map.has(7), false);
  assert.equal(eng.l1!.size, 4);
  // The evicted key is read again from L2 (no new computation: the backend kept it).
  assert.deepEqual(await f(2), { n: 2, calls: 3 });
});

test("backend index: dropped after a quiet spell, built again by the next event", async () => {
  const bus = busBackend();
  const name = `l1index.quiet.${seq++}`;
  const f = cache(async (n: number) => ({ n }), {
    name,
    ...bare,
    backend: bus.backend,
    l1: { invalidation: true, maxEntries: 10 },
  });
  await f(0);
  const eng = engineNamed(name);
  bus.deliver(["t:0:ns:elsewhere:func:other:args:x"]);
  assert.equal(eng.indexLive, false, "another function's key leaves the index as it is");
  assert.equal(eng.l1!.size, 1);
  bus.deliver([`${backendKeyOf(eng, 0)}-no-such-entry`]);
  assert.equal(eng.indexLive, true, "a key of this function makes it live");
  assert.equal(eng.l1!.size, 1);
  // More stores than 2 × the L1's size + 1024 without an event: the index goes.
  for (let i = 1; i < 1100; i++) await f(i);
  assert.equal(eng.indexLive, false);
  assert.equal(eng.byBackendKey.size, 0);
  const last = backendKeyOf(eng, 1099);
  assert.ok(eng.l1!.map.has(1098));
  bus.deliver([last]);
  assert.equal(eng.l1!.map.has(1099), false, "evicted through the rebuilt index");
  assert.ok(eng.l1!.map.has(1098));
  assert.equal(eng.indexLive, true);
  assert.equal(eng.byBackendKey.size, eng.l1!.size + 1, "built from the entries");
});
