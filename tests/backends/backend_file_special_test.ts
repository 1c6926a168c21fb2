// Special files (FIFO, Unix socket, device node, directory) where the file backend expects an
// entry, a tag index record or a lock file. The opens are synchronous: a FIFO opened without
// O_NONBLOCK blocks the whole event loop until a writer appears, so every check runs in a child
// process killed after a generous bound: a hang fails the test instead of hanging the suite.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { pathToFileURL } from "node:url";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const BACKENDS = pathToFileURL(siblingModule(import.meta.url, "../../backends/mod.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
/** Far above a child's normal run time (a few seconds), even on a loaded machine. */
const CHILD_BOUND_MS = 60_000;
const NO_FIFOS = process.platform === "win32"
  ? { ignore: true, ignoreReason: "no FIFOs or Unix sockets in Windows directories" }
  : {};

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest("hex");

/** Run `source` as a module with the runtime running this test; SIGKILL it after `ms`. */
async function runChild(
  source: string,
  env: Record<string, string | undefined>,
  ms = CHILD_BOUND_MS,
): Promise<{ status: number | null; stdout: string; stderr: string; killed: boolean }> {
  const scriptDir = fs.mkdtempSync(path.join(os.tmpdir(), "ck-special-child-"));
  const script = path.join(scriptDir, "child.mjs");
  fs.writeFileSync(script, source);
  const cmd = runtimeCommand(script, [], DENO_JSON);
  try {
    const child = spawn(cmd.bin, cmd.args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "", killed = false;
    child.stdout!.setEncoding("utf8").on("data", (c: string) => stdout += c);
    child.stderr!.setEncoding("utf8").on("data", (c: string) => stderr += c);
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, ms);
    const status = await new Promise<number | null>((r) => child.on("close", (code) => r(code)));
    clearTimeout(timer);
    return { status, stdout, stderr, killed };
  } finally {
    fs.rmSync(scriptDir, { recursive: true, force: true });
  }
}

type Kind = "fifo" | "socket" | "device" | "directory";

/** Replace `target` by a special file of `kind`; resolves a cleanup, or `null` when impossible here. */
async function plant(kind: Kind, target: string): Promise<(() => Promise<void>) | null> {
  fs.rmSync(target, { force: true, recursive: true });
  if (kind === "fifo") {
    const r = spawnSync("mkfifo", [target]);
    assert.equal(r.status, 0, `mkfifo: ${r.stderr}`);
  } else if (kind === "device") {
    // Root only (CI runs as root); a character device like /dev/null.
    const r = spawnSync("mknod", [target, "c", "1", "3"]);
    if (r.status !== 0) return null;
  } else if (kind === "directory") {
    fs.mkdirSync(target);
  } else {
    // Bind at a short path (sun_path is ~108 bytes) and move the socket under the entry's name;
    // the server closes at the short path, so closing it never unlinks what replaced the entry.
    const short = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "ck-sock-")), "s");
    const server = net.createServer();
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen(short, () => resolve());
      });
    } catch {
      return null; // no Unix sockets here
    }
    fs.renameSync(short, target);
    return () =>
      new Promise<void>((r) => {
        server.close(() => r());
        fs.rmSync(path.dirname(short), { recursive: true, force: true });
      });
  }
  return () => Promise.resolve();
}

const ENGINE_CHILD = `
import { cache, closeDefaultBackend } from "${MOD}";
let runs = 0;
const f = cache(async (n) => { runs++; return { sq: n * n }; }, { name: "special.square", ttl: 60 });
const v = await f(12);
console.log(JSON.stringify({ v, runs, backend: f.getHealthStatus().backend }));
await closeDefaultBackend();
`;

function engineEnv(dir: string): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env, CACHEKIT_FILE_CACHE_DIR: dir };
  delete env.CACHEKIT_REDIS_URL;
  delete env.REDIS_URL;
  return env;
}

for (const kind of ["fifo", "socket", "device", "directory"] as const) {
  test(
    `file special: a ${kind} as a cached function's entry is a miss, then replaced`,
    async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ck-special-"));
      let cleanup: (() => Promise<void>) | null = null;
      try {
        const first = await runChild(ENGINE_CHILD, engineEnv(dir));
        assert.equal(first.status, 0, first.stderr);
        const entries = fs.readdirSync(dir).filter((n) => /^[0-9a-f]{64}$/.test(n));
        assert.equal(entries.length, 1, `one entry file: ${entries}`);
        const entry = path.join(dir, entries[0]);
        cleanup = await plant(kind, entry);
        if (cleanup === null) {
          console.warn(`skipping the ${kind} case: cannot create one here`);
          return;
        }
        const second = await runChild(ENGINE_CHILD, engineEnv(dir));
        assert.ok(!second.killed, `the call hung on a ${kind}: killed after ${CHILD_BOUND_MS} ms`);
        assert.equal(second.status, 0, second.stderr);
        const out = JSON.parse(second.stdout.trim().split("\n").pop()!);
        assert.deepEqual(out.v, { sq: 144 });
        assert.equal(out.runs, 1, "the special file was a miss: the function ran");
        assert.equal(out.backend, "file");
        const st = fs.lstatSync(entry);
        assert.ok(st.isFile(), `the ${kind} was replaced by a regular entry file`);
        assert.ok(st.size > 0);
      } finally {
        await cleanup?.();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    { ...NO_FIFOS, sanitize: false },
  );
}

test(
  "file special: FIFOs as entry, tag record and lock file never block any operation",
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ck-special-"));
    try {
      fs.mkdirSync(path.join(dir, ".locks"), { mode: 0o700 });
      fs.mkdirSync(path.join(dir, ".tags", sha("tag\0t")), { recursive: true, mode: 0o700 });
      const fifos = [
        path.join(dir, sha("k")), // the entry of "k"
        path.join(dir, sha("p:gone")), // an entry only maintenance and prefix scans meet
        path.join(dir, ".tags", sha("tag\0t"), sha("k2")), // a tag index record
        path.join(dir, ".locks", `${sha("lock\0k")}.lock`), // a lock file
      ];
      const old = new Date(Date.now() - 3600_000);
      for (const f of fifos) {
        await plant("fifo", f);
        fs.utimesSync(f, old, old); // an unreadable lock counts as stale once old
      }
      const child = `
import { FileBackend } from "${BACKENDS}";
const b = new FileBackend({ directory: ${JSON.stringify(dir)} });
const enc = new TextEncoder();
const out = {};
out.ttl = await b.capabilities.ttl.ttl("k");
out.expire = await b.capabilities.ttl.expire("k", 60);
out.exists = await b.exists("k");
out.get = await b.get("k");
await b.set("k", enc.encode("v"));
out.after = new TextDecoder().decode(await b.get("k"));
out.prefix = await b.capabilities.prefix.deleteByPrefix("p:");
out.invalidated = await b.capabilities.tags.invalidateTags(["t"]);
const lock = await b.capabilities.lock.acquire("k", { leaseMs: 5000, waitMs: 5000 });
out.locked = lock !== null;
await lock?.release();
out.prune = await b.prune();
await b.close();
console.log(JSON.stringify(out));
`;
      const r = await runChild(child, { ...process.env });
      assert.ok(!r.killed, `an operation hung on a FIFO: killed after ${CHILD_BOUND_MS} ms`);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split("\n").pop()!);
      assert.equal(out.ttl, null);
      assert.equal(out.expire, false);
      assert.equal(out.exists, false);
      assert.equal(out.get, null);
      assert.equal(out.after, "v");
      assert.deepEqual(out.invalidated, []);
      assert.equal(out.locked, true, "the FIFO lock file was taken over as unreadable and stale");
      assert.equal(out.prune.skipped, false);
      assert.ok(fs.lstatSync(fifos[0]).isFile(), "the entry FIFO was replaced");
      assert.equal(fs.existsSync(fifos[1]), false, "maintenance unlinked the FIFO entry");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
  { ...NO_FIFOS, sanitize: false },
);
