/**
 * Child processes of the test runners (`tools/run_tests.ts`, `tools/test_all.ts`).
 *
 * - {@linkcode ProcSet.run} starts a command in its own process group and collects its output
 *   (stdout and stderr in the order they arrive), or passes it through as it comes.
 * - {@linkcode ProcSet} has a deadline: when it passes, every group still running is ended
 *   (SIGTERM and SIGCONT, then SIGKILL two seconds later) and nothing new starts, so a hung test
 *   file cannot stall CI. SIGINT and SIGTERM to the runner end the groups too (SIGKILL after
 *   0.3 s) before it exits with 130 or 143 (the groups are not the terminal's, so Ctrl-C alone
 *   would not reach them).
 * - When a command exits, whatever it left running in its group (a server started by a test file
 *   that was killed, perhaps paused with SIGSTOP) is killed and the output says so.
 * - {@linkcode pool} runs tasks at most `jobs` at a time; {@linkcode jobsFromEnv} reads how many
 *   from `CACHEKIT_TEST_JOBS` (default {@linkcode DEFAULT_JOBS}).
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import process from "node:process";

/** Test processes per runtime when `CACHEKIT_TEST_JOBS` is not set. */
export const DEFAULT_JOBS = 3;

/** How many test processes one runtime runs at once: `CACHEKIT_TEST_JOBS`, else 3. */
export function jobsFromEnv(value: string | undefined = process.env.CACHEKIT_TEST_JOBS): number {
  if (value === undefined || value.trim() === "") return DEFAULT_JOBS;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`CACHEKIT_TEST_JOBS wants a whole number >= 1, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** What a finished (or ended) process left. */
export interface ProcResult {
  /** Exit code; 128 + signal number style 137/143 when a signal ended it, 1 when it never ran. */
  code: number;
  /** Its stdout and stderr, interleaved as they arrived (also when passed through). */
  output: string;
  /** Wall time in milliseconds. */
  ms: number;
  /** Whether the deadline or a signal ended it (or kept it from starting). */
  killed: boolean;
}

/** Options of {@linkcode ProcSet.run}. */
export interface RunOptions {
  cwd?: string;
  /** Write the output through to this process's stdout/stderr as it arrives (also collected). */
  passThrough?: boolean;
  /** What the messages about this process call it (default: the command line). */
  label?: string;
}

/** Wait between SIGTERM and SIGKILL when a deadline or a signal ends the groups. */
const KILL_GRACE_MS = 2_000;

/**
 * The processes one runner started, each in its own process group, ended together when the
 * deadline passes or the runner gets SIGINT/SIGTERM. Call {@linkcode ProcSet.close} when done (it
 * clears the deadline and the signal listeners, which would keep the runner alive).
 */
export class ProcSet {
  readonly #live = new Set<ChildProcess>();
  readonly #timer: ReturnType<typeof setTimeout>;
  readonly #signals: [Deno.Signal, () => void][] = [];
  #endedBy: string | null = null;

  /**
   * @param name Who is running (prefix of the messages).
   * @param deadlineMs After this long every process still running is ended.
   */
  constructor(readonly name: string, readonly deadlineMs: number) {
    this.#timer = setTimeout(() => {
      this.endAll(`still running after ${deadlineMs / 1000} s (deadline)`);
    }, deadlineMs);
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      const listener = () => {
        this.endAll(`got ${signal}`);
        // Give the groups their SIGTERM; SIGKILL what is left before leaving.
        setTimeout(() => {
          this.#killAll("SIGKILL");
          Deno.exit(code);
        }, 300);
      };
      Deno.addSignalListener(signal, listener);
      this.#signals.push([signal, listener]);
    }
  }

  /** Why the processes were ended (deadline, signal), or `null` while they were not. */
  get endedBy(): string | null {
    return this.#endedBy;
  }

  /** Run `cmd args` in its own process group; resolves when it exits (never rejects). */
  run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<ProcResult> {
    const t0 = performance.now();
    const label = opts.label ?? `${cmd} ${args.join(" ")}`;
    if (this.#endedBy !== null) {
      return Promise.resolve({
        code: 1,
        output: `${this.name}: not started (${this.#endedBy}): ${label}\n`,
        ms: 0,
        killed: true,
      });
    }
    return new Promise((resolve) => {
      let output = "";
      let child: ChildProcess;
      try {
        child = spawn(cmd, args, {
          cwd: opts.cwd,
          env: process.env,
          stdio: ["ignore", "pipe", "pipe"],
          detached: true, // own process group: ending it ends the command's own children too
        });
      } catch (e) {
        resolve({ code: 1, output: `${cmd}: ${(e as Error).message}\n`, ms: 0, killed: false });
        return;
      }
      this.#live.add(child);
      const collect = (out: { write(s: string): unknown }) => (chunk: string) => {
        output += chunk;
        if (opts.passThrough) out.write(chunk);
      };
      child.stdout!.setEncoding("utf8").on("data", collect(process.stdout));
      child.stderr!.setEncoding("utf8").on("data", collect(process.stderr));
      let done = false;
      const finish = (code: number) => {
        if (done) return;
        done = true;
        this.#live.delete(child);
        const killed = this.#endedBy !== null;
        if (killed) output += `\n${this.name}: ended (${this.#endedBy}): ${label}\n`;
        resolve({ code, output, ms: performance.now() - t0, killed });
      };
      child.on("error", (e) => {
        output += `${cmd}: ${e.message}\n`;
        finish(1);
      });
      child.on("exit", () => {
        this.#live.delete(child);
        // What the command left running in its group (a server a killed test file had started,
        // maybe paused with SIGSTOP) ends with it: nothing outlives the run.
        if (killGroup(child.pid!, "SIGKILL")) {
          output += `\n${this.name}: ${label} left processes in its group: killed them\n`;
        }
      });
      child.on("close", (code, signal) => {
        finish(code ?? (signal === "SIGKILL" ? 137 : signal === "SIGTERM" ? 143 : 128));
      });
    });
  }

  /**
   * End every process group still running (SIGTERM and SIGCONT, so that a stopped process gets it
   * too; SIGKILL after a grace) and start no more.
   */
  endAll(reason: string): void {
    if (this.#endedBy !== null) return;
    this.#endedBy = reason;
    if (this.#live.size > 0) {
      process.stderr.write(`${this.name}: ${reason}: ending ${this.#live.size} process(es)\n`);
    }
    this.#killAll("SIGTERM");
    this.#killAll("SIGCONT");
    const grace = setTimeout(() => this.#killAll("SIGKILL"), KILL_GRACE_MS);
    Deno.unrefTimer(grace);
  }

  #killAll(signal: "SIGTERM" | "SIGCONT" | "SIGKILL"): void {
    for (const child of this.#live) killGroup(child.pid!, signal);
  }

  /** Clear the deadline and the signal listeners. */
  close(): void {
    clearTimeout(this.#timer);
    for (const [signal, listener] of this.#signals) Deno.removeSignalListener(signal, listener);
    this.#signals.length = 0;
  }
}

/** Send `signal` to the process group `pgid`; whether there was one to send it to. */
function killGroup(pgid: number, signal: "SIGTERM" | "SIGCONT" | "SIGKILL"): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // no process left in the group
  }
}

/** Run `task` on every item, at most `jobs` at a time; results in the items' order. */
export async function pool<T, R>(
  items: readonly T[],
  jobs: number,
  task: (item: T) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, worker));
  return results;
}
