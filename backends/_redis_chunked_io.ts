/**
 * Values above the chunk size on Redis: the whole value a manifest describes, read from its
 * chunks (looking again when one is gone), and a value written as chunks under a fresh generation,
 * then committed by its manifest. Internal; the manifest format is `_redis_chunks.ts`.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import type { OperationOptions } from "./types.ts";
import { fromBuffer, toBuffer } from "./_redis_driver.ts";
import {
  chunkBase,
  chunkKey,
  COMMIT_SCRIPT,
  decodeManifest,
  encodeManifest,
  hasMagic,
  MAGIC_STR,
  type Manifest,
  newGeneration,
} from "./_redis_chunks.ts";
import type { OpState, RedisCore } from "./_redis_core.ts";

const PENDING_CHUNK_MS = 5 * 60_000; // provisional expiry of chunks until their manifest commits

/** Length of chunk `i` of the value `m` describes. */
export function chunkLength(m: Manifest, i: number): number {
  return i < m.n - 1 ? m.c : m.s - m.c * (m.n - 1);
}

/**
 * The whole value a manifest read under `full` describes (`null` when it is malformed, or a
 * chunk is gone and the key no longer holds a readable value); looks again `retries` times.
 */
export async function readChunked(
  core: RedisCore,
  full: string,
  manifest: Uint8Array,
  retries: number,
): Promise<Uint8Array | null> {
  const m = decodeManifest(manifest, full);
  if (!m) return null;
  const parts = await Promise.all(
    Array.from({ length: m.n }, (_, i) => {
      const ck = chunkKey(m.b, m.g, i);
      return core.driver.send(ck, true, ["GET", ck], true) as Promise<Uint8Array | null>;
    }),
  );
  if (parts.every((p, i) => p !== null && p !== undefined && p.length === chunkLength(m, i))) {
    const out = new Uint8Array(m.s);
    let off = 0;
    for (const p of parts) {
      out.set(p!, off);
      off += p!.length;
    }
    return out;
  }
  // A chunk is gone: the value was replaced, deleted or expired meanwhile. Look once more.
  if (retries <= 0) return null;
  const again = await core.driver.send(full, true, ["GET", full], true) as Uint8Array | null;
  if (again === null || again === undefined) return null;
  const bytes = fromBuffer(again);
  return hasMagic(bytes) ? readChunked(core, full, bytes, retries - 1) : bytes;
}

/**
 * Write chunks under a fresh generation, then commit the manifest atomically. `chunks` yields
 * pieces of exactly `chunkSizeBytes` except the last; `inFlight` bounds concurrent chunk writes.
 */
export async function writeChunked(
  core: RedisCore,
  full: string,
  chunks: Iterable<Uint8Array> | AsyncIterable<Uint8Array>,
  ttlMs: number,
  state: OpState | null,
  inFlight: number,
  perCommand?: OperationOptions,
): Promise<void> {
  const { base, sameSlot } = chunkBase(full);
  if (!sameSlot && core.isCluster) {
    throw new BackendError(
      `Redis set failed: key ${
        JSON.stringify(full)
      } has a "}" but no hash tag, so its large value ` +
        `cannot be chunked within one cluster slot. Use a key without "}" or with a {tag}.`,
      { kind: "permanent", backend: "redis", operation: "set" },
    );
  }
  const gen = newGeneration();
  const keys: string[] = [];
  const running = new Set<Promise<unknown>>();
  let total = 0;
  let failure: unknown;
  const send = (ck: string, chunk: Uint8Array) => {
    const args = ["SET", ck, toBuffer(chunk), "PX", String(PENDING_CHUNK_MS)];
    return perCommand
      ? core.run("set", perCommand, () => core.driver.send(ck, false, args))
      : core.driver.send(ck, false, args);
  };
  try {
    for await (const chunk of chunks) {
      if (state?.expired) break;
      const ck = chunkKey(base, gen, keys.length);
      keys.push(ck);
      total += chunk.length;
      const p: Promise<unknown> = send(ck, chunk).catch((e) => (failure ??= e)).finally(() =>
        running.delete(p)
      );
      running.add(p);
      if (running.size >= inFlight) await Promise.race(running);
      if (failure !== undefined) break;
    }
    await Promise.all(running);
    if (failure !== undefined) throw failure;
    if (state?.expired) throw new Error("deadline passed before commit");
    const manifest = encodeManifest(
      {
        g: gen,
        n: keys.length,
        s: total,
        c: core.chunkSizeBytes,
        b: base,
      } satisfies Manifest,
    );
    const commit = () =>
      core.driver.eval(COMMIT_SCRIPT, [full, ...keys], [
        MAGIC_STR,
        toBuffer(manifest),
        String(ttlMs),
        String(core.graceMs),
      ]);
    const ok = perCommand ? await core.run("set", perCommand, commit) : await commit();
    if (ok !== 1) {
      throw new BackendError(
        "Redis set failed: chunks of a large value vanished before the commit (evicted?).",
        { kind: "transient", backend: "redis", operation: "set" },
      );
    }
  } catch (e) {
    await Promise.allSettled(running);
    // Best effort: drop the chunks of the failed generation now rather than at their expiry.
    await Promise.allSettled(keys.map((ck) => core.driver.send(ck, false, ["UNLINK", ck])));
    throw e;
  }
}
