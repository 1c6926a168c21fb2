// The lazy import of apache-arrow, in a fresh process on each runtime: before the first call of a
// function cached with `serializer: "arrow"`, apache-arrow is not loaded; the call loads it (no
// `loadArrow()` by the user), and the miss and the L2 hit both answer the table.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

const worker = siblingModule(import.meta.url, "../_fixtures/arrow_lazy_worker.ts");
const denoJson = siblingModule(import.meta.url, "../../deno.json");

test("arrow: the first call loads apache-arrow by itself; before it, nothing is loaded", () => {
  const cmd = runtimeCommand(worker, [], denoJson);
  const r = spawnSync(cmd.bin, cmd.args, { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, `worker failed: ${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(out, {
    before: false,
    after: true,
    miss: [{ n: 1 }, { n: 2 }],
    hit: [{ n: 1 }, { n: 2 }],
  });
});
