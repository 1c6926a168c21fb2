// deno-lint-ignore-file no-explicit-any -- node-redis types, loosely
/**
 * The shape the miss profiling benches share (`miss_write_cpu_bench.ts`,
 * `miss_write_paired_bench.ts`, `keys_miss_paired_bench.ts`): the record each miss computes, the
 * raw node-redis miss they compare with, the goals bench's patient timeouts, and the process's CPU
 * clock. The goals bench's own miss row uses `_goals_values.ts`'s record instead.
 *
 * @module
 */
import process from "node:process";
import { createClient } from "redis";
import { Packr } from "msgpackr";

/** The record a profiled miss computes: ~750 bytes as MessagePack, a 600-character string. */
export function missRecord(i: number): Record<string, unknown> {
  return {
    id: i,
    name: `user ${i}`,
    email: `user${i}@example.com`,
    tags: ["a", "b", "c"],
    bio: "x".repeat(600),
    score: i * 1.5,
    active: true,
    created: "2024-01-01T00:00:00Z",
  };
}

/** The adaptive-timeout floor of the goals bench's `--patient-timeouts` (a loaded machine). */
export const PATIENT_TIMEOUTS: { timeout: { min: number; initial: number; max: number } } = {
  timeout: { min: 2, initial: 2, max: 5 },
};

/** This process's CPU time in ms (user + system): the clock of the CPU-paired rounds. */
export function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}

/** The raw miss: node-redis `GET`, then msgpackr `pack` and `SET PX` 20 s (timeout off). */
export interface RawMiss {
  /** The miss of key `i` under the prefix. */
  miss(i: number): Promise<unknown>;
  /** Close the client. */
  close(): Promise<void>;
}

/** Connect a raw node-redis client to `url`, writing under `prefix` + `raw:`. */
export async function rawMiss(url: string, prefix: string): Promise<RawMiss> {
  const raw = createClient({ url, commandOptions: { timeout: 0 } } as any);
  await raw.connect();
  const packr = new Packr();
  return {
    miss: (i) => {
      const key = `${prefix}raw:${i}`;
      return raw.get(key).then((b: any) =>
        b ?? raw.set(key, packr.pack(missRecord(i)) as any, { PX: 20000 } as any)
      );
    },
    close: () => raw.close(),
  };
}
