/**
 * What the structure checks of Arrow IPC files (`serializers/_arrow_check.ts`) cost on a read:
 * `ArrowSerializer.deserialize` (checks, then apache-arrow's `tableFromIPC`) against
 * `tableFromIPC` alone (the raw baseline), on 1 M rows × 5 columns — the table of
 * `bench/arrow_bench.ts` (`label` dictionary-encoded, as `tableFromArrays` makes it) and the same
 * with `label` a plain `Utf8` column, whose 1 M + 1 offsets the checks read. Paired: both variants
 * in every round, rotated; printed are the median per-round times and the median (quartiles) of
 * the per-round ratios checked ÷ raw. Each batch reads the file 10 times.
 *
 * Usage: `deno run -A --lock=deno.dev.lock bench/arrow_check_bench.ts [--quick]` (`--quick`:
 * 100 k rows, 7 rounds; default 1 M rows, 15 rounds).
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { ArrowSerializer, loadArrow } from "../serializers/mod.ts";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";

const quick = Deno.args.includes("--quick");
const ROWS = quick ? 100_000 : 1_000_000;
const ROUNDS = quick ? 7 : 15;
const READS = 10;

await loadArrow(arrow);
const s = new ArrowSerializer();
const ids = Int32Array.from({ length: ROWS }, (_, i) => i);
const xs = Float64Array.from({ length: ROWS }, (_, i) => i * 0.25);
const ys = Float64Array.from({ length: ROWS }, (_, i) => Math.sin(i));
const qty = Int32Array.from({ length: ROWS }, (_, i) => i % 1000);
const labels = Array.from({ length: ROWS }, (_, i) => `item-${i % 500}`);
const dictTable = arrow.tableFromArrays({ id: ids, x: xs, y: ys, qty, label: labels });
const utf8Table = new arrow.Table({
  id: arrow.makeVector(ids),
  x: arrow.makeVector(xs),
  y: arrow.makeVector(ys),
  qty: arrow.makeVector(qty),
  label: arrow.vectorFromArray(labels, new arrow.Utf8()),
});

for (const [name, table] of [["dictionary label", dictTable], ["utf8 label", utf8Table]] as const) {
  const file = arrow.tableToIPC(table, "file");
  const times = await pairedRounds([
    {
      name: "checked",
      run: () => {
        for (let i = 0; i < READS; i++) s.deserialize(file);
      },
    },
    {
      name: "raw",
      run: () => {
        for (let i = 0; i < READS; i++) arrow.tableFromIPC(file);
      },
    },
  ], { rounds: ROUNDS });
  const r = spread(roundRatios(times[0], times[1]));
  const med = (t: number[]) => (spread(t).median / READS).toFixed(3);
  console.log(
    `${ROWS} rows, ${name} (${(file.length / 1e6).toFixed(1)} MB): checked ${med(times[0])} ms, ` +
      `raw ${med(times[1])} ms per read; checked ÷ raw ${r.median.toFixed(2)} ` +
      `(q1 ${r.q1.toFixed(2)}, q3 ${r.q3.toFixed(2)}, ${ROUNDS} rounds)`,
  );
}
