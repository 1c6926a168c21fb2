/**
 * `deno task demo:node` and `deno task demo:bun`: run `demo.ts` on Node (its transpiled form in the
 * test build, `.build/npm/demo.js`, built first) or on Bun (the TypeScript source, with the Bun
 * release the test suite pins, and npm packages from the repository's `node_modules`).
 *
 * Usage: `deno run -A tools/demo.ts node|bun`
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { buildNpm, DEFAULT_OUT, ROOT } from "./build_npm.ts";
import { ensureBun } from "./run_tests.ts";

const runtime = Deno.args[0];
let status: number | null;
if (runtime === "node") {
  buildNpm({ quiet: true });
  status = spawnSync("node", [join(DEFAULT_OUT, "demo.js")], { stdio: "inherit" }).status;
} else if (runtime === "bun") {
  const bun = ensureBun();
  status = spawnSync(bun, [join(ROOT, "demo.ts")], { stdio: "inherit" }).status;
} else {
  console.error("usage: deno run -A tools/demo.ts node|bun");
  status = 2;
}
Deno.exit(status ?? 1);
