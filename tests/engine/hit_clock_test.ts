/**
 * The L1 hit's clock (`engine/_hit_clock.ts`): in a dense burst of hits a `Date.now()` reading,
 * never later than the clock, is reused by at most `MAX_SHARED` hits and only until the event loop
 * turns; hits more than a millisecond apart, fake or stray clocks, `NODE_ENV=test` outside Deno
 * and exit handlers read the clock every time; short bursts back off.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { setImmediate } from "node:timers";
import { pathToFileURL } from "node:url";
import { cache } from "../../mod.ts";
import { hitNow, MAX_SHARED, MAX_STREAK, STREAK } from "../../engine/_hit_clock.ts";
import { test } from "../_harness.ts";
import { shiftDateNow, sleep } from "../_timing.ts";
import { onlyOn, runtimeCommand, siblingModule } from "../_runtime.ts";

const turn = () => new Promise<void>((r) => setImmediate(r));

// `bun test` sets NODE_ENV=test, under which nothing is shared (a test there may freeze the native
// clock); the tests of the sharing itself run without it, one test checks it.
const testEnv = process.env.NODE_ENV;
delete process.env.NODE_ENV;

/**
 * Spin (no event-loop turn) until `Date.now()` is past `t` by `ms`, or 1 s has passed on the
 * monotonic clock (a frozen `Date.now` never gets there).
 */
function spinPast(t: number, ms: number): void {
  const end = performance.now() + 1000;
  while (Date.now() <= t + ms && performance.now() < end) { /* the clock moves, not the turn */ }
}

/** An L1-only cached `x * 2` with a TTL of `ttl` s, counting its computations in `calls`. */
function counted(name: string, ttl: number): ((x: number) => number) & { calls: number } {
  const f = Object.assign(
    cache((x: number) => {
      f.calls++;
      return x * 2;
    }, { name, ttl, backend: null }),
    { calls: 0 },
  );
  return f;
}

/**
 * Arm the sharing with a dense burst and return a reading that the next call shares, or `null`
 * when no attempt saw it shared.
 */
function armed(attempts = 50): number | null {
  for (let attempt = 0; attempt < attempts; attempt++) {
    for (let i = 0; i < 4 * MAX_STREAK; i++) hitNow();
    const r = hitNow();
    spinPast(r, 2);
    if (hitNow() === r) return r; // another call may have been the one that reads afresh
  }
  return null;
}

test("hit clock: a dense burst shares one reading, never later than the clock", async () => {
  await turn();
  const r = armed();
  assert.notEqual(r, null, "the reading was shared by the burst");
  assert.ok(r! < Date.now(), "a shared reading is older than the clock, never later");
  await turn();
});

test("hit clock: the shared reading is retired when the event loop turns", async () => {
  await turn();
  const r = armed();
  assert.notEqual(r, null);
  await turn();
  const before = Date.now();
  const t = hitNow();
  assert.ok(t >= before, `read afresh after the turn (${t} < ${before})`);
});

test("hit clock: one reading answers at most MAX_SHARED hits", async () => {
  await turn();
  const r = armed();
  assert.notEqual(r, null);
  let fresh = false;
  for (let i = 0; i <= MAX_SHARED; i++) if (hitNow() > r!) fresh = true;
  assert.ok(fresh, `a fresh reading within ${MAX_SHARED + 1} hits, in the same turn`);
  await turn();
});

test("hit clock: after a burst, hits more than a millisecond apart read the clock (same turn)", async () => {
  await turn();
  assert.notEqual(armed(), null);
  // Still the burst's turn (the immediate is pending): each hit comes after 2 ms of work.
  let stale = 0;
  for (let i = 0; i < 4 * MAX_SHARED; i++) {
    const before = Date.now();
    spinPast(before, 1);
    if (hitNow() < before) stale++;
  }
  assert.ok(stale <= MAX_SHARED, `${stale} of ${4 * MAX_SHARED} spaced hits took an old reading`);
  await turn();
});

test(
  "hit clock: nothing is shared while the native clock is set apart from real time (Bun's setSystemTime)",
  async () => {
    const spec = "bun:test";
    const { setSystemTime } = await import(spec);
    await turn();
    const set = Date.now() + 10 * 60_000;
    setSystemTime(new Date(set)); // frozen there
    try {
      for (let i = 0; i < 4 * MAX_STREAK; i++) assert.equal(hitNow(), set);
      setSystemTime(new Date(set + 61_000));
      assert.equal(hitNow(), set + 61_000, "the moved clock is read at once");
    } finally {
      setSystemTime();
    }
    await turn();
  },
  onlyOn(["bun"], "setSystemTime is Bun's"),
);

test("hit clock: a fake Date.now is read on every hit (dense hits, then the fake clock moves)", async () => {
  await turn();
  const clock = shiftDateNow(true);
  try {
    const f = counted("hitclock.fake", 60);
    assert.equal(f(1), 2);
    for (let i = 0; i < 4 * MAX_SHARED; i++) assert.equal(f(1), 2);
    assert.equal(f.calls, 1);
    clock.advance(61_000);
    assert.equal(f(1), 2);
    assert.equal(f.calls, 2, "the entry expired with the fake clock, in the same turn");
  } finally {
    clock.restore();
  }
  await turn();
});

test("hit clock: an entry expired during a burst is recomputed once the event loop turns", async () => {
  const f = counted("hitclock.turn", 0.05);
  assert.equal(f(1), 2);
  for (let i = 0; i < 4 * STREAK; i++) assert.equal(f(1), 2);
  assert.equal(f.calls, 1);
  await sleep(80); // past the 50 ms TTL; the event loop turned
  assert.equal(f(1), 2);
  assert.equal(f.calls, 2);
});

/** Whether a burst of `reads` reads, in one turn, makes the next read share (some attempts). */
async function burstShares(reads: number, attempts = 5): Promise<boolean> {
  for (let a = 0; a < attempts; a++) {
    await turn();
    spinPast(Date.now(), 1); // a new millisecond: the reads in a row start from none
    for (let i = 0; i < reads; i++) hitNow();
    const r = hitNow();
    spinPast(r, 2);
    if (hitNow() === r) return true;
  }
  return false;
}

test("hit clock: bursts too short to pay for sharing stop sharing; a long burst brings it back", async () => {
  await turn();
  // A long burst that pays: the next short burst of a little more than STREAK reads shares.
  assert.notEqual(armed(), null);
  assert.ok(await burstShares(STREAK + 4), "sharing after a burst that paid");
  // Short bursts, each sharing a few hits only: the reads needed double until such a burst no
  // longer shares.
  for (let i = 0; i < 12; i++) {
    await turn();
    for (let j = 0; j < STREAK + 4; j++) hitNow();
  }
  assert.equal(await burstShares(STREAK + 4), false, "short bursts no longer share");
  assert.notEqual(armed(), null);
  await turn();
  assert.ok(await burstShares(STREAK + 4), "a long burst that paid resets it");
  await turn();
});

test(
  "hit clock: nothing is shared under NODE_ENV=test outside Deno (a test may freeze the native clock)",
  async () => {
    await turn();
    process.env.NODE_ENV = "test";
    try {
      assert.equal(armed(5), null);
    } finally {
      delete process.env.NODE_ENV;
    }
    await turn();
  },
  onlyOn(["bun", "node"], "Deno reads no NODE_ENV here"),
);

const MOD = pathToFileURL(siblingModule(import.meta.url, "../../mod.ts")).href;
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");

// Each exit handler makes a dense burst of hits; the burst's immediate must not keep the event
// loop alive for ever (it would run the handler again, and again).
const EXIT_CHILD = `
import process from "node:process";
import { cache } from "${MOD}";
const label = cache((x) => "item-" + x, { name: "hitclock.exit.child", ttl: 60, backend: null });
const rounds = { beforeExit: 0, beforeunload: 0 };
const burst = (event) => () => {
  rounds[event]++;
  for (let i = 0; i < 300; i++) label(i & 3);
};
process.on("beforeExit", burst("beforeExit"));
if (typeof globalThis.addEventListener === "function") {
  globalThis.addEventListener("beforeunload", burst("beforeunload"));
}
process.on("exit", () => console.log(JSON.stringify(rounds)));
`;

test("hit clock: a script making dense hits in its exit handlers exits, each handler run once", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-hitclock-"));
  try {
    const script = join(dir, "child.mjs");
    writeFileSync(script, EXIT_CHILD);
    const cmd = runtimeCommand(script, [], DENO_JSON);
    const env = { ...process.env };
    delete env.NODE_ENV;
    const r = await new Promise<{ code: number | null; out: string; err: string }>(
      (resolve, reject) => {
        const child = spawn(cmd.bin, cmd.args, {
          cwd: dir,
          env,
          stdio: ["ignore", "pipe", "pipe"],
        });
        let out = "";
        let err = "";
        let killed = false;
        const timer = setTimeout(() => {
          killed = true;
          child.kill("SIGKILL");
        }, 30_000);
        child.stdout.setEncoding("utf8");
        child.stdout.on("data", (d: string) => (out += d));
        child.stderr.setEncoding("utf8");
        child.stderr.on("data", (d: string) => (err += d));
        child.on("error", reject);
        child.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code: killed ? null : code, out, err });
        });
      },
    );
    assert.notEqual(r.code, null, `the script did not exit within 30 s; stderr: ${r.err}`);
    assert.equal(r.code, 0, r.err);
    const rounds = JSON.parse(r.out.trim().split("\n").pop()!);
    assert.equal(rounds.beforeExit, 1, `beforeExit handler runs: ${JSON.stringify(rounds)}`);
    assert.ok(rounds.beforeunload <= 1, `beforeunload handler runs: ${JSON.stringify(rounds)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("hit clock: the environment is put back", () => {
  if (testEnv !== undefined) process.env.NODE_ENV = testEnv;
});
