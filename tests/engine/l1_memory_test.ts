/**
 * `cacheInfo().bytes` is an honest estimate: for 4,000 ~1 KB records in an L1-only cache, the
 * counted bytes are within a generous factor (1/3 to 3) of the heap the filled cache measurably
 * holds after a full garbage collection. The size model is documented in `engine/l1.ts`.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { RUNTIME, test } from "../_harness.ts";
import { cache } from "../../mod.ts";

/** A full garbage collection, on every runtime. */
function collector(): () => void {
  const bun = (globalThis as { Bun?: { gc(force: boolean): void } }).Bun;
  if (RUNTIME === "bun" && bun) return () => bun.gc(true);
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as () => void;
}

function record(i: number) {
  return {
    id: i,
    name: `user ${i}`,
    email: `user${i}@example.com`,
    createdAt: new Date(1_700_000_000_000 + i),
    tags: [`t${i}`, "editor", "reviewer"],
    address: { street: `${i} Main Street`, city: "London", geo: { lat: 51.5 + i / 1e6, lng: 0.1 } },
    bio: `${i}:` + "x".repeat(500),
    counts: [i, i + 1, i + 2, i + 3],
    score: i + 0.5,
  };
}

test("L1: cacheInfo().bytes is within a factor of 3 of the measured heap it holds", () => {
  const gc = collector();
  const heap = () => {
    gc();
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external;
  };
  const N = 4000;
  const before = heap();
  const f = cache((i: number) => record(i), {
    name: "l1.memory.estimate",
    backend: null,
    l1: { maxEntries: N },
  });
  for (let i = 0; i < N; i++) f(i);
  const held = heap() - before;
  const counted = f.cacheInfo().bytes;
  assert.equal(f.cacheInfo().size, N);
  const ratio = counted / held;
  assert.ok(
    ratio > 1 / 3 && ratio < 3,
    `counted ${counted} bytes for ${held} measured (ratio ${ratio.toFixed(2)})`,
  );
});
