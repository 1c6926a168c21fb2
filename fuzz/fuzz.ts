/**
 * The fuzz runner: feeds seeded mutations of valid stored bytes to every decoder, to the read path
 * of `cache()` and to the receiving side of the invalidation buses (Redis messages, the file
 * journal), one input at a time on one thread, and counts what came back. Shared by the
 * command line (`deno task fuzz`, `fuzz/main.ts`) and the fixed-seed slice the test suite runs
 * (`tests/tools/fuzz_slice_test.ts`), on Deno, Bun and Node alike.
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
import { createTargets, TARGET_NAMES } from "./_targets.ts";
import type { Outcome, Target, Verdict } from "./_common.ts";

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
  /** An input that grows resident memory by more than this is a failure. Default 128 MiB. */
  maxInputMiB?: number;
  /** Progress callback (a line of text), e.g. every 50,000 inputs of a target. */
  progress?: (line: string) => void;
}

/** One failing (or slowest) input, with what reproduces it. */
export interface FuzzFinding {
  /** Target name. */
  target: string;
  /** Input index within the target (`--target T --index I --seed S`). */
  index: number;
  /**
   * The verdict (`"slow"`: over the time limit; `"memory"`: over the memory limit; `"crash"`:
   * killed or hung the process).
   */
  verdict: Verdict | "slow" | "memory" | "crash";
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
  /** Read path: of `ok`, the misses (entry refused, function ran again). */
  miss: number;
  /** Refused with a documented error type. */
  typed: number;
  /** Wrong values. */
  wrong: number;
  /** Undocumented exceptions. */
  untyped: number;
  /** Inputs over the time limit. */
  slow: number;
  /** Inputs that grew resident memory over the limit. */
  memory: number;
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
  /** Inputs that grew resident memory over the limit, in total. */
  memory: number;
  /** Inputs that killed the process (out of memory, a crash) or hung it (command line only). */
  crashed: number;
  /** The slowest input of the run. */
  slowest: { target: string; index: number; ms: number } | null;
  /** Failures (wrong, untyped, slow), the first 50 of each target. */
  findings: FuzzFinding[];
  /** Peak resident set size seen, bytes. */
  peakRss: number;
  /** Wall time, ms. */
  elapsedMs: number;
}

/** Findings printed per target by {@linkcode summary}. */
const SHOWN_PER_TARGET = 8;

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
): { base: number; bytes: Uint8Array; ops: string[]; donors: number[] } {
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
    const r = target.run(m.bytes, m.base, m.donors);
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

/** What {@linkcode runTarget} found in its range of inputs. */
export interface TargetRun {
  /** Counts. */
  stats: TargetStats;
  /** Failures kept (at most 50). */
  findings: FuzzFinding[];
  /** Peak resident set size seen, bytes. */
  peakRss: number;
}

/** Options of {@linkcode runTarget}. */
export interface RangeOptions {
  /** An input slower than this is a failure. Default 1000 ms. */
  slowMs?: number;
  /** An input that grows resident memory by more than this is a failure. Default 128 MiB. */
  maxInputMiB?: number;
  /** Progress lines. */
  progress?: (line: string) => void;
  /** Called before each input (the command line records it, to name an input that crashes). */
  beforeInput?: (index: number) => void;
  /** Called every 10,000 inputs with the run so far and the next index (crash recovery). */
  snapshot?: (run: TargetRun, next: number) => void;
}

/** Empty counts. */
export function emptyStats(): TargetStats {
  return {
    inputs: 0,
    ok: 0,
    miss: 0,
    typed: 0,
    wrong: 0,
    untyped: 0,
    slow: 0,
    memory: 0,
    maxMs: 0,
    maxIndex: -1,
  };
}

/** Run inputs `from` … `from + count - 1` of one target. */
export async function runTarget(
  target: Target,
  seed: number,
  from: number,
  count: number,
  opts: RangeOptions = {},
): Promise<TargetRun> {
  const slowMs = opts.slowMs ?? 1000;
  const s = emptyStats();
  const findings: FuzzFinding[] = [];
  const memLimit = (opts.maxInputMiB ?? 128) * 1024 * 1024;
  let peakRss = rss();
  let lastRss = peakRss;
  const t0 = performance.now();
  for (let i = from; i < from + count; i++) {
    if (i > from && (i - from) % 50_000 === 0) {
      const secs = ((performance.now() - t0) / 1000).toFixed(1);
      opts.progress?.(`  ${target.name}: ${i - from}/${count} (${secs} s)`);
    }
    if (i > from && (i - from) % 10_000 === 0) opts.snapshot?.({ stats: s, findings, peakRss }, i);
    opts.beforeInput?.(i);
    const { outcome, ms, mutation, input } = await runOne(target, seed, i);
    s.inputs++;
    s[outcome.verdict]++;
    if (outcome.miss) s.miss++;
    if (ms > s.maxMs) {
      s.maxMs = ms;
      s.maxIndex = i;
    }
    const slow = ms > slowMs;
    if (slow) s.slow++;
    // Memory: sampled every 256 inputs, and after any input slow enough to have allocated a lot
    // (committing hundreds of MiB takes tens of milliseconds); growth over the limit since the
    // last sample is pinned on that input.
    let grew = 0;
    if ((i & 255) === 0 || ms > 5) {
      const now = rss();
      if (ms > 5) grew = now - lastRss;
      lastRss = now;
      peakRss = Math.max(peakRss, now);
    }
    const hog = grew > memLimit;
    if (hog) s.memory++;
    const bad = outcome.verdict === "wrong" || outcome.verdict === "untyped";
    if ((bad || slow || hog) && findings.length < FINDINGS_PER_TARGET) {
      const mib = (grew / 1024 / 1024).toFixed(0);
      findings.push({
        target: target.name,
        index: i,
        verdict: bad ? outcome.verdict : slow ? "slow" : "memory",
        detail: (outcome.detail ?? "") + (hog ? ` (resident memory grew ${mib} MiB)` : ""),
        ms,
        mutation,
        input: hex(input),
      });
    }
  }
  return { stats: s, findings, peakRss: Math.max(peakRss, rss()) };
}

/** A report with no inputs yet. */
export function emptyReport(seed: number): FuzzReport {
  return {
    seed,
    inputs: 0,
    targets: {},
    typed: 0,
    wrong: 0,
    untyped: 0,
    slow: 0,
    memory: 0,
    crashed: 0,
    slowest: null,
    findings: [],
    peakRss: 0,
    elapsedMs: 0,
  };
}

/** Add a target's run (or a part of it) to a report. */
export function addRun(report: FuzzReport, name: string, run: TargetRun): void {
  const s = (report.targets[name] ??= emptyStats());
  const r = run.stats;
  if (r.maxMs > s.maxMs) {
    s.maxMs = r.maxMs;
    s.maxIndex = r.maxIndex;
  }
  for (
    const k of ["inputs", "ok", "miss", "typed", "wrong", "untyped", "slow", "memory"] as const
  ) {
    s[k] += r[k];
    if (k !== "ok" && k !== "miss") report[k] += r[k];
  }
  report.findings.push(...run.findings);
  report.peakRss = Math.max(report.peakRss, run.peakRss);
  if (r.maxIndex >= 0 && (report.slowest === null || r.maxMs > report.slowest.ms)) {
    report.slowest = { target: name, index: r.maxIndex, ms: r.maxMs };
  }
}

/** Run the fuzzers in this process and report. Never throws for a finding. */
export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const started = performance.now();
  const targets = await createTargets(opts.targets ?? TARGET_NAMES);
  const shares = budget(targets, opts.inputs);
  const report = emptyReport(opts.seed);
  try {
    for (const [ti, target] of targets.entries()) {
      opts.progress?.(`${target.name}: ${shares[ti]} inputs (${target.description})`);
      addRun(report, target.name, await runTarget(target, opts.seed, 0, shares[ti], opts));
    }
  } finally {
    closeTargets(targets);
  }
  report.elapsedMs = performance.now() - started;
  return report;
}

/** Release what the targets hold (a temporary directory); a failure to is not a finding. */
export function closeTargets(targets: readonly Target[]): void {
  for (const t of targets) {
    try {
      t.close?.();
    } catch {
      // best effort: a leftover temporary directory
    }
  }
}

/** Whether a report has anything that fails the run: wrong values, untyped errors, slow inputs. */
export function failed(report: FuzzReport): boolean {
  return report.wrong > 0 || report.untyped > 0 || report.slow > 0 || report.memory > 0 ||
    report.crashed > 0;
}

/** The printed summary of a report. */
export function summary(report: FuzzReport): string {
  const mb = (b: number) => `${(b / 1024 / 1024).toFixed(0)} MiB`;
  const lines = [
    "",
    "target                     inputs         ok    (miss)      typed  wrong  untyped  slow  memory  max ms",
  ];
  for (const [name, s] of Object.entries(report.targets)) {
    const miss = name.startsWith("cache:") ? `(${s.miss})` : "";
    lines.push(
      name.padEnd(22) + String(s.inputs).padStart(11) + String(s.ok).padStart(11) +
        miss.padStart(10) + String(s.typed).padStart(11) + String(s.wrong).padStart(7) +
        String(s.untyped).padStart(9) +
        String(s.slow).padStart(6) + String(s.memory).padStart(8) + s.maxMs.toFixed(1).padStart(8),
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
  lines.push(`inputs over the memory limit: ${report.memory}`);
  lines.push(`crashes/hangs:  ${report.crashed}`);
  if (report.slowest) {
    const { target, index, ms } = report.slowest;
    lines.push(
      `slowest input:  ${target} #${index}, ${ms.toFixed(1)} ms ` +
        `(--seed ${report.seed} --target ${target} --index ${index})`,
    );
  }
  lines.push(`peak RSS:       ${mb(report.peakRss)}`);
  if (report.crashed > 0) {
    lines.push(`                (peak RSS of the workers that finished; ${report.crashed} died)`);
  }
  if (report.findings.length > 0) {
    lines.push("", `findings (reproduce with --seed ${report.seed} --target T --index I):`);
    const shown = new Map<string, number>();
    for (const f of report.findings) {
      const n = shown.get(f.target) ?? 0;
      shown.set(f.target, n + 1);
      if (n >= SHOWN_PER_TARGET) continue;
      const ms = Number.isFinite(f.ms) ? `${f.ms.toFixed(1)} ms` : "died";
      lines.push(
        `  ${f.verdict.toUpperCase()} ${f.target} --index ${f.index} (${ms}): ${f.detail}`,
        `      ${f.mutation}; ${f.input}`,
      );
    }
    for (const [target, n] of shown) {
      if (n > SHOWN_PER_TARGET) {
        lines.push(`  … ${target}: ${n - SHOWN_PER_TARGET} more findings not shown`);
      }
    }
  }
  return lines.join("\n");
}
