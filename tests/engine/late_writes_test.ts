/**
 * Late writes (`engine/_late_writes.ts`): another instance's invalidation deleted a key in L2 while
 * this instance computed it, and its announcement arrived only after this instance's write of the
 * computed value was issued. The write put back a value the invalidation was meant to remove;
 * the engine now deletes it again when the announcement arrives. Deterministic: the test plays
 * the other instance (it deletes in the shared L2, then delivers the event on the bus).
 */
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "../_harness.ts";
import { until } from "../_timing.ts";
import { drivenBackend } from "./_driven_backend.ts";
import { heldSource } from "./_held_source.ts";
import { cache, FileBackend } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";
import {
  LATE_BUDGET,
  LATE_BYTES,
  LATE_WINDOW_MS,
  LATE_WRITES,
  LateWrites,
} from "../../engine/_late_writes.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** Every microtask chain settles before a timer fires (memory backend: no I/O). */
const flush = () => new Promise((r) => setTimeout(r, 0));

let n = 0;

type Remote = (key: string) => Omit<InvalidationEvent, "sender">;
const REMOTE: [string, Remote][] = [
  ["a deletion of the key", (key) => ({ level: "key", targets: [key], reason: "delete" })],
  ["a value set on purpose", (key) => ({ level: "key", targets: [key], reason: "set" })],
  ["a key event without a reason", (key) => ({ level: "key", targets: [key] })],
  ["a tag invalidation", () => ({ level: "tags", targets: ["late-tag"] })],
  [
    "a clear of the function",
    (key) => ({ level: "prefix", targets: [key.slice(0, key.indexOf(":args:") + 6)] }),
  ],
  ["a clear of everything", () => ({ level: "all", targets: [] })],
];

for (const [what, event] of REMOTE) {
  test(
    `cache(fn): another instance's ${what}, heard after this instance's write of an older ` +
      "computation was issued: the key is deleted again, the next call computes",
    async () => {
      const { backend, inner, deliver, read } = drivenBackend({ bus: true });
      const src = heldSource();
      const o = { ...bare, name: `late-writes-${n++}`, tags: () => ["late-tag"] };
      const f = cache(src.work, { ...o, backend, l1: { invalidation: true } });
      await f(0); // subscribes to the bus
      const h = src.hold();
      const first = f(1);
      await h.started;
      const key = read.at(-1)!; // the L2 key of f(1)
      assert.ok(key.includes(":args:"), key);
      // The other instance: its invalidation deletes in L2 (nothing there yet: the value is being
      // computed) and announces it; the announcement is slow to arrive.
      await inner.delete(key);
      src.version = "new";
      h.release();
      assert.equal(await first, "old", "its caller asked before the invalidation");
      await flush(); // the write of "old" has landed
      assert.ok(await inner.get(key) !== null, "the late write put the older value back");
      deliver(event(key)); // now the announcement arrives
      await flush();
      assert.equal(await inner.get(key), null, "deleted again");
      assert.equal(await f(1), "new");
    },
  );
}

/**
 * A function with a bus, which has subscribed and written `f(1)`: its L2 `key`, the shared L2
 * (`inner`) and the bus to deliver other instances' events on.
 */
async function wroteOne(tags?: () => string[]) {
  const { backend, inner, deliver, read } = drivenBackend({ bus: true });
  const f = cache((x: number) => Promise.resolve(`v${x}`), {
    ...bare,
    name: `late-writes-${n++}`,
    backend,
    l1: { invalidation: true },
    ...(tags === undefined ? {} : { tags }),
  });
  await f(0);
  await f(1);
  await flush();
  return { inner, deliver, key: read.at(-1)! };
}

test("cache(fn): another instance's computed value (`write`) is no reason to delete a recent write", async () => {
  const { inner, deliver, key } = await wroteOne();
  deliver({ level: "key", targets: [key], reason: "write" });
  await flush();
  assert.ok(await inner.get(key) !== null);
});

test("cache(fn): a group event that names none of the recent writes deletes nothing", async () => {
  const { inner, deliver, key } = await wroteOne(() => ["mine"]);
  deliver({ level: "tags", targets: ["another"] });
  deliver({ level: "prefix", targets: ["t:*:ns:other:"] });
  deliver({ level: "key", targets: [key + "x"], reason: "delete" });
  await flush();
  assert.ok(await inner.get(key) !== null);
});

test("LateWrites: the window, the ring's size, the events that name a write, large values", () => {
  const w = new LateWrites();
  const v = new Uint8Array([1, 2, 3]);
  const keys = (ws: { key: string }[]) => ws.map((x) => x.key);
  const del = (k: string): InvalidationEvent => ({
    level: "key",
    targets: [k],
    reason: "delete",
    sender: "x",
  });
  w.note("a", null, v, 1000);
  assert.deepEqual(w.take(del("a"), 1000 + LATE_WINDOW_MS + 1), [], "past the window");
  w.note("b", null, v, 1000);
  assert.deepEqual(w.take(del("b"), 1000 + LATE_WINDOW_MS), [{ key: "b", bytes: v }]);
  assert.deepEqual(w.take(del("b"), 1001), [], "taken once");
  w.note("c", null, v, 1000);
  const write: InvalidationEvent = { level: "key", targets: ["c"], reason: "write", sender: "x" };
  assert.deepEqual(w.take(write, 1001), [], "another instance's computed value");
  // "a" was left by the event past its window; this one comes within it.
  assert.deepEqual(keys(w.take({ level: "all", targets: [], sender: "x" }, 1001)), ["a", "c"]);
  w.note("d", ["t1", "t2"], v, 1000);
  assert.deepEqual(keys(w.take({ level: "tags", targets: ["t3"], sender: "x" }, 1001)), []);
  assert.deepEqual(keys(w.take({ level: "tags", targets: ["t2"], sender: "x" }, 1001)), ["d"]);
  w.note("t:default:ns:a:func:f:args:1", null, v, 1000);
  const prefix = (p: string): InvalidationEvent => ({ level: "prefix", targets: [p], sender: "x" });
  assert.deepEqual(keys(w.take(prefix("t:*:ns:b:"), 1001)), []);
  assert.deepEqual(keys(w.take(prefix("t:*:ns:a:"), 1001)), ["t:default:ns:a:func:f:args:1"]);
  w.note("big", null, new Uint8Array(LATE_BYTES + 1), 1000);
  assert.deepEqual(w.take(del("big"), 1001), [{ key: "big", bytes: null }], "kept without bytes");
  for (let i = 0; i <= LATE_WRITES; i++) w.note(`k${i}`, null, v, 2000);
  assert.deepEqual(w.take(del("k0"), 2001), [], "the oldest went out of the ring");
  assert.deepEqual(keys(w.take(del("k1"), 2001)), ["k1"]);
});

test("LateWrites: the bytes kept stay within the budget, the newest kept", () => {
  const w = new LateWrites();
  const big = () => new Uint8Array(LATE_BYTES);
  const n = Math.ceil((LATE_BUDGET * 3) / LATE_BYTES); // three budgets' worth
  for (let i = 0; i < n; i++) {
    w.note(`k${i}`, null, big(), 1000);
    assert.ok(w.held <= LATE_BUDGET, `${w.held} bytes after ${i + 1} writes`);
  }
  const key = (k: string): InvalidationEvent => ({ level: "key", targets: [k], sender: "x" });
  const newest = w.take(key(`k${n - 1}`), 1001);
  assert.equal(newest[0].bytes?.byteLength, LATE_BYTES, "the newest keeps its bytes");
  const oldest = w.take(key("k0"), 1001);
  assert.deepEqual(oldest, [{ key: "k0", bytes: null }], "the oldest's were let go");
  assert.ok(w.held <= LATE_BUDGET - LATE_BYTES, "taken bytes are no longer counted");
  // Around the ring, many times: the count stays true.
  for (let i = 0; i < 5 * LATE_WRITES; i++) w.note(`r${i}`, null, new Uint8Array(i % 300), 2000);
  assert.ok(w.held <= LATE_BUDGET);
  let sum = 0;
  for (let i = 5 * LATE_WRITES - LATE_WRITES; i < 5 * LATE_WRITES; i++) {
    for (const t of w.take(key(`r${i}`), 2001)) sum += t.bytes?.byteLength ?? 0;
  }
  assert.equal(w.held, 0, "all taken");
  assert.ok(sum <= LATE_BUDGET && sum > 0);
});

test("cache(fn): a write that landed before the other instance's invalidation, now holding a newer value, is left alone", async () => {
  const { inner, deliver, key } = await wroteOne();
  // Another instance set the key after this write (its announcement is slow): not deleted.
  const newer = new TextEncoder().encode("newer");
  await inner.set(key, newer, 60);
  deliver({ level: "key", targets: [key], reason: "set" });
  await flush();
  assert.deepEqual(await inner.get(key), newer);
});

test(
  "cache(fn) on two file backends over one directory (two processes): an invalidation while the " +
    "other computes: the older value is not answered once the invalidation is heard",
  async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cktest-late-"));
    const a = new FileBackend({ directory: dir, invalidationPollMs: 50 });
    const b = new FileBackend({ directory: dir, invalidationPollMs: 50 });
    try {
      const src = heldSource();
      const o = { ...bare, name: "late-writes.file", l1: { invalidation: true } };
      const fa = cache(src.work, { ...o, backend: a });
      const fb = cache(src.work, { ...o, backend: b });
      await fa(0);
      await fb(0);
      let heard = false;
      fa.events.addEventListener("invalidate", () => heard = true);
      const h = src.hold();
      const first = fa(1);
      await h.started;
      src.version = "new";
      await fb.invalidate(1); // deleted, then announced in the journal
      h.release(); // a's write goes out now, most likely before its next poll
      assert.equal(await first, "old");
      assert.ok(await until(() => heard), "a heard the invalidation");
      assert.ok(
        await until(async () => (await fb(1)) === "new"),
        "the older value is not answered (read through b, which has no copy of it)",
      );
      assert.equal(await fa(1), "new");
    } finally {
      await a.close();
      await b.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
);

test("cache(fn): another instance's deletion of one key stops the work on that key here, not on the others", async () => {
  const { backend, deliver, read } = drivenBackend({ bus: true });
  let version = "old";
  let calls = 0;
  const gates = new Map<number, { started: () => void; wait: Promise<void> }>();
  const hold = (x: number) => {
    let release!: () => void;
    let started!: () => void;
    const startedP = new Promise<void>((r) => started = r);
    gates.set(x, { started, wait: new Promise<void>((r) => release = r) });
    return { started: startedP, release: () => release() };
  };
  const work = async (x: number) => {
    calls++;
    const mine = `${version}${x}`;
    const g = gates.get(x);
    if (g !== undefined) {
      gates.delete(x);
      g.started();
      await g.wait;
    }
    return mine;
  };
  const o = { ...bare, name: `late-writes-${n++}`, backend, l1: { invalidation: true } };
  const f = cache(work, o);
  await f(0); // subscribes
  const h1 = hold(1);
  const h2 = hold(2);
  const one = f(1);
  await h1.started;
  const two = f(2);
  await h2.started;
  const [key0, key1, key2] = [...new Set(read)];
  assert.ok(key0 && key1 && key2 && new Set([key0, key1, key2]).size === 3, String(read));
  // Another instance deletes f(0)'s key: nothing here works on it; f(2)'s computation stores.
  deliver({ level: "key", targets: [key0], reason: "delete" });
  h2.release();
  assert.equal(await two, "old2");
  await flush();
  let before = calls;
  assert.equal(await f(2), "old2", "stored: an L1 hit");
  assert.equal(calls, before, "no computation");
  // Another instance deletes f(1)'s key while it computes: a later call does not join it.
  version = "new";
  deliver({ level: "key", targets: [key1], reason: "delete" });
  const again = f(1);
  h1.release();
  assert.equal(await one, "old1", "its caller asked before the deletion");
  assert.equal(await again, "new1", "a call after the deletion computes anew");
  await flush();
  before = calls;
  assert.equal(await f(1), "new1", "the older result was not stored over it");
  assert.equal(calls, before);
});
