// deno-lint-ignore-file no-explicit-any -- node-redis types, loosely
/**
 * The floor of a miss (issue 14, "miss + write" goal): how much of a miss's time above raw
 * node-redis is work the protocol and the stampede lock need, and how much is the engine's. Paired
 * (`_paired.ts`: every variant once per round in a rotated order, in one process, the median of the
 * per-round ratios), batches of 100 concurrent misses of new keys of the goals record
 * (`_goals_values.ts`), on the Redis at 127.0.0.1:6379:
 *
 * - **raw**: node-redis `GET`, then msgpackr `pack` and `SET … PX` (the goal's peer);
 * - **floor**: the same client doing only what a cachekit miss must do to be read back by a Python
 *   or Rust service, with the stampede lock: the standard key (`cacheKey`: Blake2b of the
 *   arguments), the lease's `SET key <marker> NX PX <lease> GET`, the std serializer, the
 *   envelope (LZ4 + xxHash3, protocol 1.0 fields) and its frame, then `SET … PX … GET` over the
 *   marker. No L1, no single flight, no guard, no metrics, no bus;
 * - **floor + L1**: the floor, then the answer kept in the engine's own L1 (`engine/l1.ts`,
 *   10,000 entries as the default, evicting the oldest) as the default `"clone"` copy
 *   (`vetCopy`, `engine/_l1_copy.ts`): what any L1 holding copies adds to a miss (the copy, and
 *   the garbage collector's work on entries that outlive the call);
 * - **lean**: `cache(fn)` with L1, guards and monitoring off (the engine's own path: single flight,
 *   factory context, the lease's ops, the write and its bus message);
 * - **defaults**: `cache(fn)` as the goal row runs it (the goals bench's patient timeouts).
 *
 * `deno run -A --lock=deno.dev.lock bench/miss_floor_bench.ts [rounds=60] [batches=5] [--cpu]`
 * (`--cpu`: this process's CPU time as the clock instead of wall time). Figures in
 * `bench/MEASUREMENTS.md`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient } from "redis";
import { Packr } from "msgpackr";
import { cache } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import { serialize } from "../serializers/std.ts";
import { encodeEnvelope } from "../protocol/envelope.ts";
import { encodeWire } from "../protocol/stored_value.ts";
import { cacheKey } from "../protocol/keys.ts";
import { L1_CLONE, L1Cache } from "../engine/l1.ts";
import { vetCopy, type Vetted } from "../engine/_l1_copy.ts";
import { record } from "./_goals_values.ts";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";
import { cpuMs, PATIENT_TIMEOUTS } from "./_miss_shape.ts";

const url = "redis://127.0.0.1:6379";
const pfx = `floor:${Date.now()}:`;
const cpu = Deno.args.includes("--cpu");
const [rounds = 60, batches = 5] = Deno.args.filter((a) => !a.startsWith("--")).map(Number);
const raw: any = createClient({ url, commandOptions: { timeout: 0 } } as any);
await raw.connect();
const packr = new Packr();

const rawMiss = (i: number) => {
  const key = `${pfx}raw:${i}`;
  return raw.get(key).then((b: unknown) =>
    b ?? raw.set(key, packr.pack(record(i)), { expiration: { type: "PX", value: 20_000 } })
  );
};
const l1 = new L1Cache({ maxBytes: 100 * 1024 * 1024, maxEntries: 10_000 });
const vetted: Vetted = { bytes: 0, unfreezable: false };
const floorMiss = async (i: number, withL1 = false) => {
  const key = pfx + "f:" + cacheKey({ namespace: "floor", func: "bench.floor", args: [i] });
  const prev = await raw.sendCommand(["SET", key, "\u0000lease", "NX", "PX", "5000", "GET"]);
  if (prev !== null) return prev;
  await Promise.resolve(); // the function is asynchronous, as the engine's variants' is
  const value = record(i);
  const stored = encodeWire({
    data: encodeEnvelope(serialize(value), "msgpack"),
    compressed: true,
    serializer: "default",
    format: "msgpack",
    encryption: null,
    freshUntil: null,
  }, "envelope");
  const bytes = Buffer.from(stored.buffer, stored.byteOffset, stored.length);
  await raw.sendCommand(["SET", key, bytes, "PX", "20000", "GET"]);
  if (withL1) {
    const copy = vetCopy(value, vetted);
    l1.set(key, l1.entry(copy, L1_CLONE, vetted.bytes, 20_000, Infinity));
  }
  return value;
};
const backend = new RedisBackend({ url, keyPrefix: pfx + "ours:" });
const load = async (i: number) => {
  await Promise.resolve();
  return record(i);
};
const defaults = cache(load, { name: "floor.defaults", backend, ttl: 20, ...PATIENT_TIMEOUTS });
const lean = cache(load, {
  name: "floor.lean",
  backend,
  ttl: 20,
  l1: false,
  monitoring: { collectStats: false, prometheus: false, structuredLogging: false },
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
});
let fresh = 0;
const batch = (f: (i: number) => unknown) => async () => {
  for (let b = 0; b < batches; b++) {
    const ps = [];
    for (let i = 0; i < 100; i++) ps.push(f(fresh++));
    await Promise.all(ps);
  }
};
const [tRaw, tFloor, tFloorL1, tLean, tDefaults] = await pairedRounds([
  { name: "raw", run: batch(rawMiss) },
  { name: "floor", run: batch(floorMiss) },
  { name: "floor + L1", run: batch((i) => floorMiss(i, true)) },
  { name: "lean", run: batch(lean) },
  { name: "defaults", run: batch(defaults) },
], { rounds, warmup: 5, now: cpu ? cpuMs : () => performance.now() });
const per = (t: number[]) => (spread(t).median * 1000 / (batches * 100)).toFixed(1);
const ratio = (a: number[], b: number[]) => {
  const s = spread(roundRatios(a, b));
  return `${s.median.toFixed(3)} [${s.q1.toFixed(3)}–${s.q3.toFixed(3)}]`;
};
console.log(`clock: ${cpu ? "process CPU" : "wall"}, ${rounds} rounds of ${batches}×100 misses`);
console.log(
  `µs per miss: raw ${per(tRaw)}, floor ${per(tFloor)}, floor + L1 ${per(tFloorL1)}, lean ${
    per(tLean)
  }, defaults ${per(tDefaults)}`,
);
console.log(`floor ÷ raw    ${ratio(tFloor, tRaw)}`);
console.log(`floor + L1 ÷ raw ${ratio(tFloorL1, tRaw)}`);
console.log(`lean ÷ raw     ${ratio(tLean, tRaw)}`);
console.log(`defaults ÷ raw ${ratio(tDefaults, tRaw)}`);
console.log(`defaults ÷ floor ${ratio(tDefaults, tFloor)}`);
console.log(`defaults ÷ floor + L1 ${ratio(tDefaults, tFloorL1)}`);
await raw.close();
await backend.close();
