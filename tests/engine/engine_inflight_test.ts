// The engine's single-flight table (`engine/_inflight.ts`): what a `Map` gave, kept with the
// dictionary it now uses: numbers and strings are distinct keys, an entry leaves when its promise
// settles (fulfilled or rejected) but not when a newer entry replaced it, and `clear()` forgets
// entries without letting an old one remove a new one later. Through the engine: concurrent calls
// with one key share one computation, and `1` / `"1"` arguments do not.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { InflightTable } from "../../engine/_inflight.ts";
import { cache, MemoryBackend } from "../../mod.ts";

function deferred<T = unknown>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((ok, fail) => {
    resolve = ok;
    reject = fail;
  });
  return { promise, resolve, reject };
}

test("inflight: numbers and strings are distinct keys; settled entries leave", async () => {
  const t = new InflightTable();
  const a = deferred(), b = deferred(), c = deferred();
  t.track(1, a.promise);
  t.track("1", b.promise);
  t.track(Number.NaN, c.promise);
  assert.equal(t.get(1), a.promise);
  assert.equal(t.get("1"), b.promise);
  assert.equal(t.get(Number.NaN), c.promise);
  assert.equal(t.get(2), undefined);
  assert.equal(t.get("__proto__"), undefined);
  a.resolve("x");
  assert.equal(await t.get(1), "x");
  assert.equal(t.get(1), undefined, "removed once settled, before the awaiting caller resumes");
  assert.equal(t.get("1"), b.promise);
  b.reject(new Error("boom"));
  await assert.rejects(b.promise, /boom/);
  assert.equal(t.get("1"), undefined, "a rejection removes the entry too");
  c.resolve(1);
  await c.promise;
  assert.equal(t.get(Number.NaN), undefined);
});

test("inflight: a replaced or cleared entry is not removed by an older promise", async () => {
  const t = new InflightTable();
  const old = deferred(), cur = deferred();
  t.track("k", old.promise);
  t.track("k", cur.promise);
  old.resolve(1);
  await old.promise;
  await Promise.resolve();
  assert.equal(t.get("k"), cur.promise, "the newer entry stays");

  const before = deferred(), after = deferred();
  t.track("__proto__", before.promise);
  assert.equal(t.get("__proto__"), before.promise, "__proto__ is an ordinary key");
  t.clear();
  assert.equal(t.get("__proto__"), undefined);
  assert.equal(t.get("k"), undefined);
  t.track("__proto__", after.promise);
  before.resolve(1);
  await before.promise;
  await Promise.resolve();
  assert.equal(
    t.get("__proto__"),
    after.promise,
    "clear() then re-track: the old one cannot evict",
  );
  cur.resolve(2);
  after.resolve(3);
});

test("inflight: concurrent calls share one computation per key, 1 and '1' apart", async () => {
  const backend = new MemoryBackend();
  const gate = deferred<void>();
  const runs: unknown[] = [];
  const f = cache(async (x: number | string) => {
    runs.push(x);
    await gate.promise;
    return typeof x;
  }, { name: "inflight.share", backend, l1: false, ttl: 60 });
  const calls = [f(1), f(1), f("1"), f("1"), f(1)];
  await new Promise((r) => setTimeout(r, 10));
  gate.resolve();
  assert.deepEqual(await Promise.all(calls), ["number", "number", "string", "string", "number"]);
  assert.deepEqual(runs.sort(), [1, "1"].sort());
  await backend.close?.();
});
