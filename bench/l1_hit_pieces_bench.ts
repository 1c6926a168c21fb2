/**
 * What an awaited L1 hit of `cache(fn, { l1: { copy: "freeze" } })(1)` spends, piece by piece:
 * each piece of the wrapper's inlined hit (`cache.ts`) in a loop of its own, and the whole hit
 * against an awaited `lru-cache` `get` (the goal row of `bench/_goals_l1.ts`), every variant in one
 * process, interleaved rounds (`_paired.ts`). Figures: ns per operation, median over rounds, and
 * the median of per-round differences against the empty loop.
 *
 * With `--before=<revision>`, the awaited hits of that revision's tree (extracted with
 * `git archive` into `.build/l1-hit-before/`) run in the same rounds, beside this tree's.
 *
 * Run: `deno run -A --lock=deno.dev.lock bench/l1_hit_pieces_bench.ts [--rounds=N] [--before=REV]`
 *
 * @module
 */
// deno-lint-ignore no-import-prefix
import { LRUCache } from "npm:lru-cache@^11.2.0";
import { cache } from "../mod.ts";
import { argKey } from "../engine/_argkey.ts";
import { L1_SHARED, L1Cache } from "../engine/l1.ts";
import { pairedRounds, quantile } from "./_paired.ts";
import { record } from "./_goals_values.ts";

const arg = (name: string) =>
  Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const rounds = Number(arg("rounds") ?? 200);
const beforeRev = arg("before");

/** The `cache` of revision `rev`, extracted into `.build/l1-hit-before/<commit>/`. */
async function cacheAt(rev: string): Promise<{ cache: typeof cache; commit: string }> {
  const root = new URL("../", import.meta.url).pathname;
  const r = new Deno.Command("git", { args: ["rev-parse", rev], cwd: root, stdout: "piped" })
    .outputSync();
  if (!r.success) throw new Error(`git rev-parse ${rev} failed`);
  const commit = new TextDecoder().decode(r.stdout).trim();
  const dir = `${root}.build/l1-hit-before/${commit.slice(0, 12)}`;
  try {
    await Deno.stat(`${dir}/mod.ts`);
  } catch {
    await Deno.mkdir(dir, { recursive: true });
    const tar = new Deno.Command("sh", {
      args: ["-c", `git archive ${commit} | tar -x -C '${dir}'`],
      cwd: root,
    }).outputSync();
    if (!tar.success) throw new Error(`git archive ${commit} failed`);
  }
  return { cache: (await import(`${dir}/mod.ts`)).cache as typeof cache, commit };
}
const N = 1000;

let sink: unknown = 0;
const frozen = Object.freeze(record(1));

// --- the pieces, each in a synchronous loop of N ------------------------------------------------
const l1 = new L1Cache({ maxBytes: 1 << 30, maxEntries: 10_000 });
for (let i = 0; i < 100; i++) l1.set(i, l1.entry(i === 1 ? frozen : i, L1_SHARED, 8, 3_600_000));
const e1 = l1.map.get(1)!;
const stats = { hits: 0, l1Hits: 0, last: null as number | null };
const statsNum = { hits: 0, l1Hits: 0, last: 0 };
const resolved = Promise.resolve(frozen);

function restArgKey(...args: unknown[]): unknown {
  return argKey(args);
}
function oneArgKey(a: unknown): unknown {
  return typeof a === "number" ? (a === 0 ? 0 : a) : undefined;
}

const pieces: Record<string, () => void> = {
  "empty loop": () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += i;
    sink = s;
  },
  "Date.now()": () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += Date.now();
    sink = s;
  },
  "performance.now()": () => {
    let s = 0;
    for (let i = 0; i < N; i++) s += performance.now();
    sink = s;
  },
  "rest args + argKey": () => {
    let s: unknown;
    for (let i = 0; i < N; i++) s = restArgKey(1);
    sink = s;
  },
  "one-parameter key": () => {
    let s: unknown;
    for (let i = 0; i < N; i++) s = oneArgKey(1);
    sink = s;
  },
  "map.get": () => {
    let s: unknown;
    for (let i = 0; i < N; i++) s = l1.map.get(1);
    sink = s;
  },
  "l1.touch (hot entry)": () => {
    for (let i = 0; i < N; i++) l1.touch(1, e1);
  },
  "stats, last = Date.now() into a null field": () => {
    const now = Date.now();
    for (let i = 0; i < N; i++) {
      stats.hits++;
      stats.l1Hits++;
      stats.last = now + i;
    }
  },
  "stats, last into a number field": () => {
    const now = Date.now();
    for (let i = 0; i < N; i++) {
      statsNum.hits++;
      statsNum.l1Hits++;
      statsNum.last = now + i;
    }
  },
  "Promise.resolve(frozen)": () => {
    let s: unknown;
    for (let i = 0; i < N; i++) s = Promise.resolve(frozen);
    sink = s;
  },
};

// --- the whole hit, awaited ---------------------------------------------------------------------
const loadRecord = async (id: number) => {
  await Promise.resolve();
  return record(id);
};
const freeze = cache(loadRecord, {
  name: "bench.pieces.freeze",
  backend: null,
  l1: { copy: "freeze" },
});
const freezeNoMetrics = cache(loadRecord, {
  name: "bench.pieces.freeze.nometrics",
  backend: null,
  l1: { copy: "freeze" },
  monitoring: { prometheus: false },
});
const freezeNoStats = cache(loadRecord, {
  name: "bench.pieces.freeze.nostats",
  backend: null,
  l1: { copy: "freeze" },
  monitoring: { prometheus: false, collectStats: false },
});
const clone = cache(loadRecord, { name: "bench.pieces.clone", backend: null });
const prim = cache(async (n: number) => {
  await Promise.resolve();
  return n * 2;
}, { name: "bench.pieces.prim", backend: null });
const sync = cache((n: number) => n * 2, { name: "bench.pieces.sync", backend: null });
/** One object parameter (keyed by the general wrapper) and two parameters: no one-parameter path. */
const objArg = async (q: { id: number }) => {
  await Promise.resolve();
  return q.id * 2;
};
const twoArgs = async (a: number, b: number) => {
  await Promise.resolve();
  return a + b;
};
const obj = cache(objArg, { name: "bench.pieces.obj", backend: null });
const two = cache(twoArgs, { name: "bench.pieces.two", backend: null });
const q1 = { id: 1 };
const lru = new LRUCache<number, object>({ max: 10_000 });
lru.set(1, frozen);
await freeze(1);
await clone(1);
await freezeNoMetrics(1);
await freezeNoStats(1);
await prim(42);
sync(42);
await obj(q1);
await two(1, 2);
const A = 200;
const old = beforeRev === undefined ? null : await cacheAt(beforeRev);
const oldFreeze = old?.cache(loadRecord, {
  name: "bench.pieces.before.freeze",
  backend: null,
  l1: { copy: "freeze" },
});
const oldPrim = old?.cache(async (n: number) => {
  await Promise.resolve();
  return n * 2;
}, { name: "bench.pieces.before.prim", backend: null });
const oldSync = old?.cache((n: number) => n * 2, {
  name: "bench.pieces.before.sync",
  backend: null,
});
const oldClone = old?.cache(loadRecord, { name: "bench.pieces.before.clone", backend: null });
const oldObj = old?.cache(objArg, { name: "bench.pieces.before.obj", backend: null });
const oldTwo = old?.cache(twoArgs, { name: "bench.pieces.before.two", backend: null });
if (old !== null) {
  await oldFreeze!(1);
  await oldPrim!(42);
  oldSync!(42);
  await oldClone!(1);
  await oldObj!(q1);
  await oldTwo!(1, 2);
}
const awaitedRuns: Record<string, () => Promise<void>> = {
  "lru.get(1), awaited": async () => {
    for (let i = 0; i < A; i++) await lru.get(1);
  },
  "await Promise.resolve(frozen)": async () => {
    for (let i = 0; i < A; i++) await Promise.resolve(frozen);
  },
  "await a stored resolved promise": async () => {
    for (let i = 0; i < A; i++) await resolved;
  },
  'cache(fn, { l1: { copy: "freeze" } })(1), awaited': async () => {
    for (let i = 0; i < A; i++) await freeze(1);
  },
  "the same, prometheus: false": async () => {
    for (let i = 0; i < A; i++) await freezeNoMetrics(1);
  },
  "the same, prometheus and collectStats false": async () => {
    for (let i = 0; i < A; i++) await freezeNoStats(1);
  },
  "cache(fn)(1) (clone), awaited": async () => {
    for (let i = 0; i < A; i++) await clone(1);
    await freezeNoMetrics(1);
    await freezeNoStats(1);
  },
  "cache(fn)(42) (number), awaited": async () => {
    for (let i = 0; i < A; i++) await prim(42);
  },
  "cache(fn)({ id: 1 }) (object argument), awaited": async () => {
    for (let i = 0; i < A; i++) await obj(q1);
  },
  "cache(fn)(1, 2) (two arguments), awaited": async () => {
    for (let i = 0; i < A; i++) await two(1, 2);
  },
  "cache(syncFn)(42), L1 only": () => {
    let s = 0;
    for (let i = 0; i < A; i++) s += sync(42);
    sink = s;
    return Promise.resolve();
  },
};

const pieceNames = Object.keys(pieces);
const t = await pairedRounds(pieceNames.map((name) => ({ name, run: pieces[name] })), { rounds });
const empty = t[0];
console.log(
  `pieces: ns per operation (loops of ${N}, ${rounds} rounds; Deno ${Deno.version.deno})`,
);
console.log("| piece | ns/op (median) | minus the empty loop (median of per-round differences) |");
console.log("| --- | --- | --- |");
for (let v = 0; v < pieceNames.length; v++) {
  const ns = t[v].map((ms) => (ms * 1e6) / N);
  const diff = t[v].map((ms, r) => ((ms - empty[r]) * 1e6) / N);
  console.log(
    `| ${pieceNames[v]} | ${quantile(ns, 0.5).toFixed(1)} | ${quantile(diff, 0.5).toFixed(1)} |`,
  );
}

if (old !== null) {
  const tag = `before (${old.commit.slice(0, 7)})`;
  awaitedRuns[`${tag}: freeze (1), awaited`] = async () => {
    for (let i = 0; i < A; i++) await oldFreeze!(1);
  };
  awaitedRuns[`${tag}: clone (1), awaited`] = async () => {
    for (let i = 0; i < A; i++) await oldClone!(1);
  };
  awaitedRuns[`${tag}: number (42), awaited`] = async () => {
    for (let i = 0; i < A; i++) await oldPrim!(42);
  };
  awaitedRuns[`${tag}: object argument, awaited`] = async () => {
    for (let i = 0; i < A; i++) await oldObj!(q1);
  };
  awaitedRuns[`${tag}: two arguments, awaited`] = async () => {
    for (let i = 0; i < A; i++) await oldTwo!(1, 2);
  };
  awaitedRuns[`${tag}: syncFn (42), L1 only`] = () => {
    let s = 0;
    for (let i = 0; i < A; i++) s += oldSync!(42);
    sink = s;
    return Promise.resolve();
  };
}
const hitNames = Object.keys(awaitedRuns);
const h = await pairedRounds(hitNames.map((name) => ({ name, run: awaitedRuns[name] })), {
  rounds,
});
console.log(
  `\nawaited hits: µs per call (loops of ${A}), ratio to lru.get (median of per-round ratios)`,
);
console.log("| call | µs/op (median) | ÷ lru.get |");
console.log("| --- | --- | --- |");
for (let v = 0; v < hitNames.length; v++) {
  const us = h[v].map((ms) => (ms * 1e3) / A);
  const ratio = h[v].map((ms, r) => ms / h[0][r]);
  console.log(
    `| ${hitNames[v]} | ${quantile(us, 0.5).toFixed(3)} | ${quantile(ratio, 0.5).toFixed(2)}× |`,
  );
}
if (sink === Symbol.for("never")) console.log(sink);
