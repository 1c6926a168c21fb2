// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * A computation still running past a hard timeout is joined by the calls that come meanwhile,
 * also by calls without a hard timeout of their own (a `getOrSet` without the per-call option),
 * and every joiner gets its own copy under `l1.copy: "clone"`. Before, a call without a hard
 * timeout ran a second computation beside the late one, unlocked, and the late result (the
 * older one) then landed over the newer; and joiners with a hard timeout shared one object.
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

for (const l1 of [true, false]) {
  test(`getOrSet: calls without a hard timeout join the late computation (l1 ${l1})`, async () => {
    const c = createCache({ ...bare, backend: new MemoryBackend(), l1: { enabled: l1 } });
    const g = gate();
    await assert.rejects(
      c.getOrSet("k", async () => {
        await g.wait;
        return { v: "late", tags: ["a"] };
      }, { hardTimeout: 0.05 }),
      FactoryTimeoutError,
    );
    let second = 0;
    const pa = c.getOrSet("k", async () => (second++, { v: "second", tags: ["b"] }));
    const pb = c.getOrSet("k", async () => (second++, { v: "second", tags: ["b"] }), {
      hardTimeout: 60,
    });
    g.open();
    const [a, b] = await Promise.all([pa, pb]);
    assert.equal(second, 0, "no second computation");
    assert.equal(a.v, "late");
    assert.equal(b.v, "late");
    a.tags.push("mutated");
    assert.deepEqual(b.tags, ["a"]);
    assert.deepEqual((await c.get<{ tags: string[] }>("k"))!.tags, ["a"]);
  });
}
