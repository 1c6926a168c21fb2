/**
 * Runs the test suite on Node or Bun and ends with one summary line `.ci/run` counts:
 *
 * ```text
 * cachekit test:node | 150 passed | 0 failed | 2 skipped (31.2s, node v20.20.2)
 * ```
 *
 * - `node`: builds the transpiled ESM package (`tools/build_npm.ts` → `.build/npm/`) and runs
 *   `node --test` over its `*_test.js` in `tests/` and its subfolders, one process per file (Node's
 *   default), with `--test-force-exit` so a leaked socket cannot hang CI, a per-test timeout and
 *   source maps.
 * - `bun`: runs `bun test` on the TypeScript sources in `tests/` and its subfolders; resolves npm
 *   packages from the repository's `node_modules` (refreshed by `deno install`). Bun itself comes
 *   from npm, pinned in {@linkcode BUN_VERSION} and installed once into `.build/bun/`.
 *
 * The runner's own output is passed through unchanged; the counts come from the runner's native
 * summary (node: `ℹ pass N` / `# pass N`; bun: ` N pass`), ANSI colours stripped. Any failure, a
 * non-zero exit of the runner, or a missing summary makes this process exit non-zero.
 *
 * Usage: `deno run -A tools/run_tests.ts node|bun [test file filters...]`
 *
 * @module
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join, relative, sep } from "node:path";
import { buildNpm, builtTests, DEFAULT_OUT, ROOT, testFiles } from "./build_npm.ts";

/** The Bun release the suite runs on (npm package `bun`). */
export const BUN_VERSION = "1.4.5";

/** Per-test timeout on both runners (a hung test fails instead of stalling CI). */
const TEST_TIMEOUT_MS = 120_000;

/** Counts parsed from a runner's native summary. */
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

function last(text: string, re: RegExp): number | undefined {
  let value: number | undefined;
  for (const m of text.matchAll(re)) value = Number(m[1]);
  return value;
}

/** Parse `node --test` output (spec `ℹ pass N` or TAP `# pass N`); cancelled counts as failed. */
export function parseNode(output: string): Counts | null {
  const text = output.replace(ANSI, "");
  const n = (k: string) => last(text, new RegExp(`^[#ℹ] ${k} (\\d+)\\s*$`, "gmu"));
  const pass = n("pass");
  const fail = n("fail");
  if (pass === undefined || fail === undefined) return null;
  return { passed: pass, failed: fail + (n("cancelled") ?? 0), skipped: n("skipped") ?? 0 };
}

/** Parse `bun test` output (` N pass`, ` N fail`, ` N skip`, ` N error(s)`). */
export function parseBun(output: string): Counts | null {
  const text = output.replace(ANSI, "");
  const n = (k: string) => last(text, new RegExp(`^\\s*(\\d+) ${k}\\s*$`, "gm"));
  const pass = n("pass");
  const fail = n("fail");
  if (pass === undefined || fail === undefined) return null;
  const errors = n("errors?") ?? 0;
  return { passed: pass, failed: fail + errors, skipped: (n("skip") ?? 0) + (n("todo") ?? 0) };
}

/** Run a command, mirroring its output, and return exit code and combined output. */
/** A whole runtime's run may take this long; then its process group is killed (a hung file). */
const RUN_DEADLINE_MS = 6 * 60_000;

function run(cmd: string, args: string[], cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((resolveRun, reject) => {
    // Own process group, so the deadline also ends the runner's per-file child processes.
    const child = spawn(cmd, args, {
      cwd,
      stdio: ["ignore", "pipe", "pipe"],
      env: process.env,
      detached: true,
    });
    let output = "";
    const deadline = setTimeout(() => {
      const msg = `run_tests: ${cmd} still running after ${RUN_DEADLINE_MS / 1000} s: killed\n`;
      process.stderr.write(msg);
      output += msg;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        child.kill("SIGKILL");
      }
    }, RUN_DEADLINE_MS);
    child.stdout.on("data", (d: Uint8Array) => {
      process.stdout.write(d);
      output += new TextDecoder().decode(d);
    });
    child.stderr.on("data", (d: Uint8Array) => {
      process.stderr.write(d);
      output += new TextDecoder().decode(d);
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(deadline);
      resolveRun({ code: code ?? (signal ? 128 : 1), output });
    });
  });
}

/** Install the pinned Bun from npm into `.build/bun/` (once); returns the binary's path. */
export function ensureBun(): string {
  const dir = join(ROOT, ".build", "bun");
  const bin = join(dir, "node_modules", ".bin", "bun");
  if (existsSync(bin)) {
    const v = spawnSync(bin, ["--version"], { encoding: "utf8" });
    if (v.status === 0 && v.stdout.trim() === BUN_VERSION) return bin;
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, "package.json"),
    JSON.stringify({ private: true, devDependencies: { bun: BUN_VERSION } }, null, 2) + "\n",
  );
  console.log(`run_tests: installing bun@${BUN_VERSION} from npm`);
  const r = spawnSync("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], {
    cwd: dir,
    stdio: ["ignore", "inherit", "inherit"],
  });
  if (r.status !== 0 || !existsSync(bin)) throw new Error(`npm install bun@${BUN_VERSION} failed`);
  return bin;
}

function filterFiles(files: string[], filters: string[]): string[] {
  if (filters.length === 0) return files;
  return files.filter((f) => filters.some((x) => basename(f).includes(x.replace(/\.[jt]s$/, ""))));
}

/** The `exports` map of `deno.json`. */
function denoExports(): Record<string, string> {
  const config = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as {
    exports: string | Record<string, string>;
  };
  return typeof config.exports === "string" ? { ".": config.exports } : config.exports;
}

/**
 * Import every `exports` entry of the package with the runtime under test, as a user's
 * `import "@cachekit/core/…"` would: the whole module graph must load, including modules no test
 * imports. Node imports the build by the package's own name (self-reference through the generated
 * `exports`); Bun imports the TypeScript entry files. Returns the problems found (empty when all
 * load and export something).
 */
function checkExports(bin: string, specifiers: string[], cwd: string, runtime: string): string[] {
  const script = `const bad = [];
for (const s of ${JSON.stringify(specifiers)}) {
  try { const m = await import(s); if (Object.keys(m).length === 0) bad.push(s + ": no exports"); }
  catch (e) { bad.push(s + ": " + (e && e.stack || e)); }
}
console.log(JSON.stringify(bad));`;
  const args = runtime === "node" ? ["--input-type=module", "-e", script] : ["-e", script];
  const r = spawnSync(bin, args, { cwd, encoding: "utf8" });
  if (r.status !== 0) return [`${runtime} exited ${r.status}: ${r.stderr}`];
  const bad = JSON.parse(r.stdout.trim().split("\n").pop() ?? "[]") as string[];
  for (const b of bad) console.error(`run_tests: package export fails to load on ${runtime}: ${b}`);
  if (bad.length === 0) {
    console.log(`run_tests: package exports load on ${runtime}: ${specifiers.join(", ")}`);
  }
  return bad;
}

async function runNode(filters: string[]): Promise<{ code: number; counts: Counts | null }> {
  const build = buildNpm({});
  const name =
    (JSON.parse(readFileSync(join(build.out, "package.json"), "utf8")) as { name: string })
      .name;
  const bad = checkExports(
    "node",
    Object.keys(denoExports()).map((k) => k === "." ? name : name + k.slice(1)),
    build.out,
    "node",
  );
  for (const b of bad) console.error(`run_tests: package export fails to load on node: ${b}`);
  const files = filterFiles(builtTests(build.out), filters);
  const args = [
    "--enable-source-maps",
    "--test",
    // No --test-force-exit: with one process per file it can drop the last verdicts of a file
    // (nodejs/node#64833). A hung file is bounded by the per-test timeout and the run deadline.
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    ...files,
  ];
  const { code, output } = await run("node", args, DEFAULT_OUT);
  const counts = parseNode(output);
  // Each export that cannot be imported counts as one failed test.
  if (counts) counts.failed += bad.length;
  return { code: bad.length ? code || 1 : code, counts };
}

async function runBun(filters: string[]): Promise<{ code: number; counts: Counts | null }> {
  const bun = ensureBun();
  // Bun resolves bare specifiers through ./node_modules, which `deno install` keeps complete; the
  // dev lock holds the test-only packages too (the OpenTelemetry SDK of tests/_otel.ts).
  const di = spawnSync(Deno.execPath(), ["install", "--quiet", "--lock=deno.dev.lock"], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (di.status !== 0) throw new Error("deno install failed");
  const files = filterFiles(testFiles(join(ROOT, "tests"), "_test.ts"), filters)
    .map((f) => `./${relative(ROOT, f).split(sep).join("/")}`);
  const bad = checkExports(bun, Object.values(denoExports()), ROOT, "bun");
  const { code, output } = await run(
    bun,
    ["test", "--timeout", String(TEST_TIMEOUT_MS), ...files],
    ROOT,
  );
  const counts = parseBun(output);
  // Each export that cannot be imported counts as one failed test.
  if (counts) counts.failed += bad.length;
  return { code: bad.length ? code || 1 : code, counts };
}

function runtimeVersion(runtime: "node" | "bun"): string {
  const bin = runtime === "bun"
    ? join(ROOT, ".build", "bun", "node_modules", ".bin", "bun")
    : "node";
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  const v = (r.stdout ?? "").trim();
  return runtime === "bun" ? `bun ${v}` : `node ${v}`;
}

if (import.meta.main) {
  const [runtime, ...filters] = Deno.args;
  if (runtime !== "node" && runtime !== "bun") {
    console.error("usage: deno run -A tools/run_tests.ts node|bun [file filters...]");
    Deno.exit(2);
  }
  const t0 = performance.now();
  let code = 1;
  let counts: Counts | null = null;
  try {
    ({ code, counts } = runtime === "node" ? await runNode(filters) : await runBun(filters));
  } catch (e) {
    console.error(`run_tests: ${(e as Error).message}`);
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const c = counts ?? { passed: 0, failed: 0, skipped: 0 };
  // A runner that failed without a counted failure (load error, crash, no summary) is one failure.
  if (code !== 0 && c.failed === 0) c.failed = 1;
  if (counts === null && code === 0) c.failed = 1;
  console.log(
    `cachekit test:${runtime} | ${c.passed} passed | ${c.failed} failed | ${c.skipped} skipped` +
      ` (${secs}s, ${runtimeVersion(runtime)})`,
  );
  Deno.exit(c.failed === 0 ? 0 : 1);
}
