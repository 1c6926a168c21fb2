/**
 * Runs a command (by default the Deno test suite) while busy workers keep every core occupied, to
 * find tests that only pass on an idle machine. CI runners and users' machines are rarely idle:
 * a test that asserts a tight wall-clock bound, or sleeps a fixed time and expects a background
 * task to have finished, fails there although the code is right.
 *
 * ```text
 * deno task test:load                                   # the Deno suite, one burner per core
 * deno run -A tools/cpu_load.ts --workers 4 -- deno task test:node
 * deno run -A tools/cpu_load.ts -- deno task test:deno engine_core  # one file, by its name
 * ```
 *
 * The burners are worker threads of this process, not child processes: whatever ends this process
 * (the command's exit, an exception, Ctrl-C, SIGTERM, even SIGKILL) ends them with it, so no spinning
 * process is left behind. The command runs in this process's process group (Ctrl-C reaches it too);
 * SIGTERM is forwarded to it. Exits with the command's exit code.
 *
 * @module
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import process from "node:process";

/** The command run when none is given: the Deno suite, as `deno task test` runs it. */
export const DEFAULT_COMMAND: readonly string[] = [
  Deno.execPath(),
  "task",
  "test:deno",
];

/** Spins until terminated; posts once so the caller knows it has started. */
const BURNER_SOURCE = `self.postMessage("up");
let x = 0;
for (;;) { x = (x * 1103515245 + 12345) | 0; }`;

/** Busy worker threads from {@linkcode startBurners}, each spinning on one core until stopped. */
export interface Burners {
  /** Terminate every burner (idempotent). */
  stop(): void;
}

/**
 * Start `n` busy worker threads; resolves once all of them run.
 *
 * @param n How many cores to occupy.
 */
export async function startBurners(n: number): Promise<Burners> {
  const url = URL.createObjectURL(new Blob([BURNER_SOURCE], { type: "text/javascript" }));
  const workers: Worker[] = [];
  try {
    await Promise.all(
      Array.from({ length: n }, () =>
        new Promise<void>((resolve, reject) => {
          const w = new Worker(url, { type: "module" });
          workers.push(w);
          w.onmessage = () => resolve();
          w.onerror = (e) => reject(new Error(`cpu_load: burner failed: ${e.message}`));
        })),
    );
  } catch (e) {
    for (const w of workers) w.terminate();
    throw e;
  } finally {
    URL.revokeObjectURL(url);
  }
  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      for (const w of workers) w.terminate();
    },
  };
}

/** Parse `[--workers N] [--] [command...]`. */
export function parseArgs(args: readonly string[]): { workers: number; command: string[] } {
  let workers = navigator.hardwareConcurrency || 2;
  let i = 0;
  for (; i < args.length; i++) {
    const a = args[i];
    if (a === "--") {
      i++;
      break;
    }
    const m = /^--workers(?:=(.*))?$/.exec(a);
    if (!m) break;
    const v = m[1] ?? args[++i];
    workers = Number(v);
    if (!Number.isInteger(workers) || workers < 0) {
      throw new Error(`cpu_load: --workers wants a whole number >= 0, got ${v}`);
    }
  }
  const rest = args.slice(i);
  return { workers, command: rest.length ? [...rest] : [...DEFAULT_COMMAND] };
}

if (import.meta.main) {
  let parsed: { workers: number; command: string[] };
  try {
    parsed = parseArgs(Deno.args);
  } catch (e) {
    console.error((e as Error).message);
    console.error("usage: deno run -A tools/cpu_load.ts [--workers N] [--] [command args...]");
    Deno.exit(2);
  }
  const { workers, command } = parsed;
  const burners = await startBurners(workers);
  console.error(`cpu_load: ${workers} busy worker(s) running beside: ${command.join(" ")}`);
  const t0 = performance.now();
  let code = 1;
  try {
    code = await new Promise<number>((resolve, reject) => {
      const child = spawn(command[0], command.slice(1), { stdio: "inherit", env: process.env });
      const forward = () => child.kill("SIGTERM");
      Deno.addSignalListener("SIGTERM", forward);
      child.on("error", reject);
      child.on("close", (c, signal) => {
        Deno.removeSignalListener("SIGTERM", forward);
        resolve(c ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1));
      });
    });
  } catch (e) {
    console.error(`cpu_load: ${(e as Error).message}`);
  } finally {
    burners.stop();
  }
  const secs = ((performance.now() - t0) / 1000).toFixed(1);
  console.error(`cpu_load: command exited ${code} after ${secs}s under load (${workers} burners)`);
  Deno.exit(code);
}
