// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * `set(key, value)` while a computation of `key` runs (in flight, or still running after a hard
 * timeout): the computation's result, which predates the write, must not land over it. Before,
 * the late result replaced the value `set` wrote, in L1 and L2, so `get` returned the old value.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { createCache, FactoryTimeoutError, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

/** Let a result that just landed be stored (Memory backend: a few turns of the event loop). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
}

for (const l1 of [true, false]) {
  test(`createCache set: a computation in flight does not land over it (l1 ${l1})`, async () => {
    const c = createCache({ ...bare, backend: new MemoryBackend(), l1: { enabled: l1 } });
    const g = gate();
    const running = c.getOrSet("k", async () => {
      await g.wait;
      return "old";
    });
    await c.set("k", "new");
    g.open();
    // Its caller asked before the write: either answer is one the key held.
    assert.ok(["old", "new"].includes(await running));
    await settle();
    assert.equal(await c.get("k"), "new");
    assert.equal(await c.getOrSet("k", async () => "computed"), "new");
  });

  test(`createCache set: a computation past its hard timeout does not land over it (l1 ${l1})`, async () => {
    const c = createCache({ ...bare, backend: new MemoryBackend(), l1: { enabled: l1 } });
    const g = gate();
    let landed = false;
    await assert.rejects(
      c.getOrSet("k", async () => {
        await g.wait;
        landed = true;
        return "old";
      }, { hardTimeout: 0.05 }),
      FactoryTimeoutError,
    );
    await c.set("k", "new");
    assert.equal(await c.getOrSet("k", async () => "computed"), "new");
    g.open();
    await settle();
    assert.ok(landed);
    assert.equal(await c.get("k"), "new");
  });
}

test("createCache set: with no computation of the key running, others still store", async () => {
  const c = createCache({ ...bare, backend: new MemoryBackend() });
  const g = gate();
  const other = c.getOrSet("other", async () => {
    await g.wait;
    return "o";
  });
  await c.set("k", "new");
  g.open();
  assert.equal(await other, "o");
  let calls = 0;
  assert.equal(await c.getOrSet("other", async () => (calls++, "again")), "o");
  assert.equal(calls, 0);
});
