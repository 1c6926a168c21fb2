// The Redis tests' skip rule: without a reachable Redis (here: redis-cli not on PATH) they are
// skipped with the reason outside CI, and run (so fail) when CI=true. Checked in child processes of
// the runtime running this file, so the probe runs with the environment under test.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

const SERVER = pathToFileURL(siblingModule(import.meta.url, "../_redis_server.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");

function options(ci: boolean): { ignore: boolean; ignoreReason?: string } {
  const dir = mkdtempSync(join(tmpdir(), "ck-redis-opts-"));
  try {
    const script = join(dir, "child.mjs");
    writeFileSync(
      script,
      `import { sharedRedisTestOptions, redisServerTestOptions } from "${SERVER}";\n` +
        `console.log(JSON.stringify([sharedRedisTestOptions, redisServerTestOptions]));\n`,
    );
    const env: Record<string, string | undefined> = { ...process.env, PATH: dir };
    // "false" rather than deleting CI: Deno's node:child_process adds `env` to the inherited
    // environment instead of replacing it, so a deleted variable would still reach the child.
    env.CI = ci ? "true" : "false";
    const cmd = runtimeCommand(script, [], DENO_JSON);
    const r = spawnSync(cmd.bin, cmd.args, { env, encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 0, r.stderr);
    const [shared, server] = JSON.parse(r.stdout.trim().split("\n").pop()!);
    assert.deepEqual(shared, server, "both rules agree when the binaries are missing");
    return shared;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("redis tests: no Redis is a skip with the reason outside CI, a failure in CI", () => {
  const local = options(false);
  assert.equal(local.ignore, true);
  assert.match(local.ignoreReason ?? "", /redis-(server|cli) not found/);
  assert.deepEqual(options(true), { ignore: false });
});
