// The helpers of the paired benches (`bench/_paired.ts`) and of the goals bench's table
// (`bench/_goals_rows.ts`, `bench/_goals_values.ts`): the rotation of the rounds, quantiles, the
// direction of each ratio, the verdicts at their bounds, and the sizes of the workloads the
// goals of issue 14 are stated for. `bench/` is not part of the Node build (tools/build_npm.ts),
// so the modules are imported inside the tests, which run on Deno and Bun.
import assert from "node:assert/strict";
import { pack } from "msgpackr";
import { test } from "../_harness.ts";
import { onlyOn } from "../_runtime.ts";

const opts = onlyOn(["deno", "bun"], "bench/ is not transpiled into the Node test build");
const paired = () => import("../../bench/_paired.ts");
const rows = () => import("../../bench/_goals_rows.ts");
const values = () => import("../../bench/_goals_values.ts");

test("pairedRounds: every variant once per round, order rotated by one each round", async () => {
  const { pairedRounds } = await paired();
  const calls: string[] = [];
  let before = 0;
  const v = (name: string) => ({ name, run: () => calls.push(name) });
  const times = await pairedRounds([v("a"), v("b"), v("c")], {
    rounds: 3,
    warmup: 1,
    beforeRound: () => before++,
  });
  // Warm-up round -1 starts with c; then rounds 0, 1, 2 start with a, b, c.
  assert.deepEqual(calls.join(""), "cab" + "abc" + "bca" + "cab");
  assert.equal(before, 4);
  assert.deepEqual(times.map((t) => t.length), [3, 3, 3]);
}, opts);

test("pairedRounds: times per variant and round from the clock; warm-up not recorded", async () => {
  const { pairedRounds } = await paired();
  let t = 0;
  let round = 0;
  const times = await pairedRounds([
    { name: "fast", run: () => (t += 1 + round) },
    { name: "slow", run: () => (t += 3 * (1 + round)) },
  ], { rounds: 3, warmup: 2, now: () => t, beforeRound: () => round++ });
  // beforeRound ran twice during warm-up: measured rounds see round = 3, 4, 5.
  assert.deepEqual(times, [[4, 5, 6], [12, 15, 18]]);
}, opts);

test("quantile interpolates between ranks; spread; roundRatios pairs rounds", async () => {
  const { quantile, spread, roundRatios } = await paired();
  assert.equal(quantile([10], 0.25), 10);
  assert.equal(quantile([1, 2], 0.5), 1.5);
  assert.equal(quantile([5, 1, 4, 2, 3], 0.75), 4);
  assert.ok(Number.isNaN(quantile([], 0.5)));
  assert.deepEqual(spread([3, 1, 2]), { median: 2, q1: 1.5, q3: 2.5 });
  assert.deepEqual(roundRatios([2, 9], [1, 3]), [2, 3]);
  assert.throws(() => roundRatios([1], [1, 2]));
}, opts);

test("verdict: bounds are inclusive, NaN is n/a", async () => {
  const { verdict, formatTarget } = await paired();
  assert.equal(verdict(1.2, { kind: "max", value: 1.2 }), "pass");
  assert.equal(verdict(1.2000001, { kind: "max", value: 1.2 }), "fail");
  assert.equal(verdict(3, { kind: "min", value: 3 }), "pass");
  assert.equal(verdict(2.99, { kind: "min", value: 3 }), "fail");
  assert.equal(verdict(Infinity, { kind: "min", value: 3 }), "n/a");
  assert.equal(formatTarget({ kind: "min", value: 0.85 }, "× faster"), "≥ 0.85× faster");
}, opts);

test("pairedRow: speedup is peer ÷ ours, time is ours ÷ peer, per round", async () => {
  const { pairedRow } = await rows();
  const ours = [1, 2, 4];
  const peer = [3, 4, 4];
  const fields = { path: "p", variant: "v", peer: "q" };
  const speedup = pairedRow({ ...fields, kind: "speedup" }, ours, peer, 1, {
    kind: "min",
    value: 2,
  });
  assert.deepEqual(speedup.ratio, { median: 2, q1: 1.5, q3: 2.5 });
  assert.equal(speedup.result, "pass");
  const time = pairedRow({ ...fields, kind: "time" }, ours, peer, 1, { kind: "max", value: 0.4 });
  assert.equal(time.ratio.median, 0.5);
  assert.equal(time.result, "fail");
  assert.equal(pairedRow({ ...fields, kind: "time" }, ours, peer, 1, null).result, "info");
  // Per-op medians: 2 ms / 4 ops and 4 ms / 4 ops.
  assert.equal(
    pairedRow({ ...fields, kind: "time" }, ours, peer, 4, null).perOp,
    "500.0 µs / 1.00 ms",
  );
}, opts);

test("pairedRow: a variant the build cannot run is n/a with its reason in the table", async () => {
  const { pairedRow, rowCells, TABLE_HEADER } = await rows();
  const { markdownTable } = await paired();
  const row = pairedRow(
    { path: "p", variant: "freeze", peer: "lru", kind: "time" },
    null,
    [1, 1],
    1,
    { kind: "max", value: 2 },
    "on this build: `l1.copy` refused",
  );
  assert.equal(row.result, "n/a");
  const cells = rowCells(row);
  assert.equal(cells.length, TABLE_HEADER.length);
  assert.equal(cells[3], "n/a (on this build: `l1.copy` refused)");
  assert.equal(cells[4], "≤ 2× time");
  const table = markdownTable(TABLE_HEADER, [cells]).split("\n");
  assert.equal(table.length, 3);
  assert.equal(table[2].split(" | ").length, TABLE_HEADER.length);
}, opts);

test("invalidIf: a row whose calls left the measured path is invalid, with the count", async () => {
  const { pairedRow, invalidIf, rowCells } = await rows();
  const row = pairedRow({ path: "p", variant: "v", peer: "q", kind: "time" }, [1], [1], 1, {
    kind: "max",
    value: 1.2,
  });
  assert.equal(invalidIf(row, 0, "misses"), row);
  const bad = invalidIf(row, 76_700, "misses of 102,000 hit calls");
  assert.equal(bad.result, "invalid");
  assert.equal(rowCells(bad)[5], "invalid: 76,700 misses of 102,000 hit calls");
  assert.equal(rowCells(bad)[3], "1.00× [1.00–1.00]"); // the ratio is still shown
}, opts);

test(
  "goal values: the ~1 KB record and the 10 KB … 1 MB sizes the goals are stated for",
  async () => {
    const { record, recordList, recordPage, RECORDS_PER } = await values();
    const r = record(42);
    assert.equal(Object.keys(r).length, 20);
    assert.notEqual(record(42), r); // a fresh graph per call
    assert.deepEqual(record(42), r); // deterministic
    for (const id of [0, 42, 9_999, 123_456]) {
      const size = pack(record(id)).length;
      assert.ok(size >= 700 && size <= 900, `record ${id}: ${size} bytes`);
    }
    const near = (bytes: number, nominal: number) =>
      assert.ok(bytes > nominal * 0.9 && bytes < nominal * 1.15, `${bytes} vs ${nominal}`);
    near(pack(recordList(RECORDS_PER.kb10)).length, 10_000);
    near(pack(recordPage(0, RECORDS_PER.kb100)).length, 100_000);
    near(pack(recordList(RECORDS_PER.mb1)).length, 1_000_000);
    assert.equal(RECORDS_PER.mb10, RECORDS_PER.mb1 * 10);
  },
  opts,
);
