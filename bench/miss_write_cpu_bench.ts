// deno-lint-ignore-file no-explicit-any require-await -- node-redis types, loosely; an async function that computes at once
/**
 * Client CPU per miss of `cache(fn)` (L1 + Redis, defaults, stampede lock on) against raw
 * node-redis `GET` + msgpackr `pack` + `SET PX`, 100 concurrent new keys per round (the goals
 * bench's "miss + write" row, measured as CPU: `process.cpuUsage()` of this process, and the
 * redis-server's `INFO cpu`). One variant per process; run them alternately.
 *
 * `deno run -A --lock=deno.dev.lock bench/miss_write_cpu_bench.ts [rounds=400] [ours|raw] [nolock]`
 * (`PATIENT=1`: the goals bench's `--patient-timeouts`, for a loaded machine.) Add `--cpu-prof` to
 * profile it.
 *
 * @module
 */
import { cache } from "../mod.ts";
import { RedisBackend } from "../backends/redis.ts";
import process from "node:process";
import { createClient } from "redis";
import { missRecord as record, PATIENT_TIMEOUTS, rawMiss as rawMissClient } from "./_miss_shape.ts";
const url = "redis://127.0.0.1:6379";
const admin = createClient({ url });
await admin.connect();
const serverCpu = async () => {
  const s = await admin.info("cpu");
  const m = (k: string) => Number(s.match(new RegExp(k + ":([0-9.]+)"))![1]);
  return (m("used_cpu_sys") + m("used_cpu_user")) * 1e6;
};
const pfx = `prof:${Date.now()}:`;
const backend = new RedisBackend({ url, keyPrefix: pfx });
const mode = Deno.args[1] ?? "ours";
const stampede = Deno.args[2] !== "nolock";
const f = cache(
  async (i: number) => record(i),
  {
    name: "prof.miss",
    backend,
    ttl: 20,
    stampede: { enabled: stampede },
    // PATIENT=1: the goals bench's --patient-timeouts (a loaded machine opens no circuit)
    ...(Deno.env.get("PATIENT") ? PATIENT_TIMEOUTS : {}),
  } as any,
);
const raw = await rawMissClient(url, pfx);
const rawMiss = raw.miss;
let fresh = 0;
const N = 100;
const rounds = Number(Deno.args[0] ?? 400);
const run = async (n: number) => {
  for (let r = 0; r < n; r++) {
    const ps = [];
    for (let i = 0; i < N; i++) ps.push(mode === "raw" ? rawMiss(fresh++) : f(fresh++));
    await Promise.all(ps);
  }
};
await run(50);
const s0 = await serverCpu();
const c0 = process.cpuUsage();
const t0 = performance.now();
await run(rounds);
const dt = performance.now() - t0;
const c1 = process.cpuUsage(c0);
const s1 = await serverCpu();
const ops = rounds * N;
console.log(
  `${mode} lock=${stampede}: wall ${(dt * 1000 / ops).toFixed(1)} µs/op, client cpu ${
    ((c1.user + c1.system) / ops).toFixed(1)
  }, server cpu ${((s1 - s0) / ops).toFixed(1)}`,
);
await backend.close();
await raw.close();
Deno.exit(0);
