// The examples run as documented: examples/otel_console.ts prints the spans of a cached miss and
// hit (cachekit.call with its children, under the caller's request span) through the OpenTelemetry
// console exporter. Deno runs the file itself (its `npm:` imports are Deno's form; the README gives
// the Node and Bun form of the same code).
import assert from "node:assert/strict";
import { RUNTIME, test } from "./_harness.ts";

test(
  "examples/otel_console.ts prints cachekit.call spans with their children under the request span",
  async () => {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--lock=deno.dev.lock", "examples/otel_console.ts"],
      stdout: "piped",
      stderr: "piped",
    });
    const out = await cmd.output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    for (
      const name of [
        "cachekit.call",
        "cachekit.l2.get",
        "cachekit.lock.acquire",
        "cachekit.factory",
      ]
    ) {
      assert.ok(text.includes(`name: "${name}"`) || text.includes(`name: '${name}'`), name);
    }
    assert.match(text, /"cachekit.status": "hit"/);
    assert.match(text, /GET \/users\/42/);
  },
  {
    ignore: RUNTIME !== "deno",
    ignoreReason: "the example's npm: imports are Deno's form (the README shows Node's and Bun's)",
  },
);
