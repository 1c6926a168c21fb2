/**
 * The fail-safe's stale value read from L2 is handed to the factory (`ctx.stale`) and then to
 * the callers it is served to: each gets its own copy under `l1.copy: "clone"`. Before, one
 * decoded object went to all of them, so a factory that changed `ctx.stale` and then failed had
 * its changes served as the cached value.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

for (const l1 of [true, false]) {
  test(`fail-safe: a factory changing ctx.stale and failing gets the stored stale value served (l1 ${l1})`, async () => {
    const c = createCache({
      ...bare,
      ttl: 0.05,
      staleTtl: 600,
      backend: new MemoryBackend(),
      l1: { enabled: l1 },
    });
    await c.set("k", { items: ["a"] });
    // Past its logical expiry (fresh_until): stale, still stored for the fail-safe.
    await new Promise((r) => setTimeout(r, 150));
    const got = await c.getOrSet("k", (ctx) => {
      assert.equal(ctx.hasStale, true);
      (ctx.stale as { items: string[] }).items.push("changed by the factory");
      throw new Error("down");
    });
    assert.deepEqual(got, { items: ["a"] });
  });
}
