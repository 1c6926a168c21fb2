// The embedded default: with no backend and no Redis URL, cache() uses L1 + a FileBackend in
// CACHEKIT_FILE_CACHE_DIR, and its entries survive a process restart.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

// mod.ts on Deno and Bun, mod.js in the Node build.
const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
const CHILD = `
import process from "node:process";
import { cache, closeDefaultBackend } from "${MOD}";
let runs = 0;
async function slowSquare(n) { runs++; await new Promise((r) => setTimeout(r, 50)); return { n, sq: n * n, pid: process.pid }; }
// A cold process's first read can outlast the default 1 s adaptive timeout on a loaded host, and a
// timed-out read is a miss (fail-open), not the hit asserted.
const f = cache(slowSquare, {
  name: "default_backend.slowSquare",
  ttl: 60,
  timeout: { initial: 30, max: 30 },
});
const v = await f(12);
const h = f.getHealthStatus();
console.log(JSON.stringify({ v, runs, info: f.cacheInfo(), backend: h.backend }));
await closeDefaultBackend();
`;

function runChild(dir: string): {
  v: { n: number; sq: number; pid: number };
  runs: number;
  info: { misses: number; l2Hits: number };
  backend: string;
} {
  const env: Record<string, string | undefined> = { ...process.env, CACHEKIT_FILE_CACHE_DIR: dir };
  delete env.CACHEKIT_REDIS_URL;
  delete env.REDIS_URL;
  // The child runs with the runtime running this test (Deno, Bun or Node).
  const scriptDir = mkdtempSync(join(tmpdir(), "ck-default-child-"));
  const script = join(scriptDir, "child.mjs");
  writeFileSync(script, CHILD);
  const cmd = runtimeCommand(script, [], DENO_JSON);
  const r = spawnSync(cmd.bin, cmd.args, { env, encoding: "utf8" });
  rmSync(scriptDir, { recursive: true, force: true });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

test("default backend: a FileBackend whose entries survive a restart", () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-default-"));
  try {
    const first = runChild(dir);
    assert.equal(first.runs, 1);
    assert.equal(first.info.misses, 1);
    assert.equal(first.backend, "file");
    assert.ok(readdirSync(dir, { recursive: true }).length > 0, "entry files written");
    const second = runChild(dir);
    assert.equal(
      second.runs,
      0,
      `answered from the file written by the first process: ${JSON.stringify(second.info)}`,
    );
    assert.equal(second.info.l2Hits, 1);
    assert.deepEqual(second.v, first.v);
    assert.notEqual(second.v.pid, undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
