// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * `l1.copy: "clone"`, the miss side: L1 keeps the payload the miss serialized (an `L1_LAZY`
 * entry) instead of copying the answer, and the entry's first hit decodes it and turns it into a
 * copy (`L1_CLONE`), its counted size then the copy's. Checked here:
 * - the kinds before and after the first hit, and what every call answers around mutations;
 * - `cacheInfo().bytes` after the first hit equals what the L1 counts for the same value stored
 *   as a copy (the L2 hit path), and the L1's byte total stays the sum of its entries;
 * - a payload that is a view into a larger buffer (a serializer's scratch) is kept as its own
 *   copy: a later write into that scratch does not change what a hit returns;
 * - a custom serializer's class instance (outside the copy space) ends as `L1_BYTES`;
 * - a stale (fail-safe) read of a lazy entry decodes without upgrading it;
 * - `createCache().getOrSet` hits upgrade the entry the same way.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, createCache, MemoryBackend } from "../../mod.ts";
import { StdSerializer } from "../../serializers/mod.ts";
import { liveEngines } from "../../engine/_registry.ts";
import type { Engine } from "../../engine/_engine.ts";
import { L1_BYTES, L1_CLONE, L1_LAZY, type L1Entry } from "../../engine/l1.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;
let seq = 0;

function engineNamed(part: string): Engine {
  const e = liveEngines().find((x) => x.identity.includes(part));
  assert.ok(e !== undefined, part);
  return e;
}

function onlyEntry(eng: Engine): L1Entry {
  const entries = [...eng.l1!.map.values()];
  assert.equal(entries.length, 1);
  return entries[0];
}

function sumOfSizes(eng: Engine): number {
  let n = 0;
  for (const e of eng.l1!.map.values()) n += e.size;
  return n;
}

const rec = (id: number) => ({ id, name: `user ${id}`, tags: ["a", "b"], at: new Date(5), n: 1.5 });

test("l1 lazy copy: a miss keeps its payload, the first hit makes the entry a copy", async () => {
  for (const backend of [null, new MemoryBackend()]) {
    const name = `l1lazy.kind.${seq++}`;
    const f = cache(async (id: number) => rec(id), { name, ...bare, backend });
    const eng = engineNamed(name);
    const miss = await f(1);
    const e = onlyEntry(eng);
    assert.equal(e.kind, L1_LAZY);
    assert.ok(e.value instanceof Uint8Array);
    miss.tags.push("mutated");
    miss.at.setTime(0);
    const first = await f(1);
    assert.deepEqual(first, rec(1), "the first hit decodes the payload");
    assert.equal(onlyEntry(eng), e, "upgraded in place");
    assert.equal(e.kind, L1_CLONE);
    first.tags.push("mutated");
    first.name = "x";
    const second = await f(1);
    assert.deepEqual(second, rec(1), "the copy kept is not the first hit's value");
    assert.notEqual(second, first);
    second.tags.length = 0;
    assert.deepEqual(await f(1), rec(1));
    assert.equal(f.cacheInfo().l1Hits, 3);
    assert.equal(eng.l1!.bytes, sumOfSizes(eng));
  }
});

test("l1 lazy copy: after the first hit the entry counts what a copied entry counts", async () => {
  const backend = new MemoryBackend();
  const name = `l1lazy.size.${seq++}`;
  const f = cache(async (id: number) => rec(id), { name, ...bare, backend });
  await f(1);
  const eng = engineNamed(name);
  const lazySize = onlyEntry(eng).size;
  await f(1); // first hit: upgrade
  const upgraded = eng.l1!.bytes;
  assert.notEqual(upgraded, lazySize, "the size moved from the payload's to the copy's");
  // Another cache of the same function on the same backend fills its L1 from an L2 hit, whose
  // entry is a copy made at once.
  const g = cache(async (id: number) => rec(id), { name, ...bare, backend });
  assert.deepEqual(await g(1), rec(1));
  assert.equal(g.cacheInfo().l2Hits, 1);
  const eng2 = liveEngines().find((x) => x.identity.includes(name) && x !== eng)!;
  assert.equal(onlyEntry(eng2).kind, L1_CLONE);
  // Same value, same key: the same counted bytes.
  assert.equal(upgraded, eng2.l1!.bytes);
  assert.equal(f.cacheInfo().bytes, upgraded);
});

/** A serializer returning a view into a scratch buffer it writes again on every call. */
class ScratchSerializer extends StdSerializer {
  readonly scratch = new Uint8Array(4096);
  override serialize(v: unknown): Uint8Array {
    const b = super.serialize(v);
    this.scratch.fill(0);
    this.scratch.set(b, 16);
    return this.scratch.subarray(16, 16 + b.length);
  }
}

test("l1 lazy copy: a payload that is a view into a serializer's scratch is copied", async () => {
  const serializer = new ScratchSerializer();
  const name = `l1lazy.scratch.${seq++}`;
  const f = cache(async (id: number) => rec(id), { name, ...bare, backend: null, serializer });
  await f(1);
  const e = onlyEntry(engineNamed(name));
  const kept = e.value as Uint8Array;
  assert.equal(kept.byteLength, kept.buffer.byteLength, "its own buffer");
  serializer.scratch.fill(0xc0); // what a later serialization would do to a shared view
  assert.deepEqual(await f(1), rec(1));
});

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

class PointSerializer extends StdSerializer {
  override serialize(v: unknown): Uint8Array {
    const p = v as Point;
    return super.serialize({ x: p.x, y: p.y });
  }
  override deserialize(b: Uint8Array): unknown {
    const o = super.deserialize(b) as { x: number; y: number };
    return new Point(o.x, o.y);
  }
}

test("l1 lazy copy: a value outside the copy space ends as bytes, decoded per hit", async () => {
  const name = `l1lazy.class.${seq++}`;
  const f = cache(async (x: number) => new Point(x, 4), {
    name,
    ...bare,
    backend: null,
    serializer: new PointSerializer(),
  });
  await f(3);
  const eng = engineNamed(name);
  assert.equal(onlyEntry(eng).kind, L1_LAZY);
  const a = await f(3);
  assert.ok(a instanceof Point);
  assert.equal(onlyEntry(eng).kind, L1_BYTES);
  const b = await f(3);
  assert.ok(b instanceof Point);
  assert.notEqual(a, b);
  assert.equal(eng.l1!.bytes, sumOfSizes(eng));
});

test("l1 lazy copy: a fail-safe stale read decodes without upgrading", () => {
  const name = `l1lazy.stale.${seq++}`;
  const f = cache((id: number) => rec(id), { name, ...bare, backend: null });
  f(1);
  const eng = engineNamed(name);
  const e = onlyEntry(eng);
  const before = eng.l1!.bytes;
  const v = eng.entryValue(e) as ReturnType<typeof rec>;
  assert.deepEqual(v, rec(1));
  assert.equal(e.kind, L1_LAZY);
  assert.equal(eng.l1!.bytes, before);
});

test("l1 lazy copy: createCache getOrSet hits upgrade the entry too", async () => {
  const ns = `l1lazy-obj-${seq++}`;
  const c = createCache({ ...bare, namespace: ns, backend: new MemoryBackend() });
  const v = await c.getOrSet("k", async () => rec(7));
  const eng = liveEngines().find((x) => x.config.namespace === ns)!;
  const e = onlyEntry(eng);
  assert.equal(e.kind, L1_LAZY);
  (v as ReturnType<typeof rec>).tags.push("x");
  const h = await c.getOrSet("k", async () => rec(0)) as ReturnType<typeof rec>;
  assert.deepEqual(h, rec(7));
  assert.equal(e.kind, L1_CLONE);
  h.tags.push("y");
  assert.deepEqual(await c.getOrSet("k", async () => rec(0)), rec(7));
  assert.equal(eng.l1!.bytes, sumOfSizes(eng));
});
