// apache-arrow is optional: in the module graph of every package entry point (`deno info --json`)
// it appears nowhere — no static, dynamic or type-only import — because `loadArrow` imports it
// through a specifier held in a variable, at the first call of a function cached with
// `serializer: "arrow"`. A literal `import("apache-arrow")` would make Deno fetch it for every
// program that imports the package. Deno only (the graph comes from `deno info`).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "../_harness.ts";
import { denoOnly, denoResolutionArgs, siblingModule } from "../_runtime.ts";

interface Graph {
  modules: { specifier: string; dependencies?: { specifier: string }[] }[];
}

test("package entry points never import apache-arrow, not even dynamically or for types", () => {
  for (const entry of ["../../mod.ts", "../../serializers/mod.ts", "../../protocol/mod.ts"]) {
    const r = spawnSync(process.execPath, [
      "info",
      "--json",
      ...denoResolutionArgs(siblingModule(import.meta.url, "../../deno.json")),
      siblingModule(import.meta.url, entry),
    ], { encoding: "utf8", maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, r.stderr);
    const graph = JSON.parse(r.stdout) as Graph;
    assert.ok(graph.modules.length > 10, `${entry}: a real graph`);
    const specs = graph.modules.flatMap((m) => [
      m.specifier,
      ...(m.dependencies ?? []).map((d) => d.specifier),
    ]);
    assert.deepEqual(specs.filter((s) => /apache-arrow/.test(s)), [], entry);
    assert.ok(specs.some((s) => s.endsWith("/serializers/arrow_module.ts")), "the loader is there");
  }
}, denoOnly("reads the module graph with deno info"));
