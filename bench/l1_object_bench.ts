/**
 * L1 hits of objects (issue 14): the awaited hit of a ~1 KB record (20 fields: a nested object, an
 * array of strings, numbers, a `Date`) and of a ~100 KB record under `l1.copy` `"clone"`,
 * `"freeze"` and `"none"`, against bentocache's default `getOrSet` memory L1 (JSON) and
 * `lru-cache` `get`; the primitive hit `cache(fn)(42)` against the same peers; and the memory of
 * 10,000 1 KB records in our L1 against `lru-cache` holding the same objects (filled by misses, and
 * filled by L2 hits: values decoded from the stored bytes). `MEM_ONLY=1` runs the memory part only.
 *
 * Paired: every variant in one process, one batch of BATCH awaited hits each per round, in a
 * rotated order, for ROUNDS rounds; each round's time of a variant is divided by that round's time
 * of the baseline, and the median of those ratios is printed with the quartiles.
 *
 * Run: `deno run -A --lock=deno.dev.lock --v8-flags=--expose-gc bench/l1_object_bench.ts`
 * (`CK_BASELINE=/path/to/other/checkout/mod.ts` adds that checkout's default `cache()` as a
 * variant, e.g. to compare with main).
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { LRUCache } from "npm:lru-cache@^11.2.0";
// deno-lint-ignore no-import-prefix
import { BentoCache, bentostore } from "npm:bentocache@^1.6.1";
// deno-lint-ignore no-import-prefix
import { memoryDriver } from "npm:bentocache@^1.6.1/drivers/memory";
import { cache, MemoryBackend } from "../mod.ts";
import { deserialize, serialize } from "../serializers/std.ts";

const ROUNDS = Number(Deno.env.get("ROUNDS") ?? 200);
const BATCH = 200;

/** A ~1 KB record (about 720 bytes as MessagePack, ~1 KB as JSON). */
function record(id: number) {
  return {
    id,
    name: "Ada Lovelace",
    email: "ada@example.com",
    active: true,
    score: 98.5,
    createdAt: new Date(1_700_000_000_000 + id),
    tags: ["admin", "editor", "reviewer", "beta"],
    address: {
      street: "12 Analytical Engine Way",
      city: "London",
      zip: "NW1 2AB",
      country: "UK",
      geo: { lat: 51.5, lng: -0.12 },
    },
    roles: ["read", "write"],
    counts: [1, 2, 3, 4, 5, 6, 7, 8],
    bio: "x".repeat(300),
    locale: "en-GB",
    tz: "Europe/London",
    plan: "pro",
    seats: 12,
    verified: false,
    lastLogin: 1_700_000_100_000,
    ref: "abc-def-ghi",
    notes: null,
    version: 7,
  };
}
/** A ~100 KB record: a page of 100 records. */
function page(id: number) {
  return { id, items: Array.from({ length: 100 }, (_, i) => record(id * 1000 + i)) };
}

const backend = new MemoryBackend();
const opts = { ttl: 3600, backend } as const;
const ck = (mode: "clone" | "freeze" | "none", make: (id: number) => unknown) =>
  cache(async (id: number) => await Promise.resolve(make(id)), {
    ...opts,
    name: `bench.l1obj.${mode}.${make.name}`,
    l1: { copy: mode },
  });

const oursClone = ck("clone", record);
const oursFreeze = ck("freeze", record);
const oursNone = ck("none", record);
const oursClone100 = ck("clone", page);
const oursPrim = cache(async (n: number) => await Promise.resolve(n * 2), {
  ...opts,
  name: "bench.l1obj.prim",
});

const bento = new BentoCache({
  default: "memory",
  stores: { memory: bentostore().useL1Layer(memoryDriver({})) },
});
const lru = new LRUCache<string, object>({ max: 10_000 });
lru.set("r", record(1));
lru.set("p", page(1));
lru.set("n", { n: 84 });
const rec1 = record(1);
const recBytes = serialize(rec1);

const baselinePath = Deno.env.get("CK_BASELINE");
type CacheFn = typeof cache;
const base: CacheFn | null = baselinePath ? (await import(baselinePath)).cache : null;
const baseObj = base?.(async (id: number) => await Promise.resolve(record(id)), {
  ...opts,
  name: "bench.l1obj.base",
}) as ((id: number) => Promise<unknown>) | undefined;
const basePrim = base?.(async (n: number) => await Promise.resolve(n * 2), {
  ...opts,
  name: "bench.l1obj.baseprim",
}) as ((n: number) => Promise<unknown>) | undefined;

const bentoRec = () => Promise.resolve(record(1));
const bentoPage = () => Promise.resolve(page(1));
const bentoPrim = () => Promise.resolve(84);

type Variant = [string, () => Promise<unknown>];
const batch = (f: () => Promise<unknown>) => async () => {
  for (let i = 0; i < BATCH; i++) await f();
};

async function paired(title: string, variants: Variant[], baseline: number): Promise<void> {
  const fns = variants.map(([, f]) => batch(f));
  for (const f of fns) for (let i = 0; i < 20; i++) await f(); // warm up
  const times = variants.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < fns.length; k++) {
      const v = (k + r) % fns.length;
      const t0 = performance.now();
      await fns[v]();
      times[v].push(performance.now() - t0);
    }
  }
  const q = (a: number[], f: number) =>
    [...a].sort((x, y) => x - y)[Math.floor(f * (a.length - 1))];
  console.log(`${title}: paired over ${ROUNDS} rounds of ${BATCH} awaited hits`);
  console.table(variants.map(([name], v) => {
    const ratio = times[v].map((t, r) => t / times[baseline][r]);
    return {
      variant: name,
      "µs/hit (median)": (q(times[v], 0.5) * 1000 / BATCH).toFixed(2),
      [`÷ ${variants[baseline][0]} (median [q1, q3])`]: `${q(ratio, 0.5).toFixed(2)} [${
        q(ratio, 0.25).toFixed(2)
      }, ${q(ratio, 0.75).toFixed(2)}]`,
    };
  }));
}

const memOnly = Deno.env.get("MEM_ONLY") === "1";
// Fill every cache once (the miss), then measure hits only.
await Promise.all([oursClone(1), oursFreeze(1), oursNone(1), oursClone100(1), oursPrim(42)]);
await baseObj?.(1);
await basePrim?.(42);
await bento.getOrSet({ key: "r", factory: bentoRec, ttl: "1h" });
await bento.getOrSet({ key: "p", factory: bentoPage, ttl: "1h" });
await bento.getOrSet({ key: "n", factory: bentoPrim, ttl: "1h" });

const record1k: Variant[] = [
  ["bentocache getOrSet (default, JSON)", () => bento.getOrSet({ key: "r", factory: bentoRec })],
  ["lru-cache get", async () => await lru.get("r")],
  ["cachekit copy: clone (default)", () => oursClone(1)],
  ["cachekit copy: freeze", () => oursFreeze(1)],
  ["cachekit copy: none", () => oursNone(1)],
  ["structuredClone (no cache)", async () => await structuredClone(rec1)],
  ["std deserialize (the old L1 hit's work)", async () => await deserialize(recBytes)],
];
if (baseObj) record1k.push(["CK_BASELINE cache() (default)", () => baseObj(1)]);
if (!memOnly) await paired("L1 hit, ~1 KB record", record1k, 0);

if (!memOnly) {
  await paired("L1 hit, ~100 KB record", [
    ["bentocache getOrSet (default, JSON)", () => bento.getOrSet({ key: "p", factory: bentoPage })],
    ["lru-cache get", async () => await lru.get("p")],
    ["cachekit copy: clone (default)", () => oursClone100(1)],
  ], 0);

  const prim: Variant[] = [
    ["lru-cache get", async () => await lru.get("n")],
    ["bentocache getOrSet", () => bento.getOrSet({ key: "n", factory: bentoPrim })],
    ["cachekit cache(asyncFn)(42)", () => oursPrim(42)],
  ];
  if (basePrim) prim.push(["CK_BASELINE cache(asyncFn)(42)", () => basePrim(42)]);
  await paired("L1 hit, a number", prim, 2);
}

// Memory: 10,000 1 KB records, heap + ArrayBuffers after a full GC.
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) {
  console.log("memory: run with --v8-flags=--expose-gc to measure");
} else {
  const N = 10_000;
  const used = () => {
    gc();
    gc();
    const m = Deno.memoryUsage();
    return m.heapUsed + m.external;
  };
  // "literal": built by the record literal (V8 shares the backing store of its constant arrays
  // between records, copy-on-write: lru-cache holds those shared stores, a copy cannot); "decoded":
  // the same record as JSON.parse gives it (like data from a database or an API: nothing shared).
  const decoded = (id: number) => {
    const r = JSON.parse(JSON.stringify(record(id)));
    r.createdAt = new Date(r.createdAt);
    return r as ReturnType<typeof record>;
  };
  type Holder = "clone" | "freeze" | "none" | "lru" | "l2";
  const fill = async (mode: Holder, make: (id: number) => object) => {
    let writer: ((id: number) => Promise<unknown>) | null = null;
    const l2 = new MemoryBackend();
    const name = `bench.l1obj.mem.${mode}.${Math.random()}`;
    if (mode === "l2") {
      // The L2 entries are written first (by an instance without L1), outside the measurement.
      writer = cache(async (id: number) => await Promise.resolve(make(id)), {
        name,
        ttl: 3600,
        backend: l2,
        l1: { enabled: false },
      });
      for (let i = 0; i < N; i++) await writer(i);
    }
    const before = used();
    let keep: unknown;
    if (mode === "l2") {
      const f = cache(async (id: number) => await Promise.resolve(make(id)), {
        name,
        ttl: 3600,
        backend: l2,
        l1: { maxEntries: N },
      });
      for (let i = 0; i < N; i++) await f(i);
      keep = f;
    } else if (mode === "lru") {
      const l = new LRUCache<number, object>({ max: N });
      for (let i = 0; i < N; i++) l.set(i, make(i));
      keep = l;
    } else {
      const f = cache(async (id: number) => await Promise.resolve(make(id)), {
        name: `bench.l1obj.mem.${mode}.${Math.random()}`,
        ttl: 3600,
        backend: null,
        l1: { copy: mode, maxEntries: N },
      });
      for (let i = 0; i < N; i++) await f(i);
      keep = f;
    }
    const after = used();
    if (writer === null && l2.size < 0) throw new Error("unreachable"); // keeps l2 alive
    const info = mode === "lru" ? null : (keep as typeof oursClone).cacheInfo();
    return { perEntry: (after - before) / N, estimate: info ? info.bytes / N : null, keep };
  };
  const rows = [];
  for (const [kind, make] of [["literal", record], ["decoded", decoded]] as const) {
    for (const mode of ["lru", "clone", "freeze", "none", "l2", "lru", "clone"] as const) {
      const r = await fill(mode, make);
      rows.push({
        records: kind,
        holder: mode === "lru"
          ? "lru-cache (the objects)"
          : mode === "l2"
          ? "cachekit L1 filled by L2 hits (MemoryBackend), clone"
          : `cachekit L1, copy: ${mode}`,
        "bytes/entry (heap + external)": Math.round(r.perEntry),
        "cacheInfo().bytes/entry": r.estimate === null ? "" : Math.round(r.estimate),
      });
    }
  }
  console.log(`memory of ${N} ~1 KB records (L1 only, after gc; each row measured alone):`);
  console.table(rows);
}
await bento.disconnect();
