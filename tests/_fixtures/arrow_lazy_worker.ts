// A fresh process that caches an Arrow table with `serializer: "arrow"` and never calls
// `loadArrow`: the engine imports apache-arrow itself at the first call. Prints one JSON line.
import process from "node:process";
import { cache } from "../../mod.ts";
import { MemoryBackend } from "../../backends/mod.ts";
import { arrowLoaded } from "../../serializers/mod.ts";

const before = arrowLoaded();
// The function imports apache-arrow itself, as an application would; by then the engine has
// loaded it (the same module: one import map, one node_modules).
const frames = cache(async (n: number) => {
  const arrow = await import("apache-arrow");
  return arrow.tableFromArrays({ n: Int32Array.of(n, n + 1) });
}, { serializer: "arrow", backend: new MemoryBackend(), l1: false, name: "lazy.frames" });
const miss = await frames(1);
const hit = await frames(1);
const rows = (t: unknown) =>
  (t as { toArray(): { toJSON(): unknown }[] }).toArray().map((r) => r.toJSON());
process.stdout.write(
  JSON.stringify({ before, after: arrowLoaded(), miss: rows(miss), hit: rows(hit) }) + "\n",
);
