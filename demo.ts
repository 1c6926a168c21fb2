/**
 * `deno task demo`: the cache at work on the embedded default (L1 in front of a FileBackend in the
 * OS cache directory; no server needed), or on Redis when `CACHEKIT_REDIS_URL` / `REDIS_URL` is set
 * (the default backend then; the demo says which it used). Runtime-neutral (`node:` APIs only), so
 * the same file runs on Bun (`deno task demo:bun`) and, transpiled, on Node (`deno task demo:node`).
 *
 * 1. A slow function: the first call vs cached calls, with timings and hit/miss statistics.
 * 2. Restart: a second process wraps the same function and answers from L2 (the file backend).
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { cache, closeDefaultBackend } from "./mod.ts";
import { envConfig } from "./config/env.ts";

const CHILD = process.argv.includes("--child");
/** The default backend's Redis URL (password redacted), or null: the file backend. */
const REDIS = envConfig().redisUrl;
const L2 = REDIS === null ? "file" : "Redis";

/** Pretend to be a slow database query. */
async function loadReport(
  region: string,
  year: number,
): Promise<{ region: string; year: number; total: number }> {
  await new Promise((r) => setTimeout(r, 400));
  return { region, year, total: region.length * 1000 + year };
}

// Identity: `demo.loadReport` (module path + function name), the same in every process.
const report = cache(loadReport, { ttl: 120, namespace: "demo" });

const ms = (t0: number) => `${(performance.now() - t0).toFixed(3).padStart(9)} ms`;

async function timed(label: string): Promise<void> {
  const t0 = performance.now();
  const r = await report("emea", 2025);
  console.log(`${label.padEnd(34)} ${ms(t0)}  → ${JSON.stringify(r)}`);
}

if (!CHILD) {
  const dir = process.env.CACHEKIT_FILE_CACHE_DIR ?? "the OS cache directory (cachekit/)";
  const where = REDIS === null
    ? `FileBackend in ${dir}`
    : `RedisBackend at ${REDIS} (from CACHEKIT_REDIS_URL / REDIS_URL)`;
  console.log(`cachekit demo: L1 + ${where}; identity ${report.identity}\n`);
  await report.cacheClear(); // start cold, whatever an earlier run left
  await timed("1st call (miss: runs the function)");
  for (let i = 2; i <= 4; i++) {
    await timed(`${i}${i === 2 ? "nd" : i === 3 ? "rd" : "th"} call (L1 hit)`);
  }
  const t0 = performance.now();
  const N = 100_000;
  for (let i = 0; i < N; i++) await report("emea", 2025);
  const per = ((performance.now() - t0) * 1e6) / N;
  console.log(`${N.toLocaleString("en")} more L1 hits: ${per.toFixed(0)} ns per awaited call`);
  const { hits, misses, l1Hits, l2Hits, size, bytes } = report.cacheInfo();
  console.log(`stats: ${JSON.stringify({ hits, misses, l1Hits, l2Hits, size, bytes })}\n`);

  console.log("restart: a new process wraps the same function …");
  // The same runtime runs the child: `deno run -A demo.ts`, `bun demo.ts`, `node demo.js`. Deno's
  // child uses the node_modules this process set up as it is (`manual`): with its own lock file
  // (deno.json's, maybe not the one this process was started with) it would re-link packages
  // there that other processes may be loading at that moment.
  const self = fileURLToPath(import.meta.url);
  const deno = "Deno" in globalThis;
  const child = spawnSync(
    process.execPath,
    deno ? ["run", "-A", "--node-modules-dir=manual", self, "--child"] : [self, "--child"],
    { stdio: "inherit" },
  );
  await closeDefaultBackend();
  process.exit(child.status ?? 1);
} else {
  await timed(`  child: 1st call (L2 hit from ${L2})`);
  await timed("  child: 2nd call (L1 hit)");
  const { hits, misses, l1Hits, l2Hits } = report.cacheInfo();
  console.log(`  child stats: ${JSON.stringify({ hits, misses, l1Hits, l2Hits })}`);
  if (misses !== 0 || l2Hits !== 1) {
    console.error(`  unexpected: the ${L2} backend did not answer after the restart`);
    process.exit(1);
  }
  await closeDefaultBackend();
}
