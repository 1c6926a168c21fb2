// The live-engine set does not keep a reference per cache ever made: a process that creates
// cache objects without end (one per request) and never invalidates had a `WeakRef` per engine
// stay in the set after the engine was collected (memory growing with every cache made). A child
// process (the runtime running this file, with its garbage collector exposed) makes 20,000 cache
// objects in rounds, collecting between them, and prints how many references the set holds.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { test } from "../_harness.ts";
import { denoResolutionArgs, RUNTIME, siblingModule } from "../_runtime.ts";

const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const REGISTRY = pathToFileURL(siblingModule(import.meta.url, "../../engine/_registry.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");

const CHILD = `
import { createCache } from "${MOD}";
import { registeredEngines } from "${REGISTRY}";
const collect = () => (globalThis.gc ? globalThis.gc() : globalThis.Bun.gc(true));
for (let round = 0; round < 20; round++) {
  for (let i = 0; i < 1000; i++) {
    const c = createCache({ backend: null, ttl: 60 });
    await c.getOrSet("k", () => i);
  }
  await new Promise((r) => setTimeout(r, 0));
  collect();
}
console.log(JSON.stringify({ refs: registeredEngines() }));
`;

test("engine registry: references of collected engines are swept", () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-registry-"));
  try {
    const ext = MOD.endsWith(".js") ? ".mjs" : ".ts";
    const script = join(dir, `child${ext}`);
    writeFileSync(script, CHILD);
    const args = RUNTIME === "deno"
      ? ["run", "-A", "--quiet", "--v8-flags=--expose-gc", ...denoResolutionArgs(DENO_JSON), script]
      : RUNTIME === "bun"
      ? [script]
      : ["--expose-gc", script];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    const { refs } = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as { refs: number };
    // 20,000 made; the live ones at any time are a round's worth at most.
    assert.ok(refs < 5_000, `${refs} references kept`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
