/**
 * Child process for `tests/backends/backend_file_process_test.ts`: hammers a shared FileBackend directory.
 *
 * Usage: `<runtime> file_backend_worker.ts '<json config>'`; prints one JSON line (or progress
 * lines for the `bigwriter` and `holdlock` modes, which run until killed).
 *
 * @module
 */

import process from "node:process";
import { FileBackend } from "../../backends/mod.ts";
import { makeValue, verify } from "./file_values.ts";

interface Config {
  dir: string;
  mode: "hammer" | "bigwriter" | "holdlock";
  id: number;
  iterations?: number;
  keys?: number;
  counterRounds?: number;
  bigBytes?: number;
}

const cfg = JSON.parse(process.argv[process.argv.length - 1]) as Config;
const backend = new FileBackend({ directory: cfg.dir });

async function hammer(): Promise<void> {
  const bad: string[] = [];
  let reads = 0, hits = 0, writes = 0;
  const keys = cfg.keys ?? 4;
  for (let i = 0; i < (cfg.iterations ?? 200); i++) {
    const k = Math.floor(Math.random() * keys);
    if (Math.random() < 0.5) {
      const length = i % 40 === 0 ? 1_200_000 : 1 + Math.floor(Math.random() * 60_000);
      await backend.set(`h${k}`, makeValue(k, cfg.id, i, length));
      writes++;
    } else {
      reads++;
      const v = await backend.get(`h${k}`);
      if (v !== null) {
        hits++;
        const why = verify(v, k);
        if (why !== null) bad.push(why);
      }
    }
  }
  // Read-modify-write of one counter under the cross-process lock.
  let increments = 0;
  for (let r = 0; r < (cfg.counterRounds ?? 0); r++) {
    const lock = await backend.capabilities.lock.acquire("counter", {
      leaseMs: 10_000,
      waitMs: 20_000,
    });
    if (lock === null) {
      bad.push("counter lock not acquired");
      continue;
    }
    const cur = await backend.get("counter");
    const n = cur === null ? 0 : new DataView(cur.buffer, cur.byteOffset).getUint32(0);
    await new Promise((res) => setTimeout(res, 1)); // widen the race window
    const next = new Uint8Array(4);
    new DataView(next.buffer).setUint32(0, n + 1);
    await backend.set("counter", next);
    if (!(await lock.release())) bad.push("counter lock lost before release");
    increments++;
  }
  await backend.close();
  console.log(JSON.stringify({ id: cfg.id, reads, hits, writes, increments, bad }));
}

async function bigwriter(): Promise<void> {
  const size = cfg.bigBytes ?? 40_000_000;
  for (let seq = 1;; seq++) {
    const v = makeValue(0, cfg.id, seq, size);
    console.log(`W ${seq}`);
    await backend.set("big", v);
  }
}

async function holdlock(): Promise<void> {
  const lock = await backend.capabilities.lock.acquire("held", { leaseMs: 60_000, waitMs: 0 });
  console.log(lock === null ? "NOT-LOCKED" : "LOCKED");
  setInterval(() => {}, 1000); // stay alive until killed
}

if (cfg.mode === "hammer") await hammer();
else if (cfg.mode === "bigwriter") await bigwriter();
else await holdlock();
