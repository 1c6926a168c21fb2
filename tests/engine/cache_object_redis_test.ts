// createCache on a real Redis (127.0.0.1:6379): getMany / setMany / deleteMany issue their commands
// together, so node-redis writes them in one batch (auto-pipelining) — counted at a loopback tap
// (client writes reaching the server) and in Redis's own command statistics. The bus tells other
// instances of writes; expire keeps an entry within its tag sets' life and yields to another
// instance's write.
import assert from "node:assert/strict";
import net from "node:net";
import { createClient } from "redis";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { sleep, until } from "../_timing.ts";
import { type Backend, createCache, RedisBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/** A loopback proxy to 127.0.0.1:6379 that counts the client's writes (data chunks) to Redis. */
async function tap(): Promise<{ port: number; writes: () => number; close: () => Promise<void> }> {
  let writes = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(6379, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("data", (d) => {
      writes++;
      upstream.write(d);
    });
    upstream.on("data", (d) => client.write(d));
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
    client.on("error", () => client.destroy());
    upstream.on("error", () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    writes: () => writes,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function calls(cmd: string): Promise<number> {
  const redis = createClient({ url: "redis://127.0.0.1:6379" });
  await redis.connect();
  try {
    const info = await redis.sendCommand(["INFO", "commandstats"]) as string;
    const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info);
    return m ? Number(m[1]) : 0;
  } finally {
    await redis.close();
  }
}

test("createCache (redis): getMany / setMany / deleteMany go out as one batch each", async () => {
  const t = await tap();
  const backend = new RedisBackend({
    url: `redis://127.0.0.1:${t.port}`,
    keyPrefix: uniquePrefix("objmany"),
  });
  const c = createCache({ ttl: 60, backend, ...bare, l1: false, stampede: false });
  const N = 50;
  const keys = Array.from({ length: N }, (_, i) => `k${i}`);
  try {
    await c.set("warm", 0); // connect first
    let before = t.writes();
    await c.setMany(keys.map((k, i) => [k, { i }]));
    const setWrites = t.writes() - before;
    before = t.writes();
    const reads = async () => (await calls("get")) + (await calls("mget"));
    const readsBefore = await reads();
    const values = await c.getMany<{ i: number }>(keys);
    const getWrites = t.writes() - before;
    // The reads reached the server (the backend sends concurrent GETs as one MGET; other
    // processes on the shared server may add more).
    assert.ok((await reads()) - readsBefore >= 1);
    assert.deepEqual(values.map((v) => v?.i), keys.map((_, i) => i));
    before = t.writes();
    await c.deleteMany(keys);
    const delWrites = t.writes() - before;
    assert.deepEqual(await c.getMany(keys.slice(0, 3)), [undefined, undefined, undefined]);
    // Without batching each command is its own write (N); batched, a handful at most.
    for (
      const [what, n] of [["setMany", setWrites], ["getMany", getWrites], ["deleteMany", delWrites]]
    ) {
      assert.ok((n as number) <= 5, `${what}: ${n} client writes for ${N} commands`);
    }
  } finally {
    await backend.close();
    await t.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });

test("createCache (redis): a write tells the other instances' L1 unless skipBus", async () => {
  const opts = {
    url: "redis://127.0.0.1:6379",
    keyPrefix: uniquePrefix("objbus"),
    invalidationChannel: `cktest:inv:${crypto.randomUUID()}`,
  };
  const ba = new RedisBackend(opts);
  const bb = new RedisBackend(opts);
  const mk = (backend: RedisBackend) =>
    createCache({ ttl: 60, backend, ...bare, l1: { invalidation: true } });
  const a = mk(ba);
  const b = mk(bb);
  try {
    await a.set("k", 1);
    assert.equal(await b.get("k"), 1); // b subscribes and keeps it in L1
    await until(async () => {
      const r = createClient({ url: opts.url });
      await r.connect();
      const n = Number(
        ((await r.sendCommand(["PUBSUB", "NUMSUB", opts.invalidationChannel])) as unknown[])[1],
      );
      await r.close();
      return n >= 2;
    });
    await a.set("k", 2, { skipBus: true });
    assert.equal(await b.get("k"), 1, "b was not told: its L1 still answers");
    await a.set("k", 3);
    assert.ok(await until(async () => (await b.get("k")) === 3), "b's L1 dropped it, read L2");
  } finally {
    await ba.close();
    await bb.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });

test("createCache (redis): per-call staleTtl sets the entry's L2 lifetime", async () => {
  const prefix = uniquePrefix("objstale");
  const backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: prefix });
  const c = createCache({ ttl: 60, staleTtl: 600, backend, ...bare });
  const r = createClient({ url: "redis://127.0.0.1:6379" });
  await r.connect();
  try {
    await c.set("a", 1);
    await c.set("b", 1, { staleTtl: 10 });
    await c.set("c", 1, { ttl: 5, staleTtl: 0 });
    const ttlOf = async (k: string) => {
      const keys = await r.keys(`${prefix}*obj:key:${k}`);
      return Number(await r.sendCommand(["TTL", keys[0]]));
    };
    assert.ok((await ttlOf("a")) > 600 && (await ttlOf("a")) <= 660);
    assert.ok((await ttlOf("b")) > 10 && (await ttlOf("b")) <= 70);
    assert.ok((await ttlOf("c")) > 0 && (await ttlOf("c")) <= 5);
  } finally {
    await r.close();
    await backend.close();
  }
}, { ...sharedRedisTestOptions, sanitize: false });

const down = () => {
  throw new Error("source down");
};

test(
  "createCache (redis): an entry expire() rewrote lives no longer than its tag sets",
  async () => {
    // Before, expire wrote an entry back with a new full stale window (the cache's staleTtl) and
    // no tags, while its tag sets kept the entry's first expiry: once they were gone, deleteByTags
    // could not find the entry, whose deleted value was still answered as the stale fallback.
    const url = "redis://127.0.0.1:6379";
    const prefix = uniquePrefix("objexptag");
    const backend = new RedisBackend({ url, keyPrefix: prefix });
    const r = createClient({ url });
    await r.connect();
    const o = { ttl: 1, staleTtl: 3, failSafeThrottle: 0, backend, namespace: "tg", ...bare };
    const a = createCache(o);
    const b = createCache({ ...o, l1: false }); // another process: reads L2 only
    const pttl = async (k: string) => Number(await r.sendCommand(["PTTL", prefix + k]));
    // The tag set's life, then the entry's (ms): read in this order, the entry outlives the set
    // only if it does.
    const lives = async (k: string, tag: string) => {
      const set = await pttl(`cachekit:tag:${tag}`);
      return { set, entry: await pttl(`t:default:obj:ns:tg:key:${k}`) };
    };
    try {
      await a.set("fresh", "v", { ttl: 30, tags: ["F"] }); // entry and tag set live 33 s
      await a.expire("fresh");
      let l = await lives("fresh", "F");
      assert.ok(
        l.entry > 0 && l.entry <= l.set,
        `expired fresh entry ${l.entry} ms, tags ${l.set}`,
      );
      await a.set("k", "v", { tags: ["T"] }); // fresh 1 s, stale until 4 s, as its tag set
      assert.ok(await until(async () => !(await b.has("k")), 30_000), "stale by now");
      await sleep(1000); // well into its stale window
      await a.expire("k"); // already stale: left as it is (before: 3 s more from now)
      l = await lives("k", "T");
      assert.ok(l.entry <= l.set, `expired stale entry ${l.entry} ms, tags ${l.set}`);
      // Once the tag set is gone the entry is too: deleteByTags has nothing it could miss.
      assert.ok(await until(async () => (await pttl("cachekit:tag:T")) === -2, 30_000));
      await a.deleteByTags("T");
      await assert.rejects(b.getOrSet("k", down), /source down/);
      await assert.rejects(a.getOrSet("k", down), /source down/);
    } finally {
      await r.close();
      await backend.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "createCache (redis): another instance's set during expire's L2 read is not undone",
  async () => {
    // Before, the instance expiring the key wrote the old value back over the other's completed
    // write (as a stale entry): every instance then missed and answered the old value as fallback.
    // The other's write reaches the expiring instance on the bus before its read answers here.
    const opts = {
      url: "redis://127.0.0.1:6379",
      keyPrefix: uniquePrefix("objexpset"),
      invalidationChannel: `cktest:inv:${crypto.randomUUID()}`,
    };
    const ba = new RedisBackend(opts);
    const bb = new RedisBackend(opts);
    let hold: Promise<void> | null = null;
    let reading = () => {};
    // a's backend, with read answers held at a gate while `hold` is set.
    const gated = new Proxy(ba, {
      get: (t, p) => {
        if (p === "get") {
          return async (...x: unknown[]) => {
            const got = await (t.get as (...y: unknown[]) => Promise<unknown>)(...x);
            if (hold !== null) {
              reading();
              await hold;
            }
            return got;
          };
        }
        const v = Reflect.get(t, p, t);
        return typeof v === "function" ? v.bind(t) : v;
      },
    }) as Backend;
    const o = { ttl: 60, staleTtl: 600, failSafeThrottle: 0, ...bare, l1: { invalidation: true } };
    const a = createCache({ ...o, backend: gated });
    const b = createCache({ ...o, backend: bb });
    const c = createCache({ ...o, backend: bb, l1: false }); // reads L2 only
    try {
      await a.set("k", "old"); // a subscribes to the bus
      assert.ok(await until(() => subscribers(opts.url, opts.invalidationChannel, 1)));
      let open!: () => void;
      hold = new Promise<void>((r) => open = r);
      const read = new Promise<void>((r) => reading = r);
      const expiring = a.expire("k");
      await read; // a is reading L2
      hold = null;
      await b.set("k", "new");
      // a got b's write event: it dropped its (stale) L1 copy.
      assert.ok(await until(() => a.cacheInfo().size === 0), "a heard b's write");
      open();
      await expiring;
      assert.equal(await c.get("k"), "new", "L2 holds b's value, fresh");
      assert.equal(await c.getOrSet("k", down), "new");
      assert.equal(await a.getOrSet("k", down), "new");
    } finally {
      await ba.close();
      await bb.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

async function subscribers(url: string, channel: string, want: number): Promise<boolean> {
  const r = createClient({ url });
  await r.connect();
  try {
    return Number(((await r.sendCommand(["PUBSUB", "NUMSUB", channel])) as unknown[])[1]) >= want;
  } finally {
    await r.close();
  }
}

test(
  "createCache (redis): a get whose L2 read is in flight while set runs does not put the old value back into L1",
  async () => {
    const keyPrefix = uniquePrefix("objgs");
    // A channel of its own: another file's tag invalidation would mark the writes here stale.
    const backend = new RedisBackend({
      url: "redis://127.0.0.1:6379",
      keyPrefix,
      invalidationChannel: `${keyPrefix}bus`,
    });
    try {
      const c = createCache({ namespace: "gsr", ttl: 600, backend, ...bare });
      const other = createCache({ namespace: "gsr", ttl: 600, backend, ...bare, l1: false });
      for (let i = 0; i < 5; i++) {
        const k = `k${i}`;
        await other.set(k, "old"); // in L2 only
        const read = c.get(k); // reads L2 (the old value)...
        const write = c.set(k, "new"); // ...while this instance writes a new one
        await Promise.all([read, write]);
        assert.equal(await other.get(k), "new", "L2 has the written value");
        assert.equal(await c.get(k), "new", "this instance answers the value it wrote");
      }
    } finally {
      await backend.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test(
  "createCache (redis): a read racing expire() does not put the entry back into L1 as fresh",
  async () => {
    const keyPrefix = uniquePrefix("objexr");
    // A channel of its own: another file's tag invalidation would mark the writes here stale.
    const backend = new RedisBackend({
      url: "redis://127.0.0.1:6379",
      keyPrefix,
      invalidationChannel: `${keyPrefix}bus`,
    });
    try {
      const opts = { namespace: "exr", ttl: 600, staleTtl: 600, backend, ...bare };
      const c = createCache(opts);
      const other = createCache(opts);
      for (let i = 0; i < 5; i++) {
        const k = `k${i}`;
        await other.set(k, "old");
        assert.equal(await c.get(k), "old"); // c's L1 copy
        const expired = c.expire(k);
        const read = c.getOrSet(k, () => "new"); // a read while expire runs
        await Promise.all([expired, read]);
        assert.equal(
          await c.getOrSet(k, () => "next"),
          "next",
          "recomputed, not the expired value",
        );
      }
    } finally {
      await backend.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);
