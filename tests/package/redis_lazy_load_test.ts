// Importing the package does not load node-redis: in the module graph of every package entry point
// (`deno info --json`), the Redis client is reached only through a dynamic `import()`, which the
// driver runs when a RedisBackend first connects. Deno only (the graph comes from `deno info`).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "../_harness.ts";
import { denoOnly, denoResolutionArgs, siblingModule } from "../_runtime.ts";

interface Dep {
  specifier: string;
  code?: { specifier: string };
  isDynamic?: boolean;
}
interface Graph {
  roots: string[];
  modules: { specifier: string; dependencies?: Dep[] }[];
}

const isRedis = (s: string) => /^npm:\/?(redis|@redis\/)/.test(s);

test("package entry points do not load node-redis until a RedisBackend connects", () => {
  for (const entry of ["../../mod.ts", "../../backends/mod.ts"]) {
    const r = spawnSync(process.execPath, [
      "info",
      "--json",
      ...denoResolutionArgs(siblingModule(import.meta.url, "../../deno.json")),
      siblingModule(import.meta.url, entry),
    ], { encoding: "utf8", maxBuffer: 1 << 28 });
    assert.equal(r.status, 0, r.stderr);
    const graph = JSON.parse(r.stdout) as Graph;
    const bySpec = new Map(graph.modules.map((m) => [m.specifier, m]));
    const seen = new Set<string>();
    const stack = [...graph.roots];
    const dynamicRedis: string[] = [];
    while (stack.length > 0) {
      const spec = stack.pop()!;
      if (seen.has(spec)) continue;
      seen.add(spec);
      assert.ok(!isRedis(spec), `${entry} loads ${spec} statically`);
      for (const d of bySpec.get(spec)?.dependencies ?? []) {
        const target = d.code?.specifier;
        if (target === undefined) continue; // type-only: erased
        if (d.isDynamic) {
          if (isRedis(target)) dynamicRedis.push(spec);
          continue;
        }
        stack.push(target);
      }
    }
    assert.ok(seen.size > 10, `${entry}: a real graph (${seen.size} modules)`);
    assert.deepEqual(
      dynamicRedis.map((s) => s.slice(s.lastIndexOf("/") + 1)),
      ["_redis_driver.ts"],
      `${entry}: node-redis is imported dynamically by the driver only`,
    );
  }
}, denoOnly("reads the module graph with deno info"));
