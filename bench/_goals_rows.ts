/**
 * The rows of the goals table (`bench/goals_bench.ts`): a row from two variants' paired times,
 * the three ways its ratio is read (speedup, time, size), and its cells. Apart from the
 * environment (no npm imports) so that `tests/bench/paired_test.ts` can check it.
 *
 * @module
 */
import {
  formatMs,
  formatSpread,
  formatTarget,
  roundRatios,
  type Spread,
  spread,
  type Target,
  type Verdict,
  verdict,
} from "./_paired.ts";

/**
 * How a row's per-round ratio is read: `speedup` = peer's time ÷ ours (≥ 3× faster, MB/s and
 * throughput ratios), `time` = ours ÷ peer's (≤ 1.2× raw), `size` = ours ÷ peer's bytes.
 */
export type RatioKind = "speedup" | "time" | "size";

/** One row of the goals table. */
export interface GoalRow {
  path: string;
  variant: string;
  peer: string;
  kind: RatioKind;
  ratio: Spread;
  /** `null`: an information row (no goal). */
  target: Target | null;
  /** Printed instead of the formatted target, when set. */
  targetText?: string;
  /**
   * `invalid`: the run did not measure what the row says (e.g. misses in a hit row, when the
   * guards gave up on L2 under load); the ratio is printed, the reason in {@linkcode GoalRow.note}.
   */
  result: Verdict | "info" | "invalid";
  /** Median per operation (or per entry), ours / peer. */
  perOp: string;
  /** Why the row is `n/a` or `invalid`, when it is. */
  note?: string;
  /** Unit of the printed ratio, default `×` (e.g. ` µs` for an absolute row). */
  unit?: string;
}

/** A row from two variants' times measured in the same rounds (`ops` operations per batch). */
export function pairedRow(
  fields: { path: string; variant: string; peer: string; kind: "speedup" | "time" },
  ours: readonly number[] | null,
  peer: readonly number[],
  ops: number,
  target: Target | null,
  note?: string,
): GoalRow {
  const ratios = ours === null
    ? []
    : fields.kind === "speedup"
    ? roundRatios(peer, ours)
    : roundRatios(ours, peer);
  const r = spread(ratios);
  const perOp = (t: readonly number[] | null) =>
    t === null ? "–" : formatMs(spread(t).median / ops);
  return {
    ...fields,
    ratio: r,
    target,
    result: ours === null ? "n/a" : target === null ? "info" : verdict(r.median, target),
    perOp: `${perOp(ours)} / ${perOp(peer)}`,
    note,
  };
}

/**
 * Mark `row` invalid when `bad` (a count of operations that did not take the measured path) is
 * above zero: `what` says what they were, e.g. "misses in 102,000 hit calls".
 */
export function invalidIf(row: GoalRow, bad: number, what: string): GoalRow {
  if (bad <= 0) return row;
  return { ...row, result: "invalid", note: `${bad.toLocaleString("en-US")} ${what}` };
}

/** The table's cells of a row. */
export function rowCells(row: GoalRow): string[] {
  const unit = row.kind === "speedup" ? "× faster" : row.kind === "time" ? "× time" : "× bytes";
  const target = row.targetText ?? (row.target ? formatTarget(row.target, unit) : "–");
  const ratio = row.result === "n/a" && !Number.isFinite(row.ratio.median)
    ? `n/a${row.note ? ` (${row.note})` : ""}`
    : formatSpread(row.ratio, row.unit);
  const result = row.result === "invalid" ? `invalid: ${row.note}` : row.result;
  return [row.path, row.variant, row.peer, ratio, target, result, row.perOp];
}

/** The header of the goals table. */
export const TABLE_HEADER: readonly string[] = [
  "path",
  "variant",
  "peer",
  "ratio median [q1–q3]",
  "target",
  "result",
  "median per op: ours / peer",
];
