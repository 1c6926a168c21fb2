/**
 * Runs the test suite on one runtime and ends with one summary line `tools/test_all.ts` counts:
 *
 * ```text
 * cachekit test:node | 150 passed | 0 failed | 2 skipped (31.2s, node v20.20.2)
 * ```
 *
 * Test files run in parallel, {@linkcode jobsFromEnv} processes at a time (`CACHEKIT_TEST_JOBS`,
 * default 3):
 *
 * - `deno`: one `deno test -A --no-check` process per test file (those `deno test` finds under
 *   {@linkcode DENO_TEST_PATHS}, largest first) from a pool of `jobs` workers; beside them one
 *   `deno check --doc` of everything under those paths (test files, helpers, sources and their
 *   documentation examples: a type error fails the run) and one `deno test --doc` that runs the
 *   documentation examples (of every module under those paths; the test files are left to the
 *   pool). The counts are the sums of each process's `ok | N passed | N failed | N ignored`. Every
 *   Deno process runs with `deno.dev.lock`, as `deno install` filled `node_modules` before they
 *   start: a process with another lock file would re-link packages there under running tests.
 * - `node`: builds the transpiled ESM package (`tools/build_npm.ts` → `.build/npm/`) and runs
 *   `node --test --test-concurrency=<jobs>` over its `*_test.js` in `tests/` and its subfolders (one
 *   process per file, largest first), with a per-test timeout and source maps.
 * - `bun`: runs the TypeScript sources in `tests/` and its subfolders in `jobs` `bun test`
 *   processes (the files split between them, largest first); resolves npm packages from the
 *   repository's `node_modules` (refreshed by `deno install`). Bun itself comes from npm, pinned
 *   in {@linkcode BUN_VERSION} and installed once into `.build/bun/`.
 *
 * Each process's output is printed as one block when it ends (node's single runner streams), so
 * parallel files do not interleave; the counts come from the runners' native summaries (deno:
 * `ok | N passed | …`; node: `ℹ pass N` / `# pass N`; bun: ` N pass`), ANSI colours stripped. Any
 * failure, a non-zero exit, or a missing summary makes this process exit non-zero. A whole run is
 * ended after {@linkcode RUN_DEADLINE_MS} (every process group it started), which counts as a
 * failure, so a hung test file cannot stall CI.
 *
 * Usage: `deno run -A tools/run_tests.ts deno|node|bun [test file filters...]` (with filters, Deno
 * runs only the matching test files: no type check, no documentation examples).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve, sep } from "node:path";
import { buildNpm, builtTests, DEFAULT_OUT, ROOT, testFiles } from "./build_npm.ts";
import { jobsFromEnv, pool, type ProcResult, ProcSet } from "./test_procs.ts";

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

/**
 * Parse one `deno test` process's summary (`ok | N passed | N failed | N ignored (…)`, `FAILED | …`;
 * the last one when several).
 */
export function parseDeno(output: string): Counts | null {
  const text = output.replace(ANSI, "");
  const m = [...text.matchAll(/^(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed(.*)$/gm)].at(-1);
  if (!m) return null;
  return { passed: +m[1], failed: +m[2], skipped: +(/\| (\d+) ignored/.exec(m[3])?.[1] ?? 0) };
}

/**
 * The counts of one finished process: its summary, plus one failure for a failed exit it did not
 * count or a missing summary. A process the deadline ended (or kept from starting) adds what it
 * counted and no failure of its own: the deadline is counted once, for the whole run.
 */
function processCounts(r: ProcResult, parse: (output: string) => Counts | null): Counts {
  const parsed = parse(r.output);
  const c = parsed ?? { passed: 0, failed: 0, skipped: 0 };
  if (!r.killed && c.failed === 0 && (r.code !== 0 || parsed === null)) c.failed = 1;
  return c;
}

function sum(all: readonly Counts[]): Counts {
  const total = { passed: 0, failed: 0, skipped: 0 };
  for (const c of all) {
    total.passed += c.passed;
    total.failed += c.failed;
    total.skipped += c.skipped;
  }
  return total;
}

/** A whole runtime's run may take this long; then every process group it started is ended. */
export const RUN_DEADLINE_MS = 8 * 60_000;

/**
 * Print a finished process's output as one block, with a line saying how it ended if it failed (one
 * the deadline ended says so itself).
 */
function printBlock(what: string, r: ProcResult, counts: Counts): void {
  let text = r.output;
  if (text.length > 0 && !text.endsWith("\n")) text += "\n";
  if (!r.killed && (r.code !== 0 || counts.failed > 0)) {
    text += `run_tests: ${what}: exit ${r.code}, ${counts.failed} failed (${
      (r.ms / 1000).toFixed(1)
    } s)\n`;
  }
  writeAll(text);
}

/** Write `text` to stdout now, in full (one `writeSync` may write part of it to a pipe). */
function writeAll(text: string): void {
  let bytes = new TextEncoder().encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
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

/** What a runtime's run reports: its summed counts (`null`: none) and notes for the summary line. */
interface RunResult {
  counts: Counts | null;
  note?: string;
}

async function runNode(procs: ProcSet, jobs: number, filters: string[]): Promise<RunResult> {
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
  const files = largestFirst(filterFiles(builtTests(build.out), filters));
  const args = [
    "--enable-source-maps",
    "--test",
    `--test-concurrency=${jobs}`,
    // No --test-force-exit: with one process per file it can drop the last verdicts of a file
    // (nodejs/node#64833). A hung file is bounded by the per-test timeout and the run deadline.
    `--test-timeout=${TEST_TIMEOUT_MS}`,
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    ...files,
  ];
  const r = await procs.run("node", args, {
    cwd: DEFAULT_OUT,
    passThrough: true,
    label: "node --test",
  });
  const counts = processCounts(r, parseNode);
  // Each export that cannot be imported counts as one failed test.
  counts.failed += bad.length;
  return { counts };
}

/**
 * `files` (absolute, or relative to {@linkcode ROOT}), largest first: in a pool, the long files
 * start early instead of last, where one would run on alone while the other workers idle.
 */
export function largestFirst(files: readonly string[]): string[] {
  return files.map((f) => ({ f, size: statSync(resolve(ROOT, f)).size }))
    .sort((a, b) => b.size - a.size)
    .map(({ f }) => f);
}

/** Split `files` into `n` lists of about equal total size, largest files first. */
export function partition(files: readonly string[], n: number): string[][] {
  const bins = Array.from({ length: Math.max(1, Math.min(n, files.length)) }, () => ({
    size: 0,
    files: [] as string[],
  }));
  const sized = files.map((f) => ({ f, size: statSync(f).size })).sort((a, b) => b.size - a.size);
  for (const { f, size } of sized) {
    const bin = bins.reduce((a, b) => (b.size < a.size ? b : a));
    bin.size += size;
    bin.files.push(f);
  }
  return bins.map((b) => b.files);
}

async function runBun(procs: ProcSet, jobs: number, filters: string[]): Promise<RunResult> {
  const bun = ensureBun();
  // Bun resolves bare specifiers through ./node_modules, which `deno install` keeps complete; the
  // dev lock holds the test-only packages too (the OpenTelemetry SDK of tests/_otel.ts).
  const di = spawnSync(Deno.execPath(), ["install", "--quiet", "--lock=deno.dev.lock"], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (di.status !== 0) throw new Error("deno install failed");
  const files = filterFiles(testFiles(join(ROOT, "tests"), "_test.ts"), filters);
  const bad = checkExports(bun, Object.values(denoExports()), ROOT, "bun");
  // One process per part, not per file: a per-file pool took as long and 20 % more CPU, which the
  // runtimes running beside it need.
  const parts = partition(files, jobs);
  const results = await pool(parts, parts.length, async (part) => {
    const rel = part.map((f) => `./${relative(ROOT, f).split(sep).join("/")}`);
    const r = await procs.run(bun, ["test", "--timeout", String(TEST_TIMEOUT_MS), ...rel], {
      cwd: ROOT,
      label: `bun test (${part.length} files)`,
    });
    const c = processCounts(r, parseBun);
    printBlock(`bun test (${part.length} files)`, r, c);
    return c;
  });
  const counts = sum(results);
  // Each export that cannot be imported counts as one failed test.
  counts.failed += bad.length;
  return { counts, note: `${parts.length} processes` };
}

/**
 * What `deno task test:deno` covers, as `deno test --doc` took it: the test files `deno test` finds
 * under these paths, and the documentation examples of every module under them.
 */
export const DENO_TEST_PATHS: readonly string[] = [
  "tests/",
  "mod.ts",
  "cache.ts",
  "decorator.ts",
  "tenant.ts",
  "errors.ts",
  "cache_health.ts",
  "engine/",
  "serializers/",
  "health/",
  "reliability/",
  "config/",
  "backends/",
  "protocol/",
];

/** `deno test`'s own test file names: `{*_,*.,}test.{ts,tsx,mts,js,mjs,jsx}`. */
const DENO_TEST_FILE = /(?:^|[._])test\.(?:ts|tsx|mts|js|mjs|jsx)$/;

/** Folders `deno test` does not search here (deno.json `test.exclude`, hidden folders). */
const DENO_SKIP_DIRS = new Set(["node_modules", ".build"]);

/** The test files `deno test` finds under `paths`, relative to {@linkcode ROOT}, sorted. */
export function denoTestFiles(paths: readonly string[] = DENO_TEST_PATHS): string[] {
  const found = new Set<string>();
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(ROOT, rel), { withFileTypes: true })) {
      const child = rel === "" ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (!DENO_SKIP_DIRS.has(entry.name) && !entry.name.startsWith(".")) walk(child);
      } else if (DENO_TEST_FILE.test(entry.name)) {
        found.add(child);
      }
    }
  };
  for (const p of paths) {
    const rel = p.replace(/\/+$/, "");
    if (statSync(join(ROOT, rel)).isDirectory()) walk(rel);
    else if (DENO_TEST_FILE.test(basename(rel))) found.add(rel);
  }
  return [...found].sort();
}

async function runDeno(procs: ProcSet, jobs: number, filters: string[]): Promise<RunResult> {
  const deno = Deno.execPath();
  // Fill node_modules (with the dev lock's test-only packages) once, before processes start at once.
  const di = spawnSync(deno, ["install", "--quiet", "--lock=deno.dev.lock"], {
    cwd: ROOT,
    stdio: "inherit",
  });
  if (di.status !== 0) throw new Error("deno install failed");
  const all = denoTestFiles();
  const files = largestFirst(filterFiles(all, filters));
  const whole = filters.length === 0;
  const lock = "--lock=deno.dev.lock";
  let docExamples = 0;
  const check = whole
    ? procs.run(deno, ["check", "--quiet", lock, "--doc", ...DENO_TEST_PATHS], {
      cwd: ROOT,
      label: "deno check --doc",
    }).then(
      (r) => {
        const c = { passed: 0, failed: r.code === 0 || r.killed ? 0 : 1, skipped: 0 };
        printBlock("deno check --doc (type check)", r, c);
        if (c.failed === 0) {
          console.log(
            `run_tests: deno check --doc: tests, sources and their documentation examples type-check (${
              (r.ms / 1000).toFixed(1)
            } s)`,
          );
        }
        return c;
      },
    )
    : Promise.resolve(null);
  const docs = whole
    ? procs.run(deno, [
      "test",
      "-A",
      "--no-check",
      lock,
      "--doc",
      `--ignore=${all.join(",")}`,
      ...DENO_TEST_PATHS,
    ], { cwd: ROOT, label: "deno test --doc" }).then((r) => {
      const c = processCounts(r, parseDeno);
      docExamples = c.passed + c.failed + c.skipped;
      printBlock("deno test --doc (documentation examples)", r, c);
      return c;
    })
    : Promise.resolve(null);
  const tests = pool(files, jobs, async (file) => {
    const args = ["test", "-A", "--no-check", lock, file];
    const r = await procs.run(deno, args, { cwd: ROOT, label: file });
    const c = processCounts(r, parseDeno);
    printBlock(file, r, c);
    return c;
  });
  const [checked, documented, each] = await Promise.all([check, docs, tests]);
  const counts = sum([...each, ...[checked, documented].filter((c) => c !== null)]);
  const note = whole
    ? `${files.length} files, ${docExamples} documentation examples, type check ${
      checked?.failed ? "failed" : "passed"
    }`
    : `${files.length} files`;
  return { counts, note };
}

function runtimeVersion(runtime: Runtime): string {
  if (runtime === "deno") return `deno ${Deno.version.deno}`;
  const bin = runtime === "bun"
    ? join(ROOT, ".build", "bun", "node_modules", ".bin", "bun")
    : "node";
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  const v = (r.stdout ?? "").trim();
  return runtime === "bun" ? `bun ${v}` : `node ${v}`;
}

type Runtime = "deno" | "node" | "bun";

if (import.meta.main) {
  const [runtime, ...filters] = Deno.args;
  if (runtime !== "deno" && runtime !== "node" && runtime !== "bun") {
    console.error("usage: deno run -A tools/run_tests.ts deno|node|bun [file filters...]");
    Deno.exit(2);
  }
  const t0 = performance.now();
  const procs = new ProcSet("run_tests", RUN_DEADLINE_MS);
  let result: RunResult = { counts: null };
  try {
    const jobs = jobsFromEnv();
    const run = runtime === "deno" ? runDeno : runtime === "node" ? runNode : runBun;
    result = await run(procs, jobs, filters);
    result.note = [`${jobs} jobs`, result.note].filter(Boolean).join(", ");
  } catch (e) {
    console.error(`run_tests: ${(e as Error).message}`);
  } finally {
    procs.close();
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  const c = result.counts ?? { passed: 0, failed: 0, skipped: 0 };
  // A run that failed without a counted failure (load error, crash, no summary) is one failure.
  if (result.counts === null && c.failed === 0) c.failed = 1;
  // A run the deadline ended is a failure, whatever its processes counted before.
  if (procs.endedBy !== null) {
    console.error(`run_tests: ${runtime}: ${procs.endedBy}: counted as a failure`);
    c.failed++;
  }
  console.log(
    `cachekit test:${runtime} | ${c.passed} passed | ${c.failed} failed | ${c.skipped} skipped` +
      ` (${secs}s, ${runtimeVersion(runtime)}${result.note ? `, ${result.note}` : ""})`,
  );
  Deno.exit(c.failed === 0 ? 0 : 1);
}
