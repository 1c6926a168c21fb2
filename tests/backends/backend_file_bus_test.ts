// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * The file backend's invalidation bus (`backends/_file_bus.ts`): the journal every process using
 * a cache directory appends its writes and invalidations to and polls. Two `FileBackend` objects on
 * one directory stand for two processes (each has its own sender id); one test runs a real second
 * process, an admin script that wraps nothing, as the README's example does.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import process from "node:process";
import { test } from "../_harness.ts";
import { runtimeCommand, siblingModule } from "../_runtime.ts";
import { until } from "../_timing.ts";
import {
  cache,
  CacheConfigError,
  clearFunction,
  createCache,
  FileBackend,
  type InvalidationEvent,
} from "../../mod.ts";
import { journalTestHooks, MAX_JOURNAL_BYTES } from "../../backends/_file_bus.ts";

const WORKER = siblingModule(import.meta.url, "../_fixtures/group_invalidation_worker.ts");
const DENO_JSON = siblingModule(import.meta.url, "../../deno.json");
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "cachekit-bus-"));
}

/** Subscribe `b`'s bus; the events, gaps and downs it receives. */
async function listen(b: FileBackend) {
  const got = { events: [] as InvalidationEvent[], gaps: 0, downs: 0 };
  const stop = await b.capabilities.invalidation.subscribe(
    (e) => got.events.push(e),
    () => got.gaps++,
    () => got.downs++,
  );
  return { got, stop };
}

test("file bus: another backend object's events arrive, in order; its own do not; lines that are not events are skipped, with a gap", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  const b = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  try {
    const { got, stop } = await listen(a);
    await a.capabilities.invalidation.publish({ level: "key", targets: ["own"], reason: "write" });
    await b.capabilities.invalidation.publish({ level: "key", targets: ["k1"], reason: "write" });
    fs.appendFileSync(path.join(dir, ".bus"), 'not json\n{"v":1,"level":"key"}\n[1,2]\n');
    await Promise.all([
      b.capabilities.invalidation.publish({ level: "tags", targets: ["t"] }),
      b.capabilities.invalidation.publish({ level: "key", targets: ["k2"], reason: "delete" }),
    ]);
    await b.capabilities.invalidation.publish({ level: "key", targets: ["k3"], reason: "set" });
    assert.ok(await until(() => got.events.length >= 4), JSON.stringify(got));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(got.events.map((e) => [e.level, e.targets, e.reason]), [
      ["key", ["k1"], "write"],
      ["tags", ["t"], undefined],
      ["key", ["k2"], "delete"],
      ["key", ["k3"], "set"],
    ]);
    assert.ok(got.events.every((e) => e.sender === b.capabilities.invalidation.instanceId));
    assert.equal(got.gaps, 1, "the lines that are not events, read in one poll");
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Fuzz seed 1, target journal, input 3: one bit flipped in an event line ("targets" lost its
// opening quote). Writers append whole events only, so a line that is not one may have been one:
// skipping it without a word left the L1 copies it invalidated in place.
test("file bus: a line that is not an event (garbled on disk, a torn write continued by the next append) is a gap, not a silent skip", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  const journal = path.join(dir, ".bus");
  const pub = (k: string) =>
    b.capabilities.invalidation.publish({ level: "key", targets: [k], reason: "write" });
  try {
    const { got, stop } = await listen(a);
    await pub("k1");
    await pub("k2");
    // A byte of k1's line garbled.
    const text = fs.readFileSync(journal, "latin1");
    fs.writeFileSync(journal, text.replace('"targets":["k1"]', '"targets":[k1"]'), "latin1");
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k2"]);
    assert.equal(got.gaps, 1, "k1's line is damaged: its event may be lost");
    // A write torn after a few bytes (a crash): the next append continues its line.
    fs.appendFileSync(journal, '{"v":1,"level":"key","tar');
    bus.poll();
    assert.equal(got.gaps, 1, "a line being written is waited for");
    await pub("k3");
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k2"], "k3 went into the torn line");
    assert.equal(got.gaps, 2, "and that is said");
    await pub("k4");
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k2", "k4"]);
    assert.equal(got.gaps, 2);
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Fuzz seed 1, target journal, input 17180: the last newline of `.bus.1` flipped; two rotations
// later that journal was gone and its last line with it, and no gap was reported.
test("file bus: a renamed journal that goes while its last line is torn is a gap", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  const journal = path.join(dir, ".bus");
  // The rotation a writer does past MAX_JOURNAL_BYTES (done by hand: the journals stay small).
  const rotate = () => fs.renameSync(journal, path.join(dir, ".bus.1"));
  const pub = (k: string) => b.capabilities.invalidation.publish({ level: "key", targets: [k] });
  try {
    const { got, stop } = await listen(a);
    await pub("k1");
    fs.appendFileSync(journal, '{"v":1,"level":"key","tar'); // a write torn by a crash
    rotate();
    await pub("k2"); // a new journal
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k1", "k2"]);
    assert.equal(got.gaps, 0, "the torn line may still be completed (a writer mid-write)");
    rotate(); // the journal with the torn line is renamed over: that line is never whole now
    await pub("k3");
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k1", "k2", "k3"]);
    assert.equal(got.gaps, 1, "the torn line's event, if it held one, is lost: a gap");
    rotate();
    await pub("k4");
    bus.poll();
    assert.equal(got.gaps, 1, "journals that ended whole go without a gap");
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k1", "k2", "k3", "k4"]);
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("file bus: a renamed journal renamed over between a poll's two reads of it is a gap", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  const journal = path.join(dir, ".bus");
  const rotate = () => fs.renameSync(journal, path.join(dir, ".bus.1"));
  const pub = (k: string) => b.capabilities.invalidation.publish({ level: "key", targets: [k] });
  try {
    const { got, stop } = await listen(a);
    await pub("k1");
    bus.poll();
    await pub("k2"); // appended to the journal this reader reads, then renamed with it
    rotate();
    await pub("k3"); // a new journal
    // The second rotation lands after the poll saw `.bus.1` (the journal holding k2, unread) and
    // before it reads its rest.
    journalTestHooks.beforeRest = () => {
      journalTestHooks.beforeRest = undefined;
      rotate();
    };
    bus.poll();
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["k1", "k3"], "k2 is gone");
    assert.equal(got.gaps, 1, "and said so: a gap");
    await stop();
  } finally {
    journalTestHooks.beforeRest = undefined;
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

// Fuzz seed 1, target journal, input 16545: `.bus` numbered 0 (a digit of its first line flipped)
// beside `.bus.1` numbered 1; the new subscriber took `.bus.1` for a journal it had not seen.
test("file bus: a subscriber starting on journals with odd first lines delivers nothing from before it started", async () => {
  const variants: [string, (dir: string) => void][] = [
    [
      "`.bus` numbered 0",
      (dir) => firstLine(path.join(dir, ".bus"), (l) => l.replace(/\d+}$/, "0}")),
    ],
    [
      "`.bus.1` numbered past `.bus`",
      (dir) => firstLine(path.join(dir, ".bus.1"), (l) => l.replace(/\d+}$/, "7}")),
    ],
    [
      "`.bus` named by an empty id",
      (dir) =>
        firstLine(path.join(dir, ".bus"), (l) => l.replace(/"journal":"[^"]*"/, '"journal":""')),
    ],
  ];
  for (const [name, damage] of variants) {
    const dir = tempDir();
    const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
    const b = new FileBackend({ directory: dir });
    const bus = a.capabilities.invalidation as unknown as { poll(): void };
    const pub = (k: string) => b.capabilities.invalidation.publish({ level: "key", targets: [k] });
    try {
      await pub("old-1");
      fs.renameSync(path.join(dir, ".bus"), path.join(dir, ".bus.1")); // a rotation
      await pub("old-2");
      damage(dir);
      const { got, stop } = await listen(a);
      bus.poll();
      assert.deepEqual(got.events.map((e) => e.targets[0]), [], name);
      await pub("new");
      bus.poll();
      assert.deepEqual(got.events.map((e) => e.targets[0]), ["new"], name);
      assert.equal(got.gaps, 0, name);
      await stop();
    } finally {
      await a.close();
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

/** Rewrite the first line of the journal `file` in place. */
function firstLine(file: string, edit: (line: string) => string): void {
  const text = fs.readFileSync(file, "utf8");
  const nl = text.indexOf("\n");
  fs.writeFileSync(file, edit(text.slice(0, nl)) + text.slice(nl));
}

test("file bus: a read full of lines that are not events costs a scan, not a parse per line", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  const pub = (k: string) => b.capabilities.invalidation.publish({ level: "key", targets: [k] });
  const parse = JSON.parse;
  try {
    const { got, stop } = await listen(a);
    await pub("before");
    // Each such line cost a failed JSON.parse (an exception): ~4 µs, ~1 s for a read of them.
    fs.appendFileSync(path.join(dir, ".bus"), "{x}\n".repeat(50_000));
    await pub("after");
    let parses = 0;
    JSON.parse = (text: string, reviver?: Parameters<typeof parse>[1]) => {
      parses++;
      return parse(text, reviver);
    };
    try {
      bus.poll();
    } finally {
      JSON.parse = parse;
    }
    assert.ok(parses < 100, `${parses} parses for one poll`);
    assert.equal(got.gaps, 1, "what the rest held is lost: a gap");
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["before"]);
    await pub("next");
    bus.poll();
    assert.deepEqual(got.events.map((e) => e.targets[0]), ["before", "next"]);
    assert.equal(got.gaps, 1);
    await stop();
  } finally {
    JSON.parse = parse;
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("file bus: a subscriber reads on across a journal rotation; one renamed away twice since its last read has a gap", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  try {
    const { got, stop } = await listen(a);
    const big = "x".repeat(1000);
    let n = 0;
    // Past the rotation size: the journal is renamed to .bus.1 and a new one starts.
    while (fs.statSync(path.join(dir, ".bus.1"), { throwIfNoEntry: false }) === undefined) {
      await b.capabilities.invalidation.publish({ level: "key", targets: [`${n++}:${big}`] });
    }
    await b.capabilities.invalidation.publish({ level: "key", targets: [`${n++}:${big}`] });
    bus.poll();
    assert.equal(got.events.length, n, "every event, before and after the rotation");
    assert.equal(got.gaps, 0);
    // Two rotations before the next read: what was in between is lost, and said so. (Journals are
    // told apart by the id on their first line: a new one may get a renamed one's inode number.)
    const firstLine = (name: string) =>
      fs.readFileSync(path.join(dir, name), "utf8").split("\n")[0];
    for (let r = 0; r < 2; r++) {
      const start = firstLine(".bus.1");
      while (firstLine(".bus.1") === start) {
        await b.capabilities.invalidation.publish({ level: "key", targets: [`${n++}:${big}`] });
      }
    }
    await b.capabilities.invalidation.publish({ level: "tags", targets: ["after"] });
    bus.poll();
    assert.equal(got.gaps, 1);
    assert.deepEqual(
      got.events.at(-1)?.targets,
      ["after"],
      "the new journal is read from its start",
    );
    assert.ok(MAX_JOURNAL_BYTES < 1024 * 1024, "the journal stays small");
    assert.ok(fs.statSync(path.join(dir, ".bus")).size < 2 * MAX_JOURNAL_BYTES);
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("file bus: a symlink planted as the journal is not followed; the subscription is down, then back with a gap", async () => {
  const dir = tempDir();
  const outside = path.join(tempDir(), "target");
  fs.writeFileSync(outside, "");
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 });
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void; subscriptionUp: boolean };
  try {
    const { got, stop } = await listen(a);
    fs.symlinkSync(outside, path.join(dir, ".bus"));
    await assert.rejects(
      b.capabilities.invalidation.publish({ level: "all", targets: [] }),
      (e: Error) => e.name === "BackendError",
    );
    assert.equal(fs.readFileSync(outside, "utf8"), "", "nothing written through the link");
    bus.poll();
    assert.equal(bus.subscriptionUp, false);
    assert.equal(got.downs, 1);
    fs.unlinkSync(path.join(dir, ".bus"));
    await b.capabilities.invalidation.publish({ level: "all", targets: [] });
    bus.poll();
    assert.equal(bus.subscriptionUp, true);
    assert.equal(got.gaps, 1, "back: the events meanwhile may be lost");
    assert.equal(got.events.length, 1);
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.dirname(outside), { recursive: true, force: true });
  }
});

test("file bus: a closed backend refuses to publish and subscribe; invalidationPollMs is checked", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir });
  await a.close();
  await assert.rejects(a.capabilities.invalidation.publish({ level: "all", targets: [] }));
  await assert.rejects(a.capabilities.invalidation.subscribe(() => {}));
  for (const bad of [0, 5, 60_001, 1.5, "100"]) {
    assert.throws(
      () => new FileBackend({ directory: dir, invalidationPollMs: bad as number }),
      CacheConfigError,
      String(bad),
    );
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test("file bus: another instance's set, delete and group invalidation reach this instance's L1", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  const b = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  try {
    const c1 = createCache({ namespace: "bus", backend: a, ttl: 600, ...bare });
    const c2 = createCache({ namespace: "bus", backend: b, ttl: 600, ...bare });
    await c1.set("k", "v1");
    assert.equal(await c1.get("k"), "v1"); // in c1's L1 (and its bus subscribed)
    await c2.set("k", "v2");
    assert.ok(await until(async () => (await c1.get("k")) === "v2"), "a write");
    await c2.delete("k");
    assert.ok(await until(async () => (await c1.get("k")) === undefined), "a delete");
    let n = 0;
    const f = cache(async (x: number) => ({ x, n: ++n }), {
      name: "bus.f",
      backend: a,
      ttl: 600,
      ...bare,
    });
    assert.deepEqual(await f(1), { x: 1, n: 1 });
    assert.deepEqual(await f(1), { x: 1, n: 1 });
    await clearFunction("bus.f", { backend: b });
    assert.ok(await until(async () => (await f(1)).n === 2), "clearFunction from elsewhere");
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("file bus: an admin script (another process, the default backend) invalidates what a running process keeps in L1", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  try {
    let n = 0;
    const f = cache(async (x: number) => ({ x, n: ++n }), {
      name: "bus.admin",
      backend: a,
      ttl: 600,
      ...bare,
    });
    assert.deepEqual(await f(1), { x: 1, n: 1 });
    assert.deepEqual(await f(1), { x: 1, n: 1 });
    const cmd = runtimeCommand(
      WORKER,
      [JSON.stringify({ op: "function", arg: "bus.admin" })],
      DENO_JSON,
    );
    const env: Record<string, string | undefined> = {
      ...process.env,
      CACHEKIT_FILE_CACHE_DIR: dir,
    };
    delete env.CACHEKIT_REDIS_URL;
    delete env.REDIS_URL;
    const proc = spawn(cmd.bin, cmd.args, { stdio: ["ignore", "pipe", "pipe"], env });
    let out = "";
    proc.stdout!.setEncoding("utf8").on("data", (d: string) => (out += d));
    proc.stderr!.setEncoding("utf8").on("data", (d: string) => (out += d));
    const code = await new Promise<number | null>((r) => proc.on("close", r));
    assert.equal(code, 0, out);
    assert.ok(await until(async () => (await f(1)).n === 2), `the L1 copy is gone: ${out}`);
  } finally {
    await a.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("file bus: subscriptions made together start one poll, which the last unsubscribe and close() stop", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 10 });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  let polls = 0;
  const poll = bus.poll.bind(bus);
  bus.poll = () => {
    polls++;
    poll();
  };
  try {
    const [s1, s2] = await Promise.all([
      a.capabilities.invalidation.subscribe(() => {}),
      a.capabilities.invalidation.subscribe(() => {}),
    ]);
    await s1();
    await s2();
    let before = polls;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(polls - before, 0, "no subscriber left");
    // Two functions' first calls at once subscribe together too; close() stops the poll.
    const f = cache(async (x: number) => x + 1, { name: "bus.two.f", backend: a, ...bare });
    const g = cache(async (x: number) => x + 2, { name: "bus.two.g", backend: a, ...bare });
    await Promise.all([f(1), g(1)]);
    await a.close();
    before = polls;
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(polls - before, 0, "a closed backend's bus does not poll");
  } finally {
    await a.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("file bus: journals renamed before a reader saw them are read, or a gap is reported (by their sequence numbers)", async () => {
  const big = "x".repeat(1000);
  const exists = (p: string) => fs.statSync(p, { throwIfNoEntry: false }) !== undefined;
  for (const subscribeFirst of [false, true]) {
    const dir = tempDir();
    const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 }); // polled by hand
    const b = new FileBackend({ directory: dir });
    const bus = a.capabilities.invalidation as unknown as { poll(): void };
    const firstLine = (name: string) =>
      fs.readFileSync(path.join(dir, name), "utf8").split("\n")[0];
    let n = 0;
    const pub = () =>
      b.capabilities.invalidation.publish({ level: "key", targets: [`${n++}:${big}`] });
    try {
      if (!subscribeFirst) await pub(); // a journal exists before the subscription: not delivered
      const skipped = n;
      const { got, stop } = await listen(a);
      while (!exists(path.join(dir, ".bus.1"))) await pub();
      // Between journals: the renamed one read to its end (or, never seen, whole), no new one yet.
      assert.ok(!exists(path.join(dir, ".bus")));
      bus.poll();
      assert.equal(got.events.length, n - skipped);
      // One journal made and renamed, then the next: neither seen by the reader before.
      const seen = firstLine(".bus.1");
      while (firstLine(".bus.1") === seen) await pub();
      await pub();
      bus.poll();
      assert.equal(got.events.length, n - skipped, `subscribeFirst ${subscribeFirst}`);
      assert.equal(got.gaps, 0);
      // Two renamed before the next read: the first of them is lost, and said so.
      for (let r = 0; r < 2; r++) {
        const start = firstLine(".bus.1");
        while (firstLine(".bus.1") === start) await pub();
      }
      bus.poll();
      assert.equal(got.gaps, 1, `subscribeFirst ${subscribeFirst}`);
      await stop();
    } finally {
      await a.close();
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("file bus: a journal emptied in place is replaced by the next writer, and readers read on", async () => {
  const dir = tempDir();
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 });
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void };
  try {
    await b.capabilities.invalidation.publish({ level: "key", targets: ["before"] });
    const { got, stop } = await listen(a);
    fs.truncateSync(path.join(dir, ".bus"), 0); // cleared by hand
    bus.poll();
    for (let i = 0; i < 5; i++) {
      await b.capabilities.invalidation.publish({ level: "key", targets: [`after-${i}`] });
      bus.poll();
    }
    assert.deepEqual(got.events.map((e) => e.targets[0]), [0, 1, 2, 3, 4].map((i) => `after-${i}`));
    assert.equal(got.gaps, 1, "the journal the reader was on is gone: one gap");
    assert.match(firstLineOf(path.join(dir, ".bus")), /"journal":/);
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

function firstLineOf(file: string): string {
  return fs.readFileSync(file, "utf8").split("\n")[0];
}

test("file bus: a journal planted as a symlink before the first subscription starts it down, not a failed subscribe", async () => {
  const dir = tempDir();
  const outside = path.join(tempDir(), "target");
  fs.writeFileSync(outside, "");
  fs.symlinkSync(outside, path.join(dir, ".bus"));
  const a = new FileBackend({ directory: dir, invalidationPollMs: 60_000 });
  const b = new FileBackend({ directory: dir });
  const bus = a.capabilities.invalidation as unknown as { poll(): void; subscriptionUp: boolean };
  try {
    const { got, stop } = await listen(a);
    assert.equal(bus.subscriptionUp, false);
    fs.unlinkSync(path.join(dir, ".bus"));
    await b.capabilities.invalidation.publish({ level: "all", targets: [] });
    bus.poll();
    assert.equal(bus.subscriptionUp, true);
    assert.equal(got.gaps, 1);
    assert.equal(got.events.length, 1);
    await stop();
  } finally {
    await a.close();
    await b.close();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.dirname(outside), { recursive: true, force: true });
  }
});
