// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// `serializer: "auto"` stores a function's `undefined` as nil (Python's None), as cachekit-py 0.3.0
// does: the miss answers what every hit answers, `null`, in L1 and from L2.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, MemoryBackend } from "../../mod.ts";

test("auto: a function's undefined answers null on the miss, the L1 hit and the L2 hit", async () => {
  const backend = new MemoryBackend();
  let calls = 0;
  const opts = { name: "auto.undef", ttl: 60, backend, serializer: "auto" as const };
  const fn = async (_id: number): Promise<undefined> => {
    calls++;
    return undefined;
  };
  const f = cache(fn, opts);
  assert.equal(await f(1), null, "the miss");
  assert.equal(await f(1), null, "the L1 hit");
  const g = cache(fn, opts); // another instance: empty L1, reads L2
  assert.equal(await g(1), null, "the L2 hit");
  assert.equal(calls, 1);
  // The std serializer keeps a top-level undefined apart.
  const h = cache(fn, { ...opts, name: "std.undef", serializer: "std" as const });
  assert.equal(await h(1), undefined);
  assert.equal(
    await cache(fn, { ...opts, name: "std.undef", serializer: "std" as const })(1),
    undefined,
  );
});
