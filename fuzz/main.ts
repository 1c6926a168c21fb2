/**
 * `deno task fuzz`: seeded mutational fuzzing of every decoder of stored bytes, of the read path
 * of `cache()` and of the invalidation buses' receiving side (see `fuzz/fuzz.ts` and
 * `fuzz/_targets.ts`). Exits 1 on any wrong value,
 * untyped error, crash, input over the time limit (1 s) or over the memory limit (128 MiB of
 * resident memory), 2 on a usage error.
 *
 * Usage:
 *
 * ```text
 * deno task fuzz [--seed N] [--inputs N] [--target NAME[,NAME…]] [--slow-ms N] [--max-input-mib N]
 * deno task fuzz --seed N --target NAME --index I     # reproduce one input, print it whole
 * deno task fuzz --list                               # the targets
 * deno task fuzz --in-process …                       # no worker processes (a crash ends the run)
 * ```
 *
 * Each target runs in a worker process of its own (one at a time, with a 1 GiB heap), so that an
 * input that exhausts memory, crashes or hangs the runtime becomes a finding with its index and
 * the run goes on after it.
 *
 * Runs on Bun and Node as well (`bun fuzz/main.ts`, or `node` on the transpiled build).
 *
 * @module
 */
import process from "node:process";
import { spawn } from "node:child_process";
import {
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  addRun,
  budget,
  closeTargets,
  emptyReport,
  emptyStats,
  failed,
  type FuzzReport,
  inputFor,
  runFuzz,
  runOne,
  runTarget,
  summary,
  TARGET_NAMES,
  type TargetRun,
} from "./fuzz.ts";
import { createTargets } from "./_targets.ts";

/** Default number of inputs of a full run. */
export const DEFAULT_INPUTS = 1_000_000;

/** Default seed: fixed, so that two runs of the same code find the same things. */
export const DEFAULT_SEED = 1;

interface Args {
  seed: number;
  inputs: number;
  targets: string[];
  index: number | null;
  slowMs: number;
  maxInputMiB: number;
  list: boolean;
  inProcess: boolean;
  worker: boolean;
  from: number;
  checkpoint: string | null;
}

function usage(message: string): never {
  console.error(`fuzz: ${message}`);
  console.error(
    "usage: deno task fuzz [--seed N] [--inputs N] [--target NAME[,NAME...]] [--index I] " +
      "[--slow-ms N] [--max-input-mib N] [--in-process] [--list]",
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seed: DEFAULT_SEED,
    inputs: DEFAULT_INPUTS,
    targets: [...TARGET_NAMES],
    index: null,
    slowMs: 1000,
    maxInputMiB: 128,
    list: false,
    inProcess: false,
    worker: false,
    from: 0,
    checkpoint: null,
  };
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v?.replace(/_/g, ""));
    if (v === undefined || !Number.isSafeInteger(n) || n < 0) {
      usage(`${flag} needs an integer >= 0`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split("=", 2) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--seed":
        args.seed = int(flag, value()) >>> 0;
        break;
      case "--inputs":
        args.inputs = int(flag, value());
        break;
      case "--index":
        args.index = int(flag, value());
        break;
      case "--slow-ms":
        args.slowMs = int(flag, value());
        break;
      case "--max-input-mib":
        args.maxInputMiB = int(flag, value());
        break;
      case "--target": {
        const names = (value() ?? "").split(",").filter((s) => s !== "");
        for (const n of names) {
          if (!TARGET_NAMES.includes(n)) {
            usage(`unknown target "${n}" (known: ${TARGET_NAMES.join(", ")})`);
          }
        }
        if (names.length === 0) usage("--target needs a name");
        args.targets = names;
        break;
      }
      case "--list":
        args.list = true;
        break;
      case "--in-process":
        args.inProcess = true;
        break;
      case "--worker":
        args.worker = true;
        break;
      case "--from":
        args.from = int(flag, value());
        break;
      case "--checkpoint":
        args.checkpoint = value() ?? usage("--checkpoint needs a path");
        break;
      default:
        usage(`unknown argument "${argv[i]}"`);
    }
  }
  return args;
}

/** Memory a worker process may use before it dies as "out of memory" (a finding, not a hang). */
const WORKER_HEAP_MB = 1024;

/** A worker whose current input has not changed for this long is killed as hung. */
const HANG_MS = 60_000;

/** Command that runs this module again with the same runtime, heap capped. */
function workerCommand(args: string[]): { bin: string; args: string[] } {
  const self = fileURLToPath(import.meta.url);
  const heap = `--max-old-space-size=${WORKER_HEAP_MB}`;
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (g.Deno) {
    const config = fileURLToPath(new URL("../deno.json", import.meta.url));
    return {
      bin: process.execPath,
      args: ["run", "-A", "--quiet", `--v8-flags=${heap}`, "--config", config, self, ...args],
    };
  }
  if (g.Bun) return { bin: process.execPath, args: [self, ...args] };
  return { bin: process.execPath, args: [heap, self, ...args] };
}

/** Run inputs `from` … `from + count - 1` of one target in this process; print the run as JSON. */
async function worker(
  args: Args,
  from: number,
  count: number,
  checkpoint: string,
): Promise<number> {
  const targets = await createTargets(args.targets);
  const fd = openSync(checkpoint, "w");
  const buf = new Uint8Array(16);
  const enc = new TextEncoder();
  let run: TargetRun;
  try {
    run = await runTarget(targets[0], args.seed, from, count, {
      slowMs: args.slowMs,
      maxInputMiB: args.maxInputMiB,
      progress: (line) => console.error(line),
      beforeInput: (i) => {
        const n = enc.encodeInto(String(i).padEnd(16, " "), buf).written;
        writeSync(fd, buf, 0, n, 0);
      },
      snapshot: (partial, next) => {
        writeFileSync(checkpoint + ".partial", JSON.stringify({ run: partial, next }));
      },
    });
  } finally {
    closeSync(fd);
    closeTargets(targets);
  }
  console.log(JSON.stringify(run));
  return 0;
}

/** A worker's last snapshot: its run so far and the next input. */
interface Partial {
  run: TargetRun;
  next: number;
}

/** One worker process over a range; resolves its run, or the index it died on. */
function spawnWorker(
  args: Args,
  target: string,
  from: number,
  count: number,
  checkpoint: string,
): Promise<{ run: TargetRun } | { died: number; why: string; partial: Partial | null }> {
  writeFileSync(checkpoint, String(from));
  rmSync(checkpoint + ".partial", { force: true });
  const cmd = workerCommand([
    "--worker",
    `--target=${target}`,
    `--seed=${args.seed}`,
    `--from=${from}`,
    `--inputs=${count}`,
    `--slow-ms=${args.slowMs}`,
    `--max-input-mib=${args.maxInputMiB}`,
    `--checkpoint=${checkpoint}`,
  ]);
  return new Promise((resolve) => {
    const child = spawn(cmd.bin, cmd.args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => {
      const text = String(d);
      err = (err + text).slice(-20_000);
      for (const line of text.split("\n")) {
        if (line.startsWith(`  ${target}: `)) console.log(line);
      }
    });
    let last = "";
    let since = Date.now();
    let hung = false;
    const watch = setInterval(() => {
      const now = readCheckpoint(checkpoint);
      if (now !== last) {
        last = now;
        since = Date.now();
      } else if (Date.now() - since > HANG_MS) {
        hung = true;
        child.kill("SIGKILL");
      }
    }, 1000);
    child.on("close", (code, signal) => {
      clearInterval(watch);
      const json = out.trim().split("\n").pop() ?? "";
      if (code === 0 && json.startsWith("{")) {
        resolve({ run: JSON.parse(json) as TargetRun });
        return;
      }
      const at = Number(readCheckpoint(checkpoint).trim());
      const oom = /out of memory|heap limit|allocation failed/i.test(err);
      const tail = err.trim().split("\n").filter((l) => l.trim() !== "").slice(-2).join(" | ");
      const why = hung
        ? `hung: no progress for ${HANG_MS / 1000} s, killed`
        : oom
        ? `out of memory: the worker died at its ${WORKER_HEAP_MB} MiB heap limit`
        : `process died (exit ${code}, signal ${signal}): ${tail.slice(0, 300)}`;
      let partial: Partial | null = null;
      try {
        partial = JSON.parse(readFileSync(checkpoint + ".partial", "utf8")) as Partial;
      } catch {
        // none yet
      }
      resolve({ died: at, why, partial });
    });
  });
}

function readCheckpoint(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

/**
 * The full run: one worker process per target, one after the other (never in parallel), so that
 * an input that exhausts memory, crashes or hangs the runtime is reported by its index and the
 * run resumes after it.
 */
async function parent(args: Args): Promise<number> {
  const started = performance.now();
  const targets = await createTargets(args.targets);
  const shares = budget(targets, args.inputs);
  const report = emptyReport(args.seed);
  const dir = mkdtempSync(join(tmpdir(), "cachekit-fuzz-"));
  const checkpoint = join(dir, "current");
  try {
    for (const [ti, target] of targets.entries()) {
      const n = shares[ti];
      console.log(`${target.name}: ${n} inputs (${target.description})`);
      let from = 0;
      report.targets[target.name] ??= emptyStats();
      while (from < n) {
        const r = await spawnWorker(args, target.name, from, n - from, checkpoint);
        if ("run" in r) {
          addRun(report, target.name, r.run);
          break;
        }
        const at = Math.min(Math.max(r.died, from), n - 1);
        console.log(`  ${target.name}: input ${at} killed the worker: ${r.why}`);
        const m = inputFor(target, args.seed, at);
        report.crashed++;
        report.inputs++;
        report.targets[target.name].inputs++;
        report.findings.push({
          target: target.name,
          index: at,
          verdict: "crash",
          detail: r.why,
          ms: NaN,
          mutation: `entry ${m.base}: ${m.ops.join(" + ")}`,
          input: `${m.bytes.length} bytes`,
        });
        // The dead worker's counts up to its last snapshot are kept; the inputs after the
        // snapshot and before the crash run again.
        let done = from;
        if (r.partial !== null && r.partial.next <= at) {
          addRun(report, target.name, r.partial.run);
          done = r.partial.next;
        }
        if (at > done) {
          const again = await spawnWorker(args, target.name, done, at - done, checkpoint);
          if ("run" in again) addRun(report, target.name, again.run);
        }
        from = at + 1;
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    closeTargets(targets);
  }
  report.elapsedMs = performance.now() - started;
  return finish(report);
}

/** Print the summary; the exit code. */
function finish(report: FuzzReport): number {
  console.log(summary(report));
  const bad = failed(report);
  console.log(bad ? "\nFUZZ FAILED" : "\nfuzz ok");
  return bad ? 1 : 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    const targets = await createTargets();
    for (const t of targets) console.log(`${t.name.padEnd(22)} ${t.description}`);
    closeTargets(targets);
    return 0;
  }
  if (args.worker) {
    if (args.targets.length !== 1 || args.checkpoint === null) {
      usage("--worker needs one --target and --checkpoint");
    }
    return await worker(args, args.from, args.inputs, args.checkpoint);
  }
  if (args.index !== null) {
    if (args.targets.length !== 1) usage("--index needs exactly one --target");
    const targets = await createTargets(args.targets);
    const [target] = targets;
    // The input first: if it kills the process, it has been shown.
    const m = inputFor(target, args.seed, args.index);
    const hex = Array.from(m.bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    console.log(`target:   ${target.name}\nseed:     ${args.seed}\nindex:    ${args.index}`);
    console.log(`mutation: entry ${m.base}: ${m.ops.join(" + ")}`);
    console.log(`input:    ${m.bytes.length} bytes\n${hex}`);
    let r: Awaited<ReturnType<typeof runOne>>;
    try {
      r = await runOne(target, args.seed, args.index);
    } finally {
      closeTargets(targets);
    }
    console.log(
      `verdict:  ${r.outcome.verdict}${r.outcome.detail ? ` (${r.outcome.detail})` : ""}`,
    );
    console.log(`time:     ${r.ms.toFixed(1)} ms`);
    const bad = r.outcome.verdict === "wrong" || r.outcome.verdict === "untyped" ||
      r.ms > args.slowMs;
    return bad ? 1 : 0;
  }
  if (args.inProcess) {
    const report = await runFuzz({
      seed: args.seed,
      inputs: args.inputs,
      targets: args.targets,
      slowMs: args.slowMs,
      maxInputMiB: args.maxInputMiB,
      progress: (line) => console.log(line),
    });
    return finish(report);
  }
  return await parent(args);
}

process.exit(await main());
