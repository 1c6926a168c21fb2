/**
 * Every goal of issue 14 in one program, with its target and a pass/fail: `deno task bench:goals`
 * (`--quick` for a ~40 s run with fewer rounds).
 *
 * The paired method of `bench/` (`bench/_paired.ts`): all variants in one process, one batch each
 * per round in a rotated order, the median of the per-round ratios with the quartiles. The peers
 * are bentocache (default memory L1 with JSON; Redis L2; L1 + Redis + bus), lru-cache and raw
 * node-redis + msgpackr. Values: a ~1 KB record (20 fields, ~780 bytes as MessagePack), a 10 KB
 * list, a 100 KB page, 1 MB and 10 MB lists (`bench/_goals_values.ts`).
 *
 * Redis: the bench starts its own `redis-server` on a free loopback port and stops it (by pid) at
 * the end; the shared Redis on 6379 is not touched. `l1.copy: "freeze"` is probed: a build without
 * it prints `n/a on this build` on that row.
 *
 * Prints each section's rows as it goes, then the markdown table (path, variant, peer, ratio
 * median [q1–q3], target, result, median per operation) to paste into the README.
 *
 * `--patient-timeouts`: our Redis-backed variants get an adaptive-timeout floor of 2 s instead of the
 * default 100 ms for a local backend (guards still on, same cost): on a host starved of CPU the
 * default floor times out, the breaker opens and the Redis rows come out `invalid`.
 * `--only=<section title part>` runs the matching sections only.
 *
 * Run with `deno run` (not `deno bench`): the module does nothing when imported, so `deno task
 * bench` (`deno bench bench/`) skips it.
 *
 * @module
 */
import { markdownTable } from "./_paired.ts";
import { type GoalsEnv, startEnv } from "./_goals_env.ts";
import { type GoalRow, rowCells, TABLE_HEADER } from "./_goals_rows.ts";
import { l1LargeRows, l1RecordRows, memoryRows, primitiveRows } from "./_goals_l1.ts";
import { l2HitRows, l2LargeRows, missRows, throughputRows } from "./_goals_redis.ts";

const SECTIONS: [string, (env: GoalsEnv) => Promise<GoalRow[]>][] = [
  ["L1 hit, 1 KB record", l1RecordRows],
  ["L1 hit, 10 KB and 100 KB", l1LargeRows],
  ["primitive L1 hit", primitiveRows],
  ["Redis L2 hit, 1 KB record", l2HitRows],
  ["Redis L2 hit, 1 MB and 10 MB", l2LargeRows],
  ["miss + write", missRows],
  ["throughput", throughputRows],
  ["memory per L1 entry", memoryRows],
];

async function main(): Promise<void> {
  const quick = Deno.args.includes("--quick");
  const only = Deno.args.find((a) => a.startsWith("--only="))?.slice("--only=".length);
  const started = performance.now();
  const patient = Deno.args.includes("--patient-timeouts");
  const env = await startEnv(quick, patient);
  console.log(
    `goals bench (issue 14), ${quick ? "quick" : "full"} run; Deno ${Deno.version.deno}, ` +
      `private redis-server on port ${env.port}` +
      (patient ? "; --patient-timeouts: adaptive timeout floor 2 s (guards on)" : ""),
  );
  const rows: GoalRow[] = [];
  try {
    for (const [title, section] of SECTIONS) {
      if (only && !title.includes(only)) continue;
      const t0 = performance.now();
      const got = await section(env);
      rows.push(...got);
      console.log(`\n## ${title} (${((performance.now() - t0) / 1000).toFixed(1)} s)`);
      console.log(markdownTable(TABLE_HEADER, got.map(rowCells)));
    }
  } finally {
    await env.close();
  }
  const goals = rows.filter((r) => r.result !== "info");
  const count = (v: string) => goals.filter((r) => r.result === v).length;
  console.log(
    `\n## Goals of issue 14 (${quick ? "quick" : "full"} run${
      patient ? ", patient timeouts" : ""
    }, ` +
      `${((performance.now() - started) / 1000).toFixed(0)} s): ` +
      `${count("pass")} pass, ${count("fail")} fail, ${count("n/a")} n/a, ` +
      `${count("invalid")} invalid\n`,
  );
  console.log(markdownTable(TABLE_HEADER, rows.map(rowCells)));
  console.log(
    "\nRatios: `× faster` = peer's time ÷ ours (MB/s and throughput alike), `× time` = ours ÷ " +
      "peer's, `× bytes` = ours ÷ peer's; median of per-round ratios [quartiles].",
  );
}

if (import.meta.main) {
  await main();
  // Clients of the peers may keep timers or sockets alive; everything was closed or is moot.
  Deno.exit(0);
}
