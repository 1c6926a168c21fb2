/**
 * Streamed values on Redis: {@linkcode getStream} reads a chunked value one chunk at a time and
 * {@linkcode setStream} writes one from a `ReadableStream` holding one chunk in memory, both on the
 * chunk format of `_redis_chunks.ts`. Apart from the value path because neither is on the cache's
 * hot path and both carry their own buffering.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import type { OperationOptions } from "./types.ts";
import { fromBuffer } from "./_redis_driver.ts";
import { toBackendError } from "./_redis_errors.ts";
import { chunkKey, decodeManifest, hasMagic } from "./_redis_chunks.ts";
import { checkKey, type RedisCore, ttlToMs } from "./_redis_core.ts";
import { chunkLength, writeChunked } from "./_redis_chunked_io.ts";

/**
 * Read a value as a stream of chunks, without assembling it: `null` on a miss. If the value is
 * replaced or deleted and its grace period ends while the stream is being read, the stream errors
 * with a `transient` BackendError (it never mixes two values).
 *
 * @example
 * ```ts ignore
 * import assert from "node:assert/strict";
 * import { RedisBackend } from "@cachekit/core/backends";
 *
 * await using backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: "demo:" });
 * await backend.set("big", new Uint8Array(3 << 20), 60);
 * const stream = await backend.getStream("big");
 * let length = 0;
 * if (stream) for await (const piece of stream) length += piece.length;
 * assert.equal(length, 3 << 20);
 * ```
 */
export function getStream(
  core: RedisCore,
  key: string,
  opts?: OperationOptions,
): Promise<ReadableStream<Uint8Array> | null> {
  checkKey(key, "getStream");
  const full = core.full(key);
  return core.run("getStream", opts, async () => {
    const v = await core.driver.send(full, true, ["GET", full], true) as Uint8Array | null;
    if (v === null || v === undefined) return null;
    const bytes = fromBuffer(v);
    if (!hasMagic(bytes)) {
      return new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(bytes);
          c.close();
        },
      });
    }
    const m = decodeManifest(bytes, full);
    if (!m) return null;
    let i = 0;
    return new ReadableStream<Uint8Array>({
      pull: async (c) => {
        if (i >= m.n) return c.close();
        const ck = chunkKey(m.b, m.g, i);
        const part = await core.run(
          "getStream",
          opts,
          () => core.driver.send(ck, true, ["GET", ck], true) as Promise<Uint8Array | null>,
        );
        if (part === null || part === undefined || part.length !== chunkLength(m, i)) {
          throw new BackendError(
            `Redis getStream failed: the value under ${
              JSON.stringify(key)
            } was replaced, deleted ` +
              `or expired while it was being read (chunk ${i} of ${m.n}).`,
            { kind: "transient", backend: "redis", operation: "getStream" },
          );
        }
        c.enqueue(fromBuffer(part));
        i++;
        if (i >= m.n) c.close();
      },
    }, { highWaterMark: 1 });
  });
}

/**
 * Store a value from a stream, one chunk in memory at a time: small results are stored plain,
 * larger ones chunked and committed atomically at the end (a stream that errors stores nothing).
 * `timeoutMs`/`signal` apply to each Redis command, not to the whole stream.
 *
 * @example
 * ```ts ignore
 * const res = await fetch("https://example.com/big.bin");
 * await backend.setStream("big", res.body!, 3600);
 * ```
 */
export async function setStream(
  core: RedisCore,
  key: string,
  stream: ReadableStream<Uint8Array>,
  ttlSeconds?: number | null,
  opts?: OperationOptions,
): Promise<void> {
  checkKey(key, "setStream");
  let ttlMs: number;
  try {
    ttlMs = ttlToMs(ttlSeconds, "setStream");
  } catch (e) {
    await stream.cancel().catch(() => {});
    throw e;
  }
  const size = core.chunkSizeBytes;
  const reader = stream.getReader();
  const pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let ended = false;
  const fill = async (): Promise<void> => {
    while (!ended && pendingBytes <= size) {
      const { done, value } = await reader.read();
      if (done) ended = true;
      else if (value && value.length > 0) {
        if (!(value instanceof Uint8Array)) {
          throw new BackendError("Invalid stream for setStream: chunks must be Uint8Array.", {
            kind: "permanent",
            backend: "redis",
            operation: "setStream",
          });
        }
        pending.push(value);
        pendingBytes += value.length;
      }
    }
  };
  const take = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const head = pending[0];
      const need = n - off;
      if (head.length <= need) {
        out.set(head, off);
        off += head.length;
        pending.shift();
      } else {
        out.set(head.subarray(0, need), off);
        pending[0] = head.subarray(need);
        off += need;
      }
    }
    pendingBytes -= n;
    return out;
  };
  try {
    await fill();
    if (ended && pendingBytes <= size) {
      return await core.set(key, take(pendingBytes), ttlSeconds, opts);
    }
    const full = core.full(key);
    const chunks = async function* (): AsyncGenerator<Uint8Array> {
      while (pendingBytes > 0 || !ended) {
        await fill();
        if (pendingBytes === 0) break;
        yield take(Math.min(size, pendingBytes));
      }
    };
    if (core.closing) throw core.closedError("setStream");
    // Tracked as one operation: connecting, the chunk writes and the cleanup of a failed write.
    await core.track((async () => {
      await core.driver.ready().catch((e) => {
        throw core.error(e, "setStream");
      });
      await writeChunked(core, full, chunks(), ttlMs, null, 2, opts ?? {});
    })());
  } catch (e) {
    await reader.cancel(e).catch(() => {});
    throw toBackendError(e, "setStream");
  } finally {
    reader.releaseLock();
  }
}
