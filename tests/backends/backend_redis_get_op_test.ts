/**
 * The batched `GET` fast path (`backends/_redis_get_op.ts`: one object for the batch entry, the
 * deadline and the settlement) keeps `RedisCore.run`'s guarantees: a hung server times each get out
 * at its deadline, a chunked value is read whole, `close()` waits for gets in flight, and a
 * failure of the batch fails its gets with a typed error.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { freePort, redisServerTestOptions, startRedisServer } from "../_redis_server.ts";
import { RedisBackend } from "../../backends/mod.ts";
import { BackendError } from "../../errors.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const kindOf = (p: Promise<unknown>) =>
  p.then(() => "resolved", (e) => e instanceof BackendError ? e.kind : `other: ${e}`);

test(
  "redis get fast path: concurrent gets time out on a hung server, read chunked values whole, " +
    "and keep close() waiting until they settle",
  async () => {
    await using server = await startRedisServer(await freePort());
    await using b = new RedisBackend({
      url: server.url,
      operationTimeoutMs: 300,
      chunkSizeBytes: 1024,
    });
    const big = new Uint8Array(5000).map((_, i) => i * 7);
    await b.set("big", big, null, { timeoutMs: 10_000 });
    await b.set("k", enc("v"), null, { timeoutMs: 10_000 });
    // Batched (one MGET) with a chunked value among plain ones and a miss. With a deadline only a
    // hang reaches, as the writes: the 300 ms default is for the hung server below (a loaded host
    // took longer than that for these reads).
    const patient = { timeoutMs: 10_000 };
    const got = await Promise.all(
      ["k", "big", "none", "big"].map((key) => b.get(key, patient)),
    );
    assert.deepEqual(got, [enc("v"), big, null, big]);

    server.pause();
    const t0 = performance.now();
    const kinds = await Promise.all(Array.from({ length: 20 }, () => kindOf(b.get("k"))));
    const took = performance.now() - t0;
    assert.deepEqual(kinds, Array(20).fill("timeout"));
    // Not early; the upper bound only tells 300 ms from the 5 s default (timers run late under load).
    assert.ok(took >= 280 && took < 4000, `took ${took}`);

    // In flight while hung: close() waits for it instead of cutting it off.
    const pending = b.get("k", { timeoutMs: 60_000 });
    let closed = false;
    const closing = b.close().then(() => closed = true);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(closed, false, "close() waits for the get in flight");
    server.resume();
    assert.deepEqual(await pending, enc("v"));
    await closing;
    assert.equal(closed, true);
  },
  redisServerTestOptions,
);
