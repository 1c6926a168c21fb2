// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Arguments the key hash writes alike share one L1 entry, end to end (`engine/_argkey.ts`
 * `KeyForm`): for each pair of forms of one argument, under the standard and the interop key
 * hash, a call through one form is answered the other's value (one L2 entry, one L1 entry), and
 * an invalidation through either form evicts the one copy, locally (Memory backend) and, through
 * Redis's invalidation bus, in another instance's L1 (127.0.0.1:6379, a unique key prefix).
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import { sharedRedisTestOptions } from "../_redis_server.ts";
import { withDeadline } from "../_timing.ts";
import { cache, RedisBackend } from "../../mod.ts";
import { float64 } from "../../protocol/keys.ts";
import { MemoryBackend } from "../../backends/mod.ts";
import type { InvalidationEvent } from "../../backends/types.ts";
import { pythonIsoformat } from "../../protocol/internal.ts";

const d = new Date(1_700_000_000_500);
/** Pairs of arguments the standard key hash writes alike. */
const STD_PAIRS: [string, unknown, unknown][] = [
  ["Date / ISO text", d, pythonIsoformat(d)],
  ["Map / object", new Map<string, unknown>([["b", 2], ["a", [d]]]), {
    a: [pythonIsoformat(d)],
    b: 2,
  }],
  ["Buffer / Uint8Array", Buffer.from([1, 2, 255]), Uint8Array.of(1, 2, 255)],
  ["7n / 7", 7n, 7],
  ["float64(1.5) / 1.5", float64(1.5), 1.5],
  ["float64(2^53) / 2^53", float64(2 ** 53), 2 ** 53],
  ["nested safe bigint", [1n, { x: -5n }], [1, { x: -5 }]],
];
/** Pairs of arguments the interop key hash writes alike. */
const ARGS_PAIRS: [string, unknown, unknown][] = [
  ["Date / seconds", d, 1_700_000_000.5],
  ["Set / sorted array", new Set([3, 1, 2, 1n]), [1, 2, 3]],
  ["2n^60 / 2^60", 2n ** 60n, 2 ** 60],
  ["2n^64-2048 / its number", 2n ** 64n - 2048n, 2 ** 64 - 2048],
  ["float64(3) / 3", float64(3), 3],
  ["Map of Set / object of array", new Map([["k", new Set(["b", "a"])]]), { k: ["a", "b"] }],
  ["Buffer / Uint8Array", Buffer.from([9]), Uint8Array.of(9)],
];
/** The options of each kind of key; an interop function's identity is its operation. */
const KINDS: [string, (op: string) => Record<string, unknown>, [string, unknown, unknown][]][] = [
  ["standard", () => ({}), STD_PAIRS],
  ["interop", (op) => ({ interop: { namespace: "alias", operation: op } }), ARGS_PAIRS],
];
const op = (where: string, label: string) =>
  `e2e-${where}-${label.toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "")}`;

for (const [kind, extra, pairs] of KINDS) {
  test(`${kind} keys (Memory backend): both forms share one L1 entry; invalidating either evicts it`, async () => {
    for (const [label, a, b] of pairs) {
      let calls = 0;
      const f = cache(async (_x: unknown, _y: number) => ({ n: ++calls }), {
        name: `argkey.e2e.${kind}.${label.replace(/[^a-z0-9]+/gi, "_")}`,
        backend: new MemoryBackend(),
        ttl: 60,
        ...extra(op("memory", label)),
      });
      for (const arity of [1, 2]) {
        const call = (x: unknown) => (arity === 1 ? f(x, undefined as never) : f(x, 5));
        calls = 0;
        await f.cacheClear();
        const msg = `${label} (${arity} argument${arity === 1 ? "" : "s"}): ${inspect([a, b])}`;
        assert.deepEqual(await call(a), { n: 1 }, msg);
        assert.deepEqual(await call(b), { n: 1 }, msg);
        assert.equal(f.cacheInfo().size, 1, `one L1 entry: ${msg}`);
        await f.invalidate(...([b, arity === 1 ? undefined : 5] as [unknown, number]));
        assert.equal(f.cacheInfo().size, 0, `evicted through the other form: ${msg}`);
        assert.deepEqual(await call(a), { n: 2 }, msg);
        assert.deepEqual(await call(b), { n: 2 }, msg);
        await f.invalidate(...([a, arity === 1 ? undefined : 5] as [unknown, number]));
        assert.deepEqual(await call(b), { n: 3 }, msg);
      }
    }
  });
}

const URL = "redis://127.0.0.1:6379";
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

/**
 * What an instance's invalidation bus hears from the other instance: `next(reason)`, made before
 * the step that announces it, resolves once the bus has delivered the next key event of `reason`
 * to every handler (the instance's cached functions included: `deliver` calls them in one go).
 *
 * The steps below wait for these events, not for what they cause: an announcement follows its
 * write or deletion, and one that arrives during the next step changes it (a write announced while
 * the other instance reads the key refuses that read's L1 fill; a deletion announced while it
 * computes the key discards the result). Waiting for an L1 to be empty, or for a key to exist in
 * Redis (a lease marker exists before the value), said nothing about the announcement.
 */
function hearing() {
  const waiting: { reason: string; heard: () => void }[] = [];
  const handler = (ev: InvalidationEvent) => {
    if (ev.level !== "key") return;
    const i = waiting.findIndex((w) => w.reason === (ev.reason ?? "delete"));
    if (i >= 0) waiting.splice(i, 1)[0].heard();
  };
  const next = (reason: "write" | "set" | "delete"): Promise<void> =>
    withDeadline(
      new Promise<void>((heard) => waiting.push({ reason, heard })),
      `the other instance's ${reason} event`,
    );
  return { handler, next };
}

for (const [kind, extra, pairs] of KINDS) {
  test(
    `${kind} keys (Redis bus): an invalidation through one form evicts both forms' copy in another instance`,
    async () => {
      const id = `alias-${kind}-${crypto.randomUUID().slice(0, 8)}`;
      const opts = {
        url: URL,
        keyPrefix: `cktest:${id}:`,
        invalidationChannel: `cktest:inv:${id}`,
      };
      const ba = new RedisBackend(opts);
      const bb = new RedisBackend(opts);
      // What each instance hears from the other (subscribed before any step announces anything).
      const atA = hearing();
      const atB = hearing();
      await ba.capabilities.invalidation!.subscribe(atA.handler);
      await bb.capabilities.invalidation!.subscribe(atB.handler);
      try {
        for (const [label, a, b] of pairs) {
          let calls = 0;
          const work = async (_x: unknown) => ({ n: ++calls });
          const o = {
            name: `argkey.e2e.redis.${kind}.${label.replace(/[^a-z0-9]+/gi, "_")}`,
            ttl: 60,
            l1: { invalidation: true },
            ...bare,
            ...extra(op("redis", label)),
          };
          const fa = cache(work, { ...o, backend: ba });
          const fb = cache(work, { ...o, backend: bb });
          const msg = `${label}: ${inspect([a, b])}`;
          // A miss answers before its L2 write lands: b reads once a has announced it.
          let heard = atB.next("write");
          assert.deepEqual(await fa(a), { n: 1 }, msg);
          await heard;
          assert.deepEqual(await fb(b), { n: 1 }, `L2 hit through the other form: ${msg}`);
          assert.deepEqual(await fb(a), { n: 1 }, msg);
          assert.equal(fb.cacheInfo().size, 1, `one L1 entry in b: ${msg}`);
          assert.equal(fb.cacheInfo().l1Hits, 1, `b's second call is an L1 hit: ${msg}`);
          // Remote deletion through either form.
          heard = atB.next("delete");
          await fa.invalidate(a);
          await heard;
          assert.equal(fb.cacheInfo().size, 0, `b evicted: ${msg}`);
          heard = atA.next("write");
          assert.deepEqual(await fb(b), { n: 2 }, msg);
          assert.deepEqual(await fb(a), { n: 2 }, msg);
          await heard;
          assert.deepEqual(await fa(b), { n: 2 }, msg);
          assert.equal(fa.cacheInfo().size, 1, `a keeps what it read: ${msg}`);
          heard = atA.next("delete");
          await fb.invalidate(a);
          await heard;
          assert.equal(fa.cacheInfo().size, 0, `a evicted: ${msg}`);
          heard = atB.next("write");
          assert.deepEqual(await fa(a), { n: 3 }, msg);
          await heard;
          // A remote write through one form replaces the other form's copy.
          assert.deepEqual(await fb(b), { n: 3 }, msg);
          assert.equal(fb.cacheInfo().size, 1, `b keeps what it read: ${msg}`);
          heard = atB.next("set"); // a forced refresh announces a write on purpose
          await fa.refresh(b);
          await heard;
          assert.equal(fb.cacheInfo().size, 0, `b's copy replaced: ${msg}`);
          assert.deepEqual(await fb(a), { n: 4 }, msg);
          await fa.cacheClear();
        }
      } finally {
        await ba.close();
        await bb.close();
      }
    },
    { ...sharedRedisTestOptions, sanitize: false },
  );
}
