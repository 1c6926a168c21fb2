// deno-lint-ignore-file require-await -- async factories without await are what the tests cache
/**
 * A function without the `tags` option whose computations tag their results (`setTags`): until it
 * has stored one such entry, a tag invalidation passes over it (`mayCarryTags`: its epoch does not
 * move, so its other computations keep storing). A computation of it that was running when the
 * invalidation came, and then tags its result with an invalidated tag, must not store it: the
 * result may predate the invalidation. Before, it was stored in L1 and L2 with that tag after the
 * invalidation had run, and answered until its TTL ended. The same holds for the `tags` event
 * another instance publishes.
 *
 * Deterministic: the factory is held open until the test releases it.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { cache, cacheContext, invalidateTags, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => open = r);
  return { wait, open };
}

let n = 0;

for (const where of ["before", "after"] as const) {
  for (const remote of [false, true]) {
    test(`cache(fn) tagging with setTags (${where} its await): ${remote ? "another instance's" : "an"} invalidateTags during the first computation: not stored`, async () => {
      const { backend, inner, deliver } = drivenBackend({ bus: true });
      const held = gate();
      const started = gate();
      let version = "old";
      let hold = true;
      const work = async (_x: number) => {
        const mine = version;
        if (where === "before") cacheContext().setTags(["dyn"]);
        if (hold) {
          hold = false;
          started.open();
          await held.wait;
        }
        if (where === "after") cacheContext().setTags(["dyn"]);
        return mine;
      };
      const o = { ...bare, name: `dynamic-tags-inv-${n++}` };
      const f = cache(work, { ...o, backend, l1: { invalidation: true } });
      const first = f(1); // its first load subscribes to the bus
      assert.equal(f.cacheInfo().size, 0);
      await started.wait;
      version = "new";
      if (remote) deliver({ level: "tags", targets: ["dyn"] }); // its L2 entries were deleted there
      else await invalidateTags("dyn", { backend });
      held.open();
      assert.equal(await first, "old", "its caller asked before the invalidation");
      assert.equal(await f(1), "new", "not in L1");
      version = "newer";
      const other = cache(work, { ...o, backend: inner, l1: false }); // another instance
      assert.equal(await other(1), "new", "not in L2 either");
    });
  }
}

test("cache(fn) with setTags: a tag invalidation before the computation started does not stop its store", async () => {
  const backend = new MemoryBackend();
  let calls = 0;
  const f = cache(async (_x: number) => {
    calls++;
    cacheContext().setTags(["dyn-before"]);
    return "v";
  }, { ...bare, name: `dynamic-tags-inv-${n++}`, backend });
  await invalidateTags("dyn-before", { backend });
  assert.equal(await f(1), "v");
  assert.equal(await f(1), "v");
  assert.equal(calls, 1, "stored");
});
