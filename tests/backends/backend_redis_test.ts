/**
 * RedisBackend against real Redis: the shared server at 127.0.0.1:6379 (unique key prefixes, never
 * flushed) and private redis-server processes on free loopback ports for faults (pause, kill,
 * passwords, ACL users, OOM, TLS). No mocks. Expectations come from the backend contract, Redis
 * semantics and Python's redis client.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createClient } from "redis";
import { BackendError, CacheConfigError } from "../../errors.ts";
import { parseRedisUrl, RedisBackend } from "../../backends/redis.ts";
import { readEnvConfig } from "../../config/env.ts";
import type { InvalidationEvent } from "../../backends/types.ts";
import { test } from "../_harness.ts";
import { PYTHON_UNAVAILABLE, pythonTestOptions, runPython } from "../_python.ts";
import {
  freePort,
  redisCli,
  redisServerTestOptions,
  SHARED_REDIS_URL,
  sharedRedisTestOptions,
  startRedisServer,
  uniquePrefix,
} from "../_redis_server.ts";
import { backendConformance } from "../_backend_conformance.ts";
import { assertTtlLeft } from "../_timing.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  const words = new Uint32Array(out.buffer, 0, length >>> 2);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  for (let i = words.length * 4; i < length; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function sameBytes(a: Uint8Array | null, b: Uint8Array): boolean {
  if (a === null || a.length !== b.length) return false;
  const n = a.length >>> 2;
  const wa = new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + n * 4));
  const wb = new Uint32Array(b.buffer.slice(b.byteOffset, b.byteOffset + n * 4));
  for (let i = 0; i < n; i++) if (wa[i] !== wb[i]) return false;
  for (let i = n * 4; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

async function kindOf(p: Promise<unknown>): Promise<BackendError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BackendError, `expected a BackendError, got ${e}`);
    return e;
  }
  assert.fail("expected a rejection");
}

/** A raw node-redis client on the shared server, for looking behind the backend. */
async function raw() {
  const c = createClient({ url: SHARED_REDIS_URL });
  c.on("error", () => {});
  await c.connect();
  return c;
}

function shared(prefix: string, extra: ConstructorParameters<typeof RedisBackend>[0] = {}) {
  return new RedisBackend({ url: SHARED_REDIS_URL, keyPrefix: prefix, ...extra });
}

// ------------------------------------------------------------------ conformance

backendConformance(
  "redis",
  () => Promise.resolve(shared(uniquePrefix("conf"))),
  {
    capabilities: ["ttl", "lock", "timeouts", "prefix", "tags"],
    testOptions: sharedRedisTestOptions,
  },
);

// ------------------------------------------------------------------ URL and options

test("redis: parseRedisUrl understands redis://, rediss://, ACL users, ports and db", () => {
  assert.deepEqual({ ...parseRedisUrl("redis://127.0.0.1") }, {
    host: "127.0.0.1",
    port: 6379,
    tls: false,
    db: 0,
  });
  const a = parseRedisUrl("rediss://app:p%40ss%3Aw@cache.internal:6380/2");
  assert.equal(a.tls, true);
  assert.equal(a.host, "cache.internal");
  assert.equal(a.port, 6380);
  assert.equal(a.username, "app");
  assert.equal(a.password, "p@ss:w");
  assert.equal(a.db, 2);
  const b = parseRedisUrl("redis://:only-pass@h/");
  assert.equal(b.username, undefined);
  assert.equal(b.password, "only-pass");
  assert.equal(b.db, 0);
  assert.equal(parseRedisUrl("redis://h?db=5").db, 5);
  assert.equal(parseRedisUrl("redis://[::1]:7000").host, "::1");
  assert.equal(parseRedisUrl("redis://[::1]:7000").port, 7000);
});

test("redis: parseRedisUrl refuses bad URLs with CacheConfigError and never shows the password", () => {
  const bad = [
    "http://u:hunter2@h:6379",
    "redis://u:hunter2@h:99999",
    "redis://u:hunter2@h/abc",
    "redis://u:hunter2@h/-1",
    "redis://u:hunter2@h/1?db=2",
    "redis://u:hunter2@h/?ssl=true",
    "redis://u:hunter2@:6379",
    "not a url hunter2",
    "",
  ];
  for (const url of bad) {
    assert.throws(() => parseRedisUrl(url, "CACHEKIT_REDIS_URL"), (e: unknown) => {
      assert.ok(e instanceof CacheConfigError, `${url}: ${e}`);
      assert.equal(e.option, "CACHEKIT_REDIS_URL");
      if (url.includes("@")) {
        assert.ok(!e.message.includes("hunter2"), `password leaked: ${e.message}`);
        assert.ok(!String(e.value).includes("hunter2"));
      }
      return true;
    });
  }
});

test("redis: invalid options are CacheConfigError at construction", () => {
  const cases: [Record<string, unknown>, string][] = [
    [{ port: 0 }, "port"],
    [{ port: 1.5 }, "port"],
    [{ db: -1 }, "db"],
    [{ host: "" }, "host"],
    [{ chunkSizeBytes: 10 }, "chunkSizeBytes"],
    [{ operationTimeoutMs: -1 }, "operationTimeoutMs"],
    [{ connectTimeoutMs: 0 }, "connectTimeoutMs"],
    [{ chunkGraceMs: -5 }, "chunkGraceMs"],
    [{ invalidationChannel: "" }, "invalidationChannel"],
    [{ url: "rediss://h", tls: false }, "tls"],
    [{ tls: "yes" }, "tls"],
    [{ keyPrefix: 5 }, "keyPrefix"],
    [{ cluster: { rootNodes: [] } }, "cluster.rootNodes"],
    [{ cluster: { rootNodes: ["nohost"] } }, "cluster.rootNodes[0]"],
    [{ cluster: { rootNodes: ["127.0.0.1:7000"] }, db: 3 }, "db"],
    [{ url: "redis://u:pw@h:0" }, "url"],
  ];
  for (const [opts, option] of cases) {
    assert.throws(() => new RedisBackend(opts as never), (e: unknown) => {
      assert.ok(e instanceof CacheConfigError, `${JSON.stringify(opts)}: ${e}`);
      assert.equal(e.option, option);
      return true;
    });
  }
  assert.throws(
    () => new RedisBackend({ password: 42 as never }),
    (e: unknown) => e instanceof CacheConfigError && !e.message.includes("42"),
  );
});

test("redis: fromEnv reads CACHEKIT_REDIS_URL, then REDIS_URL", async () => {
  const saved = { a: process.env.CACHEKIT_REDIS_URL, b: process.env.REDIS_URL };
  const restore = (name: string, v: string | undefined) => {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  };
  try {
    delete process.env.CACHEKIT_REDIS_URL;
    delete process.env.REDIS_URL;
    assert.equal(readEnvConfig().redisUrl, null);
    assert.throws(() => RedisBackend.fromEnv(), CacheConfigError);
    process.env.REDIS_URL = "redis://10.0.0.1:7001/3";
    assert.equal(readEnvConfig().redisUrl, "redis://10.0.0.1:7001/3");
    process.env.CACHEKIT_REDIS_URL = "redis://127.0.0.1:6379/1";
    assert.equal(readEnvConfig().redisUrl, "redis://127.0.0.1:6379/1");
    const b = RedisBackend.fromEnv({ keyPrefix: "x:" });
    const h = await b.healthCheck(); // db 1 on the shared server (or unreachable: still a report)
    assert.equal(h.details?.endpoint, "redis://127.0.0.1:6379/1");
    assert.equal(b.keyPrefix, "x:");
    await b.close();
    process.env.CACHEKIT_REDIS_URL = "redis://u:topsecret@h:notaport";
    assert.throws(() => RedisBackend.fromEnv(), (e: unknown) => {
      assert.ok(e instanceof CacheConfigError);
      assert.equal(e.option, "CACHEKIT_REDIS_URL");
      assert.ok(!e.message.includes("topsecret"));
      return true;
    });
  } finally {
    restore("CACHEKIT_REDIS_URL", saved.a);
    restore("REDIS_URL", saved.b);
  }
});

// ------------------------------------------------------------------ shared Redis

test("redis: round trips are byte-exact, prefixed and isolated", async () => {
  const prefix = uniquePrefix("rt");
  await using b = shared(prefix);
  await using other = shared(uniquePrefix("rt2"));
  const c = await raw();
  try {
    const all = new Uint8Array(256).map((_, i) => i);
    await b.set("k", all);
    assert.deepEqual(await b.get("k"), all);
    assert.equal(Object.getPrototypeOf(await b.get("k")), Uint8Array.prototype);
    await b.set("empty", new Uint8Array());
    assert.deepEqual(await b.get("empty"), new Uint8Array());
    assert.equal(await b.exists("empty"), true);
    // Stored under the prefix, as a plain string.
    assert.equal(await c.exists(`${prefix}k`), 1);
    assert.equal(await c.type(`${prefix}k`), "string");
    assert.equal(await other.get("k"), null, "a different prefix sees nothing");
    await b.set("k", enc("v2"));
    assert.deepEqual(await b.get("k"), enc("v2"));
    assert.equal(await b.delete("k"), true);
    assert.equal(await b.delete("k"), false);
    assert.equal(await b.get("k"), null);
    // Bad input is a typed error.
    const e = await kindOf(b.set("k", "text" as never));
    assert.equal(e.kind, "permanent");
    assert.equal((await kindOf(b.set("k", enc("x"), -1))).kind, "permanent");
    await b.deleteByPrefix("");
  } finally {
    await c.close();
  }
}, sharedRedisTestOptions);

test("redis: TTLs: set with TTL, ttl(), expire(), no-expiry and expiry", async () => {
  await using b = shared(uniquePrefix("ttl"));
  const t0 = Date.now();
  await b.set("a", enc("1"), 30);
  assertTtlLeft(await b.ttl("a"), 30, t0);
  await b.set("forever", enc("1"));
  assert.equal(await b.ttl("forever"), Infinity);
  assert.equal(await b.ttl("missing"), null);
  const t1 = Date.now();
  assert.equal(await b.expire("forever", 100), true);
  assertTtlLeft(await b.ttl("forever"), 100, t1);
  assert.equal(await b.expire("forever", 0), true, "0 = no expiry");
  assert.equal(await b.ttl("forever"), Infinity);
  assert.equal(await b.expire("missing", 10), false);
  await b.set("short", enc("1"), 0.15);
  assert.deepEqual(await b.get("short"), enc("1"));
  await sleep(300);
  assert.equal(await b.get("short"), null);
  assert.equal(await b.exists("short"), false);
  await b.deleteByPrefix("");
}, sharedRedisTestOptions);

test("redis: deleteByPrefix deletes only matching keys under the backend's prefix", async () => {
  const p = uniquePrefix("pfx");
  await using b = shared(p);
  await using neighbour = shared(p.slice(0, -1) + "X:");
  await b.set("ns1:a", enc("1"));
  await b.set("ns1:b", enc("1"));
  await b.set("ns2:c", enc("1"));
  await b.set("a*b", enc("1"));
  await b.set("a-b", enc("1"));
  await neighbour.set("ns1:a", enc("1"));
  assert.equal(await b.deleteByPrefix("ns1:"), 2);
  assert.equal(await b.get("ns1:a"), null);
  assert.deepEqual(await b.get("ns2:c"), enc("1"));
  assert.equal(await b.deleteByPrefix("a*"), 1, "glob characters are literal");
  assert.deepEqual(await b.get("a-b"), enc("1"));
  assert.equal(await b.deleteByPrefix(""), 2);
  assert.deepEqual(await neighbour.get("ns1:a"), enc("1"), "other prefixes untouched");
  await neighbour.deleteByPrefix("");
}, sharedRedisTestOptions);

test("redis: tags index keys, expire with them and invalidate", async () => {
  const prefix = uniquePrefix("tags");
  await using b = shared(prefix);
  const c = await raw();
  try {
    await b.set("u1", enc("1"), 60);
    await b.set("u2", enc("2"), 60);
    await b.set("p1", enc("3"), 60);
    const t0 = Date.now();
    await b.addTags("u1", ["users", "all"], 60);
    await b.addTags("u2", ["users"], 10);
    await b.addTags("p1", ["posts", "all"], 60);
    const pttl = await c.pTTL(`${prefix}cachekit:tag:users`);
    assertTtlLeft(pttl / 1000, 60, t0, "the tag set lives as long as its longest member");
    const deleted = await b.invalidateTags(["users"]);
    assert.deepEqual(deleted.sort(), ["u1", "u2"]);
    assert.equal(await b.get("u1"), null);
    assert.deepEqual(await b.get("p1"), enc("3"));
    assert.equal(await c.exists(`${prefix}cachekit:tag:users`), 0);
    assert.deepEqual(await b.invalidateTags(["users"]), []);
    // "all" still lists u1 (already gone) and p1.
    assert.deepEqual(await b.invalidateTags(["all", "posts"]), ["p1"]);
    await b.addTags("persist", ["t"], null);
    assert.equal(await c.pTTL(`${prefix}cachekit:tag:t`), -1);
    await b.deleteByPrefix("");
  } finally {
    await c.close();
  }
}, sharedRedisTestOptions);

test("redis: locks: owner-only release, lease expiry, waiting, abort, await using", async () => {
  await using a = shared(uniquePrefix("lock"));
  const h = await a.acquire("L", { leaseMs: 5000, waitMs: 0 });
  assert.ok(h);
  assert.equal(h.key, "L");
  assert.equal(await a.acquire("L", { leaseMs: 5000, waitMs: 0 }), null, "held");
  const t0 = performance.now();
  assert.equal(await a.acquire("L", { leaseMs: 5000, waitMs: 150 }), null);
  assert.ok(performance.now() - t0 >= 140, "waited for waitMs");
  assert.equal(await h.release(), true);
  assert.equal(await h.release(), false, "second release");

  // Lease expiry frees the lock; the old owner can no longer release the new owner's lock.
  const old = await a.acquire("M", { leaseMs: 100, waitMs: 0 });
  assert.ok(old);
  const next = await a.acquire("M", { leaseMs: 5000, waitMs: 10_000 });
  assert.ok(next, "acquired after the lease ran out");
  assert.notEqual(next.token, old.token);
  assert.equal(await old.release(), false, "a stale owner cannot release");
  assert.equal(await a.acquire("M", { leaseMs: 5000, waitMs: 0 }), null, "still held by next");
  await next.release();

  // Abort while waiting rejects promptly with kind timeout.
  const held = await a.acquire("N", { leaseMs: 5000, waitMs: 0 });
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 50);
  const t1 = performance.now();
  const aborted = await kindOf(a.acquire("N", { leaseMs: 5000, waitMs: 5000, signal: ac.signal }));
  assert.equal(aborted.kind, "timeout");
  assert.ok(performance.now() - t1 < 4000, "before waitMs ran out"); // generous: a loaded host
  await held!.release();

  {
    await using scoped = await a.acquire("S", { leaseMs: 5000, waitMs: 0 });
    assert.ok(scoped);
    assert.equal(await a.acquire("S", { leaseMs: 5000, waitMs: 0 }), null);
  }
  const again = await a.acquire("S", { leaseMs: 5000, waitMs: 0 });
  assert.ok(again, "await using released it");
  await again.release();
  await assert.rejects(a.acquire("S", { leaseMs: 0, waitMs: 0 }), BackendError);
}, sharedRedisTestOptions);

test(
  "redis: a 50 MiB value is chunked, read back whole, and its chunks follow its TTL",
  async () => {
    const prefix = uniquePrefix("big");
    await using b = shared(prefix, { chunkSizeBytes: 4 * 1024 * 1024, chunkGraceMs: 200 });
    const c = await raw();
    try {
      const big = pattern(50 * 1024 * 1024 + 123, 7);
      await b.set("big", big, 120);
      const back = await b.get("big");
      assert.ok(sameBytes(back, big), "50 MiB round trip");
      const chunkKeys = await c.keys(`{${prefix}big}:__ck:*`);
      assert.equal(chunkKeys.length, 13, "ceil(50 MiB + 123 / 4 MiB) chunks");
      for (const k of chunkKeys) {
        const t = await c.pTTL(k);
        assert.ok(t > 100_000 && t <= 120_000, `chunk TTL ${t}`); // slack for a loaded host
      }
      assert.ok((await c.strLen(`${prefix}big`)) < 300, "the key holds a small manifest");
      assert.equal(await b.expire("big", 0), true);
      for (const k of chunkKeys) assert.equal(await c.pTTL(k), -1, "expire reaches the chunks");
      // Replacing with a small value retires the chunks after the grace period.
      await b.set("big", enc("small"));
      assert.deepEqual(await b.get("big"), enc("small"));
      await sleep(400);
      assert.deepEqual(await c.keys(`{${prefix}big}:__ck:*`), []);
      // Delete retires them too.
      await b.set("big2", pattern(9 * 1024 * 1024, 3));
      assert.equal((await c.keys(`{${prefix}big2}:__ck:*`)).length, 3);
      assert.equal(await b.delete("big2"), true);
      await sleep(400);
      assert.deepEqual(await c.keys(`{${prefix}big2}:__ck:*`), []);
      await b.deleteByPrefix("");
    } finally {
      await c.close();
    }
  },
  sharedRedisTestOptions,
);

test(
  "redis: a reader never sees a mix of two chunked values while a writer replaces them",
  async () => {
    await using w = shared(uniquePrefix("mix"), { chunkSizeBytes: 64 * 1024, chunkGraceMs: 0 });
    const r = new RedisBackend({
      url: SHARED_REDIS_URL,
      keyPrefix: w.keyPrefix,
      chunkSizeBytes: 64 * 1024,
    });
    try {
      const A = new Uint8Array(1024 * 1024 + 17).fill(0xaa);
      const B = new Uint8Array(1024 * 1024 + 17).fill(0xbb);
      await w.set("v", A);
      let stop = false;
      let writes = 0;
      const writer = (async () => {
        while (!stop) {
          await w.set("v", writes % 2 ? A : B);
          writes++;
        }
      })();
      const seen = { a: 0, b: 0, miss: 0 };
      // 1.5 s of reads, longer (up to 15 s) until the writer made progress on a loaded host.
      const until = performance.now() + 1500;
      const deadline = performance.now() + 15_000;
      while (performance.now() < until || (writes <= 3 && performance.now() < deadline)) {
        const v = await r.get("v");
        if (v === null) seen.miss++;
        else if (sameBytes(v, A)) seen.a++;
        else if (sameBytes(v, B)) seen.b++;
        else assert.fail(`a mixed or partial value of ${v.length} bytes`);
      }
      stop = true;
      await writer;
      assert.ok(writes > 3, `writer made progress (${writes})`);
      assert.ok(seen.a + seen.b > 0, `reader saw whole values: ${JSON.stringify(seen)}`);
      await w.deleteByPrefix("");
    } finally {
      await r.close();
    }
  },
  sharedRedisTestOptions,
);

test(
  "redis: streams: getStream yields chunks, setStream stores a stream, a failed stream stores nothing",
  async () => {
    await using b = shared(uniquePrefix("stream"), { chunkSizeBytes: 64 * 1024 });
    const value = pattern(300_000, 11);
    await b.set("v", value);
    const stream = await b.getStream("v");
    assert.ok(stream);
    const pieces: Uint8Array[] = [];
    for await (const p of stream) pieces.push(p);
    assert.equal(pieces.length, 5);
    assert.ok(pieces.slice(0, 4).every((p) => p.length === 64 * 1024));
    const joined = new Uint8Array(value.length);
    let off = 0;
    for (const p of pieces) {
      joined.set(p, off);
      off += p.length;
    }
    assert.ok(sameBytes(joined, value));
    assert.equal(await b.getStream("missing"), null);
    const small = await b.getStream("small-missing");
    assert.equal(small, null);

    // setStream from odd-sized pieces.
    const src = pattern(200_001, 5);
    let i = 0;
    await b.setStream(
      "s",
      new ReadableStream<Uint8Array>({
        pull(c) {
          if (i >= src.length) return c.close();
          const n = Math.min(7777, src.length - i);
          c.enqueue(src.slice(i, i + n));
          i += n;
        },
      }),
      60,
    );
    assert.ok(sameBytes(await b.get("s"), src));
    const t = await b.ttl("s");
    assert.ok(t !== null && t > 59);

    // A stream that fails half way leaves the previous value in place.
    let sent = 0;
    await assert.rejects(
      b.setStream(
        "s",
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (sent > 150_000) return c.error(new Error("producer died"));
            c.enqueue(new Uint8Array(10_000));
            sent += 10_000;
          },
        }),
      ),
      BackendError,
    );
    assert.ok(sameBytes(await b.get("s"), src), "old value intact");

    // A small stream is stored plain.
    await b.setStream("tiny", new Blob([enc("hello")]).stream());
    assert.deepEqual(await b.get("tiny"), enc("hello"));
    await b.deleteByPrefix("");
  },
  sharedRedisTestOptions,
);

test(
  "redis: values starting with the manifest magic round-trip; forged manifests are misses",
  async () => {
    const prefix = uniquePrefix("magic");
    await using b = shared(prefix);
    const c = await raw();
    try {
      const magic = new Uint8Array([0, 0x63, 0x61, 0x63, 0x68, 0x65, 0x6b, 0x69, 0x74, 1]);
      const tricky = new Uint8Array([...magic, ...enc('{"v":1}')]);
      await b.set("t", tricky);
      assert.deepEqual(await b.get("t"), tricky);
      const { Buffer } = await import("node:buffer");
      // Forged: valid JSON naming another key's chunks, and garbage.
      const forged = JSON.stringify({
        v: 1,
        g: "0".repeat(32),
        n: 1,
        s: 3,
        c: 1024,
        b: "{elsewhere}",
      });
      await c.set(`${prefix}f`, Buffer.concat([Buffer.from(magic), Buffer.from(forged)]));
      await c.set("{elsewhere}:__ck:" + "0".repeat(32) + ":0", "abc", {
        expiration: { type: "EX", value: 30 },
      });
      assert.equal(await b.get("f"), null);
      await c.set(`${prefix}g`, Buffer.concat([Buffer.from(magic), Buffer.from("not json")]));
      assert.equal(await b.get("g"), null);
      assert.equal(await b.getStream("g"), null);
      await c.del("{elsewhere}:__ck:" + "0".repeat(32) + ":0");
      await b.deleteByPrefix("");
    } finally {
      await c.close();
    }
  },
  sharedRedisTestOptions,
);

test(
  "redis: invalidation events travel between instances; own and malformed events are dropped",
  async () => {
    const channel = `test:inval:${crypto.randomUUID()}`;
    await using a = shared(uniquePrefix("inv"), { invalidationChannel: channel });
    await using b = shared(uniquePrefix("inv"), { invalidationChannel: channel });
    const gotA: InvalidationEvent[] = [];
    const gotB: InvalidationEvent[] = [];
    const unsubA = await a.subscribe((e) => gotA.push(e));
    await b.subscribe((e) => gotB.push(e));
    const c = await raw();
    try {
      await c.publish(channel, "not json");
      await c.publish(channel, JSON.stringify({ v: 2, level: "key", targets: ["x"], sender: "s" }));
      await c.publish(channel, JSON.stringify({ v: 1, level: "bogus", targets: [], sender: "s" }));
      await a.publish({ level: "key", targets: ["users:1"] });
      await a.publish({ level: "key", targets: ["users:2"], reason: "write" });
      await b.publish({ level: "all", targets: [] });
      const deadline = Date.now() + 10_000;
      while ((gotA.length < 1 || gotB.length < 2) && Date.now() < deadline) await sleep(10);
      assert.deepEqual(gotB, [
        { level: "key", targets: ["users:1"], sender: a.instanceId },
        { level: "key", targets: ["users:2"], sender: a.instanceId, reason: "write" },
      ]);
      assert.deepEqual(gotA, [{ level: "all", targets: [], sender: b.instanceId }]);
      // The wire format is documented JSON.
      const wire: string[] = [];
      const sub = c.duplicate();
      sub.on("error", () => {});
      await sub.connect();
      await sub.subscribe(channel, (m) => wire.push(m));
      await a.publish({ level: "tags", targets: ["t1", "t2"] });
      while (wire.length < 1 && Date.now() < deadline + 2000) await sleep(10);
      assert.deepEqual(JSON.parse(wire[0]), {
        v: 1,
        level: "tags",
        targets: ["t1", "t2"],
        sender: a.instanceId,
      });
      await sub.close();
      await unsubA();
      await b.publish({ level: "prefix", targets: ["ns:"] });
      await sleep(100);
      assert.equal(gotA.length, 1, "unsubscribed");
      await assert.rejects(a.publish({ level: "nope" as never, targets: [] }), BackendError);
    } finally {
      await c.close();
    }
  },
  sharedRedisTestOptions,
);

test(
  "redis: own events are dropped before they are parsed; others naming the sender elsewhere arrive",
  async () => {
    const channel = `test:inval-own:${crypto.randomUUID()}`;
    await using a = shared(uniquePrefix("own"), { invalidationChannel: channel });
    const got: InvalidationEvent[] = [];
    await a.subscribe((e) => got.push(e));
    const c = await raw();
    const parse = JSON.parse;
    let parsedOwn = 0;
    JSON.parse = function (text: string, reviver?: (k: string, v: unknown) => unknown) {
      if (typeof text === "string" && text.includes(a.instanceId)) parsedOwn++;
      return parse(text, reviver);
    };
    try {
      // Every form this instance publishes: key events with and without a reason, the others.
      await a.publish({ level: "key", targets: ["k1"] });
      await a.publish({ level: "key", targets: ["k2"], reason: "write" });
      await a.publish({ level: "key", targets: ["k3"], reason: "delete" });
      await a.publish({ level: "key", targets: ["k4"], reason: "set" });
      await a.publish({ level: "tags", targets: ["t"] });
      await a.publish({ level: "all", targets: [] });
      // Another sender's messages that carry this instance's sender text elsewhere.
      const own = `"sender":${JSON.stringify(a.instanceId)}}`;
      await c.publish(
        channel,
        `{"v":1,"level":"key","targets":["n1"],"sender":"other","x":{"sender":"${a.instanceId}"}}`,
      );
      await c.publish(
        channel,
        JSON.stringify({ v: 1, level: "key", targets: [own], sender: "other", reason: "write" }),
      );
      await c.publish(channel, JSON.stringify({ v: 1, level: "all", targets: [], sender: "end" }));
      const deadline = Date.now() + 10_000;
      while (got.length < 3 && Date.now() < deadline) await sleep(10);
      assert.deepEqual(got, [
        { level: "key", targets: ["n1"], sender: "other" },
        { level: "key", targets: [own], sender: "other", reason: "write" },
        { level: "all", targets: [], sender: "end" },
      ]);
      // Delivered in order: the own events came first and were dropped unparsed (the two other
      // messages above that name the instance were parsed).
      assert.equal(parsedOwn, 2);
    } finally {
      JSON.parse = parse;
      await c.close();
    }
  },
  sharedRedisTestOptions,
);

test("redis: close is idempotent; operations after close fail as closed", async () => {
  const b = shared(uniquePrefix("close"));
  await b.set("k", enc("1"), 10);
  await Promise.all([b.close(), b.close()]);
  await b.close();
  assert.equal((await kindOf(b.get("k"))).kind, "closed");
  const h = await b.healthCheck();
  assert.equal(h.healthy, false);
  const never = new RedisBackend({ url: SHARED_REDIS_URL });
  await never.close(); // never connected
}, sharedRedisTestOptions);

test("redis: close lets operations already started finish (unlock, publish, set)", async () => {
  const prefix = uniquePrefix("drain");
  const channel = `${prefix}inv`;
  const listener = shared(prefix, { invalidationChannel: channel });
  const got: InvalidationEvent[] = [];
  await listener.subscribe((e) => got.push(e));
  const b = shared(prefix, { invalidationChannel: channel });
  const handle = (await b.acquire("lk", { leaseMs: 30_000, waitMs: 0 }))!;
  assert.ok(handle !== null);
  // Fired without awaiting, then close() right away: all three still happen.
  void handle.release();
  void b.publish({ level: "key", targets: ["k"] });
  void b.set("k", enc("v"), 30);
  await b.close();
  const r = await raw();
  try {
    assert.equal(await r.exists(`${prefix}lk`), 0, "lock released before the connection closed");
    assert.equal(await r.get(`${prefix}k`), "v");
    const end = Date.now() + 10_000;
    while (got.length === 0 && Date.now() < end) await sleep(5);
    assert.deepEqual(got.map((e) => e.targets), [["k"]], "event published");
    assert.equal((await kindOf(b.get("k"))).kind, "closed", "new operations are refused");
  } finally {
    r.destroy();
    await listener.close();
  }
}, sharedRedisTestOptions);

test("redis: healthCheck reports latency and endpoint without the password", async () => {
  await using b = new RedisBackend({ url: "redis://:pw-secret@127.0.0.1:6379" });
  const h = await b.healthCheck();
  assert.equal(h.backendType, "redis");
  assert.ok(h.latencyMs >= 0);
  assert.ok(!JSON.stringify(h).includes("pw-secret"));
}, sharedRedisTestOptions);

test(
  "redis: clientName names the connections (CLIENT LIST), the subscriber as <name>:sub",
  async () => {
    assert.throws(() => new RedisBackend({ clientName: "has space" }), CacheConfigError);
    assert.throws(() => new RedisBackend({ clientName: "" }), CacheConfigError);
    const name = `ck-name-${crypto.randomUUID().slice(0, 8)}`;
    await using b = shared(uniquePrefix("name"), {
      clientName: name,
      invalidationChannel: `${name}:inv`,
    });
    await b.set("k", enc("v"), 10);
    await b.subscribe(() => {});
    const r = await raw();
    try {
      const names = String(await r.sendCommand(["CLIENT", "LIST"]))
        .split("\n")
        .map((l) => / name=(\S*)/.exec(l)?.[1])
        .filter((n) => n?.startsWith(name))
        .sort();
      assert.deepEqual(names, [name, `${name}:sub`]);
    } finally {
      r.destroy();
    }
  },
  sharedRedisTestOptions,
);

test("redis: byte-compatible with Python's redis client, both directions", async () => {
  const prefix = uniquePrefix("py");
  await using b = shared(prefix);
  const value = new Uint8Array(4096).map((_, i) => (i * 7 + (i >> 8)) & 0xff);
  await b.set("from-ts", value, 60);
  const py = runPython(
    `import sys, redis
r = redis.Redis(host="127.0.0.1", port=6379)
sys.stdout.buffer.write(r.get(${JSON.stringify(prefix + "from-ts")}))`,
  );
  assert.ok(sameBytes(py, value), "Python reads our bytes");
  const t0 = Date.now();
  const pyValue = runPython(
    `import sys, os, redis
data = bytes((i * 13 + 5) % 256 for i in range(5000)) + b"\\x00\\xff\\r\\n"
r = redis.Redis(host="127.0.0.1", port=6379)
r.setex(${JSON.stringify(prefix + "from-py")}, 60, data)
sys.stdout.buffer.write(data)`,
  );
  assert.equal(pyValue.length, 5004);
  assert.ok(sameBytes(await b.get("from-py"), pyValue), "we read Python's bytes");
  assertTtlLeft(await b.ttl("from-py"), 60, t0);
  await b.deleteByPrefix("");
}, {
  ...pythonTestOptions,
  ...(sharedRedisTestOptions.ignore && !PYTHON_UNAVAILABLE ? sharedRedisTestOptions : {}),
});

// ------------------------------------------------------------------ private servers

test("redis: unreachable server → transient errors quickly; healthCheck unhealthy", async () => {
  const port = await freePort(); // nothing listens on it
  await using b = new RedisBackend({
    url: `redis://127.0.0.1:${port}`,
    operationTimeoutMs: 30_000,
  });
  const t0 = performance.now();
  const e = await kindOf(b.get("k"));
  assert.equal(e.kind, "transient");
  assert.match(e.message, /ECONNREFUSED/);
  assert.ok(performance.now() - t0 < 10_000, "refused, not left to the 30 s timeout");
  const e2 = await kindOf(b.set("k", enc("1")));
  assert.equal(e2.kind, "transient");
  const h = await b.healthCheck();
  assert.equal(h.healthy, false);
  assert.equal(h.details?.kind, "transient");
});

test("redis: a hung (SIGSTOPped) server → timeout; per-call timeoutMs and signal", async () => {
  const server = await startRedisServer(await freePort());
  try {
    await using b = new RedisBackend({ url: server.url, operationTimeoutMs: 300 });
    await b.set("k", enc("1"), null, { timeoutMs: 10_000 }); // a loaded host may need over 300 ms
    server.pause();
    const t0 = performance.now();
    const e = await kindOf(b.get("k"));
    assert.equal(e.kind, "timeout");
    const took = performance.now() - t0;
    // Not early; the upper bound only tells 300 ms from the 5 s default (timers run late under load).
    assert.ok(took >= 280 && took < 4000, `took ${took}`);
    assert.equal((await kindOf(b.get("k", { timeoutMs: 50 }))).kind, "timeout");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 30);
    assert.equal((await kindOf(b.get("k", { signal: ac.signal, timeoutMs: 0 }))).kind, "timeout");
    // Many distinct deadlines at once: each fires at its own time, in any order of start.
    const starts = performance.now();
    const took2 = await Promise.all(
      Array.from(
        { length: 80 },
        (_, i) =>
          kindOf(b.get("k", { timeoutMs: 200 - 2 * i })).then((e) => {
            assert.equal(e.kind, "timeout");
            return { want: 200 - 2 * i, got: performance.now() - starts };
          }),
      ),
    );
    for (const t of took2) {
      assert.ok(t.got >= t.want - 5 && t.got < t.want + 3000, JSON.stringify(t));
    }
    // `startedAt` (a guard that already read the clock): the deadline counts from there.
    const t1 = performance.now();
    const early = await kindOf(b.get("k", { timeoutMs: 5000, startedAt: t1 - 4900 }));
    assert.equal(early.kind, "timeout");
    const took3 = performance.now() - t1;
    // 100 ms left, not 5 s: the wide gap keeps the check true however late timers run.
    assert.ok(took3 >= 90 && took3 < 2500, `took ${took3} ms: 5000 ms from 4900 ms ago`);
    server.resume();
    assert.deepEqual(await b.get("k", { timeoutMs: 10_000 }), enc("1"));
  } finally {
    await server.stop();
  }
}, redisServerTestOptions);

test(
  "redis: passwords and ACL users: wrong password → authentication; NOPERM; /db from the URL",
  async () => {
    const port = await freePort();
    const server = await startRedisServer(port, [
      "--requirepass",
      "right-pass",
      ...["--user", "alice", "on", ">alice-pass", "~*", "&*", "+@all"],
      ...["--user", "bob", "on", ">bob-pass", "~bob:*", "+@all"],
    ], { ping: false });
    try {
      await using wrong = new RedisBackend({ url: `redis://:wrong-pass@127.0.0.1:${port}` });
      const e = await kindOf(wrong.get("k"));
      assert.equal(e.kind, "authentication");
      assert.match(e.message, /WRONGPASS|password/i);
      assert.ok(!e.message.includes("wrong-pass"));
      await using none = new RedisBackend({ url: `redis://127.0.0.1:${port}` });
      assert.equal((await kindOf(none.get("k"))).kind, "authentication", "NOAUTH");
      await using alice = new RedisBackend({ url: `redis://alice:alice-pass@127.0.0.1:${port}/2` });
      await alice.set("k", enc("in db 2"));
      assert.deepEqual(await alice.get("k"), enc("in db 2"));
      const inDb2 = await redisCli(port, [
        "--user",
        "alice",
        "--pass",
        "alice-pass",
        "--no-auth-warning",
        "-n",
        "2",
        "GET",
        "k",
      ]);
      assert.equal(inDb2, "in db 2");
      await using viaFields = new RedisBackend({
        host: "127.0.0.1",
        port,
        username: "alice",
        password: "alice-pass",
        db: 2,
      });
      assert.deepEqual(await viaFields.get("k"), enc("in db 2"));
      await using bob = new RedisBackend({ url: `redis://bob:bob-pass@127.0.0.1:${port}` });
      await bob.set("bob:ok", enc("1"));
      assert.equal((await kindOf(bob.get("other"))).kind, "authentication", "NOPERM");
    } finally {
      await server.stop();
    }
  },
  redisServerTestOptions,
);

test("redis: OOM and WRONGTYPE are permanent", async () => {
  const port = await freePort();
  const server = await startRedisServer(port, [
    "--maxmemory",
    "2mb",
    "--maxmemory-policy",
    "noeviction",
  ]);
  try {
    await using b = new RedisBackend({ url: server.url });
    let oom: BackendError | undefined;
    for (let i = 0; i < 20 && !oom; i++) {
      await b.set(`fill${i}`, new Uint8Array(512 * 1024)).catch((e) => (oom = e));
    }
    assert.ok(oom instanceof BackendError, "eventually out of memory");
    assert.equal(oom.kind, "permanent");
    assert.match(oom.message, /OOM/);
    await redisCli(port, ["FLUSHALL"]);
    await redisCli(port, ["LPUSH", "list", "x"]);
    const e = await kindOf(b.get("list"));
    assert.equal(e.kind, "permanent");
    assert.match(e.message, /WRONGTYPE/);
    // A write replaces a key of another type, as SET does.
    await b.set("list", enc("now a string"), 10);
    assert.deepEqual(await b.get("list"), enc("now a string"));
  } finally {
    await server.stop();
  }
}, redisServerTestOptions);

test("redis: reconnects after CLIENT KILL: operations and the subscriber recover", async () => {
  const port = await freePort();
  const server = await startRedisServer(port);
  try {
    await using a = new RedisBackend({ url: server.url, invalidationChannel: "inv" });
    await using b = new RedisBackend({ url: server.url, invalidationChannel: "inv" });
    const got: InvalidationEvent[] = [];
    await b.subscribe((e) => got.push(e));
    await a.set("k", enc("1"));
    assert.equal(Number(await redisCli(port, ["CLIENT", "KILL", "TYPE", "normal"])) >= 2, true);
    assert.equal(Number(await redisCli(port, ["CLIENT", "KILL", "TYPE", "pubsub"])), 1);
    // Operations recover (the first may fail transiently while reconnecting).
    let value: Uint8Array | null = null;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      try {
        value = await a.get("k");
        break;
      } catch (e) {
        assert.ok(e instanceof BackendError && e.retryable, `retryable: ${e}`);
        await sleep(20);
      }
    }
    assert.deepEqual(value, enc("1"));
    // The subscriber resubscribed by itself.
    while (got.length === 0 && Date.now() < deadline + 2000) {
      await a.publish({ level: "key", targets: ["k"] }).catch(() => {});
      await sleep(50);
    }
    assert.ok(got.length > 0, "events arrive after the reconnect");
    assert.deepEqual(got[0], { level: "key", targets: ["k"], sender: a.instanceId });
  } finally {
    await server.stop();
  }
}, redisServerTestOptions);

function makeCert(dir: string): { cert: string; key: string } | null {
  const r = spawnSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
  ], { encoding: "utf8" });
  if (r.error || r.status !== 0) return null;
  return { cert: join(dir, "cert.pem"), key: join(dir, "key.pem") };
}

test(
  "redis: rediss:// connects over TLS with a private CA and refuses an untrusted certificate",
  async () => {
    const dir = mkdtempSync(join(tmpdir(), "cachekit-tls-"));
    try {
      const files = makeCert(dir);
      assert.ok(files, "openssl made a certificate");
      const port = await freePort();
      const server = await startRedisServer(port, [
        "--port",
        "0",
        "--tls-port",
        String(port),
        "--tls-cert-file",
        files.cert,
        "--tls-key-file",
        files.key,
        "--tls-ca-cert-file",
        files.cert,
        "--tls-auth-clients",
        "no",
        "--requirepass",
        "tls-pass",
      ], { ping: false }).catch((e) => {
        throw new Error(`redis-server without TLS support? ${e}`);
      });
      try {
        const ca = readFileSync(files.cert, "utf8");
        await using b = new RedisBackend({
          url: `rediss://:tls-pass@127.0.0.1:${port}`,
          tls: { ca },
        });
        await b.set("k", enc("over tls"));
        assert.deepEqual(await b.get("k"), enc("over tls"));
        assert.equal((await b.healthCheck()).details?.endpoint, `rediss://127.0.0.1:${port}/0`);
        await using untrusted = new RedisBackend({
          url: `rediss://:tls-pass@127.0.0.1:${port}`,
          connectTimeoutMs: 2000,
        });
        const e = await kindOf(untrusted.get("k"));
        assert.notEqual(e.kind, "timeout");
        assert.match(e.message, /certificate/i);
      } finally {
        await server.stop();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  redisServerTestOptions,
);

test(
  "redis: connect() is a fail-fast start-up check (resolves live, typed error unreachable)",
  async () => {
    await using live = shared(uniquePrefix("connect"));
    await live.connect();
    assert.equal(await live.get("nothing"), null, "usable after connect()");
    // A loopback port nothing listens on: refused at once, a transient BackendError.
    await using dead = new RedisBackend({ url: "redis://127.0.0.1:1", connectTimeoutMs: 1000 });
    await assert.rejects(dead.connect(), (e: unknown) => {
      assert.ok(e instanceof BackendError, `a BackendError, got ${e}`);
      assert.ok(["transient", "timeout"].includes(e.kind), `kind ${e.kind}`);
      return true;
    });
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test("redis: fromEnv connects with the URL's real password, not its redacted form", async () => {
  const saved = { a: process.env.CACHEKIT_REDIS_URL, b: process.env.REDIS_URL };
  const port = await freePort();
  const server = await startRedisServer(port, ["--requirepass", "env-pass"], { ping: false });
  try {
    delete process.env.REDIS_URL;
    process.env.CACHEKIT_REDIS_URL = `redis://:env-pass@127.0.0.1:${port}/0`;
    await using b = RedisBackend.fromEnv();
    await b.set("k", new Uint8Array([7]));
    assert.deepEqual(await b.get("k"), new Uint8Array([7]));
  } finally {
    for (const [name, v] of [["CACHEKIT_REDIS_URL", saved.a], ["REDIS_URL", saved.b]] as const) {
      if (v === undefined) delete process.env[name];
      else process.env[name] = v;
    }
    await server.stop();
  }
}, redisServerTestOptions);
