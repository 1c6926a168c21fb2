// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * Batching on one Redis connection (`backends/_redis_batch.ts`), seen at a RESP tap in front of a
 * private redis-server: concurrent `get`s go out as one `MGET` (one alone as `GET`), concurrent
 * read-or-lock and store-and-unlock scripts as one script call each, concurrent writes'
 * announcements as one `PUBLISH`; a batch goes out before any other command (order kept); one
 * key's failure in a batch fails that operation alone; a foreign token in a batch releases nothing.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { freePort, redisCli, redisServerTestOptions, startRedisServer } from "../_redis_server.ts";
import { startRespTap } from "../_resp_tap.ts";
import { RedisBackend } from "../../backends/mod.ts";
import { cache } from "../../mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const enc = (s: string) => new TextEncoder().encode(s);
/** Command names, a script's first `EVAL` (after `NOSCRIPT`: not loaded yet) left out. */
const namesOf = (cs: { name: string }[]) =>
  cs.map((c) => c.name).filter((n, i, all) => !(n === "EVAL" && all[i - 1] === "EVALSHA"));

test(
  "redis batch: concurrent gets are one MGET (one alone a GET), in call order; a batch goes " +
    "out before a command sent after it",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using tap = await startRespTap(server.port);
    await using b = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}`, keyPrefix: "p:" });
    await b.set("a", enc("A"));
    await b.set("c", enc("C"));
    let start = tap.commands.length;
    const got = await Promise.all([b.get("a"), b.get("b"), b.get("c")]);
    assert.deepEqual(got, [enc("A"), null, enc("C")]);
    const sent = tap.commands.slice(start);
    assert.deepEqual(sent.map((c) => c.name), ["MGET"]);
    assert.deepEqual(sent[0].args, ["p:a", "p:b", "p:c"]);
    start = tap.commands.length;
    assert.deepEqual(await b.get("a"), enc("A"));
    assert.deepEqual(tap.commands.slice(start).map((c) => c.name), ["GET"]);
    // A read started before a delete reaches Redis before it: the read sees the value.
    start = tap.commands.length;
    const read = b.get("c");
    const read2 = b.get("a");
    const del = b.delete("c");
    assert.deepEqual(await read, enc("C"));
    assert.deepEqual(await read2, enc("A"));
    assert.equal(await del, true);
    assert.deepEqual(namesOf(tap.commands.slice(start)), ["MGET", "EVALSHA"]);
    assert.equal(await b.get("c"), null);
    // Alone, a key of another type still fails as GET does (a batch's MGET reads it as nil).
    await redisCli(server.port, ["LPUSH", "p:list", "x"]);
    await assert.rejects(b.get("list"), /WRONGTYPE/);
  },
  { ...redisServerTestOptions, sanitize: false },
);

test(
  "redis batch: concurrent lock-on misses are one read-or-lock script and one " +
    "store-and-unlock script, and one PUBLISH announcing every key; no lock is left",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using tap = await startRespTap(server.port);
    await using backend = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}` });
    await using listener = new RedisBackend({ url: `redis://127.0.0.1:${server.port}` });
    const events: InvalidationEvent[] = [];
    await listener.capabilities.invalidation!.subscribe((e) => events.push(e));
    let computed = 0;
    // Interop mode: the `<key>:lock` scripts (native mode takes the lease in the key, one plain
    // command per key: `backend_redis_lease_test.ts`).
    const f = cache(async (i: number) => ({ i, n: ++computed }), {
      name: "batch.miss",
      interop: true,
      namespace: "batch",
      ttl: 60,
      backend,
      l1: { invalidation: true },
      ...bare,
    });
    await f(0); // connect, load the scripts
    for (let t = 0; t < 200 && !tap.commands.some((c) => c.name === "PUBLISH"); t++) {
      await new Promise((r) => setTimeout(r, 10)); // f(0)'s announcement
    }
    const start = tap.commands.length;
    const got = await Promise.all([1, 2, 3, 4].map((i) => f(i)));
    assert.deepEqual(got.map((v) => v.i), [1, 2, 3, 4]);
    assert.equal(computed, 5);
    const sent = tap.commands.slice(start).filter((c) => c.name === "EVALSHA");
    // Publishing comes once the writes answered: wait for it.
    for (let t = 0; t < 200 && !tap.commands.slice(start).some((c) => c.name === "PUBLISH"); t++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const all = tap.commands.slice(start);
    assert.deepEqual(namesOf(all.filter((c) => c.name !== "PUBLISH")), [
      "EVALSHA",
      "EVALSHA",
    ]);
    const [fetch, write] = sent;
    assert.equal(fetch.args[1], "8", "four keys and their locks");
    for (let k = 0; k < 4; k++) {
      assert.equal(fetch.args[2 + 2 * k + 1], `${fetch.args[2 + 2 * k]}:lock`);
    }
    assert.deepEqual(write.args.slice(1, 10), fetch.args.slice(1, 10), "the same keys and locks");
    const publishes = all.filter((c) => c.name === "PUBLISH");
    assert.equal(publishes.length, 1);
    const message = JSON.parse(publishes[0].args[1]);
    assert.equal(message.level, "key");
    assert.equal(message.reason, "write");
    assert.deepEqual(message.targets, [0, 1, 2, 3].map((k) => fetch.args[2 + 2 * k]));
    assert.equal(await redisCli(server.port, ["KEYS", "*:lock"]), "");
    // Stored: the next calls are hits.
    assert.deepEqual(await Promise.all([1, 2, 3, 4].map((i) => f(i))), got);
    assert.equal(computed, 5);
    for (let t = 0; t < 200 && events.length === 0; t++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.ok(events.some((e) => e.targets.length === 4), "the other instance got the targets");
  },
  { ...redisServerTestOptions, sanitize: false },
);

test(
  "redis batch: in one batch, a lock held by another token stays held and is not released by " +
    "a write with the wrong token; a key of another type fails its operation alone",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using tap = await startRespTap(server.port);
    await using b = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}` });
    const fl = b.capabilities.fetchLock!;
    assert.equal(await fl.fetchOrLock("held", "other", 30_000), true);
    await b.set("v", enc("value"));
    await redisCli(server.port, ["HSET", "h", "f", "1"]);
    let start = tap.commands.length;
    const [held, fresh, value, typed] = await Promise.allSettled([
      fl.fetchOrLock("held", "me", 30_000),
      fl.fetchOrLock("fresh", "me", 30_000),
      fl.fetchOrLock("v", "me", 30_000),
      fl.fetchOrLock("h", "me", 30_000),
    ]);
    assert.deepEqual(namesOf(tap.commands.slice(start)), ["EVALSHA"]);
    assert.deepEqual(held, { status: "fulfilled", value: false });
    assert.deepEqual(fresh, { status: "fulfilled", value: true });
    assert.deepEqual(value, { status: "fulfilled", value: enc("value") });
    assert.equal(typed.status, "rejected");
    assert.match(String((typed as PromiseRejectedResult).reason), /WRONGTYPE/);
    assert.equal(await redisCli(server.port, ["EXISTS", "v:lock"]), "0", "a hit takes no lock");
    // Writes in one batch: "held" with a token that does not hold its lock, "fresh" with its own.
    start = tap.commands.length;
    await Promise.all([
      fl.setAndUnlock("held", enc("x"), 60, null, "me"),
      fl.setAndUnlock("fresh", enc("y"), 60, null, "me"),
    ]);
    assert.deepEqual(namesOf(tap.commands.slice(start)), ["EVALSHA"]);
    assert.equal(await redisCli(server.port, ["GET", "held:lock"]), "other", "left alone");
    assert.equal(await redisCli(server.port, ["EXISTS", "fresh:lock"]), "0", "released");
    assert.deepEqual(await Promise.all([b.get("held"), b.get("fresh")]), [enc("x"), enc("y")]);
    // A write over a key of another type, batched with another: the plain write replaces it.
    assert.equal(await fl.fetchOrLock("h", "me", 30_000, { lockOnly: true }), true);
    await Promise.all([
      fl.setAndUnlock("h", enc("now a string"), 60, null, "me"),
      fl.setAndUnlock("fresh", enc("z"), 60, null, "me"),
    ]);
    assert.deepEqual(await b.get("h"), enc("now a string"));
    assert.equal(await redisCli(server.port, ["EXISTS", "h:lock"]), "0");
  },
  { ...redisServerTestOptions, sanitize: false },
);

test(
  "redis batch: key events of one turn share one entry per run of a reason, in order; at most " +
    "128 targets per entry; an event after the batch went out starts a new one",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using tap = await startRespTap(server.port);
    await using b = new RedisBackend({ url: `redis://127.0.0.1:${tap.port}`, keyPrefix: "p:" });
    await b.get("warm"); // connect
    const bus = b.capabilities.invalidation!;
    const pub = (k: string, reason: "write" | "delete") =>
      bus.publish({ level: "key", targets: [k], reason });
    const published = async (n: number, start: number) => {
      for (let t = 0; t < 200; t++) {
        const ps = tap.commands.slice(start).filter((c) => c.name === "PUBLISH");
        if (ps.length >= n) return ps.map((c) => JSON.parse(c.args[1]));
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.fail("no PUBLISH");
    };
    let start = tap.commands.length;
    const first = pub("a", "write");
    const second = pub("b", "write");
    assert.equal(first, second, "one operation for the run of one reason");
    await Promise.all([first, second, pub("c", "delete"), pub("d", "write")]);
    let messages = await published(3, start);
    assert.deepEqual(messages.map((m) => [m.reason, m.targets]), [
      ["write", ["a", "b"]],
      ["delete", ["c"]],
      ["write", ["d"]],
    ]);
    start = tap.commands.length;
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    await Promise.all(keys.map((k) => pub(k, "write")));
    messages = await published(2, start);
    assert.deepEqual(messages.map((m) => m.targets.length), [128, 72]);
    assert.deepEqual(messages.flatMap((m) => m.targets), keys);
    // A command sent meanwhile sends the batch: the next event is a new entry, after it.
    start = tap.commands.length;
    const before = pub("x", "write");
    const read = b.get("y");
    const after = pub("z", "write");
    assert.notEqual(before, after);
    await Promise.all([before, read, after]);
    messages = await published(2, start);
    assert.deepEqual(
      tap.commands.slice(start).map((c) => c.name),
      ["PUBLISH", "GET", "PUBLISH"],
    );
    assert.deepEqual(messages.map((m) => m.targets), [["x"], ["z"]]);
  },
  { ...redisServerTestOptions, sanitize: false },
);

test(
  "redis batch: a key event that fails before going out is not joined by later ones",
  async () => {
    const b = new RedisBackend({ url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: "p:" });
    await b.close();
    const bus = b.capabilities.invalidation!;
    const first = bus.publish({ level: "key", targets: ["a"], reason: "write" });
    await assert.rejects(first);
    const again = bus.publish({ level: "key", targets: ["b"], reason: "write" });
    assert.notEqual(again, first, "a new operation, not the settled one");
    await assert.rejects(again);
  },
  { sanitize: false },
);
