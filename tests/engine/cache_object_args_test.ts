// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Whatever argument arrives at a cache object's method (or `withSignal`), the answer is a value, a miss or a typed
 * error. Before, these threw bare `TypeError`s: an options object of `null` on `get`, a `signal`
 * that is not an `AbortSignal`, and the batch methods given something else than an array (or
 * `setMany` entries that are not pairs); a per-call soft timeout at or above the per-call hard
 * timeout was accepted silently (the soft one could never fire).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, CacheConfigError, createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

test("createCache: bad arguments are CacheConfigErrors", async () => {
  // deno-lint-ignore no-explicit-any
  const c = createCache({ ...bare, backend: new MemoryBackend() }) as any;
  const f = () => 1;
  const bad: [string, () => Promise<unknown>][] = [
    ["signal {}", () => c.getOrSet("k", f, { signal: {} })],
    ["signal string", () => c.getOrSet("k", f, { signal: "x" })],
    ["soft >= hard", () => c.getOrSet("k", f, { hardTimeout: 1, softTimeout: 2 })],
    ["getMany string", () => c.getMany("abc")],
    ["getMany null", () => c.getMany(null)],
    ["setMany null", () => c.setMany(null)],
    ["setMany [1]", () => c.setMany([1])],
    ["setMany [null]", () => c.setMany([null])],
    ["deleteMany null", () => c.deleteMany(null)],
  ];
  for (const [what, call] of bad) {
    await assert.rejects(call(), CacheConfigError, what);
  }
  assert.equal(await c.get("k", null), undefined);
  assert.equal(await c.getOrSet("k", f, null), 1);
  assert.equal(await c.get("k", null), 1);
  await c.set("k2", 2, null);
  assert.equal(await c.has("k2", null), true);
  assert.equal(await c.getOrSet("k3", f, { hardTimeout: 2, softTimeout: 1 }), 1);
});

test("cache(fn).withSignal: a signal that is not an AbortSignal is a CacheConfigError", async () => {
  const f = cache(async (x: number) => x, {
    ...bare,
    name: "args.signal",
    backend: new MemoryBackend(),
  });
  for (const s of [{}, null, "x", 1]) {
    await assert.rejects(f.withSignal(s as unknown as AbortSignal, 1), CacheConfigError);
  }
  assert.equal(await f.withSignal(new AbortController().signal, 1), 1);
});
