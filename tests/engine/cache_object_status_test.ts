// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
// createCache's getOrSet and get, observed: `{ withStatus: true }` resolves how the call was
// answered (as f.withStatus does), and the cache's `events` carry hit / miss events.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { type CacheEvent, createCache, MemoryBackend } from "../../mod.ts";

test("createCache: getOrSet and get with { withStatus: true } say how they were answered", async () => {
  const backend = new MemoryBackend();
  const opts = { ttl: 60, backend, namespace: "objstatus" };
  const a = createCache(opts);
  const miss = await a.getOrSet("k", async () => ({ n: 1 }), { withStatus: true });
  assert.deepEqual(miss.value, { n: 1 });
  assert.equal(miss.status, "miss");
  assert.equal(miss.layer, "source");
  assert.ok(miss.key !== null && miss.key.includes("k"));
  const hit = await a.getOrSet("k", async () => ({ n: 2 }), { withStatus: true });
  assert.deepEqual([hit.value, hit.status, hit.layer], [{ n: 1 }, "hit", "l1"]);
  assert.ok(hit.expiresInMs !== null && hit.expiresInMs > 0 && hit.expiresInMs <= 60_000);
  // Another instance: empty L1, the value from L2.
  const b = createCache(opts);
  const l2 = await b.get<{ n: number }>("k", { withStatus: true });
  assert.deepEqual([l2.value, l2.status, l2.layer], [{ n: 1 }, "hit", "l2"]);
  const l1 = await b.get("k", { withStatus: true });
  assert.deepEqual([l1.status, l1.layer], ["hit", "l1"]);
  const none = await b.get("absent", { withStatus: true });
  assert.deepEqual([none.value, none.status, none.layer], [undefined, "miss", "source"]);
  // Two callers of one computation: the second joined it.
  let release!: () => void;
  const gate = new Promise<void>((r) => release = r);
  const first = a.getOrSet("j", async () => {
    await gate;
    return 7;
  }, { withStatus: true });
  const second = a.getOrSet("j", async () => 8, { withStatus: true });
  release();
  const [r1, r2] = await Promise.all([first, second]);
  assert.deepEqual([r1.value, r1.status], [7, "miss"]);
  assert.deepEqual([r2.value, r2.status], [7, "joined"]);
  // Without the option: the value itself.
  assert.equal(await a.getOrSet("j", async () => 9), 7);
});

test("createCache: events carry the hit and miss of getOrSet and get, never the value", async () => {
  const c = createCache({ ttl: 60, backend: new MemoryBackend(), namespace: "objevents" });
  const seen: { type: string; layer: unknown; key: unknown }[] = [];
  const listener = (e: Event) => {
    const d = (e as CacheEvent).detail as { layer?: unknown; key?: unknown };
    seen.push({ type: e.type, layer: d.layer, key: d.key });
    assert.ok(!JSON.stringify(d).includes("secret-value"));
  };
  c.events.addEventListener("hit", listener);
  c.events.addEventListener("miss", listener);
  await c.getOrSet("k1", async () => "secret-value");
  await c.getOrSet("k1", async () => "other");
  await c.get("k1");
  await c.get("absent");
  assert.deepEqual(seen.map((s) => [s.type, s.layer]), [
    ["miss", "source"],
    ["hit", "l1"],
    ["hit", "l1"],
    ["miss", "source"],
  ]);
  assert.ok(seen.every((s) => typeof s.key === "string" && (s.key as string).includes(":key:")));
  c.events.removeEventListener("hit", listener);
  c.events.removeEventListener("miss", listener);
  await c.get("k1");
  assert.equal(seen.length, 4, "no event once the listeners are gone");
});
