/**
 * A file-system L2 backend: one directory, safe with many processes and runtimes writing at once.
 *
 * - **Layout**: one file per key, named by the hex SHA-256 of the key (so no key can name a path
 *   outside the directory); `.locks/` holds lease locks, `.tags/<sha256 of tag>/` the tag index,
 *   `.tmp-*` files are writes in progress. Entry format: see `_file_format.ts` (cachekit-py's
 *   14-byte header — magic `CK`, version 1, flags, 8-byte expiry, here in milliseconds — then the
 *   key, the value's length, and the value).
 * - **Writes** go to a temp file in the same directory created with `O_EXCL | O_NOFOLLOW` (mode
 *   `fileMode`, optionally fdatasync'ed), then `rename(2)` atomically replaces the entry: a reader
 *   sees the old file or the new one, never a torn one, and a writer killed mid-write leaves only
 *   an orphan temp file (removed by the maintenance scan once it is 60 s old: a live writer's
 *   file keeps a fresh mtime). No lock is needed on the data path.
 * - **Reads** open with `O_NOFOLLOW | O_NONBLOCK` (a symlink is a miss and is removed; a FIFO,
 *   socket or device node can never block the event loop), then `fstat` must show a regular file no
 *   larger than the largest valid entry: anything else is a miss and its name is unlinked. Then the
 *   header, the embedded key (a different key — a foreign file or a hash collision — is a miss) and
 *   the expiry are checked. Short, foreign or expired files are a miss and are removed (only if
 *   still the same inode, so a concurrent fresh write is never lost). A read refreshes the file's mtime (at most once a second)
 *   — the LRU "access time", since many mounts do not update atime.
 * - **TTL refresh** rewrites the 10 flags+expiry bytes in place (a single small `pwrite`).
 * - **Locks** (capability `lock`): lease lock files shared by Deno, Bun and Node (see
 *   `_file_lock.ts` for why not `flock`).
 * - **Tags**: `.tags/<tag hash>/<entry file name>` holds the key (and the entry's expiry); adding is
 *   an atomic file write, invalidating lists one small directory — safe across processes without
 *   locks.
 * - **Invalidation bus** (capability `invalidation`): `.bus` is a journal of the writes and
 *   invalidations of every process using the directory, one JSON line each, appended and polled
 *   (`_file_bus.ts`): another process's L1 copies follow them within `invalidationPollMs`.
 * - **Eviction**: when this process's estimate of the directory (last scan + its own writes since)
 *   reaches 90 % of `maxEntries` or `maxSizeBytes`, a background scan runs (at most once a second,
 *   at once past 100 %); if the real usage is ≥ 90 % it evicts least recently used files down to
 *   70 %. A writing process also scans on its first write and at least every 5 minutes (orphan temp
 *   files of killed writers, special files under entry names). One evictor at a time across
 *   processes (a lease lock); others skip. Limits are therefore soft: other processes' writes are
 *   seen at the next scan.
 * - **Directory mode**: a pre-existing directory that other users may write to (beyond `dirMode`)
 *   is tightened when this user owns it (a warning is logged under `["cachekit", "backend",
 *   "file"]`) and refused otherwise: other users could plant forged entries.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileBackend } from "@cachekit/core/backends";
 *
 * const dir = await Deno.makeTempDir();
 * const backend = new FileBackend({ directory: dir, maxEntries: 1000 });
 * await backend.set("greeting", new TextEncoder().encode("hello"), 60);
 * assert.equal(new TextDecoder().decode((await backend.get("greeting"))!), "hello");
 * await backend.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { closedError, localCapabilities } from "./_common.ts";
import { nodeFileOps } from "./_fs.ts";
import type { FileOps } from "./_fs.ts";
import { entryName, sameBytes } from "./_file_format.ts";
import { randomToken } from "./_file_lock.ts";
import { type FileBackendOptions, resolveFileOptions } from "./_file_options.ts";
import { FileStore, TYPE } from "./_file_store.ts";
import { deleteByPrefix, deleteByTenantPrefix, expire, ttl } from "./_file_keys.ts";
import { addTags, invalidateTags, setWithTags } from "./_file_tags.ts";
import { acquire } from "./_file_lock_handle.ts";
import { FileEviction, type PruneReport } from "./_file_eviction.ts";
import { FileBus } from "./_file_bus.ts";
import type {
  Backend,
  BackendHealth,
  InvalidationCapability,
  LockCapability,
  OperationOptions,
  PrefixCapability,
  TagCapability,
  TtlCapability,
} from "./types.ts";

export {
  type CacheDirectoryEnvironment,
  DEFAULT_FILE_BACKEND_OPTIONS,
  defaultCacheDirectory,
  type FileBackendDefaults,
  type FileBackendOptions,
} from "./_file_options.ts";
export type { PruneReport } from "./_file_eviction.ts";

/** The capabilities a {@linkcode FileBackend} always has. */
export interface FileBackendCapabilities {
  /** TTL inspection and refresh (a header rewrite). */
  readonly ttl: TtlCapability;
  /** Cross-process, cross-runtime lease locks. */
  readonly lock: LockCapability;
  /** Honours `timeoutMs` and `signal` (the abandoned file call finishes in the background). */
  readonly timeouts: true;
  /** Prefix deletion, also under every tenant segment (scans entry headers). */
  readonly prefix: Required<PrefixCapability>;
  /** Tag index shared by every process using the directory. */
  readonly tags: Required<TagCapability>;
  /**
   * Invalidation bus between the processes using the directory: an event journal in it, polled
   * every `invalidationPollMs` while functions with an L1 listen.
   */
  readonly invalidation: InvalidationCapability;
}

/**
 * The file-system {@linkcode Backend}. See the module documentation for the design.
 *
 * @example TTL, prefixes and tags
 * ```ts
 * import assert from "node:assert/strict";
 * import { FileBackend } from "@cachekit/core/backends";
 *
 * const dir = await Deno.makeTempDir();
 * const b = new FileBackend({ directory: dir });
 * await b.set("ns:a", new Uint8Array([1]), 30);
 * await b.set("ns:b", new Uint8Array([2]));
 * assert.equal(await b.capabilities.ttl.ttl("ns:b"), Infinity);
 * await b.capabilities.tags.addTags("ns:a", ["t"]);
 * assert.deepEqual(await b.capabilities.tags.invalidateTags(["t"]), ["ns:a"]);
 * assert.equal(await b.capabilities.prefix.deleteByPrefix("ns:"), 1);
 * await b.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class FileBackend implements Backend {
  /** Always `"file"`. */
  readonly type: string = TYPE;
  /** TTL, lock, prefix, tags and timeouts. */
  readonly capabilities: FileBackendCapabilities;
  /** Always `true`: the store is on this host (a guard's cold adaptive timeout is its `min`). */
  readonly local: boolean = true;
  /** The cache directory (absolute). */
  readonly directory: string;

  readonly #store: FileStore;
  readonly #eviction: FileEviction;
  readonly #bus: FileBus;

  /**
   * Validate the options; the directory is created on first use.
   *
   * @param options See {@linkcode FileBackendOptions}; invalid values throw `CacheConfigError`.
   * @param fileOps File operations (tests inject faults); default: `node:fs` on any runtime.
   */
  constructor(options: FileBackendOptions = {}, fileOps: FileOps = nodeFileOps) {
    const settings = resolveFileOptions(options);
    this.directory = settings.directory;
    // The store tells eviction of each write (its estimate of the directory between scans).
    const store = new FileStore(settings, fileOps, (bytes) => eviction.noteWrite(bytes));
    const eviction = new FileEviction(store);
    this.#store = store;
    this.#eviction = eviction;
    this.#bus = new FileBus({
      root: async () => (await store.init()).root,
      fileMode: settings.fileMode,
      get closed() {
        return store.closed;
      },
    }, settings.invalidationPollMs);
    const local = localCapabilities({
      run: (operation, opts, fn) => store.op(operation, opts, fn),
      ttl: (key) => ttl(store, key),
      expire: (key, ttlSeconds) => expire(store, key, ttlSeconds),
      acquire: (key, opts) => acquire(store, key, opts),
      deleteByPrefix: (prefix) => deleteByPrefix(store, prefix),
      deleteByTenantPrefix: (prefix) => deleteByTenantPrefix(store, prefix),
      setWithTags: (key, value, ttlSeconds, tags) =>
        setWithTags(store, key, value, ttlSeconds, tags),
      addTags: (key, tags, ttlSeconds) => addTags(store, key, tags, ttlSeconds),
      invalidateTags: (tags) => invalidateTags(store, tags),
    });
    this.capabilities = { ...local, invalidation: this.#bus };
  }

  // ---------------------------------------------------------------- Backend

  /** The bytes under `key`, or `null` (absent, expired, foreign, or a symlink). */
  get(key: string, opts?: OperationOptions): Promise<Uint8Array | null> {
    const store = this.#store;
    return store.op("get", opts, async () => {
      const kb = store.keyBytes("get", key);
      const { root } = await store.init();
      const e = await store.readEntry(root, kb, true);
      return e === null ? null : e.bytes.subarray(e.head.valueOffset);
    });
  }

  /** Store `value` under `key` (atomic replace); `ttlSeconds` null/undefined/0 = no expiry. */
  set(
    key: string,
    value: Uint8Array,
    ttlSeconds?: number | null,
    opts?: OperationOptions,
  ): Promise<void> {
    const store = this.#store;
    return store.op("set", opts, () => store.write(key, value, ttlSeconds));
  }

  /** Remove `key`; whether a file existed for it. */
  delete(key: string, opts?: OperationOptions): Promise<boolean> {
    const store = this.#store;
    return store.op("delete", opts, async () => {
      const kb = store.keyBytes("delete", key);
      const { root } = await store.init();
      return await store.ops.remove(store.entryPath(root, entryName(kb)));
    });
  }

  /** Whether `key` has a valid, unexpired entry (reads the header only). */
  exists(key: string, opts?: OperationOptions): Promise<boolean> {
    const store = this.#store;
    return store.op("exists", opts, async () => {
      const kb = store.keyBytes("exists", key);
      const { root } = await store.init();
      return (await store.readEntry(root, kb, false)) !== null;
    });
  }

  /**
   * Write, read back and remove a probe file. Never throws. Details: directory, entries and bytes
   * at the last scan, limits, the last maintenance error.
   */
  async healthCheck(): Promise<BackendHealth> {
    const t0 = performance.now();
    const details: Record<string, unknown> = {
      directory: this.directory,
      entries: this.#eviction.scanned ? this.#eviction.scanEntries : null,
      bytes: this.#eviction.scanned ? this.#eviction.scanBytes : null,
      maxEntries: this.#store.maxEntries,
      maxSizeBytes: this.#store.maxSize,
      lastMaintenanceError: this.#eviction.lastMaintenanceError,
      runtime: this.#store.ops.self.runtime,
    };
    try {
      if (this.#store.closed) throw closedError(TYPE, "healthCheck");
      const { root } = await this.#store.init();
      const token = randomToken();
      const probe = `${root}/.probe-${token}`;
      const bytes = new TextEncoder().encode(token);
      await this.#store.ops.writeAtomic(`${root}/.tmp-${token}`, probe, [bytes], {
        mode: this.#store.fileMode,
        fsync: false,
        exactMode: false,
      });
      const r = await this.#store.ops.read(probe, { maxBytes: 64 });
      await this.#store.ops.remove(probe);
      if (r.status !== "ok" || !sameBytes(r.bytes, bytes)) throw new Error("probe read mismatch");
      return { healthy: true, latencyMs: performance.now() - t0, backendType: TYPE, details };
    } catch (e) {
      details.error = (e as Error)?.message ?? String(e);
      return { healthy: false, latencyMs: performance.now() - t0, backendType: TYPE, details };
    }
  }

  /**
   * Wait for background maintenance; later operations reject with a `BackendError` of kind
   * `closed`. Idempotent.
   */
  async close(): Promise<void> {
    this.#store.closed = true;
    this.#bus.clear();
    while (this.#eviction.maintenance !== undefined) await this.#eviction.maintenance;
  }

  /**
   * Scan the directory now: evict least recently used entries down to 70 % of the limits when
   * usage is at 90 % or more, and remove orphan temp files, dangling tag index entries and long
   * dead locks. Runs automatically (amortized) after writes, then without waiting when another
   * process is evicting; an explicit call waits up to `lockTimeoutMs` for that process, then
   * reports `skipped`.
   */
  prune(): Promise<PruneReport> {
    return this.#eviction.prune(this.#store.lockTimeoutMs);
  }
}
