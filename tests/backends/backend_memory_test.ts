import assert from "node:assert/strict";
import { BackendError, CacheConfigError } from "../../errors.ts";
import { MemoryBackend } from "../../backends/mod.ts";
import { backendConformance } from "../_backend_conformance.ts";
import { test } from "../_harness.ts";

backendConformance("memory", () => Promise.resolve(new MemoryBackend()), {
  capabilities: ["ttl", "lock", "timeouts", "prefix", "tags"],
});

const b = (...xs: number[]) => new Uint8Array(xs);

test("memory: maxEntries evicts the least recently used entry", async () => {
  const m = new MemoryBackend({ maxEntries: 3 });
  await m.set("a", b(1));
  await m.set("b", b(2));
  await m.set("c", b(3));
  assert.deepEqual(await m.get("a"), b(1)); // a is now the most recent
  await m.set("d", b(4)); // evicts b, the least recently used
  assert.equal(m.size, 3);
  assert.equal(await m.get("b"), null);
  assert.deepEqual(await m.get("a"), b(1));
  assert.deepEqual(await m.get("c"), b(3));
  assert.deepEqual(await m.get("d"), b(4));
});

test("memory: maxBytes bounds values plus keys, LRU first", async () => {
  const m = new MemoryBackend({ maxBytes: 100 });
  await m.set("k1", new Uint8Array(40)); // 42 bytes
  await m.set("k2", new Uint8Array(40)); // 84
  await m.get("k1");
  await m.set("k3", new Uint8Array(40)); // 126 > 100: k2 goes
  assert.equal(await m.exists("k2"), false);
  assert.equal(await m.exists("k1"), true);
  assert.equal(await m.exists("k3"), true);
  assert.equal(m.bytes, 84);
  await m.set("k1", new Uint8Array(10)); // overwrite shrinks the account
  assert.equal(m.bytes, 54);
});

test("memory: maxValueBytes refuses larger values with a permanent BackendError", async () => {
  const m = new MemoryBackend({ maxValueBytes: 8 });
  await m.set("ok", new Uint8Array(8));
  await assert.rejects(m.set("big", new Uint8Array(9)), (e: unknown) => {
    assert.ok(e instanceof BackendError);
    assert.equal(e.kind, "permanent");
    assert.equal(e.backend, "memory");
    return true;
  });
  assert.equal(await m.exists("big"), false);
});

test("memory: TTL with an injected clock, get returns copies", async () => {
  let now = 1_000_000;
  const m = new MemoryBackend({ now: () => now });
  await m.set("k", b(1, 2), 10);
  assert.equal(await m.capabilities.ttl.ttl("k"), 10);
  now += 9_999;
  const got = (await m.get("k"))!;
  got[0] = 42;
  assert.deepEqual(await m.get("k"), b(1, 2), "caller mutation does not reach the store");
  now += 1;
  assert.equal(await m.get("k"), null, "expired exactly at the TTL");
  assert.equal(m.size, 0, "the expired entry is removed");
});

test("memory: invalid options and use after close are typed errors", async () => {
  // Bad options are configuration errors, as for every other backend.
  assert.throws(() => new MemoryBackend({ maxEntries: 0 }), CacheConfigError);
  assert.throws(() => new MemoryBackend({ maxBytes: 1.5 }), CacheConfigError);
  const m = new MemoryBackend();
  await m.close();
  await assert.rejects(m.get("k"), (e) => e instanceof BackendError && e.kind === "closed");
  assert.equal((await m.healthCheck()).healthy, false);
});

test("memory: the tag index forgets evicted entries (bounded) and still invalidates live ones", async () => {
  const m = new MemoryBackend({ maxEntries: 50 });
  for (let i = 0; i < 5000; i++) {
    await m.set(`k${i}`, b(1));
    await m.capabilities.tags.addTags(`k${i}`, ["all", `odd:${i % 2}`]);
  }
  const pairs = (await m.healthCheck()).details?.tagIndexPairs as number;
  // 10 000 pairs were added for 50 live entries; evicted ones are swept out.
  assert.ok(pairs <= 2 * 1024 + 2, `tag index holds ${pairs} pairs`);
  const deleted = await m.capabilities.tags.invalidateTags(["odd:1"]);
  const expected = Array.from({ length: 25 }, (_, j) => `k${4951 + 2 * j}`);
  assert.deepEqual(deleted.sort(), expected.sort());
  assert.equal(m.size, 25);
});
