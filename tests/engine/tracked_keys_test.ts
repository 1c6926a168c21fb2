// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * The engine remembers the L2 keys it wrote only where a prefix deletion may miss them: a
 * standard function's keys on a backend that deletes a prefix under every tenant are reached by
 * `cacheClear`, `clearFunction` and `clearNamespace` through their prefix, so remembering them
 * (one `Set` insertion per miss, up to 100,000 keys held) bought nothing.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { type Backend, cache, clearNamespace, MemoryBackend } from "../../mod.ts";
import { liveEngines } from "../../engine/_registry.ts";
import type { Engine } from "../../engine/_engine.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function engineOf(ns: string): Engine {
  const e = liveEngines().find((x) => x.config.namespace === ns);
  assert.ok(e !== undefined, ns);
  return e;
}

test("tracked keys: none for keys under the function's prefix, which clearing still deletes", async () => {
  const backend = new MemoryBackend();
  const f = cache(async (i: number) => ({ i }), { ...bare, namespace: "trk-prefix", backend });
  for (let i = 0; i < 20; i++) await f(i);
  assert.equal(engineOf("trk-prefix").tracked.size, 0);
  assert.equal(backend.size, 20);
  await f.cacheClear();
  assert.equal(backend.size, 0);
  for (let i = 0; i < 5; i++) await f(i);
  assert.equal(backend.size, 5);
  await clearNamespace("trk-prefix");
  assert.equal(backend.size, 0);
});

test("tracked keys: kept on a backend without tenant-wide prefix deletion", async () => {
  const inner = new MemoryBackend();
  const caps = { ...inner.capabilities } as Record<string, unknown>;
  delete caps.prefix;
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "capabilities") return caps;
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as Backend;
  const f = cache(async (i: number) => ({ i }), { ...bare, namespace: "trk-noprefix", backend });
  for (let i = 0; i < 20; i++) await f(i);
  assert.equal(engineOf("trk-noprefix").tracked.size, 20);
  assert.equal(inner.size, 20);
  await f.cacheClear();
  assert.equal(inner.size, 0);
});
