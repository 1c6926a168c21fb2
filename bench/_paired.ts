/**
 * The paired method of `bench/`, shared by the benches that compare variants: every variant runs
 * once per round, in an order rotated each round, all in one process; each round's time of a
 * variant is divided by the same round's time of its peer, and the median of those per-round
 * ratios is reported with its quartiles. On a shared 2-core host the machine's speed drifts by
 * tens of percent over the seconds a `Deno.bench` row takes, and a major GC lands in whichever row
 * runs at the time; ratios taken within one round do not drift, and the median drops the rounds a
 * GC or another process hit.
 *
 * Also the verdict of a goal (a ratio against a target) and the markdown table the goals bench
 * prints. Pure functions apart from {@linkcode pairedRounds}, whose clock can be injected (the
 * tests in `tests/bench/paired_test.ts` drive it with a fake one).
 *
 * @module
 */

/** One variant of a paired measurement: `run` does one batch (the same work in every round). */
export interface Variant {
  /** Name, for tables. */
  name: string;
  /** One batch of operations; awaited. */
  run: () => unknown;
}

/** Options of {@linkcode pairedRounds}. */
export interface PairedOptions {
  /** Rounds measured. */
  rounds: number;
  /** Rounds run before measuring (every variant, same rotation), not recorded. Default 5. */
  warmup?: number;
  /** Called before every round (unmeasured), e.g. a full GC for rows that allocate megabytes. */
  beforeRound?: () => void;
  /** The clock, milliseconds. Default `performance.now`. */
  now?: () => number;
}

/**
 * Run every variant once per round, in an order rotated by one each round (round `r` starts with
 * variant `r % n`), and return each variant's batch time (ms) per measured round:
 * `times[variant][round]`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pairedRounds } from "./_paired.ts";
 *
 * let t = 0;
 * const times = await pairedRounds(
 *   [{ name: "a", run: () => (t += 1) }, { name: "b", run: () => (t += 3) }],
 *   { rounds: 4, warmup: 0, now: () => t },
 * );
 * assert.deepEqual(times, [[1, 1, 1, 1], [3, 3, 3, 3]]);
 * ```
 */
export async function pairedRounds(
  variants: readonly Variant[],
  options: PairedOptions,
): Promise<number[][]> {
  const now = options.now ?? (() => performance.now());
  const n = variants.length;
  const times: number[][] = variants.map(() => []);
  const warmup = options.warmup ?? 5;
  for (let r = -warmup; r < options.rounds; r++) {
    options.beforeRound?.();
    for (let k = 0; k < n; k++) {
      const v = (((k + r) % n) + n) % n;
      const t0 = now();
      await variants[v].run();
      const dt = now() - t0;
      if (r >= 0) times[v].push(dt);
    }
  }
  return times;
}

/**
 * The `f` quantile (0..1) of `values`, linearly interpolated between the two nearest ranks (as
 * numpy's default); `NaN` for an empty array.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quantile } from "./_paired.ts";
 *
 * assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
 * assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
 * ```
 */
export function quantile(values: readonly number[], f: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = f * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Median and quartiles of a sample. */
export interface Spread {
  /** Median. */
  median: number;
  /** First quartile. */
  q1: number;
  /** Third quartile. */
  q3: number;
}

/**
 * Median and quartiles of `values`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { spread } from "./_paired.ts";
 *
 * assert.deepEqual(spread([1, 2, 3, 4, 5]), { median: 3, q1: 2, q3: 4 });
 * ```
 */
export function spread(values: readonly number[]): Spread {
  return { median: quantile(values, 0.5), q1: quantile(values, 0.25), q3: quantile(values, 0.75) };
}

/**
 * The per-round ratios `num[r] / den[r]` of two variants measured in the same rounds.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { roundRatios } from "./_paired.ts";
 *
 * assert.deepEqual(roundRatios([2, 6], [1, 2]), [2, 3]);
 * ```
 */
export function roundRatios(num: readonly number[], den: readonly number[]): number[] {
  if (num.length !== den.length) throw new Error("roundRatios: not the same rounds");
  return num.map((x, r) => x / den[r]);
}

/**
 * A goal's target on a ratio: `max` (the ratio must not exceed `value`, e.g. "≤ 1.2× raw's time")
 * or `min` (at least `value`, e.g. "≥ 3× faster").
 */
export interface Target {
  /** Which side of `value` passes. */
  kind: "max" | "min";
  /** The bound (inclusive). */
  value: number;
}

/** A goal's verdict: `n/a` when the build cannot be measured on that row. */
export type Verdict = "pass" | "fail" | "n/a";

/**
 * The verdict of a measured ratio against a target, judged on the median (`NaN`: `n/a`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { verdict } from "./_paired.ts";
 *
 * assert.equal(verdict(3.2, { kind: "min", value: 3 }), "pass");
 * assert.equal(verdict(1.3, { kind: "max", value: 1.2 }), "fail");
 * assert.equal(verdict(NaN, { kind: "max", value: 1.2 }), "n/a");
 * ```
 */
export function verdict(median: number, target: Target): Verdict {
  if (!Number.isFinite(median)) return "n/a";
  return (target.kind === "max" ? median <= target.value : median >= target.value)
    ? "pass"
    : "fail";
}

/**
 * A target as printed: `≤ 1.2×` / `≥ 3×`, with an optional unit suffix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTarget } from "./_paired.ts";
 *
 * assert.equal(formatTarget({ kind: "min", value: 3 }), "≥ 3×");
 * assert.equal(formatTarget({ kind: "max", value: 0.25 }, " µs"), "≤ 0.25 µs");
 * ```
 */
export function formatTarget(target: Target, unit = "×"): string {
  return `${target.kind === "max" ? "≤" : "≥"} ${target.value}${unit}`;
}

/**
 * A ratio's median and quartiles as printed: `1.23× [1.10–1.40]` (`n/a` for `NaN`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatSpread } from "./_paired.ts";
 *
 * assert.equal(formatSpread({ median: 1.234, q1: 1.1, q3: 1.4 }), "1.23× [1.10–1.40]");
 * assert.equal(formatSpread({ median: NaN, q1: NaN, q3: NaN }), "n/a");
 * ```
 */
export function formatSpread(s: Spread, unit = "×", digits = 2): string {
  if (!Number.isFinite(s.median)) return "n/a";
  const f = (x: number) => x.toFixed(digits);
  return `${f(s.median)}${unit} [${f(s.q1)}–${f(s.q3)}]`;
}

/**
 * A duration in adaptive units: `0.19 µs`, `13.3 µs`, `2.41 ms`, `1.20 s`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatMs } from "./_paired.ts";
 *
 * assert.equal(formatMs(0.00019), "0.19 µs");
 * assert.equal(formatMs(0.0133), "13.3 µs");
 * assert.equal(formatMs(2.414), "2.41 ms");
 * ```
 */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return "–";
  const us = ms * 1000;
  if (us < 10) return `${us.toFixed(2)} µs`;
  if (us < 1000) return `${us.toFixed(1)} µs`;
  if (ms < 1000) return `${ms.toFixed(2)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

/**
 * A markdown table (GitHub flavour) from a header and rows; `|` in cells is escaped.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { markdownTable } from "./_paired.ts";
 *
 * assert.equal(
 *   markdownTable(["a", "b"], [["1", "x|y"]]),
 *   "| a | b |\n| --- | --- |\n| 1 | x\\|y |",
 * );
 * ```
 */
export function markdownTable(header: readonly string[], rows: readonly string[][]): string {
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c) => c.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
