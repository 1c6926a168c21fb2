/**
 * The stampede lock of a miss on Redis (`capabilities.fetchLock`): read a value or else take the
 * key's lock in one Lua script, and store the computed value and release the lock in one more, so
 * a lock-on miss is two round trips where `GET`, `SET NX`, `GET`, `SET`, release took five. The
 * lock is `<key>:lock` (as before, and as cachekit-py names it) on a single Redis; on a cluster it
 * lives in the key's slot ({@linkcode lockKeyOf}), which a script touching both needs.
 *
 * Hand-written slot arithmetic (CRC16/XMODEM, as the cluster specification gives it) because a
 * key with a `}` but no hash tag cannot be tagged into its own slot by quoting it: its lock gets a
 * short tag found to hash to the same slot instead.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import type { FetchLockCapability, FetchLockOptions, OperationOptions } from "./types.ts";
import {
  FETCH_LOCK_MANY_SCRIPT,
  FETCH_LOCK_SCRIPT,
  hasMagic,
  SET_UNLOCK_MANY_SCRIPT,
  SET_UNLOCK_SCRIPT,
  UNLOCK_SCRIPT,
} from "./_redis_chunks.ts";
import { fromBuffer, type RedisArg, type RedisDriver, toBuffer } from "./_redis_driver.ts";
import type { BatchEntry, BatchKind } from "./_redis_batch.ts";
import { checkKey, type RedisCore, ttlToMs } from "./_redis_core.ts";
import type { RedisTags } from "./_redis_tags.ts";
import { RedisKeyLease } from "./_redis_lease.ts";

const CRC16_TABLE: Uint16Array = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let j = 0; j < 8; j++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

/** CRC16/XMODEM of a string's UTF-8 bytes. */
function crc16(s: string): number {
  const bytes = new TextEncoder().encode(s);
  let crc = 0;
  for (const b of bytes) crc = ((crc << 8) & 0xffff) ^ CRC16_TABLE[((crc >> 8) ^ b) & 0xff];
  return crc;
}

/** The hash tag of a key (what Redis Cluster hashes), or `null` when it hashes whole. */
function hashTag(key: string): string | null {
  const open = key.indexOf("{");
  if (open < 0) return null;
  const close = key.indexOf("}", open + 1);
  return close > open + 1 ? key.slice(open + 1, close) : null;
}

/**
 * The cluster slot of a key, as `CLUSTER KEYSLOT` computes it.
 *
 * @param key A full Redis key.
 * @returns Its slot, 0–16383.
 */
export function keySlot(key: string): number {
  return crc16(hashTag(key) ?? key) & 16383;
}

/** Per slot, a short tag hashing to it (found on first use). */
const slotTags = new Map<number, string>();

function tagForSlot(slot: number): string {
  let tag = slotTags.get(slot);
  if (tag !== undefined) return tag;
  for (let i = 0;; i++) {
    if ((crc16(String(i)) & 16383) === slot) {
      tag = String(i);
      break;
    }
  }
  slotTags.set(slot, tag);
  return tag;
}

/**
 * The key of the stampede lock of the full key `full`, in the same cluster slot: `full:lock` when
 * `full` has a hash tag (the lock keeps it), `{full}:lock` when it has no `}` (the tag is the whole
 * key, which hashes as the key does), else `{t}:lock:full` with a short tag `t` of the same slot.
 *
 * @param full A full Redis key (key prefix included).
 * @returns The lock's key.
 */
export function lockKeyOf(full: string): string {
  if (hashTag(full) !== null) return `${full}:lock`;
  if (!full.includes("}")) return `{${full}}:lock`;
  return `{${tagForSlot(keySlot(full))}}:lock:${full}`;
}

/** A read-or-lock or a write-and-unlock waiting in the connection's batch. */
interface ScriptEntry extends BatchEntry {
  /** The value's full key and its lock's. */
  full: string;
  lock: string;
  /** The script's arguments for this key (three). */
  a: RedisArg;
  b: string;
  c: string;
}

/**
 * One script call for a batch of entries: `single` with this key's arguments when alone, else
 * `many` over all of them, whose reply has one element per key (`{message}` for a key whose own
 * command failed: that operation fails alone, with Redis's message). With `joined`, the first
 * arguments (`Buffer` values) go as one argument, followed by each one's length and the others.
 */
function scriptBatch(
  driver: RedisDriver,
  single: typeof FETCH_LOCK_SCRIPT,
  many: typeof FETCH_LOCK_SCRIPT,
  joined: boolean,
): BatchKind<ScriptEntry> {
  return {
    flush(entries: ScriptEntry[]): void {
      if (entries.length === 1) {
        const e = entries[0];
        driver.evalNow(single, [e.full, e.lock], [e.a, e.b, e.c], true).then(e.resolve, e.reject);
        return;
      }
      const keys: string[] = new Array(entries.length * 2);
      const at = joined ? 1 : 0;
      const args: RedisArg[] = new Array(entries.length * 3 + at);
      for (let i = 0; i < entries.length; i++) {
        const e = entries[i];
        keys[2 * i] = e.full;
        keys[2 * i + 1] = e.lock;
        args[3 * i + at] = joined ? String(e.a.length) : e.a;
        args[3 * i + at + 1] = e.b;
        args[3 * i + at + 2] = e.c;
      }
      if (joined) args[0] = Buffer.concat(entries.map((e) => e.a as Buffer));
      driver.evalNow(many, keys, args, true).then((reply) => {
        const r = reply as unknown[];
        for (let i = 0; i < entries.length; i++) {
          const v = r[i];
          if (Array.isArray(v)) entries[i].reject(new Error(String(v[0])));
          else entries[i].resolve(v);
        }
      }, (error) => {
        for (const e of entries) e.reject(error);
      });
    },
  };
}

/** Read-or-lock and write-and-unlock over `core`'s connection. */
export class RedisFetchLock implements FetchLockCapability {
  readonly #core: RedisCore;
  readonly #tags: RedisTags;
  readonly #fetchBatch: BatchKind<ScriptEntry>;
  readonly #setBatch: BatchKind<ScriptEntry>;
  /** The lock with its lease in the key itself (`_redis_lease.ts`), over this one. */
  readonly inKey: RedisKeyLease;

  /** The capability over `core`'s connection; `tags` stores tagged values. */
  constructor(core: RedisCore, tags: RedisTags) {
    this.#core = core;
    this.#tags = tags;
    this.inKey = new RedisKeyLease(core, tags, this);
    this.#fetchBatch = scriptBatch(core.driver, FETCH_LOCK_SCRIPT, FETCH_LOCK_MANY_SCRIPT, false);
    this.#setBatch = scriptBatch(core.driver, SET_UNLOCK_SCRIPT, SET_UNLOCK_MANY_SCRIPT, true);
    // Known before the first call, so that a batch goes out without waiting on a digest.
    for (const s of [FETCH_LOCK_SCRIPT, FETCH_LOCK_MANY_SCRIPT, SET_UNLOCK_SCRIPT]) void s.sha();
    void SET_UNLOCK_MANY_SCRIPT.sha();
  }

  /**
   * `script` over the value's key and its lock, with three arguments: in the connection's batch
   * (one script call for the concurrent operations of its kind) when there is one.
   */
  #script(
    kind: BatchKind<ScriptEntry>,
    script: typeof FETCH_LOCK_SCRIPT,
    full: string,
    a: RedisArg,
    b: string,
    c: string,
    bytes: number,
  ): Promise<unknown> {
    const driver = this.#core.driver;
    const lock = this.#lockOf(full);
    const batch = driver.batch;
    if (batch === undefined) return driver.eval(script, [full, lock], [a, b, c], true);
    return new Promise((resolve, reject) => {
      batch.add(kind, { full, lock, a, b, c, resolve, reject } as ScriptEntry, bytes);
    });
  }

  /**
   * The lock of a full key. Single Redis: `full:lock`, the name `lock.acquire` gives it and the
   * name cachekit-py 0.3.0 locks (`f"{cache_key}:lock"`, tenant-scoped like the key), so that
   * processes of both, and of earlier versions, exclude each other. Cluster: in the key's slot
   * ({@linkcode lockKeyOf}), which the scripts need.
   */
  #lockOf(full: string): string {
    return this.#core.isCluster ? lockKeyOf(full) : full + ":lock";
  }

  /** One `EVALSHA`: the value (a chunked one read whole), else whether the lock was taken. */
  fetchOrLock(
    key: string,
    token: string,
    leaseMs: number,
    opts?: FetchLockOptions,
  ): Promise<Uint8Array | boolean> {
    checkKey(key, "lock");
    const core = this.#core;
    const full = core.full(key);
    const lease = String(Math.max(1, Math.ceil(leaseMs)));
    const only = opts?.lockOnly === true ? "1" : "0";
    return core.run(
      "lock",
      opts,
      () =>
        this.#script(this.#fetchBatch, FETCH_LOCK_SCRIPT, full, token, lease, only, 0).then(
          (v) => this.#found(full, v, () => this.#dead(full, v as Uint8Array, token, lease, only)),
        ),
    );
  }

  /**
   * What the read-or-lock script answered: whether the lock was taken, or the value (a chunked
   * one read whole). A manifest that reads as nothing is `orElse()`.
   */
  #found(
    full: string,
    v: unknown,
    orElse: () => Promise<Uint8Array | boolean> | boolean,
  ): Uint8Array | boolean | Promise<Uint8Array | boolean> {
    if (typeof v === "number") return v === 1;
    const bytes = fromBuffer(v as Uint8Array);
    if (!hasMagic(bytes)) return bytes;
    return this.#core.readChunked(full, bytes, 1).then((whole) => whole ?? orElse());
  }

  /**
   * A manifest that reads as nothing (its chunks gone, or malformed): if the key still holds
   * exactly it, it is a dead entry, not a lock, and is deleted (compare-and-delete, on its exact
   * bytes); then the read-or-lock is tried once more. A manifest replaced meanwhile is left
   * alone, and one that reads as nothing again is a held lock (the caller looks again).
   */
  #dead(
    full: string,
    manifest: Uint8Array,
    token: string,
    lease: string,
    only: string,
  ): Promise<Uint8Array | boolean> {
    return this.#core.driver.eval(UNLOCK_SCRIPT, [full], [toBuffer(fromBuffer(manifest))])
      .then(() => this.#script(this.#fetchBatch, FETCH_LOCK_SCRIPT, full, token, lease, only, 0))
      .then((v) => this.#found(full, v, () => false));
  }

  /**
   * An untagged plain value: one script doing `SET … GET` and the token-checked release (one
   * command: at 100 concurrent callers, a command costs more than the Lua it runs; 49 vs 52 µs of
   * CPU per miss, client and server, against `SET` and the release pipelined). A tagged value: the
   * tagged write's script and the release, pipelined (one round trip; the release runs after the
   * write on the same connection, the lock being in the key's slot). A value written in several
   * steps (chunked; tags on a cluster) is released after them.
   */
  async setAndUnlock(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[] | null,
    token: string,
    opts?: OperationOptions,
  ): Promise<void> {
    const core = this.#core;
    const tagged = tags !== null && tags.length > 0;
    const plain = value instanceof Uint8Array && value.length <= core.chunkSizeBytes &&
      !hasMagic(value);
    if (plain && !tagged) {
      checkKey(key, "set");
      const ttlMs = ttlToMs(ttlSeconds, "set");
      const full = core.full(key);
      let old: unknown;
      try {
        old = await core.run("set", opts, () =>
          this.#script(
            this.#setBatch,
            SET_UNLOCK_SCRIPT,
            full,
            toBuffer(value),
            String(ttlMs),
            token,
            value.length,
          ));
      } catch (e) {
        if (!(e instanceof Error && e.message.includes("WRONGTYPE"))) throw e;
        old = null; // another type under the key: the plain write replaces it
        await this.#stepwise(key, value, ttlSeconds, tags, token, opts);
      }
      // What the key held (a batch answers 0 for nothing): a manifest's chunks are retired.
      if (old instanceof Uint8Array) {
        await core.retireReplaced(full, fromBuffer(old))?.catch(() => {});
      }
      return;
    }
    if (!plain || core.isCluster) {
      return await this.#stepwise(key, value, ttlSeconds, tags, token, opts);
    }
    const store = this.#tags.setWithTags(key, value, ttlSeconds, tags!, opts);
    const release = this.unlock(key, token).catch(() => false);
    await store;
    await release;
  }

  /** The write in its own steps, then the release. */
  async #stepwise(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[] | null,
    token: string,
    opts?: OperationOptions,
  ): Promise<void> {
    try {
      if (tags !== null && tags.length > 0) {
        await this.#tags.setWithTags(key, value, ttlSeconds, tags, opts);
      } else await this.#core.set(key, value, ttlSeconds, opts);
    } finally {
      // Released before the write resolves (a caller reading again must not find its own lock);
      // a failed release is left to the lease.
      await this.unlock(key, token).catch(() => false);
    }
  }

  /** Compare-and-delete the key's lock. */
  async unlock(key: string, token: string, opts?: OperationOptions): Promise<boolean> {
    checkKey(key, "unlock");
    const core = this.#core;
    const lock = this.#lockOf(core.full(key));
    const n = await core.run(
      "unlock",
      opts,
      () => core.driver.eval(UNLOCK_SCRIPT, [lock], [token]),
    );
    return Number(n) === 1;
  }
}
