// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * `l1.copy` through `cache()`, on L1 only and in front of the memory, file and Redis backends:
 * - `"clone"`: a caller mutating what it got (from the miss, an L1 hit, an L2 hit) never changes
 *   what the next caller gets, for a record holding every type of the std value space;
 * - `"freeze"`: the miss and every hit return one frozen value, a mutation throws (of a `Date`
 *   too) and the next caller gets the original; a value holding a `Uint8Array` is copied per hit;
 * - `"none"`: the same reference every time;
 * - a custom serializer's class instance (outside the copy space) is kept as bytes: a fresh,
 *   correct value per hit;
 * - the deprecated `storeReferences` means `copy: "none"`, now with an L2 too.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import {
  type Backend,
  cache,
  createCache,
  FileBackend,
  MemoryBackend,
  RedisBackend,
} from "../../mod.ts";
import { CalendarDate, StdSerializer, TimeOfDay } from "../../serializers/mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false, ttl: 60 } as const;

/** A record with every type of the std value space, built fresh on each call. */
function record(id: number) {
  const o = JSON.parse('{"__proto__": {"p": 1}}') as Record<string, unknown>;
  const nullProto = Object.assign(Object.create(null), { z: [1, 2] });
  return {
    id,
    name: "Ada",
    tags: ["a", "b"],
    nested: { n: 1, deep: { list: [{ k: "v" }] } },
    at: new Date(1_700_000_000_000),
    bytes: new Uint8Array([1, 2, 3]),
    big: 2n ** 63n - 1n,
    map: new Map<unknown, unknown>([[1, { one: true }], [[2], "two"]]),
    day: new CalendarDate(2024, 2, 29),
    time: new TimeOfDay(10, 30, 0),
    proto: o,
    nullProto,
    nothing: null,
  };
}
type Rec = ReturnType<typeof record>;

/** Mutate every mutable part of `r`. */
function mutate(r: Rec): void {
  r.id = -1;
  r.tags.push("mutated");
  r.nested.deep.list[0].k = "mutated";
  r.at.setTime(0);
  r.bytes[0] = 99;
  (r.map.get(1) as { one: boolean }).one = false;
  r.map.set(3, "added");
  (Object.getOwnPropertyDescriptor(r.proto, "__proto__")!.value as { p: number }).p = 2;
  (r.nullProto.z as number[]).push(3);
  delete (r as Partial<Rec>).name;
}

/** What every call answers: the record as the std serializer gives it back (the null-prototype
 * object comes back as a plain one; see `serializers/std.ts`). */
function assertOriginal(v: unknown, id: number, what: string): void {
  assert.deepStrictEqual(v, std.deserialize(std.serialize(record(id))), what);
}
const std = new StdSerializer();

interface Kind {
  name: string;
  /** Two backends sharing one store (two processes), or `null` for L1 only. */
  make(): Promise<[Backend, Backend] | null>;
  close(): Promise<void>;
  options?: { ignore: boolean; ignoreReason?: string; sanitize?: boolean };
}

let dir = "";
let redis: RedisBackend[] = [];
const KINDS: Kind[] = [
  { name: "L1 only", make: async () => null, close: async () => {} },
  {
    name: "memory",
    make: async () => {
      const b = new MemoryBackend();
      return [b, b];
    },
    close: async () => {},
  },
  {
    name: "file",
    make: async () => {
      dir = mkdtempSync(join(tmpdir(), "ck-l1copy-"));
      return [new FileBackend({ directory: dir }), new FileBackend({ directory: dir })];
    },
    close: async () => rmSync(dir, { recursive: true, force: true }),
    // The file backend sweeps its directory in the background.
    options: { ignore: false, sanitize: false },
  },
  {
    name: "redis",
    make: async () => {
      const keyPrefix = uniquePrefix("l1copy");
      // Its own bus channel too: the events name keys without the prefix, and the same file on
      // another runtime at the same time (names, arguments alike) would evict this one's L1.
      const o = {
        url: "redis://127.0.0.1:6379",
        keyPrefix,
        invalidationChannel: `${keyPrefix}inv`,
      };
      redis = [new RedisBackend(o), new RedisBackend(o)];
      return [redis[0], redis[1]];
    },
    close: async () => {
      for (const r of redis) await r.close();
    },
    options: { ...sharedRedisTestOptions, sanitize: false },
  },
];

let seq = 0;
for (const kind of KINDS) {
  test(
    `l1.copy clone (${kind.name}): mutating a miss, an L1 hit or an L2 hit never leaks`,
    async () => {
      const backends = await kind.make();
      try {
        let calls = 0;
        const fn = async (id: number) => {
          calls++;
          return record(id);
        };
        const name = `l1copy.clone.${seq++}`;
        const opts = backends === null
          ? { name, ...bare, backend: null }
          : { name, ...bare, backend: backends[0] };
        const f = cache(fn, opts) as (id: number) => Promise<Rec>;
        const miss = await f(1);
        assertOriginal(miss, 1, "the miss");
        mutate(miss);
        const hit = await f(1);
        assertOriginal(hit, 1, "an L1 hit after the miss was mutated");
        mutate(hit);
        assertOriginal(await f(1), 1, "an L1 hit after a hit was mutated");
        assert.equal(calls, 1);
        if (backends === null) return;
        // Another process: its L1 is empty, the value comes from L2.
        const g = cache(fn, { name, ...bare, backend: backends[1] }) as (
          id: number,
        ) => Promise<Rec>;
        const fromL2 = await g(1);
        assertOriginal(fromL2, 1, "the L2 hit");
        mutate(fromL2);
        assertOriginal(await g(1), 1, "an L1 hit after the L2 hit was mutated");
        assert.equal(calls, 1);
      } finally {
        await kind.close();
      }
    },
    kind.options,
  );

  test(
    `l1.copy freeze (${kind.name}): one frozen value; mutation throws; bytes copied`,
    async () => {
      const backends = await kind.make();
      try {
        const plain = (id: number) => ({ id, tags: ["a"], nested: { n: 1 } });
        const fn = async (id: number) => plain(id);
        const name = `l1copy.freeze.${seq++}`;
        const b = backends?.[0] ?? null;
        const f = cache(fn, { name, ...bare, backend: b, l1: { copy: "freeze" } });
        const miss = await f(1);
        assert.ok(
          Object.isFrozen(miss) && Object.isFrozen(miss.tags) && Object.isFrozen(miss.nested),
        );
        assert.throws(() => miss.tags.push("x"), TypeError);
        assert.throws(() => {
          miss.nested.n = 2;
        }, TypeError);
        const hit = await f(1);
        assert.equal(hit, miss, "the miss and the hits return the one frozen value");
        assert.deepStrictEqual({ ...hit }, plain(1));
        if (backends !== null) {
          const g = cache(fn, { name, ...bare, backend: backends[1], l1: { copy: "freeze" } });
          const fromL2 = await g(1);
          assert.ok(Object.isFrozen(fromL2.nested));
          assert.equal(await g(1), fromL2, "the L2 hit is the value later hits return");
        }
        // A Date is frozen as a read-only Date; a Uint8Array cannot be frozen: copied per hit.
        const h = cache(
          async (id: number) => ({ id, at: new Date(5), bytes: new Uint8Array([1]) }),
          {
            name: `l1copy.freeze.bytes.${seq++}`,
            ...bare,
            backend: b,
            l1: { copy: "freeze" },
          },
        );
        const first = await h(1);
        first.at.setTime(0);
        first.bytes[0] = 9;
        const second = await h(1);
        assert.equal(second.at.getTime(), 5);
        assert.equal(second.bytes[0], 1);
        assert.notEqual(second, await h(1));
        const k = cache(async (id: number) => ({ id, at: new Date(5) }), {
          name: `l1copy.freeze.date.${seq++}`,
          ...bare,
          backend: b,
          l1: { copy: "freeze" },
        });
        const d = await k(1);
        assert.throws(() => d.at.setTime(0), TypeError);
        assert.equal(await k(1), d);
        assert.equal((await k(1)).at.getTime(), 5);
      } finally {
        await kind.close();
      }
    },
    kind.options,
  );

  test(`l1.copy none (${kind.name}): the same reference every time`, async () => {
    const backends = await kind.make();
    try {
      const fn = async (id: number) => ({ id, tags: ["a"] });
      const name = `l1copy.none.${seq++}`;
      const f = cache(fn, { name, ...bare, backend: backends?.[0] ?? null, l1: { copy: "none" } });
      const miss = await f(1);
      assert.equal(await f(1), miss);
      assert.equal(await f(1), miss);
      assert.ok(!Object.isFrozen(miss));
      if (backends !== null) {
        const g = cache(fn, { name, ...bare, backend: backends[1], l1: { copy: "none" } });
        const fromL2 = await g(1);
        assert.deepEqual(fromL2, { id: 1, tags: ["a"] });
        assert.equal(await g(1), fromL2);
      }
    } finally {
      await kind.close();
    }
  }, kind.options);
}

test("l1.copy clone: top-level undefined, primitives and bigint come back as they were", async () => {
  for (const v of [undefined, null, 0, "s", 2n ** 63n - 1n, true]) {
    const f = cache((_k: number) => v, { name: `l1copy.prim.${seq++}`, ...bare, backend: null });
    assert.ok(Object.is(f(1), v));
    assert.ok(Object.is(f(1), v));
  }
  const g = cache(async (_k: number) => undefined, {
    name: `l1copy.undef.${seq++}`,
    ...bare,
    backend: new MemoryBackend(),
  });
  assert.equal(await g(1), undefined);
  assert.equal(await g(1), undefined);
  assert.equal(g.cacheInfo().l1Hits, 1);
});

class Point {
  constructor(readonly x: number, readonly y: number) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}

/** A custom serializer whose values are class instances: outside the copy space. */
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

test("l1.copy clone: a class instance (custom serializer) is kept as bytes, fresh per hit", async () => {
  for (const backend of [null, new MemoryBackend()]) {
    const f = cache(async (x: number) => new Point(x, 4), {
      name: `l1copy.class.${seq++}`,
      ...bare,
      backend,
      serializer: new PointSerializer(),
    });
    const miss = await f(3);
    assert.ok(miss instanceof Point);
    (miss as { x: number }).x = 100;
    const hit = await f(3);
    assert.ok(hit instanceof Point, "the prototype survives");
    assert.equal(hit.norm(), 5);
    assert.notEqual(await f(3), hit);
    assert.equal(f.cacheInfo().l1Hits, 2);
  }
});

test('l1.storeReferences (deprecated) means copy: "none", with an L2 too', async () => {
  const f = cache(async (id: number) => ({ id }), {
    name: `l1copy.storeRefs.${seq++}`,
    ...bare,
    backend: new MemoryBackend(),
    l1: { storeReferences: true },
  });
  assert.equal(f.config.l1.copy, "none");
  const v = await f(1);
  assert.equal(await f(1), v);
});

test("l1.copy on a synchronous L1-only function: clone copies, freeze freezes the miss too", () => {
  const c = cache((id: number) => ({ id, tags: ["a"] }), {
    name: `l1copy.sync.clone.${seq++}`,
    backend: null,
  });
  const miss = c(1);
  miss.tags.push("x");
  const hit = c(1);
  assert.deepEqual(hit, { id: 1, tags: ["a"] });
  hit.tags.push("y");
  assert.deepEqual(c(1), { id: 1, tags: ["a"] });
  const f = cache((id: number) => ({ id, tags: ["a"] }), {
    name: `l1copy.sync.freeze.${seq++}`,
    backend: null,
    l1: { copy: "freeze" },
  });
  const fm = f(1);
  assert.ok(Object.isFrozen(fm.tags));
  assert.equal(f(1), fm);
});

/** {@linkcode PointSerializer} whose next `deserialize` throws once `failNext` is set. */
class FlakyPointSerializer extends PointSerializer {
  failNext = false;
  override deserialize(b: Uint8Array): unknown {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("unreadable");
    }
    return super.deserialize(b);
  }
}

test("createCache get: an L1 entry that cannot be read is dropped and L2 answers (with and without options)", async () => {
  for (const opts of [undefined, { tags: [] as string[] }]) {
    const serializer = new FlakyPointSerializer();
    const c = createCache({
      name: `l1copy.get.flaky.${seq++}`,
      ...bare,
      backend: new MemoryBackend(),
      serializer,
    });
    await c.set("p", new Point(3, 4));
    assert.ok((await c.get<Point>("p", opts)) instanceof Point); // an L1 hit, decoded
    serializer.failNext = true;
    const again = await c.get<Point>("p", opts);
    assert.ok(again instanceof Point, "read from L2 after the L1 entry failed");
    assert.equal(again.norm(), 5);
    assert.ok((await c.get<Point>("p", opts)) instanceof Point);
  }
});
