// With no logging configured, an L2 that cannot be used is not silent: the first failure of each
// kind reaches the console once, saying what to fix (issue 13, "failures are visible without
// set-up"). Configured LogTape logging, or CACHEKIT_CONSOLE_NOTICES=false, silences it. The advice
// fits the backend (a cache directory is not a server), a cache directory that cannot be created
// is named (and under /proc no longer hangs Node), and entries under another master key are
// reported once.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";

const worker = siblingModule(import.meta.url, "../_fixtures/console_notice_worker.ts");
const denoJson = siblingModule(import.meta.url, "../../deno.json");

function run(env: Record<string, string | undefined>, args: string[] = []) {
  const cmd = runtimeCommand(worker, args, denoJson);
  const r = spawnSync(cmd.bin, cmd.args, {
    encoding: "utf8",
    timeout: 60_000,
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    env: withEnv({ CACHEKIT_REDIS_URL: "redis://:s3cret@127.0.0.1:1", ...env }),
  });
  assert.equal(r.status, 0, `worker failed (${r.signal ?? r.status}): ${r.stderr}`);
  const result = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  assert.deepEqual(result.out, [2, 4, 2], "every call answers from the function");
  return r.stderr;
}

/** The process environment with `env` applied (`undefined` removes a variable). */
function withEnv(env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, ...env })) if (v !== undefined) out[k] = v;
  return out;
}

/** The default backend is a FileBackend in `dir`. */
function fileEnv(dir: string): Record<string, string | undefined> {
  return {
    CACHEKIT_CONSOLE_NOTICES: "",
    CACHEKIT_REDIS_URL: undefined,
    REDIS_URL: undefined,
    CACHEKIT_FILE_CACHE_DIR: dir,
  };
}

const NOTICE = /cachekit: the redis cache backend cannot be reached/g;
const EXPLAINED = /printed once per kind of failure/g;

test("an unreachable Redis is reported once on the console when no logging is configured", () => {
  const err = run({ CACHEKIT_CONSOLE_NOTICES: "" });
  assert.equal(err.match(NOTICE)?.length, 1, err);
  assert.match(err, /CACHEKIT_CONSOLE_NOTICES=false/);
  assert.doesNotMatch(err, /s3cret/, "the password never reaches the console");
});

test("configured LogTape logging or CACHEKIT_CONSOLE_NOTICES=false silence the notice", () => {
  assert.doesNotMatch(run({}, ["--logtape"]), NOTICE);
  assert.doesNotMatch(run({ CACHEKIT_CONSOLE_NOTICES: "false" }), NOTICE);
});

test("a cache directory that cannot be created is named, with file advice, not Redis advice", () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-notice-"));
  try {
    writeFileSync(join(dir, "file"), "");
    // Under a regular file: mkdir fails with ENOTDIR on every platform.
    const err = run(fileEnv(join(dir, "file", "cache")));
    assert.match(
      err,
      /the file cache backend refused the operation: check that the cache directory/,
    );
    assert.match(err, /cannot create or open the cache directory .*file.cache/);
    assert.doesNotMatch(err, /REDIS_URL|server/, "a cache directory is not a server");
    assert.equal(err.match(EXPLAINED)?.length, 1, err);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "a cache directory under /proc (mkdir says ENOENT under an existing parent) answers and ends",
  () => {
    // Node 20's recursive mkdirSync looped forever here: the worker hung, silent, until killed.
    const err = run(fileEnv(`/proc/ck-notice-${process.pid}/cache`));
    assert.match(err, /cannot create or open the cache directory \/proc\/ck-notice-/);
    assert.match(err, /the file cache backend refused the operation/);
  },
  existsSync("/proc/self") ? {} : { ignore: true, ignoreReason: "needs Linux /proc" },
);

test("the notices of the file backend give file advice; the explanation comes once", () => {
  const transient = run({}, ["--notice", "transient", "file"]);
  assert.match(transient, /the file cache backend could not use the cache directory \(disk full/);
  assert.match(transient, /CACHEKIT_FILE_CACHE_DIR/);
  assert.doesNotMatch(transient, /REDIS_URL|server/);
  assert.equal(transient.match(/the error/g)?.length, 1, "once per kind");
  assert.match(transient, /another error/, "another kind is printed too");
  assert.equal(transient.match(EXPLAINED)?.length, 1, `explained once: ${transient}`);
  assert.match(run({}, ["--notice", "timeout", "file"]), /the disk holding the cache directory/);
  const redis = run({}, ["--notice", "permanent", "redis"]);
  assert.doesNotMatch(redis, /cache directory/, "no file advice for Redis");
  assert.match(run({}, ["--notice", "transient", "redis"]), /CACHEKIT_REDIS_URL/);
  // A closed backend has no notice (the application closed it); the next kind still prints.
  const closed = run({}, ["--notice", "closed", "redis"]);
  assert.doesNotMatch(closed, /the error/);
  assert.match(closed, /another error/);
});

test("entries written under another master key are reported once, and the calls answer", () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-notice-key-"));
  try {
    const a = randomBytes(32).toString("hex");
    const b = randomBytes(32).toString("hex");
    const first = run({ ...fileEnv(dir), CACHEKIT_MASTER_KEY: a }, ["--secure"]);
    assert.doesNotMatch(first, /master key/, first);
    const other = run({ ...fileEnv(dir), CACHEKIT_MASTER_KEY: b }, ["--secure"]);
    assert.equal(
      other.match(/encrypted under a master key this process does not have/g)?.length,
      1,
      other,
    );
    assert.match(other, /tests\.console_notice\.double/);
    assert.doesNotMatch(other, new RegExp(b.slice(0, 16)), "no key material");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const closedWorker = siblingModule(import.meta.url, "../_fixtures/closed_backend_worker.ts");

/** Run the closed-backend worker on `kind` (`after`: calls made after close() too). */
function runClosed(kind: string, after: boolean) {
  const cmd = runtimeCommand(closedWorker, after ? [kind, "--after"] : [kind], denoJson);
  const r = spawnSync(cmd.bin, cmd.args, {
    encoding: "utf8",
    timeout: 60_000,
    env: withEnv({ CACHEKIT_CONSOLE_NOTICES: "", CACHEKIT_TEST_REDIS_URL: SHARED_REDIS_URL }),
  });
  assert.equal(r.status, 0, `worker failed (${r.signal ?? r.status}): ${r.stderr}`);
  const report = JSON.parse(r.stdout.trim().split("\n").at(-1)!) as {
    out: number[];
    kinds: string[];
    status: string;
    lastErrorKind: string | null;
  };
  return { stderr: r.stderr, ...report };
}

for (const kind of ["memory", "file", "redis"]) {
  test(
    `a ${kind} backend the application closed: what lands after close() is no console notice, and fails as "closed"`,
    () => {
      const r = runClosed(kind, false);
      assert.deepEqual(r.out, [2], "the call answers from the function");
      // Before: "the … cache backend refused the operation: check its permissions and
      // configuration", for a backend nothing was wrong with.
      assert.doesNotMatch(r.stderr, /cachekit:/, r.stderr);
      assert.ok(r.kinds.length > 0, "the operations refused after close() are reported");
      assert.deepEqual([...new Set(r.kinds)], ["closed"], `error kinds: ${r.kinds}`);
      assert.equal(r.lastErrorKind, "closed");
      assert.equal(r.status, "unhealthy", "a closed backend serves no more operations");
    },
    kind === "redis" ? sharedRedisTestOptions : {},
  );
  test(
    `calls made after a ${kind} backend was closed print one notice that says so`,
    () => {
      const r = runClosed(kind, true);
      assert.deepEqual(r.out, [2, 4, 2], "every call answers from the function");
      // An early close() would otherwise leave every call uncached without a word.
      assert.equal(r.stderr.match(/cache backend was closed/g)?.length, 1, r.stderr);
      assert.equal(r.stderr.match(/cachekit: /g)?.length, 2, `the notice and why: ${r.stderr}`);
      assert.match(
        r.stderr,
        new RegExp(`the ${kind} cache backend was closed \\(its close\\(\\) ran\\)`),
      );
      assert.match(r.stderr, /tests\.closed_backend\./, "it names the function");
      assert.doesNotMatch(r.stderr, /permissions|writable|reached/, r.stderr);
      assert.deepEqual([...new Set(r.kinds)], ["closed"], `error kinds: ${r.kinds}`);
      assert.equal(r.status, "unhealthy");
    },
    kind === "redis" ? sharedRedisTestOptions : {},
  );
}
