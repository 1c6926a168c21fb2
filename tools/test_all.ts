/**
 * `deno task test`: every test on every runtime, then one closing line.
 *
 * Runs, one after the other, `deno task test:deno` (the reference runtime), `deno task test:bun`
 * (Bun on the TypeScript sources) and `deno task test:node` (Node on the transpiled build), passing
 * their output through unchanged. A runtime that fails does not stop the others. Each runner's own
 * summary gives its counts:
 *
 * - Deno: `ok | 748 passed | 0 failed | 3 ignored (1m42s)`;
 * - Bun and Node (`tools/run_tests.ts`): `cachekit test:node | 745 passed | 0 failed | 3 skipped`.
 *
 * Every runtime registers the same tests (those only one runtime can run count as skipped on the
 * others), so a runtime whose total differs from Deno's (without Deno's documentation examples, which
 * only Deno runs) lost tests without saying so: that is a failure, never a smaller green. A runner that exits non-zero, or prints no summary, counts one
 * failure more than it reported. The last line is the plain `N passed, N failed` that CI reads.
 *
 * Usage: `deno run -A tools/test_all.ts [deno|bun|node ...]` (default: all three).
 *
 * @module
 */
import { spawn } from "node:child_process";
import process from "node:process";

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

function run(task: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["task", task], { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (b: Uint8Array) => {
      process.stdout.write(b);
      output += new TextDecoder().decode(b);
    });
    child.stderr.on("data", (b: Uint8Array) => {
      process.stderr.write(b);
      output += new TextDecoder().decode(b);
    });
    child.on("error", (e) => resolve({ code: 1, output: output + String(e) }));
    child.on("close", (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), output }));
  });
}

if (import.meta.main) {
  const runtimes = process.argv.slice(2).length ? process.argv.slice(2) : ["deno", "bun", "node"];
  let passed = 0;
  let failed = 0;
  let reference: number | null = null;
  const lines: string[] = [];
  for (const rt of runtimes) {
    const { code, output } = await run(`test:${rt}`);
    const counts = parseSummary(output) ?? { passed: 0, failed: 0, skipped: 0 };
    let f = counts.failed;
    if (code !== 0 && f === 0) f = 1; // a failed runner is never green
    const total = counts.passed + counts.failed + counts.skipped;
    if (rt === "deno") reference = total - docTestCount(output);
    else if (reference !== null && total !== reference) {
      console.error(`${rt} ran ${total} tests, deno ${reference}: tests were lost`);
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
