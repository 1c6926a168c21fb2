/**
 * A caller arriving after every caller of a computation aborted (so the computation's own signal
 * aborted too) starts a computation of its own instead of joining the cancelled one. Before, it
 * joined it and was rejected with another caller's abort reason, though it never aborted.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, cacheContext, createCache, type FactoryContext, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** Resolves "value" unless `signal` aborts first; then rejects with its reason a turn later. */
function work(signal: AbortSignal): Promise<string> {
  if (!signal.aborted) {
    // A computation not cancelled answers at once (the cancelled one is already running).
    const resolved = Promise.resolve("value");
    if (started++ > 0) return resolved;
  }
  return new Promise((_resolve, reject) => {
    const fail = () => setTimeout(() => reject(signal.reason), 0);
    if (signal.aborted) fail();
    else signal.addEventListener("abort", fail, { once: true });
  });
}
let started = 0;

test("getOrSet: a caller after every caller aborted computes anew", async () => {
  started = 0;
  const c = createCache({ ...bare, backend: new MemoryBackend() });
  const ac = new AbortController();
  const factory = (ctx: FactoryContext<string>) => work(ctx.signal);
  const pa = c.getOrSet("k", factory, { signal: ac.signal });
  await new Promise((r) => setTimeout(r, 0));
  ac.abort(new Error("A gave up"));
  const pb = c.getOrSet("k", factory); // while the cancelled computation has not settled yet
  await assert.rejects(pa, /A gave up/);
  assert.equal(await pb, "value");
  assert.equal(started, 2);
  assert.equal(await c.get("k"), "value");
});

test("cache(fn): a call after every withSignal caller aborted computes anew", async () => {
  started = 0;
  const ac = new AbortController();
  const f = cache((_id: number) => work(cacheContext().signal), {
    ...bare,
    name: "cancel.join",
    backend: new MemoryBackend(),
  });
  const pa = f.withSignal(ac.signal, 1);
  await new Promise((r) => setTimeout(r, 0));
  ac.abort(new Error("A gave up"));
  const pb = f(1);
  await assert.rejects(pa, /A gave up/);
  assert.equal(await pb, "value");
  assert.equal(started, 2);
});

test("getOrSet: a caller joining while one of two callers aborted still joins", async () => {
  started = 0;
  const c = createCache({ ...bare, backend: new MemoryBackend() });
  const a = new AbortController();
  const b = new AbortController();
  let open!: () => void;
  const gate = new Promise<void>((r) => open = r);
  let runs = 0;
  const factory = async () => {
    runs++;
    await gate;
    return "value";
  };
  const pa = c.getOrSet("k", factory, { signal: a.signal });
  const pb = c.getOrSet("k", factory, { signal: b.signal });
  a.abort(new Error("A gave up"));
  const pc = c.getOrSet("k", factory);
  open();
  await assert.rejects(pa, /A gave up/);
  assert.equal(await pb, "value");
  assert.equal(await pc, "value");
  assert.equal(runs, 1);
});
