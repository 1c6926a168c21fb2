/**
 * What observation costs on the awaited L1 hit (issue 16): the hit of `cache(asyncFn)(42)`
 * (default configuration: L1 in front of the default file backend) of this tree against the same
 * hit of the tree before observation existed (a git revision, default the merge base of `HEAD`
 * and `main`, extracted into `.build/observe-before/`), in one process, paired (`_paired.ts`: interleaved rounds, median of
 * per-round ratios with quartiles):
 *
 * - no listener, tracing off (the goal: within ±5% of before);
 * - a `hit` listener on the function (`f.events`);
 * - a listener on the global `cacheEvents` (every function is then observed);
 * - `monitoring.tracing` on, no OpenTelemetry SDK registered (the API's no-op tracer);
 * - `monitoring.tracing` on with an SDK (`BasicTracerProvider` of `@opentelemetry/sdk-trace-base`,
 *   a span processor that drops the spans), i.e. the cost of real spans without an exporter;
 * - `f.withStatus(42)`.
 *
 * Run: `deno run -A --lock=deno.dev.lock bench/observe_bench.ts [--before=<revision>] [--rounds=N]`
 * (`deno run`, not `deno bench`: the module does nothing when imported).
 *
 * @module
 */
// Bench-only packages are imported inline and locked in deno.dev.lock (see l1_bench.ts).
// deno-lint-ignore no-import-prefix
import { BasicTracerProvider } from "npm:@opentelemetry/sdk-trace-base@^2.2.0";
import { trace } from "@opentelemetry/api";
import {
  formatMs,
  formatSpread,
  markdownTable,
  pairedRounds,
  roundRatios,
  spread,
} from "./_paired.ts";
import { cache, cacheEvents, closeDefaultBackend } from "../mod.ts";

type CacheFn = typeof cache;

/** Extract `rev` into `.build/observe-before/` (once per revision); returns its `cache`. */
async function before(
  rev: string,
): Promise<{ cache: CacheFn; commit: string; close(): Promise<void> }> {
  const root = new URL("../", import.meta.url).pathname;
  const git = (args: string[]) => {
    const r = new Deno.Command("git", { args, cwd: root, stdout: "piped", stderr: "piped" })
      .outputSync();
    if (!r.success) throw new Error(`git ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
    return new TextDecoder().decode(r.stdout).trim();
  };
  const commit = git([
    "rev-parse",
    rev === "merge-base" ? git(["merge-base", "HEAD", "main"]) : rev,
  ]);
  const dir = `${root}.build/observe-before/${commit.slice(0, 12)}`;
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
  const mod = await import(`${dir}/mod.ts`);
  return { cache: mod.cache as CacheFn, commit, close: () => mod.closeDefaultBackend() };
}

const compute = async (n: number): Promise<number> => {
  await Promise.resolve();
  return n * 2;
};

if (import.meta.main) {
  const arg = (name: string) =>
    Deno.args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const rounds = Number(arg("rounds") ?? 41);
  const batch = 2000;
  Deno.env.set("CACHEKIT_FILE_CACHE_DIR", await Deno.makeTempDir({ prefix: "ck-obs-bench-" }));
  const old = await before(arg("before") ?? "merge-base");

  const fns = {
    before: old.cache(compute, { name: "bench.obs.before", ttl: 3600 }),
    off: cache(compute, { name: "bench.obs.off", ttl: 3600 }),
    listener: cache(compute, { name: "bench.obs.listener", ttl: 3600 }),
    global: cache(compute, { name: "bench.obs.global", ttl: 3600 }),
    tracingNoop: cache(compute, {
      name: "bench.obs.tracing",
      ttl: 3600,
      monitoring: { tracing: true },
    }),
    tracingSdk: cache(compute, { name: "bench.obs.sdk", ttl: 3600, monitoring: { tracing: true } }),
    status: cache(compute, { name: "bench.obs.status", ttl: 3600 }),
  };
  for (const f of Object.values(fns)) await f(42);
  let seen = 0;
  fns.listener.events.addEventListener("hit", () => seen++);
  const onGlobal = () => seen++;

  const provider = new BasicTracerProvider({
    spanProcessors: [{
      onStart() {},
      onEnd() {},
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    }],
  });

  const loop = (f: (n: number) => Promise<number>) => async () => {
    for (let i = 0; i < batch; i++) await f(42);
  };
  const times = await pairedRounds([
    { name: "before", run: loop(fns.before) },
    { name: "off", run: loop(fns.off) },
    { name: "listener", run: loop(fns.listener) },
    {
      name: "global",
      run: async () => {
        cacheEvents.addEventListener("hit", onGlobal);
        try {
          await loop(fns.global)();
        } finally {
          cacheEvents.removeEventListener("hit", onGlobal);
        }
      },
    },
    { name: "tracingNoop", run: loop(fns.tracingNoop) },
    {
      name: "tracingSdk",
      run: async () => {
        trace.setGlobalTracerProvider(provider);
        try {
          await loop(fns.tracingSdk)();
        } finally {
          trace.disable();
        }
      },
    },
    {
      name: "status",
      run: async () => {
        for (let i = 0; i < batch; i++) await fns.status.withStatus(42);
      },
    },
  ], { rounds });
  const base = times[0];
  const labels: Record<string, string> = {
    before: `before (${old.commit.slice(0, 10)}): awaited L1 hit`,
    off: "no listener, tracing off",
    listener: "a `hit` listener on f.events",
    global: "a listener on the global cacheEvents",
    tracingNoop: "monitoring.tracing, no SDK (no-op tracer)",
    tracingSdk: "monitoring.tracing, BasicTracerProvider (spans dropped)",
    status: "f.withStatus(42)",
  };
  const names = Object.keys(labels);
  const rows = names.map((name, i) => {
    const per = spread(times[i].map((t) => t / batch));
    return [
      labels[name],
      formatMs(per.median),
      i === 0 ? "1" : formatSpread(spread(roundRatios(times[i], base))),
    ];
  });
  console.log(
    `awaited L1 hit, ${batch} calls per batch, ${rounds} rounds (median [quartiles] of per-round ratios)\n`,
  );
  console.log(markdownTable(["variant", "per call", "× before"], rows));
  if (seen === 0) throw new Error("the listeners never ran");
  await old.close();
  await closeDefaultBackend();
}
