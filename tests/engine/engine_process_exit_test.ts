// A script that caches a couple of calls ends by itself (issue 13): a child process (the runtime
// running this file: Deno, Bun or Node on the build) wraps a function with `CACHEKIT_REDIS_URL` set,
// calls it twice, prints its result and reaches the end of the file without closing anything. It
// must exit on its own within EXIT_BOUND_MS of printing (else it is SIGKILLed and the test fails):
// idle Redis connections, the invalidation-bus subscriber and the library's timers do not hold the
// process open, while the write in flight still lands (its entry is in Redis afterwards). Once with
// the default preset, once with `production` (L1 invalidation across instances, so a subscriber
// connection is open).
//
// A write still in flight at the end of the script (the server hung: SIGSTOPped) holds the process
// only until its deadline, then is abandoned: the script exits within EXIT_BOUND_MS anyway.
//
// And the default function identity does not depend on the working directory: the same script,
// started from two directories, derives the same identity (relative to its package root).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { test } from "../_harness.ts";
import {
  freePort,
  redisCli,
  redisServerTestOptions,
  scanKeys,
  SHARED_REDIS_URL,
  sharedRedisTestOptions,
  startRedisServer,
} from "../_redis_server.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";

const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const BACKENDS = pathToFileURL(siblingModule(import.meta.url, "../../backends/mod.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
/** How long after its last output line the child may take to exit by itself. */
const EXIT_BOUND_MS = 5_000;

const CHILD = `
import process from "node:process";
import { cache } from "${MOD}";
const [preset, ns] = process.argv.slice(-2);
const wrap = preset === "production" ? cache.production : cache;
let runs = 0;
async function add(a, b) { runs++; return a + b; }
const f = wrap(add, { namespace: ns, ttl: 60 });
const first = await f(1, 2);
const second = await f(1, 2);
console.log(JSON.stringify({ first, second, runs, identity: f.identity }));
`;

interface ChildRun {
  /** Exit code, or `null` when it had to be killed. */
  code: number | null;
  /** The child's last stdout line, parsed. */
  out: { first?: number; second?: number; runs?: number; identity?: string } | null;
  /** Milliseconds from its last output to its exit (or to the kill). */
  exitAfterMs: number;
  stderr: string;
}

/** Run `script` with `args` in `cwd`; SIGKILL it when it has not exited EXIT_BOUND_MS after output. */
function runChild(
  script: string,
  args: string[],
  cwd: string,
  vars: Record<string, string>,
): Promise<ChildRun> {
  const env: Record<string, string | undefined> = { ...process.env, ...vars };
  const cmd = runtimeCommand(script, args, DENO_JSON);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.bin, cmd.args, { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    let printedAt: number | undefined;
    let killed = false;
    // Startup may be slow on a loaded machine: the bound starts at the output, not at the spawn.
    let timer = setTimeout(() => kill(), 60_000);
    const kill = () => {
      killed = true;
      child.kill("SIGKILL");
    };
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (d: string) => {
      stdout += d;
      if (printedAt === undefined && stdout.includes("\n")) {
        printedAt = performance.now();
        clearTimeout(timer);
        timer = setTimeout(kill, EXIT_BOUND_MS);
      }
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split("\n").pop();
      resolve({
        code: killed ? null : code,
        out: line ? JSON.parse(line) : null,
        exitAfterMs: printedAt === undefined ? NaN : performance.now() - printedAt,
        stderr,
      });
    });
  });
}

for (const preset of ["default", "production"]) {
  test(
    `process exit: a script caching two calls on Redis (${preset} preset) exits by itself`,
    async () => {
      const ns = `cktest_exit_${crypto.randomUUID().slice(0, 8)}`;
      const dir = mkdtempSync(join(tmpdir(), "ck-exit-"));
      const keys = () => scanKeys(6379, `*:ns:${ns}:*`);
      try {
        const script = join(dir, "child.mjs");
        writeFileSync(script, CHILD);
        const r = await runChild(script, [preset, ns], dir, {
          CACHEKIT_REDIS_URL: SHARED_REDIS_URL,
        });
        assert.notEqual(
          r.code,
          null,
          `the script did not exit within ${EXIT_BOUND_MS} ms of its output; stderr: ${r.stderr}`,
        );
        assert.equal(r.code, 0, r.stderr);
        assert.deepEqual(
          { first: r.out?.first, second: r.out?.second, runs: r.out?.runs },
          { first: 3, second: 3, runs: 1 },
        );
        console.log(`${preset}: exited ${r.exitAfterMs.toFixed(0)} ms after its output`);
        // The write of the first call was not abandoned by the exit.
        assert.equal((await keys()).length, 1, "the entry reached Redis");
      } finally {
        const left = await keys();
        if (left.length > 0) await redisCli(6379, ["DEL", ...left]);
        rmSync(dir, { recursive: true, force: true });
      }
    },
    { ...sharedRedisTestOptions, sanitize: false },
  );
}

test(
  "process exit: a script caching on an unreachable Redis (production preset) exits by itself",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "ck-exit-down-"));
    try {
      const script = join(dir, "child.mjs");
      writeFileSync(script, CHILD);
      // Nothing listens on port 1: node-redis keeps reconnecting, on timers that must not hold on.
      const r = await runChild(script, ["production", "cktest_exit_down"], dir, {
        CACHEKIT_REDIS_URL: "redis://127.0.0.1:1",
      });
      assert.notEqual(r.code, null, `not exited within ${EXIT_BOUND_MS} ms; stderr: ${r.stderr}`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual({ first: r.out?.first, second: r.out?.second }, { first: 3, second: 3 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { sanitize: false },
);

test(
  "process exit: a write in flight to a hung server is abandoned at its deadline, then the script exits",
  async () => {
    const server = await startRedisServer(await freePort());
    const dir = mkdtempSync(join(tmpdir(), "ck-exit-hung-"));
    try {
      const script = join(dir, "child.mjs");
      writeFileSync(
        script,
        `import process from "node:process";
import { RedisBackend } from "${BACKENDS}";
const [url, pid] = process.argv.slice(-2);
const b = new RedisBackend({ url, operationTimeoutMs: 1000, keyPrefix: "exit:" });
await b.set("warm", new Uint8Array([1])); // connected
process.kill(Number(pid), "SIGSTOP"); // the server stops answering
b.set("k", new Uint8Array([2])).catch((e) => console.error(e.message)); // in flight at the end
console.log("{}");
`,
      );
      const r = await runChild(script, [server.url, String(server.pid)], dir, {});
      assert.notEqual(r.code, null, `not exited within ${EXIT_BOUND_MS} ms; stderr: ${r.stderr}`);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /timed out after 1000 ms/, "the write waited for its deadline");
    } finally {
      server.resume();
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { ...redisServerTestOptions, sanitize: false },
);

test(
  "process exit: a script whose invalidation failed (queued for retry on a down backend) exits by itself",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "ck-exit-recovery-"));
    try {
      const script = join(dir, "child.mjs");
      // The backend goes down before the invalidation: the delete is queued for auto-recovery and
      // retried on timers with backoff, which must not keep the script alive.
      writeFileSync(
        script,
        `import { cache } from "${MOD}";
const store = new Map();
let down = false;
const refuse = () => Promise.reject(new Error("connection refused"));
const backend = {
  type: "flaky",
  capabilities: {},
  get: async (k) => (down ? refuse() : store.get(k) ?? null),
  set: async (k, v) => (down ? refuse() : void store.set(k, v)),
  delete: async (k) => (down ? refuse() : store.delete(k)),
  exists: async (k) => store.has(k),
  healthCheck: async () => ({ healthy: !down, latencyMs: 0, backendType: "flaky" }),
};
let runs = 0;
const f = cache(async (n) => { runs++; return n * 2; }, { name: "exit.recovery", ttl: 60, backend });
const first = await f(2);
down = true;
await f.invalidate(2);
const pending = f.getHealthStatus().components.recovery?.details?.pending;
console.log(JSON.stringify({ first, runs, pending }));
`,
      );
      const r = await runChild(script, [], dir, {});
      assert.notEqual(r.code, null, `not exited within ${EXIT_BOUND_MS} ms; stderr: ${r.stderr}`);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.out, { first: 4, runs: 1, pending: 1 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { sanitize: false },
);

test("identity: the same script started from two working directories derives one identity", async () => {
  // The script lives in a package of its own (a package.json beside it); the working directories
  // are that package and the file system root.
  const dir = mkdtempSync(join(tmpdir(), "ck-identity-"));
  try {
    writeFileSync(join(dir, "package.json"), '{"name":"ck-identity-test","type":"module"}\n');
    const script = join(dir, "child.mjs");
    writeFileSync(
      script,
      `import { cache } from "${MOD}";
async function add(a, b) { return a + b; }
const f = cache(add, { backend: null });
console.log(JSON.stringify({ identity: f.identity }));
`,
    );
    const ids: string[] = [];
    for (const cwd of [dir, "/"]) {
      const r = await runChild(script, [], cwd, {});
      assert.equal(r.code, 0, r.stderr);
      ids.push(String(r.out?.identity));
    }
    assert.deepEqual(ids, ["child.add", "child.add"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
