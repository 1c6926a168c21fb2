/**
 * A reusable conformance suite for the {@linkcode Backend} contract (`backends/types.ts`).
 *
 * `backendConformance("redis", () => Promise.resolve(new RedisBackend(...)))` registers one test per
 * behaviour: the core methods for every backend, and a group per advertised capability (`ttl`,
 * `lock`, `timeouts`, `prefix`, `tags`). `make` is called once per test; the test closes the
 * backend. Keys carry a random per-run prefix, so a shared store (one Redis) is safe, but `make`
 * should still give each call its own namespace if the backend has one.
 *
 * Expectations come from the contract's documentation, not from any implementation.
 *
 * @module
 */

import assert from "node:assert/strict";
import { BackendError } from "../errors.ts";
import type { Backend } from "../backends/types.ts";
import { test, type TestOptions } from "./_harness.ts";
import { assertTtlLeft } from "./_timing.ts";

/** Optional capabilities of the contract, by name. */
export type CapabilityName = "ttl" | "lock" | "timeouts" | "prefix" | "tags";

/** Options of {@linkcode backendConformance}. */
export interface ConformanceOptions {
  /**
   * The capabilities the backend must advertise. Their tests are registered and fail when the
   * capability is missing; the others are not registered. Omitted: every capability test is
   * registered and passes vacuously when the backend does not advertise it.
   */
  capabilities?: readonly CapabilityName[];
  /** Options passed to every registered test (e.g. `sanitize: false` for socket-holding backends). */
  testOptions?: TestOptions;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function bytes(...xs: number[]): Uint8Array {
  return new Uint8Array(xs);
}

function pattern(length: number, seed: number): Uint8Array {
  const b = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

async function rejectsWithKind(p: Promise<unknown>, kinds: string[], what: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof BackendError, `${what}: expected a BackendError, got ${e}`);
    assert.ok(kinds.includes(e.kind), `${what}: kind ${e.kind}, expected ${kinds.join("/")}`);
    return true;
  });
}

/** Register the conformance tests for a backend factory. */
export function backendConformance(
  name: string,
  make: () => Promise<Backend>,
  options: ConformanceOptions = {},
): void {
  const run = `ck-conf-${crypto.randomUUID().slice(0, 8)}`;
  let n = 0;
  const k = (s: string) => `${run}:${n}:${s}`;
  const expected = options.capabilities;
  const t = (
    title: string,
    fn: (b: Backend) => Promise<void>,
    capability?: CapabilityName,
  ) => {
    if (capability !== undefined && expected !== undefined && !expected.includes(capability)) {
      return;
    }
    test(`${name} conformance: ${title}`, async () => {
      n++;
      const b = await make();
      try {
        if (capability !== undefined) {
          const present = capability === "timeouts"
            ? b.capabilities.timeouts === true
            : b.capabilities[capability] !== undefined;
          if (expected !== undefined) assert.ok(present, `capability ${capability} advertised`);
          else if (!present) return; // not advertised: nothing to check
        }
        await fn(b);
      } finally {
        // Leave nothing behind in a shared store (one Redis for every run): every key this suite
        // writes starts with its own run prefix. (Best effort: the test's own outcome stands.)
        await b.capabilities.prefix?.deleteByPrefix(`${run}:`).catch(() => {});
        await b.close?.();
      }
    }, options.testOptions);
  };

  // ------------------------------------------------------------------ core

  t("set/get/exists/delete round trip with every byte value", async (b) => {
    const value = new Uint8Array(256).map((_, i) => i);
    assert.equal(await b.get(k("a")), null);
    assert.equal(await b.exists(k("a")), false);
    await b.set(k("a"), value);
    assert.deepEqual(await b.get(k("a")), value);
    assert.equal(await b.exists(k("a")), true);
    assert.equal(await b.delete(k("a")), true);
    assert.equal(await b.get(k("a")), null);
    assert.equal(await b.exists(k("a")), false);
    assert.equal(await b.delete(k("a")), false);
  });

  t("overwrite replaces the whole value (longer, then shorter)", async (b) => {
    await b.set(k("o"), pattern(5000, 1));
    await b.set(k("o"), pattern(9000, 2));
    assert.deepEqual(await b.get(k("o")), pattern(9000, 2));
    await b.set(k("o"), bytes(7));
    assert.deepEqual(await b.get(k("o")), bytes(7));
  });

  t("empty value, 1 MiB value, unicode and long keys", async (b) => {
    await b.set(k("empty"), new Uint8Array(0));
    const empty = await b.get(k("empty"));
    assert.ok(empty !== null, "an empty value is a hit, not a miss");
    assert.equal(empty.length, 0);
    assert.equal(await b.exists(k("empty")), true);
    const big = pattern(1024 * 1024, 3);
    await b.set(k("big"), big);
    assert.deepEqual(await b.get(k("big")), big);
    const uk = k("ключ/😀/é\u0301/../..\\x");
    await b.set(uk, bytes(1));
    assert.deepEqual(await b.get(uk), bytes(1));
    assert.equal(await b.get(k("ключ/😀/é\u0301/../..\\y")), null);
    const long = k("L".repeat(1000));
    await b.set(long, bytes(2));
    assert.deepEqual(await b.get(long), bytes(2));
    assert.equal(await b.get(long + "L"), null);
  });

  t("keys are distinct (no prefix or case folding)", async (b) => {
    await b.set(k("Key"), bytes(1));
    await b.set(k("key"), bytes(2));
    await b.set(k("key "), bytes(3));
    assert.deepEqual(await b.get(k("Key")), bytes(1));
    assert.deepEqual(await b.get(k("key")), bytes(2));
    assert.deepEqual(await b.get(k("key ")), bytes(3));
    assert.equal(await b.get(k("ke")), null);
  });

  t("the stored value is not affected by later mutation of the caller's array", async (b) => {
    const v = bytes(1, 2, 3);
    await b.set(k("m"), v);
    v[0] = 99;
    assert.deepEqual(await b.get(k("m")), bytes(1, 2, 3));
  });

  t("TTL: a key expires; null and 0 mean no expiry", async (b) => {
    const t0 = Date.now();
    await b.set(k("ttl"), bytes(1), 1);
    const early = await b.get(k("ttl"));
    // Read within the second unless the host stalled (then it may rightly be gone already).
    if (Date.now() - t0 < 1000) assert.deepEqual(early, bytes(1), "not expired early");
    await b.set(k("none"), bytes(2), null);
    await b.set(k("zero"), bytes(3), 0);
    await b.set(k("undef"), bytes(4));
    await sleep(1150);
    assert.equal(await b.get(k("ttl")), null);
    assert.equal(await b.exists(k("ttl")), false);
    assert.deepEqual(await b.get(k("none")), bytes(2));
    assert.deepEqual(await b.get(k("zero")), bytes(3));
    assert.deepEqual(await b.get(k("undef")), bytes(4));
  });

  t("bad input is a BackendError, not a crash", async (b) => {
    await rejectsWithKind(b.set(k("neg"), bytes(1), -1), ["permanent"], "negative ttl");
    await rejectsWithKind(b.set(k("nan"), bytes(1), NaN), ["permanent"], "NaN ttl");
    await rejectsWithKind(
      b.set(k("str"), "text" as unknown as Uint8Array),
      ["permanent"],
      "string value",
    );
    assert.equal(await b.exists(k("neg")), false);
  });

  t("concurrent writers and readers of one key see whole values only", async (b) => {
    const values = Array.from({ length: 8 }, (_, i) => pattern(20_000 + i * 1000, 10 + i));
    const seen: (Uint8Array | null)[] = [];
    await Promise.all([
      ...values.map((v) => b.set(k("race"), v)),
      ...Array.from({ length: 16 }, async () => seen.push(await b.get(k("race")))),
    ]);
    const final = await b.get(k("race"));
    for (const s of [...seen, final]) {
      if (s === null) continue;
      assert.ok(values.some((v) => v.length === s.length && sameBytes(v, s)), "torn value");
    }
    assert.ok(final !== null && values.some((v) => sameBytes(v, final)));
  });

  t("healthCheck reports healthy with its type and a latency", async (b) => {
    const h = await b.healthCheck();
    assert.equal(h.healthy, true, JSON.stringify(h.details));
    assert.equal(h.backendType, b.type);
    assert.ok(Number.isFinite(h.latencyMs) && h.latencyMs >= 0);
  });

  t("close is idempotent", async (b) => {
    await b.close?.();
    await b.close?.();
  });

  t("after close, operations reject with a BackendError of kind closed", async (b) => {
    if (b.close === undefined) return;
    assert.equal(await b.get(k("x")), null); // used (connected) before it is closed
    await b.close();
    const closed = (e: unknown) => e instanceof BackendError && e.kind === "closed";
    await assert.rejects(b.get(k("x")), closed);
    await assert.rejects(b.set(k("x"), bytes(2)), closed);
    await assert.rejects(b.delete(k("x")), closed);
    const lock = b.capabilities.lock;
    if (lock !== undefined) {
      await assert.rejects(lock.acquire(k("lock"), { leaseMs: 1000, waitMs: 0 }), closed);
    }
    const bus = b.capabilities.invalidation;
    if (bus !== undefined) await assert.rejects(bus.publish({ level: "all", targets: [] }), closed);
  });

  // ------------------------------------------------------------------ ttl

  t("capability ttl: inspect and refresh", async (b) => {
    const ttl = b.capabilities.ttl!;
    assert.equal(await ttl.ttl(k("missing")), null);
    await b.set(k("forever"), bytes(1));
    assert.equal(await ttl.ttl(k("forever")), Infinity);
    const t0 = Date.now();
    await b.set(k("t"), bytes(2), 100);
    assertTtlLeft(await ttl.ttl(k("t")), 100, t0);
    const t1 = Date.now();
    assert.equal(await ttl.expire(k("t"), 50), true);
    assertTtlLeft(await ttl.ttl(k("t")), 50, t1, "remaining after expire");
    assert.deepEqual(await b.get(k("t")), bytes(2), "expire keeps the value");
    assert.equal(await ttl.expire(k("missing"), 10), false);
    assert.equal(await b.exists(k("missing")), false, "expire does not create a key");
    assert.equal(await ttl.expire(k("forever"), 1), true);
    await sleep(1150);
    assert.equal(await b.get(k("forever")), null, "expire gave a key without TTL one");
  }, "ttl");

  // ------------------------------------------------------------------ lock

  t("capability lock: exclusive, released once, re-acquirable", async (b) => {
    const lock = b.capabilities.lock!;
    const h1 = await lock.acquire(k("L"), { leaseMs: 5000, waitMs: 0 });
    assert.ok(h1 !== null);
    assert.equal(h1.key, k("L"));
    assert.ok(typeof h1.token === "string" && h1.token.length > 0);
    assert.equal(await lock.acquire(k("L"), { leaseMs: 5000, waitMs: 0 }), null);
    assert.equal(await lock.acquire(k("L"), { leaseMs: 5000, waitMs: 60 }), null);
    const other = await lock.acquire(k("L2"), { leaseMs: 5000, waitMs: 0 });
    assert.ok(other !== null, "another name is independent");
    assert.equal(await h1.release(), true);
    assert.equal(await h1.release(), false, "a second release is a no-op");
    const h2 = await lock.acquire(k("L"), { leaseMs: 5000, waitMs: 0 });
    assert.ok(h2 !== null);
    assert.notEqual(h2.token, h1.token);
    assert.equal(await h1.release(), false, "a stale handle cannot release the new owner's lock");
    assert.equal(await lock.acquire(k("L"), { leaseMs: 5000, waitMs: 0 }), null);
    assert.equal(await h2.release(), true);
    assert.equal(await other.release(), true);
  }, "lock");

  t("capability lock: a waiter gets the lock when it is released", async (b) => {
    const lock = b.capabilities.lock!;
    const h1 = (await lock.acquire(k("W"), { leaseMs: 5000, waitMs: 0 }))!;
    assert.ok(h1 !== null);
    const t0 = Date.now();
    setTimeout(() => void h1.release(), 150);
    const h2 = await lock.acquire(k("W"), { leaseMs: 5000, waitMs: 10_000 });
    assert.ok(h2 !== null, "waiter acquired");
    assert.ok(Date.now() - t0 >= 100, "not before the release");
    await h2.release();
  }, "lock");

  t("capability lock: the lease frees a lock whose owner never releases", async (b) => {
    const lock = b.capabilities.lock!;
    const h1 = (await lock.acquire(k("E"), { leaseMs: 300, waitMs: 0 }))!;
    assert.ok(h1 !== null);
    const t0 = Date.now();
    const h2 = await lock.acquire(k("E"), { leaseMs: 5000, waitMs: 10_000 });
    assert.ok(h2 !== null, "acquired after the lease ended");
    assert.ok(Date.now() - t0 >= 200, `too early: ${Date.now() - t0} ms`);
    assert.equal(await h1.release(), false, "the expired owner's release reports false");
    assert.equal(await lock.acquire(k("E"), { leaseMs: 5000, waitMs: 0 }), null, "h2 still holds");
    assert.equal(await h2.release(), true);
  }, "lock");

  t("capability lock: await using releases; an aborted wait rejects with timeout", async (b) => {
    const lock = b.capabilities.lock!;
    {
      await using h = await lock.acquire(k("U"), { leaseMs: 5000, waitMs: 0 });
      assert.ok(h !== null);
    }
    const again = await lock.acquire(k("U"), { leaseMs: 5000, waitMs: 0 });
    assert.ok(again !== null, "released by await using");
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    await rejectsWithKind(
      lock.acquire(k("U"), { leaseMs: 5000, waitMs: 5000, signal: ac.signal }),
      ["timeout"],
      "aborted lock wait",
    );
    await again.release();
  }, "lock");

  t(
    "capability lock: a wait under way when the backend closes rejects with kind closed",
    async (b) => {
      if (b.close === undefined) return;
      const lock = b.capabilities.lock!;
      const held = await lock.acquire(k("C"), { leaseMs: 5000, waitMs: 0 });
      assert.ok(held !== null);
      const t0 = Date.now();
      const waiting = lock.acquire(k("C"), { leaseMs: 5000, waitMs: 10_000 });
      waiting.catch(() => {});
      await sleep(50); // waiting
      await b.close();
      await rejectsWithKind(waiting, ["closed"], "a lock wait across close()");
      // Not after the wait ran its course: a closed backend keeps no script waiting.
      assert.ok(Date.now() - t0 < 5000, `ended ${Date.now() - t0} ms after it started`);
    },
    "lock",
  );

  // ------------------------------------------------------------------ timeouts

  t("capability timeouts: an aborted signal rejects with kind timeout", async (b) => {
    await b.set(k("to"), bytes(1));
    const ac = new AbortController();
    ac.abort();
    await rejectsWithKind(b.get(k("to"), { signal: ac.signal }), ["timeout"], "get");
    await rejectsWithKind(b.set(k("to"), bytes(2), null, { signal: ac.signal }), [
      "timeout",
    ], "set");
    await rejectsWithKind(b.exists(k("to"), { signal: ac.signal }), ["timeout"], "exists");
    await rejectsWithKind(b.delete(k("to"), { signal: ac.signal }), ["timeout"], "delete");
    assert.deepEqual(await b.get(k("to"), { timeoutMs: 5000 }), bytes(1));
    assert.deepEqual(await b.get(k("to"), { signal: new AbortController().signal }), bytes(1));
  }, "timeouts");

  // ------------------------------------------------------------------ prefix

  t("capability prefix: deletes exactly the keys with the prefix", async (b) => {
    const p = b.capabilities.prefix!;
    await b.set(k("ns1:a"), bytes(1));
    await b.set(k("ns1:b"), bytes(2), 60);
    await b.set(k("ns1"), bytes(3));
    await b.set(k("ns2:a"), bytes(4));
    assert.equal(await p.deleteByPrefix(k("ns1:")), 2);
    assert.equal(await b.get(k("ns1:a")), null);
    assert.equal(await b.get(k("ns1:b")), null);
    assert.deepEqual(await b.get(k("ns1")), bytes(3));
    assert.deepEqual(await b.get(k("ns2:a")), bytes(4));
    assert.equal(await p.deleteByPrefix(k("ns1:")), 0);
  }, "prefix");

  t(
    "capability prefix: deleteByTenantPrefix deletes the prefix under every tenant segment",
    async (b) => {
      const p = b.capabilities.prefix!;
      if (!p.deleteByTenantPrefix) return; // optional
      const ns = k("ns1:");
      const gone = [`t:${run}x:${ns}a`, `t:${run}y:${ns}b`, `t:%40${run}:${ns}c`];
      const kept = [
        `t:${run}x:${k("ns2:")}a`, // another prefix
        `t:${run}x:z:${ns}a`, // the segment ends at the first ":"
        `u:${run}x:${ns}a`, // not a tenant key
        `t:${run}x:${k("ns1")}`, // the prefix itself, without its ":"
      ];
      try {
        for (const key of [...gone, ...kept]) await b.set(key, bytes(1), 60);
        assert.equal(await p.deleteByTenantPrefix(ns), gone.length);
        for (const key of gone) assert.equal(await b.exists(key), false, key);
        for (const key of kept) assert.equal(await b.exists(key), true, key);
        assert.equal(await p.deleteByTenantPrefix(ns), 0);
      } finally {
        for (const key of [...gone, ...kept]) await b.delete(key).catch(() => false);
      }
    },
    "prefix",
  );

  // ------------------------------------------------------------------ tags

  t("capability tags: invalidating a tag deletes exactly its keys", async (b) => {
    const tags = b.capabilities.tags!;
    const [t1, t2, t3] = [k("t1"), k("t2"), k("t3")];
    await b.set(k("a"), bytes(1));
    await b.set(k("b"), bytes(2));
    await b.set(k("c"), bytes(3));
    await b.set(k("d"), bytes(4));
    await tags.addTags(k("a"), [t1], 60);
    await tags.addTags(k("b"), [t1, t2], null);
    await tags.addTags(k("c"), [t2]);
    const first = await tags.invalidateTags([t1]);
    assert.deepEqual([...first].sort(), [k("a"), k("b")].sort());
    assert.equal(await b.get(k("a")), null);
    assert.equal(await b.get(k("b")), null);
    assert.deepEqual(await b.get(k("c")), bytes(3));
    assert.deepEqual(await b.get(k("d")), bytes(4));
    assert.deepEqual(await tags.invalidateTags([t2, t3]), [k("c")]);
    assert.equal(await b.get(k("c")), null);
    assert.deepEqual(await tags.invalidateTags([t1]), [], "the index entries are gone");
    assert.deepEqual(await b.get(k("d")), bytes(4));
  }, "tags");

  t("capability tags: setWithTags stores the value and its tags together", async (b) => {
    const tags = b.capabilities.tags!;
    if (!tags.setWithTags) return; // optional
    const [t1, t2] = [k("t1"), k("t2")];
    await tags.setWithTags(k("a"), bytes(1), 60, [t1, t2]);
    await tags.setWithTags(k("b"), bytes(2), null, [t1]);
    await tags.setWithTags(k("c"), bytes(3), undefined, []);
    assert.deepEqual(await b.get(k("a")), bytes(1));
    assert.deepEqual(await b.get(k("b")), bytes(2));
    assert.deepEqual(await b.get(k("c")), bytes(3));
    if (b.capabilities.ttl) {
      const left = await b.capabilities.ttl.ttl(k("a"));
      assert.ok(left !== null && left > 50 && left <= 60, `ttl ${left}`);
      assert.equal(await b.capabilities.ttl.ttl(k("b")), Infinity);
    }
    await tags.setWithTags(k("a"), bytes(9), 60, [t2]); // overwrite
    assert.deepEqual(await b.get(k("a")), bytes(9));
    assert.deepEqual(await tags.invalidateTags([t2]), [k("a")]);
    assert.equal(await b.get(k("a")), null);
    assert.deepEqual(await tags.invalidateTags([t1]), [k("b")]);
    assert.deepEqual(await b.get(k("c")), bytes(3));
    await rejectsWithKind(
      tags.setWithTags(k("d"), bytes(4), 60, [1 as unknown as string]),
      ["permanent"],
      "a non-string tag",
    );
    assert.equal(await b.exists(k("d")), false, "nothing stored when the tags are refused");
  }, "tags");
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
