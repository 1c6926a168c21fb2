/**
 * `deno task test`: every test on every runtime, then one closing line.
 *
 * Runs `deno task test:deno` (the reference runtime), `deno task test:bun` (Bun on the TypeScript
 * sources) and `deno task test:node` (Node on the transpiled build) at once, each in its own process
 * group (`tools/run_tests.ts`, which runs its own test files in parallel too: `CACHEKIT_TEST_JOBS`).
 * `node_modules` is filled once (`deno install`) before they start. Each runtime's output is kept
 * and printed as one block, under a line naming the runtime, when that runtime ends, so the three
 * do not interleave and a failure shows with its stack. A runtime that fails does not stop the
 * others. Each runner's own summary gives its counts:
 *
 * - `cachekit test:node | 745 passed | 0 failed | 3 skipped (…)` (`tools/run_tests.ts`, all three
 *   runtimes; Deno's counts include its documentation examples);
 * - a plain Deno `ok | 748 passed | 0 failed | 3 ignored (1m42s)` line (summed) if there is none.
 *
 * Every runtime registers the same tests (those only one runtime can run count as skipped on the
 * others), so a runtime whose total differs from Deno's (without Deno's documentation examples,
 * which only Deno runs: its `running N tests from <file>#<lines>.ts` lines) lost tests without
 * saying so: that is a failure, never a smaller green. A runner that exits non-zero, or prints no
 * summary, counts one failure more than it reported. A runner still running after
 * {@linkcode BACKSTOP_MS} is ended with its process group (`tools/run_tests.ts` ends its own test
 * processes at 8 minutes; this is the backstop if the runner itself hangs) and counts as failed.
 * The last line is the plain `N passed, N failed` that CI reads.
 *
 * Usage: `deno run -A tools/test_all.ts [deno|bun|node ...]` (default: all three).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { ProcSet } from "./test_procs.ts";

/** Counts read from one runner's summary. */
export interface RunCounts {
  passed: number;
  failed: number;
  /** Ignored (Deno) or skipped (Bun, Node). */
  skipped: number;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/**
 * The counts in a runner's output: Deno's `ok | N passed | N failed | N ignored` lines (summed),
 * or the `cachekit test:<rt> | …` line of `tools/run_tests.ts` (the last one); `null` when there is
 * none.
 */
export function parseSummary(output: string): RunCounts | null {
  const text = output.replace(ANSI, "");
  const mine = [...text.matchAll(
    /^cachekit test:\w+ \| (\d+) passed \| (\d+) failed \| (\d+) skipped/gm,
  )].at(-1);
  if (mine) return { passed: +mine[1], failed: +mine[2], skipped: +mine[3] };
  let found = false;
  const counts = { passed: 0, failed: 0, skipped: 0 };
  for (const m of text.matchAll(/^(?:ok|FAILED) \| (\d+) passed[^|]*\| (\d+) failed(.*)$/gm)) {
    found = true;
    counts.passed += +m[1];
    counts.failed += +m[2];
    counts.skipped += +(/\| (\d+) ignored/.exec(m[3])?.[1] ?? 0);
  }
  return found ? counts : null;
}

/**
 * How many of the counted tests are documentation examples (`deno test --doc`, named
 * `<file>#<lines>.ts`): Deno runs them, Bun and Node do not, so they stay out of the comparison.
 */
export function docTestCount(output: string): number {
  let n = 0;
  for (
    const m of output.replace(ANSI, "").matchAll(
      /^running (\d+) tests? from \S+[#$]\d+-\d+\.\w+$/gm,
    )
  ) {
    n += +m[1];
  }
  return n;
}

/** After this long a runner still running is ended (its own deadline is 8 minutes). */
export const BACKSTOP_MS = 8 * 60_000 + 30_000;

if (import.meta.main) {
  const runtimes = process.argv.slice(2).length ? process.argv.slice(2) : ["deno", "bun", "node"];
  const prep = spawnSync(process.execPath, ["install", "--quiet", "--lock=deno.dev.lock"], {
    stdio: "inherit",
  });
  if (prep.status !== 0) console.error("test_all: deno install failed (each runner tries again)");
  console.log(
    `test_all: ${runtimes.join(", ")} at once; each runtime's output follows when it ends`,
  );
  const procs = new ProcSet("test_all", BACKSTOP_MS);
  const t0 = performance.now();
  const results = await Promise.all(runtimes.map(async (rt) => {
    // The dev lock, as every process of the run uses: another would re-link node_modules.
    const task = ["task", "--lock=deno.dev.lock", `test:${rt}`];
    const r = await procs.run(process.execPath, task, { label: `deno task test:${rt}` });
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    let text = `\n===== test:${rt}: exit ${r.code} after ${secs} s =====\n${r.output}`;
    if (!text.endsWith("\n")) text += "\n";
    let bytes = new TextEncoder().encode(text);
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
    return r;
  }));
  procs.close();
  let passed = 0;
  let failed = 0;
  const summaries = results.map(({ output }) => parseSummary(output));
  const counted = summaries.map((c) => c ?? { passed: 0, failed: 0, skipped: 0 });
  const total = (c: RunCounts) => c.passed + c.failed + c.skipped;
  const d = runtimes.indexOf("deno");
  // Deno's tests without its documentation examples: what every other runtime must have run.
  const reference = d >= 0 && summaries[d] !== null
    ? total(counted[d]) - docTestCount(results[d].output)
    : null;
  const lines: string[] = [];
  for (const [i, rt] of runtimes.entries()) {
    const { code, killed } = results[i];
    const counts = counted[i];
    let f = counts.failed;
    if (code !== 0 && f === 0) f = 1; // a failed runner is never green
    // A runner that was ended has failed already; what it did not run was not lost.
    if (!killed && rt !== "deno" && reference !== null && total(counts) !== reference) {
      console.error(`${rt} ran ${total(counts)} tests, deno ${reference}: tests were lost`);
      f++;
    }
    passed += counts.passed;
    failed += f;
    lines.push(`${rt} ${counts.passed}/${f} (${counts.skipped} skipped)`);
  }
  console.log(`per runtime (passed/failed): ${lines.join(", ")}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}
