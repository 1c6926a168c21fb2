/**
 * The three backends a storage-dependent engine test runs on: a `MemoryBackend`, a `FileBackend`
 * in a fresh temporary directory, and a `RedisBackend` on the shared server (127.0.0.1:6379) under
 * a unique key prefix and invalidation channel. Each comes as a factory, so a test can open two
 * instances of one store (two "processes": separate L1s, one L2).
 *
 * @module
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createClient } from "redis";
import type { TestOptions } from "../_harness.ts";
import { until } from "../_timing.ts";
import { sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { type Backend, FileBackend, MemoryBackend, RedisBackend } from "../../mod.ts";

/** A backend kind. */
export type Kind = "memory" | "file" | "redis";

/** Every kind. */
export const KINDS: readonly Kind[] = ["memory", "file", "redis"];

/** One store, and instances of it (each a separate client of the same data). */
export interface Store {
  /** A new instance on the store (memory: the same object, it is the store). */
  open(): Backend;
  /** Close every instance and remove what the store holds. */
  close(): Promise<void>;
  /** Redis: the invalidation channel of the instances. */
  channel?: string;
}

/** Wait until `n` connections listen to Redis channel `channel` (instances on the bus). */
export async function subscribed(channel: string, n: number): Promise<boolean> {
  const redis = createClient({ url: "redis://127.0.0.1:6379" });
  await redis.connect();
  try {
    return await until(async () => {
      const reply = await redis.sendCommand(["PUBSUB", "NUMSUB", channel]) as unknown[];
      return Number(reply[1]) >= n;
    }, 10_000);
  } finally {
    await redis.close();
  }
}

/** Open a store of `kind`. */
export function store(kind: Kind, label: string): Store {
  const opened: Backend[] = [];
  if (kind === "memory") {
    const b = new MemoryBackend();
    return { open: () => b, close: () => b.close?.() ?? Promise.resolve() };
  }
  if (kind === "file") {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ck-${label}-`));
    return {
      open: () => {
        const b = new FileBackend({ directory: dir });
        opened.push(b);
        return b;
      },
      close: async () => {
        for (const b of opened) await b.close?.();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const prefix = uniquePrefix(label);
  return {
    channel: `${prefix}inv`,
    open: () => {
      const b = new RedisBackend({
        url: "redis://127.0.0.1:6379",
        keyPrefix: prefix,
        invalidationChannel: `${prefix}inv`,
      });
      opened.push(b);
      return b;
    },
    close: async () => {
      for (const b of opened) await b.close?.();
    },
  };
}

/** Test options for `kind`: Redis tests skip outside CI when no server is up; no sanitizers. */
export function kindOptions(kind: Kind): TestOptions {
  return kind === "redis" ? { ...sharedRedisTestOptions, sanitize: false } : { sanitize: false };
}
