import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { FileBackend } from "../../backends/mod.ts";
import { makeValue, verify } from "../_fixtures/file_values.ts";
import { IN_CI, test } from "../_harness.ts";
import { denoResolutionArgs, siblingModule } from "../_runtime.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const worker = siblingModule(import.meta.url, "../_fixtures/file_backend_worker.ts");

/** Command line that runs a TypeScript file with the runtime running this test. */
function runtimeArgs(script: string, arg: string): string[] {
  const v = process.versions as Record<string, string | undefined>;
  if (v.deno) {
    const resolution = denoResolutionArgs(path.join(repo, "deno.json"));
    return ["run", "--allow-all", "--quiet", ...resolution, script, arg];
  }
  if (v.bun) return [script, arg];
  // Node runs the transpiled build (.js); strip types only for a .ts worker.
  return script.endsWith(".ts")
    ? ["--experimental-strip-types", "--no-warnings", script, arg]
    : [script, arg];
}

interface Child {
  proc: ChildProcess;
  lines: string[];
  stderr: string[];
  exited: Promise<number | null>;
  waitFor(pred: (line: string) => boolean, ms: number): Promise<string>;
}

function startWorker(
  config: Record<string, unknown>,
  command: { bin: string; args: string[] } = {
    bin: process.execPath,
    args: runtimeArgs(worker, JSON.stringify(config)),
  },
): Child {
  const proc = spawn(command.bin, command.args, {
    cwd: repo,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: string[] = [];
  const stderr: string[] = [];
  const waiters: (() => void)[] = [];
  let buf = "";
  proc.stdout!.setEncoding("utf8");
  proc.stdout!.on("data", (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf("\n")) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr!.setEncoding("utf8");
  proc.stderr!.on("data", (chunk: string) => stderr.push(chunk));
  const exited = new Promise<number | null>((resolve) => {
    proc.on("close", (code) => {
      for (const w of waiters.splice(0)) w();
      resolve(code);
    });
  });
  const waitFor = (pred: (line: string) => boolean, ms: number) =>
    new Promise<string>((resolve, reject) => {
      const deadline = setTimeout(
        () => reject(new Error(`worker: no matching line in ${ms} ms; stderr: ${stderr.join("")}`)),
        ms,
      );
      const check = () => {
        const hit = lines.find(pred);
        if (hit !== undefined) {
          clearTimeout(deadline);
          resolve(hit);
        } else if (proc.exitCode !== null || proc.signalCode !== null) {
          clearTimeout(deadline);
          reject(new Error(`worker exited (${proc.exitCode}); stderr: ${stderr.join("")}`));
        } else {
          waiters.push(check);
        }
      };
      check();
    });
  return { proc, lines, stderr, exited, waitFor };
}

function kill(c: Child): void {
  if (c.proc.exitCode === null && c.proc.signalCode === null && c.proc.pid !== undefined) {
    try {
      process.kill(c.proc.pid, "SIGKILL");
    } catch { /* already gone */ }
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "ck-proc-"));
}

test(
  "file (processes): 4 processes hammering the same keys never read a torn or wrong value",
  async () => {
    const dir = tempDir();
    const children: Child[] = [];
    try {
      for (let id = 1; id <= 4; id++) {
        children.push(
          startWorker({ dir, mode: "hammer", id, iterations: 160, keys: 4, counterRounds: 15 }),
        );
      }
      const codes = await withTimeout(
        Promise.all(children.map((c) => c.exited)),
        60_000,
        "hammer workers",
      );
      const reports = children.map((c, i) => {
        assert.equal(codes[i], 0, `worker ${i + 1} exit; stderr: ${c.stderr.join("")}`);
        return JSON.parse(c.lines.at(-1)!) as {
          reads: number;
          hits: number;
          writes: number;
          increments: number;
          bad: string[];
        };
      });
      for (const r of reports) assert.deepEqual(r.bad, [], "no torn, mixed or misplaced value");
      const hits = reports.reduce((n, r) => n + r.hits, 0);
      const writes = reports.reduce((n, r) => n + r.writes, 0);
      assert.ok(hits > 50 && writes > 50, `hits ${hits}, writes ${writes}`);
      // The lock made every read-modify-write of the counter exclusive across processes.
      const b = new FileBackend({ directory: dir });
      try {
        const counter = (await b.get("counter"))!;
        assert.ok(counter !== null);
        assert.equal(new DataView(counter.buffer, counter.byteOffset).getUint32(0), 4 * 15);
        for (let k = 0; k < 4; k++) {
          const v = await b.get(`h${k}`);
          assert.ok(v !== null, `h${k} present`);
          assert.equal(verify(v, k), null);
        }
        assert.deepEqual(
          fs.readdirSync(dir).filter((n) => n.startsWith(".tmp-")),
          [],
          "no temp file left by clean exits",
        );
      } finally {
        await b.close();
      }
    } finally {
      children.forEach(kill);
      await Promise.all(children.map((c) => c.exited));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  { sanitize: false },
);

test("file (processes): a writer SIGKILLed mid-write leaves no corrupt entry served", async () => {
  const dir = tempDir();
  let child: Child | undefined;
  const b = new FileBackend({ directory: dir });
  try {
    const v0 = makeValue(0, 99, 0, 1000);
    await b.set("big", v0);
    let killedMidWrite = false;
    for (let attempt = 0; attempt < 4 && !killedMidWrite; attempt++) {
      child = startWorker({ dir, mode: "bigwriter", id: 7, bigBytes: 24_000_000 });
      await child.waitFor((l) => l === "W 2", 20_000); // the first write is done, the second started
      // Kill as soon as the second write's temp file has data in it.
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline) {
        const tmp = fs.readdirSync(dir).find((n) => n.startsWith(".tmp-"));
        if (tmp !== undefined) {
          const size = fs.statSync(path.join(dir, tmp), { throwIfNoEntry: false })?.size ?? 0;
          if (size > 0) break;
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      kill(child);
      await child.exited;
      killedMidWrite = fs.readdirSync(dir).some((n) => n.startsWith(".tmp-"));
    }
    assert.ok(killedMidWrite, "the writer was killed with a partial temp file on disk");
    const got = await b.get("big");
    assert.ok(got !== null, "the previous whole value is still served");
    assert.equal(verify(got, 0), null, "the served value is whole");
    assert.ok(got.length === 24_000_020 || got.length === v0.length);
    // The orphan temp file is cleaned once old.
    const old = new Date(Date.now() - 3600_000);
    for (const n of fs.readdirSync(dir).filter((n) => n.startsWith(".tmp-"))) {
      fs.utimesSync(path.join(dir, n), old, old);
    }
    const report = await b.prune();
    assert.ok(report.cleaned >= 1);
    assert.deepEqual(fs.readdirSync(dir).filter((n) => n.startsWith(".tmp-")), []);
    assert.equal(verify((await b.get("big"))!, 0), null);
  } finally {
    if (child) {
      kill(child);
      await child.exited;
    }
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, { sanitize: false });

test(
  "file (processes): locks exclude other processes; a killed holder's lock is taken over",
  async () => {
    const dir = tempDir();
    const child = startWorker({ dir, mode: "holdlock", id: 3 });
    const b = new FileBackend({ directory: dir });
    try {
      await child.waitFor((l) => l === "LOCKED", 20_000);
      const lock = b.capabilities.lock;
      assert.equal(await lock.acquire("held", { leaseMs: 1000, waitMs: 0 }), null);
      assert.equal(await lock.acquire("held", { leaseMs: 1000, waitMs: 100 }), null);
      kill(child);
      await child.exited;
      // The lease is 60 s, but the owner's pid is gone on this host: the lock is stale now.
      // Acquired at all proves the takeover: the 60 s lease outlasts waitMs (generous for a loaded
      // host, and returned early once acquired).
      const h = await lock.acquire("held", { leaseMs: 1000, waitMs: 10_000 });
      assert.ok(h !== null, "acquired after the holder died");
      assert.equal(await h.release(), true);
    } finally {
      kill(child);
      await child.exited;
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  { sanitize: false },
);

const isDeno = (process.versions as Record<string, string | undefined>).deno !== undefined;
const nodeAvailable = isDeno &&
  spawnSync("node", ["--version"], { stdio: "ignore", timeout: 10_000 }).status === 0;

test(
  "file (processes): Deno and Node processes share entries and exclude each other's locks",
  async () => {
    assert.ok(nodeAvailable, "node is on PATH (CI runs deno through npx, so it must be)");
    const dir = tempDir();
    const bundle = path.join(dir, "..", `${path.basename(dir)}-worker.mjs`);
    const children: Child[] = [];
    try {
      // Node cannot run the TypeScript worker directly: bundle it to one ES module first.
      const built = spawnSync(process.execPath, [
        "bundle",
        "--quiet",
        "--platform",
        "node",
        ...denoResolutionArgs(path.join(repo, "deno.json")),
        worker,
        "-o",
        bundle,
      ], { cwd: repo, encoding: "utf8", timeout: 60_000 });
      assert.equal(built.status, 0, `deno bundle: ${built.stderr}`);
      for (let id = 1; id <= 4; id++) {
        const config = { dir, mode: "hammer", id, iterations: 80, keys: 3, counterRounds: 12 };
        children.push(
          id % 2 === 0
            ? startWorker(config, { bin: "node", args: [bundle, JSON.stringify(config)] })
            : startWorker(config),
        );
      }
      const codes = await withTimeout(
        Promise.all(children.map((c) => c.exited)),
        60_000,
        "mixed workers",
      );
      children.forEach((c, i) => {
        assert.equal(codes[i], 0, `worker ${i + 1}; stderr: ${c.stderr.join("")}`);
        assert.deepEqual(JSON.parse(c.lines.at(-1)!).bad, []);
      });
      const b = new FileBackend({ directory: dir });
      try {
        const counter = (await b.get("counter"))!;
        assert.equal(
          new DataView(counter.buffer, counter.byteOffset).getUint32(0),
          4 * 12,
          "every increment by Deno and Node processes happened under one lock",
        );
      } finally {
        await b.close();
      }
    } finally {
      children.forEach(kill);
      await Promise.all(children.map((c) => c.exited));
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(bundle, { force: true });
    }
  },
  {
    sanitize: false,
    ignore: !isDeno || (!nodeAvailable && !IN_CI),
    ignoreReason: isDeno ? "node is not on PATH" : "bundles the worker with deno; runs under Deno",
  },
);
