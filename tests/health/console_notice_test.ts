// With no logging configured, an L2 that cannot be used is not silent: the first failure of each
// kind reaches the console once, saying what to fix (issue 13, "failures are visible without
// set-up"). Configured LogTape logging, or CACHEKIT_CONSOLE_NOTICES=false, silences it.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import process from "node:process";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

const worker = siblingModule(import.meta.url, "../_fixtures/console_notice_worker.ts");
const denoJson = siblingModule(import.meta.url, "../../deno.json");

function run(env: Record<string, string>, args: string[] = []) {
  const cmd = runtimeCommand(worker, args, denoJson);
  const r = spawnSync(cmd.bin, cmd.args, {
    encoding: "utf8",
    timeout: 60_000,
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    env: { ...process.env, CACHEKIT_REDIS_URL: "redis://:s3cret@127.0.0.1:1", ...env },
  });
  assert.equal(r.status, 0, `worker failed: ${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(result.out, [2, 4, 2], "every call answers from the function");
  return r.stderr;
}

const NOTICE = /cachekit: the redis cache backend cannot be reached/g;

test("an unreachable Redis is reported once on the console when no logging is configured", () => {
  const err = run({ CACHEKIT_CONSOLE_NOTICES: "" });
  assert.equal(err.match(NOTICE)?.length, 1, err);
  assert.match(err, /CACHEKIT_CONSOLE_NOTICES=false/);
  assert.doesNotMatch(err, /s3cret/, "the password never reaches the console");
});

test("configured LogTape logging or CACHEKIT_CONSOLE_NOTICES=false silence the notice", () => {
  assert.doesNotMatch(run({}, ["--logtape"]), NOTICE);
  assert.doesNotMatch(run({ CACHEKIT_CONSOLE_NOTICES: "false" }), NOTICE);
});
