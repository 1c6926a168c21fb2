// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * `serializer: "arrow"` against the standard MessagePack serializer, through the shared Redis
 * (127.0.0.1:6379): a 1 M-row, 5-column table (`id` int32, `x` and `y` float64, `qty` int32,
 * `label` a short string) cached as an Apache Arrow `Table` (IPC file + xxHash3 prefix, as
 * cachekit-py 0.3.0 stores it), against the same data as an array of 1 M records under `std`
 * (LZ4 + xxHash3 envelope around MessagePack). Per variant and round: one call on a new key (miss:
 * compute — the value is prebuilt — serialize, `SET`) then one on the same key (L2 hit: `GET`,
 * verify, deserialize), L1 off. Paired: both variants in every round, in rotated order; printed
 * are the median per-round times and the median of the per-round ratios arrow ÷ msgpack.
 *
 * Usage: `deno run -A --lock=deno.dev.lock bench/arrow_bench.ts [--quick]` (`--quick`: 100 k rows,
 * 3 rounds; default 1 M rows, 7 rounds).
 *
 * @module
 */
import * as arrow from "apache-arrow";
import { cache, RedisBackend } from "../mod.ts";
import { loadArrow, serialize } from "../serializers/mod.ts";

const quick = Deno.args.includes("--quick");
const ROWS = quick ? 100_000 : 1_000_000;
const ROUNDS = quick ? 3 : 7;
const URL = "redis://127.0.0.1:6379";
const id = crypto.randomUUID().slice(0, 8);
const prefix = `bench:arrow:${id}:`;
const common = {
  ttl: 120,
  l1: false,
  maxValueSize: 1 << 30,
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
  monitoring: { collectStats: false, prometheus: false, structuredLogging: false },
} as const;

await loadArrow(arrow);
const ids = Int32Array.from({ length: ROWS }, (_, i) => i);
const xs = Float64Array.from({ length: ROWS }, (_, i) => i * 0.25);
const ys = Float64Array.from({ length: ROWS }, (_, i) => Math.sin(i));
const qty = Int32Array.from({ length: ROWS }, (_, i) => i % 1000);
const labels = Array.from({ length: ROWS }, (_, i) => `item-${i % 500}`);
const table = arrow.tableFromArrays({ id: ids, x: xs, y: ys, qty, label: labels });
const records = Array.from({ length: ROWS }, (_, i) => ({
  id: ids[i],
  x: xs[i],
  y: ys[i],
  qty: qty[i],
  label: labels[i],
}));

const backend = new RedisBackend({
  url: URL,
  keyPrefix: prefix,
  invalidationChannel: `${prefix}i`,
});
const viaArrow = cache(async (_round: number) => table, {
  ...common,
  name: "bench.arrowTable",
  backend,
  serializer: "arrow",
});
const viaStd = cache(async (_round: number) => records, {
  ...common,
  name: "bench.msgpackRecords",
  backend,
});

const variants = {
  arrow: async (round: number) => {
    await viaArrow(round);
    const t = await viaArrow(round) as arrow.Table;
    if (t.numRows !== ROWS) throw new Error("arrow: wrong hit");
  },
  msgpack: async (round: number) => {
    await viaStd(round);
    const r = await viaStd(round) as unknown[];
    if (r.length !== ROWS) throw new Error("msgpack: wrong hit");
  },
};
type Name = keyof typeof variants;
const names = Object.keys(variants) as Name[];
const times: Record<Name, number[]> = { arrow: [], msgpack: [] };
const ratios: number[] = [];

await variants.arrow(-1); // warm-up: load paths, JIT
await variants.msgpack(-1);
for (let round = 0; round < ROUNDS; round++) {
  const order = round % 2 === 0 ? names : [...names].reverse();
  const t: Partial<Record<Name, number>> = {};
  for (const n of order) {
    const t0 = performance.now();
    await variants[n](round);
    t[n] = performance.now() - t0;
    times[n].push(t[n]!);
  }
  ratios.push(t.arrow! / t.msgpack!);
}

const median = (a: number[]) => {
  const s = [...a].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const ipc = arrow.tableToIPC(table, "file").length;
const msgpack = serialize(records).length;
console.log(
  `${ROWS} rows × 5 columns, ${ROUNDS} paired rounds (set + get through Redis, L1 off)` +
    `\nArrow IPC file: ${(ipc / 1e6).toFixed(1)} MB; MessagePack of the records: ` +
    `${(msgpack / 1e6).toFixed(1)} MB before LZ4`,
);
console.table({
  arrow: { "ms (median)": median(times.arrow).toFixed(1) },
  msgpack: { "ms (median)": median(times.msgpack).toFixed(1) },
});
console.log(
  `arrow ÷ msgpack, median of per-round ratios: ${median(ratios).toFixed(3)} ` +
    `(min ${Math.min(...ratios).toFixed(3)}, max ${Math.max(...ratios).toFixed(3)})`,
);
await backend.deleteByPrefix(prefix);
await backend.close();
