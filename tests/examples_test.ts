// The examples run as documented, on each runtime: examples/otel_console.ts prints the spans of a
// cached miss and hit (cachekit.call with its children, under the caller's request span) through
// the OpenTelemetry console exporter. Deno runs the file itself; Node runs its transpiled build
// (`tools/build_npm.ts` builds examples/, the `npm:` imports become the package names); Bun runs
// the file with the `npm:` imports written as package names (Bun has no `npm:` scheme), which is
// what the README tells a Bun user to do.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import process from "node:process";
import { RUNTIME, test } from "./_harness.ts";
import { siblingModule } from "./_runtime.ts";

function runExample(): string {
  let file = siblingModule(import.meta.url, "../examples/otel_console.ts");
  let temp: string | null = null;
  if (RUNTIME === "bun") {
    const text = readFileSync(file, "utf8").replace(/"npm:(@?[^@"]+)@[^"]*"/g, '"$1"');
    temp = file.replace(/otel_console\.ts$/, "_otel_console_bun.ts");
    writeFileSync(temp, text);
    file = temp;
  }
  try {
    const args = RUNTIME === "deno" ? ["run", "-A", "--lock=deno.dev.lock", file] : [file];
    const r = spawnSync(process.execPath, args, {
      cwd: siblingModule(import.meta.url, ".."),
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    return r.stdout;
  } finally {
    if (temp !== null) rmSync(temp, { force: true });
  }
}

test("examples/otel_console.ts prints cachekit.call spans with their children under the request span", () => {
  const text = runExample();
  for (const name of ["cachekit.call", "cachekit.l2.get", "cachekit.factory", "GET /users/42"]) {
    assert.ok(text.includes(`name: "${name}"`) || text.includes(`name: '${name}'`), name);
  }
  assert.match(text, /["']cachekit\.status["']: ["']hit["']/);
  assert.match(text, /["']cachekit\.status["']: ["']miss["']/);
});
