// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Callers that share one computation (single flight, concurrent `f.refresh`) each get their own
 * value under `l1.copy` `"clone"` (and `"freeze"` with a `Uint8Array` inside): a caller mutating
 * what it got never changes what another caller got or gets. Before, every joiner received the
 * very object the first caller received.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

test("l1.copy clone: joiners of one cache(fn) computation get their own copies", async () => {
  for (const l1 of [true, false] as const) {
    const g = gate();
    const f = cache(async (id: number) => {
      await g.wait;
      return { id, tags: ["a"] };
    }, { ...bare, name: `joiners.fn.${l1}`, backend: new MemoryBackend(), l1: { enabled: l1 } });
    const pa = f(1);
    const pb = f(1);
    const pc = f(1);
    g.open();
    const [a, b, c] = await Promise.all([pa, pb, pc]);
    a.tags.push("mutated by a");
    b.tags.push("mutated by b");
    assert.deepEqual(c.tags, ["a"], `l1 ${l1}`);
    assert.deepEqual((await f(1)).tags, ["a"], `l1 ${l1}`);
  }
});

test("l1.copy clone: joiners of one getOrSet computation get their own copies", async () => {
  const c = createCache({ ...bare, backend: new MemoryBackend() });
  const g = gate();
  const pa = c.getOrSet("k", async () => {
    await g.wait;
    return { tags: ["a"] };
  });
  const pb = c.getOrSet("k", async () => ({ tags: ["b"] }));
  const pc = c.getOrSet("k", async () => ({ tags: ["c"] }), {
    signal: new AbortController().signal,
  });
  g.open();
  const [a, b, d] = await Promise.all([pa, pb, pc]);
  a.tags.push("mutated by a");
  d.tags.push("mutated by d");
  assert.deepEqual(b.tags, ["a"]);
  assert.deepEqual((await c.get<{ tags: string[] }>("k"))!.tags, ["a"]);
});

test("l1.copy clone: concurrent f.refresh callers get their own copies", async () => {
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: n++, tags: ["a"] }), {
    ...bare,
    name: "joiners.refresh",
    backend: new MemoryBackend(),
  });
  await f(1);
  const [a, b] = await Promise.all([f.refresh(1), f.refresh(1)]);
  a.tags.push("mutated");
  assert.deepEqual(b.tags, ["a"]);
  assert.equal(a.n, b.n); // one computation
});

test("l1.copy freeze: joiners share the frozen value; one holding bytes is copied", async () => {
  const g = gate();
  const f = cache(async (id: number) => {
    await g.wait;
    return id === 1 ? { tags: ["a"] } : { tags: ["a"], bytes: new Uint8Array([1]) };
  }, { ...bare, name: "joiners.freeze", backend: new MemoryBackend(), l1: { copy: "freeze" } });
  const [p1, q1, p2, q2] = [f(1), f(1), f(2), f(2)];
  g.open();
  const [a1, b1, a2, b2] = await Promise.all([p1, q1, p2, q2]);
  assert.equal(a1, b1);
  assert.ok(Object.isFrozen(a1));
  a2.bytes![0] = 99;
  assert.deepEqual([...b2.bytes!], [1]);
});

test("l1.copy none: joiners share the one value, as documented", async () => {
  const g = gate();
  const f = cache(async (id: number) => {
    await g.wait;
    return { id };
  }, { ...bare, name: "joiners.none", backend: new MemoryBackend(), l1: { copy: "none" } });
  const [pa, pb] = [f(1), f(1)];
  g.open();
  const [a, b] = await Promise.all([pa, pb]);
  assert.equal(a, b);
});
