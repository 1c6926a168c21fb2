/**
 * `cacheInfo().bytes` is an honest estimate: for 4,000 ~1 KB records in an L1-only cache, the
 * counted bytes are within a generous factor (1/3 to 3) of the heap the filled cache measurably
 * holds after a full garbage collection. The size model is documented in `engine/l1.ts`. And an
 * entry's own overhead is what the model says on V8: its times are small integers, kept inside the
 * entry object, even after an entry whose expiry is not one.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { RUNTIME, test } from "../_harness.ts";
import { cache } from "../../mod.ts";
import { L1_ENTRY_OVERHEAD, L1_SHARED, L1Cache } from "../../engine/l1.ts";

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

test("L1: an entry object with small-integer times; a far expiry boxes only its own (V8)", () => {
  // The layout is V8's (Deno, Node): Bun's engine keeps every number inside the object anyway.
  if (RUNTIME === "bun") return;
  const gc = collector();
  const heap = () => {
    gc();
    gc();
    return process.memoryUsage().heapUsed;
  };
  const N = 20_000;
  const l1 = new L1Cache({ maxBytes: 2 ** 40, maxEntries: 2 * N });
  // Times that are not small integers: 400 days (over 2^30 ms) and a fraction of a millisecond.
  l1.set(-1, l1.entry(0, L1_SHARED, 0, 400 * 86_400_000));
  l1.set(-2, l1.entry(0, L1_SHARED, 0, 0.5));
  const before = heap();
  for (let i = 0; i < N; i++) l1.set(i, l1.entry(i, L1_SHARED, 0, 60_000, 30_000));
  const perEntry = (heap() - before) / N;
  // 96 bytes of entry object + ~48–60 of Map slot (Deno ~145, Node ~157); boxed times would add
  // 32 (a heap number each).
  assert.ok(perEntry < 168, `${perEntry.toFixed(1)} bytes per entry`);
  assert.ok(perEntry < L1_ENTRY_OVERHEAD + 24, `${perEntry} vs L1_ENTRY_OVERHEAD`);
  assert.equal(l1.size, N + 2);
});
