/**
 * The engine's own index of written keys by tag serves only backends without a tag index
 * (`invalidateTags` deletes the keys it lists there), and is bounded. Before, every distinct tag
 * ever written (per-call tags of `createCache`, `resultTags`, `setTags`: `user:${id}`) stayed in
 * it for the life of the cache, whatever the backend: memory without bound.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { type Backend, createCache, MemoryBackend } from "../../mod.ts";
import { liveEngines } from "../../engine/_registry.ts";
import type { Engine } from "../../engine/_engine.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function engineOf(ns: string): Engine {
  const e = liveEngines().find((x) => x.config.namespace === ns);
  assert.ok(e !== undefined, ns);
  return e;
}

test("tag index: nothing kept for a backend with its own tag index", async () => {
  const c = createCache({ ...bare, namespace: "tagidx-mem", backend: new MemoryBackend() });
  for (let i = 0; i < 2000; i++) await c.set(`k${i}`, i, { tags: [`user:${i}`] });
  assert.equal(engineOf("tagidx-mem").tagIndex.size, 0);
  await c.deleteByTags("user:7");
  assert.equal(await c.get("k7"), undefined);
  assert.equal(await c.get("k8"), 8);
});

test("tag index: a backend without tags still has its tagged keys deleted", async () => {
  const inner = new MemoryBackend();
  // The same backend without the tag capability.
  const caps = { ...inner.capabilities } as Record<string, unknown>;
  delete caps.tags;
  const backend = new Proxy(inner, {
    get: (t, p) => {
      if (p === "capabilities") return caps;
      const v = Reflect.get(t, p, t);
      return typeof v === "function" ? v.bind(t) : v;
    },
  }) as Backend;
  const c = createCache({ ...bare, namespace: "tagidx-plain", backend, l1: false });
  for (let i = 0; i < 50; i++) await c.set(`k${i}`, i, { tags: [`user:${i}`, "all"] });
  assert.equal(engineOf("tagidx-plain").tagIndex.size, 51);
  await c.deleteByTags("user:7");
  assert.equal(await c.get("k7"), undefined);
  assert.equal(await c.get("k8"), 8);
  await c.deleteByTags("all");
  assert.equal(await c.get("k8"), undefined);
});
