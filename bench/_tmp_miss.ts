import * as branch from "../mod.ts";
import * as base from "/work/main/mod.ts";

const bare = {
  circuitBreaker: false,
  timeout: false,
  backpressure: false,
  stampede: false,
} as const;
type Lib = typeof branch;
function mk(lib: Lib, tag: string) {
  const sync = lib.cache((n: number) => ({ n }), {
    name: `b.${tag}.sync`,
    backend: null,
    l1: { maxEntries: 1_000_000, maxBytes: 1e9 },
  });
  const mem = lib.cache(async (n: number) => ({ n }), {
    name: `b.${tag}.mem`,
    backend: new lib.MemoryBackend(),
    ttl: 600,
    ...bare,
    l1: { maxEntries: 1_000_000, maxBytes: 1e9 },
  });
  const hit = lib.cache(async (n: number) => ({ n }), { name: `b.${tag}.hit`, backend: null });
  return { sync, mem, hit };
}
const A = mk(base as unknown as Lib, "base");
const B = mk(branch, "branch");
let key = 0;
const N = 2000;
async function time(v: string, f: (n: number) => unknown): Promise<number> {
  const t0 = performance.now();
  if (v === "mem") { for (let i = 0; i < N; i++) await f(++key); }
  else if (v === "sync") { for (let i = 0; i < N; i++) f(++key); }
  else for (let i = 0; i < N * 10; i++) await f(7);
  return performance.now() - t0;
}
const V = ["sync", "mem", "hit"] as const;
const ratios: Record<string, number[]> = { sync: [], mem: [], hit: [] };
for (let r = 0; r < 41; r++) {
  for (const v of V) {
    let ta, tb;
    if (r % 2 === 0) {
      ta = await time(v, A[v]);
      tb = await time(v, B[v]);
    } else {
      tb = await time(v, B[v]);
      ta = await time(v, A[v]);
    }
    if (r > 4) ratios[v].push(tb / ta);
  }
}
const med = (a: number[]) => a.sort((x, y) => x - y)[a.length >> 1];
for (const v of V) console.log(v, "branch/main median ratio:", med(ratios[v]).toFixed(3));
