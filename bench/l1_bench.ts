/**
 * L1 hit cost: `cache(fn)(42)` (awaited, async function, default config: L1 in front of the
 * default file backend; and L1-only sync) against a raw `Map` lookup, `lru-cache` `get`, and the
 * L1 hits of bentocache `getOrSet` and cacheable `wrap` (default configurations), in one run.
 *
 * Run: `deno task bench` (or `deno bench -A --lock=deno.dev.lock bench/l1_bench.ts`)
 *
 * @module
 */
// Bench-only packages are imported inline, not through deno.json's import map: every package of
// the import map (and of deno.lock) is installed by any `deno run` in the repository, e.g. the demo
// in a fresh clone. The bench's versions are locked in deno.dev.lock (`deno task bench`).
// deno-lint-ignore no-import-prefix
import { LRUCache } from "npm:lru-cache@^11.2.0";
// deno-lint-ignore no-import-prefix
import { BentoCache, bentostore } from "npm:bentocache@^1.6.1";
// deno-lint-ignore no-import-prefix
import { memoryDriver } from "npm:bentocache@^1.6.1/drivers/memory";
// deno-lint-ignore no-import-prefix
import { Cacheable } from "npm:cacheable@^2.5.0";
import { cache, closeDefaultBackend } from "../mod.ts";

const compute = async (n: number): Promise<number> => {
  await Promise.resolve();
  return n * 2;
};

// Ours: default config (L1 + default L2 = file backend in a temp dir), awaited hit.
Deno.env.set("CACHEKIT_FILE_CACHE_DIR", await Deno.makeTempDir({ prefix: "ck-l1-bench-" }));
const ours = cache(compute, { name: "bench.l1.async", ttl: 3600 });
await ours(42);
const oursObj = cache(async (n: number) => {
  await Promise.resolve();
  return { id: n, name: "user", tags: ["a", "b"] };
}, {
  name: "bench.l1.object",
  ttl: 3600,
});
await oursObj(42);
const oursSync = cache((n: number) => n * 2, { name: "bench.l1.sync", ttl: 3600, backend: null });
oursSync(42);
const oursMinimal = cache.minimal(compute, { name: "bench.l1.minimal", ttl: 3600 });
await oursMinimal(42);

const map = new Map<number, number>([[42, 84]]);
const lru = new LRUCache<number, number>({ max: 10_000 });
lru.set(42, 84);

const bento = new BentoCache({
  default: "memory",
  stores: { memory: bentostore().useL1Layer(memoryDriver({})) },
});
const bentoFactory = () => compute(42);
await bento.getOrSet({ key: "k42", factory: bentoFactory, ttl: "1h" });

const cacheable = new Cacheable();
const wrapped = cacheable.wrap(compute, { ttl: "1h", keyPrefix: "p1" });
await wrapped(42);

const group = "l1-hit";
Deno.bench({
  name: "raw Map get (awaited)",
  group,
  async fn() {
    await map.get(42);
  },
});
Deno.bench({
  name: "lru-cache get (awaited)",
  group,
  async fn() {
    await lru.get(42);
  },
});
Deno.bench({
  name: "cachekit cache(asyncFn)(42) awaited",
  group,
  baseline: true,
  async fn() {
    await ours(42);
  },
});
Deno.bench({
  name: "cachekit cache.minimal(asyncFn)(42) awaited",
  group,
  async fn() {
    await oursMinimal(42);
  },
});
Deno.bench({
  name: 'cachekit object value (a copy per hit, l1.copy "clone") awaited',
  group,
  async fn() {
    await oursObj(42);
  },
});
Deno.bench({
  name: "cachekit L1-only sync fn (no await)",
  group,
  fn() {
    oursSync(42);
  },
});
Deno.bench({
  name: "bentocache getOrSet hit",
  group,
  async fn() {
    await bento.getOrSet({ key: "k42", factory: bentoFactory, ttl: "1h" });
  },
});
Deno.bench({
  name: "cacheable wrap hit",
  group,
  async fn() {
    await wrapped(42);
  },
});

globalThis.addEventListener("unload", () => {
  void closeDefaultBackend();
});
