/**
 * The fuzz runner: feeds seeded mutations of valid stored bytes to every decoder and to the read
 * path of `cache()`, one input at a time on one thread, and counts what came back. Shared by the
 * command line (`deno task fuzz`, `fuzz/main.ts`) and the fixed-seed slice the test suite runs
 * (`tests/fuzz_slice_test.ts`), on Deno, Bun and Node alike.
 *
 * Why in-process and sequential: the decoders are pure and fast, so a million inputs take
 * minutes on one core, and an input's time and the process's memory are only meaningful when
 * nothing runs beside it. A decoder that loops forever or exhausts memory stops the run; the
 * progress lines name the target and input range it was in, and `--index` reproduces one input.
 *
 * @module
 */
import process from "node:process";
import { mutate, systematicTotal } from "./_mutate.ts";
import {
  createTargets,
  type Outcome,
  type Target,
  TARGET_NAMES,
  type Verdict,
} from "./_targets.ts";

export { TARGET_NAMES };

/** Options of {@linkcode runFuzz}. */
export interface FuzzOptions {
  /** Run seed (32-bit). */
  seed: number;
  /** Total inputs, shared between the targets by their weights. */
  inputs: number;
  /** Targets to run (default: all). */
  targets?: readonly string[];
  /** An input slower than this is a failure. Default 1000 ms. */
  slowMs?: number;
  /** Progress callback (a line of text), e.g. every 50,000 inputs of a target. */
  progress?: (line: string) => void;
}

/** One failing (or slowest) input, with what reproduces it. */
export interface FuzzFinding {
  /** Target name. */
  target: string;
  /** Input index within the target (`--target T --index I --seed S`). */
  index: number;
  /** The verdict (`"slow"` for an input over the time limit that otherwise passed). */
  verdict: Verdict | "slow";
  /** Error or wrong value. */
  detail: string;
  /** Milliseconds the input took. */
  ms: number;
  /** Mutations applied and the corpus entry they started from. */
  mutation: string;
  /** Length and first bytes of the input, in hex. */
  input: string;
}

/** Counts of one target. */
export interface TargetStats {
  /** Inputs run. */
  inputs: number;
  /** Decoded, hit or miss. */
  ok: number;
  /** Refused with a documented error type. */
  typed: number;
  /** Wrong values. */
  wrong: number;
  /** Undocumented exceptions. */
  untyped: number;
  /** Inputs over the time limit. */
  slow: number;
  /** Slowest input's time and index. */
  maxMs: number;
  /** Index of the slowest input. */
  maxIndex: number;
}

/** What {@linkcode runFuzz} found. */
export interface FuzzReport {
  /** Run seed. */
  seed: number;
  /** Inputs run in total. */
  inputs: number;
  /** Per target, in run order. */
  targets: Record<string, TargetStats>;
  /** Totals. */
  typed: number;
  /** Wrong values in total. */
  wrong: number;
  /** Untyped errors in total. */
  untyped: number;
  /** Inputs over the time limit in total. */
  slow: number;
  /** The slowest input of the run. */
  slowest: { target: string; index: number; ms: number } | null;
  /** Failures (wrong, untyped, slow), the first 50 of each target. */
  findings: FuzzFinding[];
  /** Peak resident set size seen, bytes. */
  peakRss: number;
  /** Wall time, ms. */
  elapsedMs: number;
}

/** Findings kept per target (the counts include all of them). */
const FINDINGS_PER_TARGET = 50;

function hex(b: Uint8Array, max = 48): string {
  let s = "";
  for (let i = 0; i < Math.min(b.length, max); i++) s += b[i].toString(16).padStart(2, "0");
  return `${b.length} bytes: ${s}${b.length > max ? "…" : ""}`;
}

/**
 * The inputs of a target in order: even indexes walk the systematic inputs (every bit flip,
 * truncation and same-offset splice of every entry) in a stride that spreads any prefix of them
 * over the whole corpus; odd indexes, and even ones once those are done, are random mutations.
 */
export function inputFor(
  target: Target,
  seed: number,
  index: number,
): { base: number; bytes: Uint8Array; ops: string[]; donor: number | null } {
  const total = systematicTotal(target.corpus);
  if (index % 2 === 0 && index / 2 < total) {
    return mutate(target.corpus, seed, target.name, spread(index / 2, total));
  }
  return mutate(target.corpus, seed, target.name, total + index);
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** A permutation of `[0, n)`: `i · step mod n` with `step` coprime to `n`. */
function spread(i: number, n: number): number {
  let step = 7919;
  while (gcd(step, n) !== 1) step++;
  return (i * step) % n;
}

/** Split `inputs` between targets by their shares. */
export function budget(targets: readonly Target[], inputs: number): number[] {
  const total = targets.reduce((s, t) => s + t.share, 0);
  const out = targets.map((t) => Math.floor((inputs * t.share) / total));
  let left = inputs - out.reduce((s, n) => s + n, 0);
  for (let i = 0; left > 0; i = (i + 1) % out.length, left--) out[i]++;
  return out;
}

/** Run one input of a target and time it. */
export async function runOne(
  target: Target,
  seed: number,
  index: number,
): Promise<{ outcome: Outcome; ms: number; mutation: string; input: Uint8Array }> {
  const m = inputFor(target, seed, index);
  const t0 = performance.now();
  let outcome: Outcome;
  try {
    const r = target.run(m.bytes, m.base, m.donor);
    outcome = r instanceof Promise ? await r : r;
  } catch (e) {
    // A target's own code threw: count it against the decoder it was running.
    outcome = { verdict: "untyped", detail: `harness: ${(e as Error)?.stack ?? e}` };
  }
  const ms = performance.now() - t0;
  const mutation = `entry ${m.base}: ${m.ops.join(" + ")}`;
  return { outcome, ms, mutation, input: m.bytes };
}

const rss = (): number => process.memoryUsage.rss();

/** Run the fuzzers and report. Never throws for a finding; see {@linkcode FuzzReport}. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const slowMs = opts.slowMs ?? 1000;
  const started = performance.now();
  const targets = await createTargets(opts.targets ?? TARGET_NAMES);
  const shares = budget(targets, opts.inputs);
  const report: FuzzReport = {
    seed: opts.seed,
    inputs: 0,
    targets: {},
    typed: 0,
    wrong: 0,
    untyped: 0,
    slow: 0,
    slowest: null,
    findings: [],
    peakRss: rss(),
    elapsedMs: 0,
  };
  for (const [ti, target] of targets.entries()) {
    const n = shares[ti];
    const s: TargetStats = {
      inputs: 0,
      ok: 0,
      typed: 0,
      wrong: 0,
      untyped: 0,
      slow: 0,
      maxMs: 0,
      maxIndex: -1,
    };
    report.targets[target.name] = s;
    let kept = 0;
    opts.progress?.(`${target.name}: ${n} inputs (${target.description})`);
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      if (i > 0 && i % 50_000 === 0) {
        opts.progress?.(
          `  ${target.name}: ${i}/${n} (${((performance.now() - t0) / 1000).toFixed(1)} s)`,
        );
      }
      const { outcome, ms, mutation, input } = await runOne(target, opts.seed, i);
      s.inputs++;
      s[outcome.verdict]++;
      if (ms > s.maxMs) {
        s.maxMs = ms;
        s.maxIndex = i;
      }
      const slow = ms > slowMs;
      if (slow) s.slow++;
      if ((i & 255) === 0 || ms > 20) report.peakRss = Math.max(report.peakRss, rss());
      const failed = outcome.verdict === "wrong" || outcome.verdict === "untyped" || slow;
      if (failed && kept < FINDINGS_PER_TARGET) {
        kept++;
        report.findings.push({
          target: target.name,
          index: i,
          verdict: outcome.verdict === "wrong" || outcome.verdict === "untyped"
            ? outcome.verdict
            : "slow",
          detail: outcome.detail ?? "",
          ms,
          mutation,
          input: hex(input),
        });
      }
    }
    report.inputs += s.inputs;
    report.typed += s.typed;
    report.wrong += s.wrong;
    report.untyped += s.untyped;
    report.slow += s.slow;
    if (s.maxIndex >= 0 && (report.slowest === null || s.maxMs > report.slowest.ms)) {
      report.slowest = { target: target.name, index: s.maxIndex, ms: s.maxMs };
    }
  }
  report.peakRss = Math.max(report.peakRss, rss());
  report.elapsedMs = performance.now() - started;
  return report;
}

/** Whether a report has anything that fails the run: wrong values, untyped errors, slow inputs. */
export function failed(report: FuzzReport): boolean {
  return report.wrong > 0 || report.untyped > 0 || report.slow > 0;
}

/** The printed summary of a report. */
export function summary(report: FuzzReport): string {
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  const lines = [
    "",
    "target                     inputs         ok      typed  wrong  untyped  slow  max ms",
  ];
  for (const [name, s] of Object.entries(report.targets)) {
    lines.push(
      name.padEnd(22) + String(s.inputs).padStart(11) + String(s.ok).padStart(11) +
        String(s.typed).padStart(11) + String(s.wrong).padStart(7) + String(s.untyped).padStart(9) +
        String(s.slow).padStart(6) + s.maxMs.toFixed(1).padStart(8),
    );
  }
  lines.push("");
  lines.push(
    `seed ${report.seed}: ${report.inputs} inputs in ${(report.elapsedMs / 1000).toFixed(1)} s`,
  );
  lines.push(`typed errors:   ${report.typed}`);
  lines.push(`wrong values:   ${report.wrong}`);
  lines.push(`untyped errors: ${report.untyped}`);
  lines.push(`inputs over the time limit: ${report.slow}`);
  if (report.slowest) {
    const { target, index, ms } = report.slowest;
    lines.push(
      `slowest input:  ${target} #${index}, ${ms.toFixed(1)} ms ` +
        `(--seed ${report.seed} --target ${target} --index ${index})`,
    );
  }
  lines.push(`peak RSS:       ${mb(report.peakRss)}`);
  if (report.findings.length > 0) {
    lines.push("", "findings (reproduce with --seed S --target T --index I):");
    for (const f of report.findings) {
      lines.push(
        `  ${f.verdict.toUpperCase()} ${f.target} --index ${f.index} (${
          f.ms.toFixed(1)
        } ms): ${f.detail}`,
        `      ${f.mutation}; ${f.input}`,
      );
    }
  }
  return lines.join("\n");
}
