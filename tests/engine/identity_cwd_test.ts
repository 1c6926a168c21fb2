// A function's default identity (so every L2 key) never depends on the working directory. Child
// processes (the runtime running this file: Deno, Bun or Node on the build) derive it from several
// working directories:
// - a module with no package root above it (no deno.json / package.json): its absolute path;
// - under Deno without read permission (the package root cannot be looked up): its absolute path;
// - a module reached through a symbolic link from a directory outside its package: relative to the
//   package root of the real file, as Node and Bun name it;
// and a function with an L2 whose identity is such an absolute path is reported on the console,
// once per process and kind, while no logging is configured (not for an L1-only function, not with
// a package root, not with `name`).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { test, type TestOptions } from "../_harness.ts";
import { denoOnly, denoResolutionArgs, runtimeCommand, siblingModule } from "../_runtime.ts";

const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const BACKENDS = pathToFileURL(siblingModule(import.meta.url, "../../backends/mod.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");

// Two functions with an L2 (or, with the argument `l1`, none), and one with a `name`.
const CHILD = `
import process from "node:process";
import { cache } from "${MOD}";
import { MemoryBackend } from "${BACKENDS}";
const backend = process.argv.at(-1) === "l1" ? null : new MemoryBackend();
async function add(a, b) { return a + b; }
async function mul(a, b) { return a * b; }
const f = cache(add, { backend });
const g = cache(mul, { backend });
const n = cache(add, { backend, name: "pinned.add" });
await f(1, 2);
console.log(JSON.stringify({ identities: [f.identity, g.identity, n.identity] }));
`;

interface Run {
  identities: string[];
  stderr: string;
}

/** Run `script` in `cwd` with `command` (default: the test's runtime, all permissions). */
function run(
  script: string,
  cwd: string,
  opts: { args?: string[]; command?: { bin: string; args: string[] } } = {},
): Promise<Run> {
  const cmd = opts.command ?? runtimeCommand(script, opts.args ?? [], DENO_JSON);
  // No CACHEKIT_* settings of the parent (notices off, a default backend) reach the child.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith("CACHEKIT_")),
  );
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.bin, cmd.args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`child exited with ${code}: ${stderr}`));
      const line = stdout.trim().split("\n").pop() ?? "{}";
      resolve({ identities: JSON.parse(line).identities, stderr });
    });
  });
}

/** Whether a directory above `dir` is a package root (the tests below need none). */
function rootAbove(dir: string): string | null {
  for (let d = dirname(dir);; d = dirname(d)) {
    for (const m of ["deno.json", "deno.jsonc", "package.json"]) {
      if (existsSync(join(d, m))) return join(d, m);
    }
    if (dirname(d) === d) return null;
  }
}

/** The identity derived from a file's absolute path: `/tmp/x/child.mjs` + `add` → `tmp.x.child.add`. */
function absoluteIdentity(file: string, fn: string): string {
  return `${file.replace(/\.[cm]?[jt]s$/, "").split("/").filter((s) => s !== "").join(".")}.${fn}`;
}

/** The lines of the identity notice in `stderr`. */
function notices(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("cachekit: function identity"));
}

/** A temporary directory (no package root above it, else the test is skipped with the reason). */
function withTempDir(prefix: string, fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    try {
      const above = rootAbove(dir);
      if (above !== null) {
        console.log(`skipped: ${above} makes every temporary directory part of a package`);
        return;
      }
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

const slow: TestOptions = { sanitize: false };

test(
  "identity: a module in no package is named from its absolute path, from any working directory",
  withTempDir("ck-noroot-", async (dir) => {
    mkdirSync(join(dir, "jobs"));
    const script = join(dir, "jobs", "child.mjs");
    writeFileSync(script, CHILD);
    const runs: Run[] = [];
    for (const cwd of [dir, join(dir, "jobs"), "/"]) runs.push(await run(script, cwd));
    const expected = [absoluteIdentity(script, "add"), absoluteIdentity(script, "mul")];
    for (const r of runs) assert.deepEqual(r.identities, [...expected, "pinned.add"]);
    // The notice: once per process (two such functions), naming what to do.
    const lines = notices(runs[0].stderr);
    assert.equal(lines.length, 1, runs[0].stderr);
    assert.match(lines[0], new RegExp(`"${expected[0].replaceAll(".", "\\.")}"`));
    assert.match(lines[0], /no package root .* was found above/);
    assert.match(lines[0], /pass a name .*add a package\.json or deno\.json/);
    // An L1-only function's keys never leave the process: nothing to report.
    const l1 = await run(script, dir, { args: ["l1"] });
    assert.deepEqual(l1.identities, [...expected, "pinned.add"]);
    assert.deepEqual(notices(l1.stderr), [], l1.stderr);
  }),
  slow,
);

test(
  "identity: with a package root nothing changes and nothing is reported",
  withTempDir("ck-root-", async (dir) => {
    writeFileSync(join(dir, "package.json"), '{"name":"ck-root-test","type":"module"}\n');
    mkdirSync(join(dir, "src"));
    const script = join(dir, "src", "child.mjs");
    writeFileSync(script, CHILD);
    const r = await run(script, "/");
    assert.deepEqual(r.identities, ["src.child.add", "src.child.mul", "pinned.add"]);
    assert.deepEqual(notices(r.stderr), [], r.stderr);
  }),
  slow,
);

test(
  "identity: a module reached through a symbolic link is named from its package root",
  withTempDir("ck-symlink-", async (dir) => {
    // <dir>/pkg/src/child.mjs in a package; <dir>/elsewhere/child.mjs links to it.
    mkdirSync(join(dir, "pkg", "src"), { recursive: true });
    writeFileSync(join(dir, "pkg", "package.json"), '{"name":"ck-link-test","type":"module"}\n');
    const real = join(dir, "pkg", "src", "child.mjs");
    writeFileSync(real, CHILD);
    mkdirSync(join(dir, "elsewhere"));
    const link = join(dir, "elsewhere", "child.mjs");
    symlinkSync(real, link);
    for (const cwd of [join(dir, "elsewhere"), "/"]) {
      const r = await run(link, cwd);
      assert.deepEqual(r.identities, ["src.child.add", "src.child.mul", "pinned.add"], cwd);
      assert.deepEqual(notices(r.stderr), [], r.stderr);
    }
  }),
  slow,
);

test(
  "identity: under Deno without read permission a module is named from its absolute path",
  withTempDir("ck-noread-", async (dir) => {
    // The package root exists but cannot be looked up: no prompt, the absolute path, a notice.
    writeFileSync(join(dir, "package.json"), '{"name":"ck-noread-test","type":"module"}\n');
    mkdirSync(join(dir, "src"));
    const script = join(dir, "src", "child.mjs");
    writeFileSync(script, CHILD);
    const command = {
      bin: process.execPath,
      args: ["run", "--allow-env", "--quiet", ...denoResolutionArgs(DENO_JSON), script],
    };
    const expected = [absoluteIdentity(script, "add"), absoluteIdentity(script, "mul")];
    for (const cwd of [dir, join(dir, "src"), "/"]) {
      const r = await run(script, cwd, { command });
      assert.deepEqual(r.identities, [...expected, "pinned.add"], cwd);
      const lines = notices(r.stderr);
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /could not be looked up without read permission/);
      assert.match(lines[0], /pass a name .*grant read permission .*--allow-read=/);
    }
  }),
  { ...slow, ...denoOnly("Deno's permissions") },
);
