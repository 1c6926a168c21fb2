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
 * import { FileBackend } from "@cachekit/core/backends";
 *
 * const dir = await Deno.makeTempDir();
 * const backend = new FileBackend({ directory: dir, maxEntries: 1000 });
 * await backend.set("greeting", new TextEncoder().encode("hello"), 60);
 * console.log(new TextDecoder().decode((await backend.get("greeting"))!)); // hello
 * await backend.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import * as nodeOs from "node:os";
import * as nodePath from "node:path";
import process from "node:process";
import { BackendError, type BackendErrorKind, CacheConfigError } from "../errors.ts";
import {
  checkLockOptions,
  checkTtl,
  localCapabilities,
  lockAborted,
  underAnyTenant,
  withDeadline,
} from "./_common.ts";
import {
  encodeExpiryPatch,
  encodeHead,
  encodeKey,
  entryName,
  expiryFor,
  headLength,
  isEntryName,
  MAX_KEY_BYTES,
  type ParsedHead,
  parseHead,
  sameBytes,
  sha256Hex,
} from "./_file_format.ts";
import { FileLocks, LockAbortedError, randomToken } from "./_file_lock.ts";
import { type FileOps, nodeFileOps, type ReadOutcome } from "./_fs.ts";
import { getCacheLogger } from "../health/logging.ts";
import type {
  Backend,
  BackendHealth,
  LockCapability,
  LockHandle,
  LockOptions,
  OperationOptions,
  PrefixCapability,
  TagCapability,
  TtlCapability,
} from "./types.ts";

/** Options of {@linkcode FileBackend}. Environment mapping (`CACHEKIT_FILE_*`) lives in config. */
export interface FileBackendOptions {
  /** Cache directory (created with `dirMode`). Default: {@linkcode defaultCacheDirectory}. */
  directory?: string;
  /** Total size the directory may reach; eviction starts at 90 %, down to 70 %. Default 1024 MiB. */
  maxSizeBytes?: number;
  /** Largest value accepted; larger `set`s reject (`permanent`). Default 100 MiB. */
  maxValueBytes?: number;
  /** Most entries; eviction starts at 90 %, down to 70 %. Default 10 000. */
  maxEntries?: number;
  /**
   * How long an explicit {@linkcode FileBackend.prune} waits for another process's eviction, in ms
   * (background eviction never waits). Default 5000.
   */
  lockTimeoutMs?: number;
  /** Mode of entry and lock files. Default `0o600`. */
  fileMode?: number;
  /** Mode of directories the backend creates. Default `0o700`. */
  dirMode?: number;
  /** fdatasync each value before it is renamed into place (durability over speed). Default false. */
  fsync?: boolean;
}

/** The defaults of {@linkcode FileBackendOptions} (cachekit-py's values). */
export interface FileBackendDefaults {
  /** 1024 MiB. */
  readonly maxSizeBytes: number;
  /** 100 MiB. */
  readonly maxValueBytes: number;
  /** 10 000. */
  readonly maxEntries: number;
  /** 5000 ms. */
  readonly lockTimeoutMs: number;
  /** `0o600`. */
  readonly fileMode: number;
  /** `0o700`. */
  readonly dirMode: number;
  /** `false`. */
  readonly fsync: boolean;
}

/**
 * Defaults of the file backend's options, from cachekit-py (`CACHEKIT_FILE_MAX_SIZE_MB` 1024,
 * `MAX_VALUE_MB` 100, `MAX_ENTRY_COUNT` 10000, `LOCK_TIMEOUT_SECONDS` 5, `PERMISSIONS` 0600,
 * `DIR_PERMISSIONS` 0700).
 *
 * @example
 * ```ts
 * import { DEFAULT_FILE_BACKEND_OPTIONS } from "@cachekit/core/backends";
 * console.log(DEFAULT_FILE_BACKEND_OPTIONS.maxEntries); // 10000
 * ```
 */
export const DEFAULT_FILE_BACKEND_OPTIONS: FileBackendDefaults = Object.freeze({
  maxSizeBytes: 1024 * 1024 * 1024,
  maxValueBytes: 100 * 1024 * 1024,
  maxEntries: 10_000,
  lockTimeoutMs: 5000,
  fileMode: 0o600,
  dirMode: 0o700,
  fsync: false,
});

/** Inputs of {@linkcode defaultCacheDirectory} (all read from the process when omitted). */
export interface CacheDirectoryEnvironment {
  /** `process.platform` value: `linux`, `darwin`, `win32`, … */
  platform?: string;
  /** Environment variables (`XDG_CACHE_HOME`, `LOCALAPPDATA`, `HOME`). */
  env?: Record<string, string | undefined>;
  /** Home directory. */
  home?: string;
}

function safeEnv(): Record<string, string | undefined> {
  try {
    return { ...process.env };
  } catch {
    return {}; // no env permission
  }
}

function safeHome(): string | undefined {
  try {
    return nodeOs.homedir() || undefined;
  } catch {
    return undefined;
  }
}

function safeTmp(): string {
  try {
    return nodeOs.tmpdir();
  } catch {
    return "/tmp";
  }
}

/**
 * The OS cache directory + `/cachekit`: `$XDG_CACHE_HOME` or `~/.cache` on Linux and other Unixes,
 * `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows; the temp directory when none is known.
 *
 * @example
 * ```ts
 * import { defaultCacheDirectory } from "@cachekit/core/backends";
 * console.log(defaultCacheDirectory({ platform: "linux", env: { XDG_CACHE_HOME: "/c" } })); // /c/cachekit
 * ```
 */
export function defaultCacheDirectory(from: CacheDirectoryEnvironment = {}): string {
  const platform = from.platform ?? process.platform;
  const env = from.env ?? safeEnv();
  const home = from.home ?? env.HOME ?? safeHome();
  const join = platform === "win32" ? nodePath.win32.join : nodePath.posix.join;
  let base: string | undefined;
  if (platform === "win32") {
    base = env.LOCALAPPDATA || (home ? join(home, "AppData", "Local") : undefined);
  } else if (platform === "darwin") {
    base = home ? join(home, "Library", "Caches") : undefined;
  } else {
    const xdg = env.XDG_CACHE_HOME;
    base = xdg && nodePath.posix.isAbsolute(xdg) ? xdg : home ? join(home, ".cache") : undefined;
  }
  return join(base ?? safeTmp(), "cachekit");
}

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
}

/** Result of {@linkcode FileBackend.prune}. */
export interface PruneReport {
  /** `true` when another process was already evicting (nothing was done). */
  skipped: boolean;
  /** Entries found (after eviction). */
  entries: number;
  /** Bytes of entries found (after eviction). */
  bytes: number;
  /** Entries evicted (least recently used first). */
  evicted: number;
  /** Orphan temp files, dangling tag index entries and dead locks removed. */
  cleaned: number;
}

const TYPE = "file";
const TOUCH_AFTER_MS = 1000;
const ORPHAN_AGE_MS = 60_000;
const INDEX_GRACE_MS = 5_000;
const HEAD_READ = 4096;
const EVICT_LOCK = "evict.lock";
const YIELD_EVERY = 256;
/** A writing process rescans at least this often (orphan temp files of killed writers). */
const RESCAN_EVERY_MS = 5 * 60_000;

const log = getCacheLogger("backend", "file");

/** Let timers and I/O run during long directory scans (the per-file calls are synchronous). */
function breathe(i: number): Promise<void> | undefined {
  return i % YIELD_EVERY === YIELD_EVERY - 1 ? new Promise((r) => setTimeout(r, 0)) : undefined;
}

function checkPrefix(operation: string, prefix: string): string {
  if (typeof prefix !== "string") {
    throw new BackendError("prefix must be a string", {
      kind: "permanent",
      backend: TYPE,
      operation,
    });
  }
  return prefix;
}

function configError(option: string, value: unknown, expected: string): CacheConfigError {
  return new CacheConfigError(`FileBackend.${option}`, value, expected);
}

function positiveInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw configError(name, v, "an integer > 0");
  }
  return v;
}

function modeOption(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0o777) {
    throw configError(name, v, "a permission mode between 0o000 and 0o777");
  }
  return v;
}

function errnoKind(e: unknown): BackendErrorKind {
  switch ((e as { code?: string } | null)?.code) {
    case "ENOSPC":
    case "EDQUOT":
    case "EMFILE":
    case "ENFILE":
    case "EAGAIN":
    case "EBUSY":
    case "EINTR":
    case "EIO":
      return "transient";
    case "EACCES":
    case "EPERM":
    case "EROFS":
    case "ENOTDIR":
    case "ENAMETOOLONG":
      return "permanent";
    default:
      return "unknown";
  }
}

/**
 * The file-system {@linkcode Backend}. See the module documentation for the design.
 *
 * @example TTL, prefixes and tags
 * ```ts
 * import { FileBackend } from "@cachekit/core/backends";
 *
 * const dir = await Deno.makeTempDir();
 * const b = new FileBackend({ directory: dir });
 * await b.set("ns:a", new Uint8Array([1]), 30);
 * await b.set("ns:b", new Uint8Array([2]));
 * console.log(await b.capabilities.ttl.ttl("ns:b")); // Infinity
 * await b.capabilities.tags.addTags("ns:a", ["t"]);
 * console.log(await b.capabilities.tags.invalidateTags(["t"])); // [ "ns:a" ]
 * console.log(await b.capabilities.prefix.deleteByPrefix("ns:")); // 1
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

  readonly #ops: FileOps;
  readonly #maxSize: number;
  readonly #maxValue: number;
  readonly #maxEntries: number;
  readonly #lockTimeoutMs: number;
  readonly #fileMode: number;
  readonly #dirMode: number;
  readonly #fsync: boolean;
  readonly #maxFileBytes: number;

  #root?: Promise<{ root: string; locks: FileLocks }>;
  #closed = false;
  #maintenance?: Promise<void>;
  #scanned = false;
  #scanAt = 0;
  #scanEntries = 0;
  #scanBytes = 0;
  #sinceWrites = 0;
  #sinceBytes = 0;
  #lastMaintenanceError: string | null = null;
  #refusedDirLogged = false;

  /**
   * Validate the options; the directory is created on first use.
   *
   * @param options See {@linkcode FileBackendOptions}; invalid values throw `CacheConfigError`.
   * @param fileOps File operations (tests inject faults); default: `node:fs` on any runtime.
   */
  constructor(options: FileBackendOptions = {}, fileOps: FileOps = nodeFileOps) {
    const d = DEFAULT_FILE_BACKEND_OPTIONS;
    if (options.directory !== undefined) {
      if (typeof options.directory !== "string" || options.directory === "") {
        throw configError("directory", options.directory, "a non-empty path");
      }
      if (options.directory.includes("\0")) {
        throw configError("directory", options.directory, "a path without NUL characters");
      }
    }
    this.directory = nodePath.resolve(options.directory ?? defaultCacheDirectory());
    this.#maxSize = positiveInt("maxSizeBytes", options.maxSizeBytes, d.maxSizeBytes);
    this.#maxValue = positiveInt("maxValueBytes", options.maxValueBytes, d.maxValueBytes);
    this.#maxEntries = positiveInt("maxEntries", options.maxEntries, d.maxEntries);
    this.#lockTimeoutMs = positiveInt("lockTimeoutMs", options.lockTimeoutMs, d.lockTimeoutMs);
    this.#fileMode = modeOption("fileMode", options.fileMode, d.fileMode);
    this.#dirMode = modeOption("dirMode", options.dirMode, d.dirMode);
    if (options.fsync !== undefined && typeof options.fsync !== "boolean") {
      throw configError("fsync", options.fsync, "true or false");
    }
    this.#fsync = options.fsync ?? d.fsync;
    this.#maxFileBytes = headLength(MAX_KEY_BYTES) + this.#maxValue;
    this.#ops = fileOps;
    this.capabilities = localCapabilities({
      run: (operation, opts, fn) => this.#op(operation, opts, fn),
      ttl: (key) => this.#ttl(key),
      expire: (key, ttlSeconds) => this.#expire(key, ttlSeconds),
      acquire: (key, opts) => this.#acquire(key, opts),
      deleteByPrefix: (prefix) => this.#deleteByPrefix(prefix),
      deleteByTenantPrefix: (prefix) => this.#deleteByTenantPrefix(prefix),
      setWithTags: (key, value, ttlSeconds, tags) =>
        this.#setWithTags(key, value, ttlSeconds, tags),
      addTags: (key, tags, ttlSeconds) => this.#addTags(key, tags, ttlSeconds),
      invalidateTags: (tags) => this.#invalidateTags(tags),
    });
  }

  // ---------------------------------------------------------------- plumbing

  #init(): Promise<{ root: string; locks: FileLocks }> {
    if (this.#root === undefined) {
      const init = (async () => {
        const root = await this.#ops.ensureDir(this.directory, this.#dirMode);
        await this.#checkDirMode(root);
        const lockDir = await this.#ops.ensureDir(`${root}/.locks`, this.#dirMode);
        return { root, locks: new FileLocks(this.#ops, lockDir, this.#fileMode) };
      })();
      init.catch(() => this.#root = undefined); // retry the next time
      this.#root = init;
    }
    return this.#root;
  }

  /**
   * A pre-existing directory that other users may write to would let them plant entries (forged
   * values for any key). Ours: tighten it to `dirMode` and say so; another user's: refuse it.
   */
  async #checkDirMode(root: string): Promise<void> {
    const r = await this.#ops.restrictDir(root, this.#dirMode);
    const octal = (m: number) => `0o${m.toString(8).padStart(3, "0")}`;
    if (r.status === "tightened") {
      log.warn(
        "cache directory {directory} was writable by other users (mode {from}); tightened to {to}",
        { directory: root, from: octal(r.from), to: octal(r.to) },
      );
    } else if (r.status === "foreign") {
      const message =
        `the cache directory ${root} is writable by other users (mode ${
          octal(r.mode)
        }) and owned by uid ${r.uid}, not by this process: refusing it (other users could plant ` +
        `forged entries). Use a directory of your own (FileBackend.directory or ` +
        `CACHEKIT_FILE_CACHE_DIR) or remove the group/other write permission`;
      if (!this.#refusedDirLogged) {
        this.#refusedDirLogged = true;
        log.error("{message}", { message, directory: root });
      }
      throw new BackendError(message, { kind: "permanent", backend: TYPE, operation: "init" });
    }
  }

  #op<T>(
    operation: string,
    opts: OperationOptions | undefined,
    fn: () => T | Promise<T>,
  ): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new BackendError("the file backend is closed", {
          kind: "permanent",
          backend: TYPE,
          operation,
        }),
      );
    }
    return withDeadline(TYPE, operation, opts, async () => {
      try {
        return await fn();
      } catch (e) {
        if (e instanceof BackendError || e instanceof CacheConfigError) throw e;
        throw new BackendError(
          `file backend ${operation} failed in ${this.directory}: ${(e as Error)?.message ?? e}`,
          { kind: errnoKind(e), backend: TYPE, operation, cause: e },
        );
      }
    });
  }

  #keyBytes(operation: string, key: unknown): Uint8Array {
    if (typeof key !== "string") {
      throw new BackendError(`key must be a string, got ${typeof key}`, {
        kind: "permanent",
        backend: TYPE,
        operation,
      });
    }
    // Lone surrogates would encode to U+FFFD and let two keys share one entry.
    const wellFormed = (key as string & { isWellFormed?: () => boolean }).isWellFormed;
    if (wellFormed !== undefined && !wellFormed.call(key)) {
      throw new BackendError("key contains a lone UTF-16 surrogate", {
        kind: "permanent",
        backend: TYPE,
        operation,
      });
    }
    const bytes = encodeKey(key);
    if (bytes.length > MAX_KEY_BYTES) {
      throw new BackendError(
        `key of ${bytes.length} UTF-8 bytes exceeds the file backend's ${MAX_KEY_BYTES}`,
        { kind: "permanent", backend: TYPE, operation },
      );
    }
    return bytes;
  }

  /** Path of an entry file; refuses anything that is not a bare entry name inside the root. */
  #entryPath(root: string, name: string): string {
    if (!isEntryName(name)) {
      throw new BackendError(`refused path outside the cache directory: ${name}`, {
        kind: "permanent",
        backend: TYPE,
        operation: "path",
      });
    }
    return `${root}/${name}`;
  }

  /** Remove a bad file we just read, only if it is still that inode. */
  async #discard(root: string, path: string, ino: number): Promise<void> {
    try {
      await this.#ops.removeIfSame(path, ino, `${root}/.tmp-bad-${randomToken()}`);
    } catch { /* best effort: a miss either way */ }
  }

  /**
   * Read an entry's head (or the whole file) and classify it. Bad files are removed. `null` = miss.
   */
  async #readEntry(
    root: string,
    keyBytes: Uint8Array,
    whole: boolean,
  ): Promise<{ head: ParsedHead; bytes: Uint8Array } | null> {
    const path = this.#entryPath(root, entryName(keyBytes));
    const limit = whole ? undefined : headLength(keyBytes.length);
    const r: ReadOutcome = await this.#ops.read(path, {
      maxBytes: this.#maxFileBytes,
      limit,
      touchOlderThanMs: whole ? TOUCH_AFTER_MS : undefined,
    });
    switch (r.status) {
      case "absent":
        return null;
      case "not-file":
        // A FIFO, socket, device or directory where an entry belongs: unlink the name (rmdir for
        // an empty directory), never anything it points to, so the next set can write the entry.
        if (r.stat.isDirectory) await this.#ops.removeEmptyDir(path);
        else await this.#discard(root, path, r.stat.ino);
        return null;
      case "too-large":
        await this.#discard(root, path, r.stat.ino); // never read, e.g. a huge sparse file
        return null;
      case "symlink":
        await this.#ops.remove(path).catch(() => false); // removes the link, never its target
        return null;
    }
    const parsed = parseHead(r.bytes, r.stat.size);
    if ("needMore" in parsed) return null; // stored key longer than ours: a different key
    if ("fail" in parsed) {
      await this.#discard(root, path, r.stat.ino);
      return null;
    }
    if (!sameBytes(parsed.keyBytes, keyBytes)) return null; // collision or foreign: not ours
    if (parsed.expiresAtMs !== 0 && Date.now() >= parsed.expiresAtMs) {
      await this.#discard(root, path, r.stat.ino);
      return null;
    }
    if (whole && r.bytes.length !== r.stat.size) return null; // changed under us (foreign writer)
    return { head: parsed, bytes: r.bytes };
  }

  // ---------------------------------------------------------------- Backend

  /** The bytes under `key`, or `null` (absent, expired, foreign, or a symlink). */
  get(key: string, opts?: OperationOptions): Promise<Uint8Array | null> {
    return this.#op("get", opts, async () => {
      const kb = this.#keyBytes("get", key);
      const { root } = await this.#init();
      const e = await this.#readEntry(root, kb, true);
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
    return this.#op("set", opts, () => this.#set(key, value, ttlSeconds));
  }

  async #set(key: string, value: Uint8Array, ttlSeconds: number | null | undefined): Promise<void> {
    const kb = this.#keyBytes("set", key);
    if (!(value instanceof Uint8Array)) {
      throw new BackendError("value must be a Uint8Array", {
        kind: "permanent",
        backend: TYPE,
        operation: "set",
      });
    }
    checkTtl(TYPE, "set", ttlSeconds);
    if (value.length > this.#maxValue) {
      throw new BackendError(
        `value of ${value.length} bytes exceeds maxValueBytes (${this.#maxValue})`,
        { kind: "permanent", backend: TYPE, operation: "set" },
      );
    }
    const { root } = await this.#init();
    const head = encodeHead(kb, expiryFor(ttlSeconds, Date.now()), value.length);
    await this.#ops.writeAtomic(
      `${root}/.tmp-${randomToken()}`,
      this.#entryPath(root, entryName(kb)),
      [head, value],
      { mode: this.#fileMode, fsync: this.#fsync, exactMode: this.#fileMode !== 0o600 },
    );
    this.#noteWrite(head.length + value.length);
  }

  /**
   * The index records first, so a value is never stored untagged (a crash in between leaves only
   * records of a missing entry, which maintenance removes); then the records an invalidation
   * removed meanwhile are written again, so the new value stays findable.
   */
  async #setWithTags(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[],
  ): Promise<void> {
    await this.#addTags(key, tags, ttlSeconds);
    await this.#set(key, value, ttlSeconds);
    const { root } = await this.#init();
    const name = entryName(encodeKey(key));
    const missing: string[] = [];
    for (const tag of new Set(tags)) {
      if (await this.#ops.lstat(`${this.#tagDir(root, tag)}/${name}`) === null) missing.push(tag);
    }
    if (missing.length > 0) await this.#addTags(key, missing, ttlSeconds);
  }

  /** Remove `key`; whether a file existed for it. */
  delete(key: string, opts?: OperationOptions): Promise<boolean> {
    return this.#op("delete", opts, async () => {
      const kb = this.#keyBytes("delete", key);
      const { root } = await this.#init();
      return await this.#ops.remove(this.#entryPath(root, entryName(kb)));
    });
  }

  /** Whether `key` has a valid, unexpired entry (reads the header only). */
  exists(key: string, opts?: OperationOptions): Promise<boolean> {
    return this.#op("exists", opts, async () => {
      const kb = this.#keyBytes("exists", key);
      const { root } = await this.#init();
      return (await this.#readEntry(root, kb, false)) !== null;
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
      entries: this.#scanned ? this.#scanEntries : null,
      bytes: this.#scanned ? this.#scanBytes : null,
      maxEntries: this.#maxEntries,
      maxSizeBytes: this.#maxSize,
      lastMaintenanceError: this.#lastMaintenanceError,
      runtime: this.#ops.self.runtime,
    };
    try {
      if (this.#closed) throw new Error("the file backend is closed");
      const { root } = await this.#init();
      const token = randomToken();
      const probe = `${root}/.probe-${token}`;
      const bytes = new TextEncoder().encode(token);
      await this.#ops.writeAtomic(`${root}/.tmp-${token}`, probe, [bytes], {
        mode: this.#fileMode,
        fsync: false,
        exactMode: false,
      });
      const r = await this.#ops.read(probe, { maxBytes: 64 });
      await this.#ops.remove(probe);
      if (r.status !== "ok" || !sameBytes(r.bytes, bytes)) throw new Error("probe read mismatch");
      return { healthy: true, latencyMs: performance.now() - t0, backendType: TYPE, details };
    } catch (e) {
      details.error = (e as Error)?.message ?? String(e);
      return { healthy: false, latencyMs: performance.now() - t0, backendType: TYPE, details };
    }
  }

  /** Wait for background maintenance; later operations reject. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#maintenance !== undefined) await this.#maintenance;
  }

  // ---------------------------------------------------------------- TTL

  async #ttl(key: string): Promise<number | null> {
    const kb = this.#keyBytes("ttl", key);
    const { root } = await this.#init();
    const e = await this.#readEntry(root, kb, false);
    if (e === null) return null;
    return e.head.expiresAtMs === 0 ? Infinity : (e.head.expiresAtMs - Date.now()) / 1000;
  }

  async #expire(key: string, ttlSeconds: number): Promise<boolean> {
    const kb = this.#keyBytes("expire", key);
    checkTtl(TYPE, "expire", ttlSeconds);
    const { root } = await this.#init();
    const path = this.#entryPath(root, entryName(kb));
    const result = await this.#ops.patch(path, headLength(kb.length), (head, stat) => {
      const p = parseHead(head, stat.size);
      if (!("keyBytes" in p) || !sameBytes(p.keyBytes, kb)) return null;
      if (p.expiresAtMs !== 0 && Date.now() >= p.expiresAtMs) return null;
      return { offset: 4, bytes: encodeExpiryPatch(p.flags, expiryFor(ttlSeconds, Date.now())) };
    });
    return result === "patched";
  }

  // ---------------------------------------------------------------- prefix

  async #readHeadAt(path: string): Promise<{ head: ParsedHead; ino: number } | "bad" | null> {
    let limit = HEAD_READ;
    for (;;) {
      const r = await this.#ops.read(path, { maxBytes: this.#maxFileBytes, limit });
      if (r.status === "absent" || r.status === "not-file" || r.status === "too-large") {
        return null;
      }
      if (r.status === "symlink") return "bad";
      const p = parseHead(r.bytes, r.stat.size);
      if ("needMore" in p && p.needMore > limit) {
        limit = p.needMore;
        continue;
      }
      if (!("keyBytes" in p)) return "bad";
      return { head: p, ino: r.stat.ino };
    }
  }

  async #deleteByPrefix(prefix: string): Promise<number> {
    const pb = encodeKey(checkPrefix("deleteByPrefix", prefix));
    const count = await this.#deleteWhere((kb) =>
      kb.length >= pb.length && sameBytes(kb.subarray(0, pb.length), pb)
    );
    if (prefix === "") {
      const { root } = await this.#init();
      for (const tagDir of await this.#ops.list(`${root}/.tags`)) {
        await this.#dropTagDir(`${root}/.tags/${tagDir}`);
      }
    }
    return count;
  }

  #deleteByTenantPrefix(prefix: string): Promise<number> {
    checkPrefix("deleteByTenantPrefix", prefix);
    const dec = new TextDecoder();
    return this.#deleteWhere((kb) => underAnyTenant(dec.decode(kb), prefix));
  }

  /** Remove every entry whose key bytes match; resolves how many were live. */
  async #deleteWhere(match: (keyBytes: Uint8Array) => boolean): Promise<number> {
    const { root } = await this.#init();
    let count = 0;
    let i = 0;
    for (const name of await this.#ops.list(root)) {
      await breathe(i++);
      if (!isEntryName(name)) continue;
      const path = this.#entryPath(root, name);
      const h = await this.#readHeadAt(path);
      if (h === null) continue;
      if (h === "bad") {
        await this.#ops.remove(path).catch(() => false);
        continue;
      }
      const kb = h.head.keyBytes;
      if (!match(kb)) continue;
      if (entryName(kb) !== name) continue; // a foreign file filed under another name
      const live = h.head.expiresAtMs === 0 || Date.now() < h.head.expiresAtMs;
      if (await this.#ops.remove(path) && live) count++;
    }
    return count;
  }

  // ---------------------------------------------------------------- tags

  #tagDir(root: string, tag: string): string {
    return `${root}/.tags/${sha256Hex(`tag\0${tag}`)}`;
  }

  async #addTags(key: string, tags: readonly string[], ttlSeconds?: number | null): Promise<void> {
    const kb = this.#keyBytes("addTags", key);
    checkTtl(TYPE, "addTags", ttlSeconds);
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
      throw new BackendError("tags must be an array of strings", {
        kind: "permanent",
        backend: TYPE,
        operation: "addTags",
      });
    }
    const { root } = await this.#init();
    const name = entryName(kb);
    const record = encodeHead(kb, expiryFor(ttlSeconds, Date.now()), 0);
    for (const tag of new Set(tags)) {
      const dir = this.#tagDir(root, tag);
      for (let attempt = 0;; attempt++) {
        try {
          await this.#ops.ensureDir(dir, this.#dirMode);
          await this.#ops.writeAtomic(`${dir}/.tmp-${randomToken()}`, `${dir}/${name}`, [record], {
            mode: this.#fileMode,
            fsync: false,
            exactMode: this.#fileMode !== 0o600,
          });
          break;
        } catch (e) {
          // The directory was removed by a concurrent invalidation: create it again.
          if ((e as { code?: string }).code !== "ENOENT" || attempt >= 3) throw e;
        }
      }
    }
  }

  /** Delete the entries listed in a tag directory and the directory. Resolves the keys deleted. */
  async #dropTagDir(dir: string, deleted?: Set<string>): Promise<void> {
    const { root } = await this.#init();
    for (const name of await this.#ops.list(dir)) {
      if (!isEntryName(name)) continue;
      const indexPath = `${dir}/${name}`;
      const h = await this.#readHeadAt(indexPath);
      if (h !== null && h !== "bad" && entryName(h.head.keyBytes) === name) {
        if (await this.#ops.remove(this.#entryPath(root, name))) {
          const key = new TextDecoder().decode(h.head.keyBytes);
          deleted?.add(key);
        }
      }
      await this.#ops.remove(indexPath);
    }
    await this.#ops.removeEmptyDir(dir);
  }

  async #invalidateTags(tags: readonly string[]): Promise<string[]> {
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== "string")) {
      throw new BackendError("tags must be an array of strings", {
        kind: "permanent",
        backend: TYPE,
        operation: "invalidateTags",
      });
    }
    const { root } = await this.#init();
    const deleted = new Set<string>();
    for (const tag of new Set(tags)) await this.#dropTagDir(this.#tagDir(root, tag), deleted);
    return [...deleted];
  }

  // ---------------------------------------------------------------- locks

  async #acquire(key: string, opts: LockOptions): Promise<LockHandle | null> {
    if (typeof key !== "string") {
      throw new BackendError("lock key must be a string", {
        kind: "permanent",
        backend: TYPE,
        operation: "lock",
      });
    }
    checkLockOptions(TYPE, opts);
    if (this.#closed) {
      throw new BackendError("the file backend is closed", {
        kind: "permanent",
        backend: TYPE,
        operation: "lock",
      });
    }
    let locks: FileLocks;
    try {
      locks = (await this.#init()).locks;
    } catch (e) {
      throw new BackendError(`cannot create the lock directory: ${(e as Error).message}`, {
        kind: errnoKind(e),
        backend: TYPE,
        operation: "lock",
        cause: e,
      });
    }
    const name = `${sha256Hex(`lock\0${key}`)}.lock`;
    let record;
    try {
      record = await locks.acquire(name, opts.leaseMs, opts.waitMs, opts.signal);
    } catch (e) {
      if (e instanceof LockAbortedError) throw lockAborted(TYPE);
      throw new BackendError(`lock ${key} failed: ${(e as Error).message}`, {
        kind: errnoKind(e),
        backend: TYPE,
        operation: "lock",
        cause: e,
      });
    }
    if (record === null) return null;
    let released: Promise<boolean> | undefined;
    const release = (): Promise<boolean> => {
      if (released !== undefined) return released.then(() => false);
      released = locks.release(name, record).catch(() => false);
      return released;
    };
    return {
      key,
      token: record.token,
      release,
      [Symbol.asyncDispose]: async () => void (await release()),
    };
  }

  // ---------------------------------------------------------------- eviction

  #noteWrite(bytes: number): void {
    this.#sinceWrites++;
    this.#sinceBytes += bytes;
    if (this.#maintenance !== undefined || this.#closed) return;
    const estEntries = this.#scanEntries + this.#sinceWrites;
    const estBytes = this.#scanBytes + this.#sinceBytes;
    const over = estEntries >= this.#maxEntries || estBytes >= this.#maxSize;
    const high = estEntries >= 0.9 * this.#maxEntries || estBytes >= 0.9 * this.#maxSize;
    const sinceScan = Date.now() - this.#scanAt;
    const due = !this.#scanned || sinceScan >= RESCAN_EVERY_MS ||
      (high && (over || sinceScan >= 1000));
    if (!due) return;
    this.#maintenance = this.#prune(0)
      .then(() => void (this.#lastMaintenanceError = null))
      .catch((e) => void (this.#lastMaintenanceError = String((e as Error)?.message ?? e)))
      .finally(() => this.#maintenance = undefined);
  }

  /**
   * Scan the directory now: evict least recently used entries down to 70 % of the limits when
   * usage is at 90 % or more, and remove orphan temp files, dangling tag index entries and long
   * dead locks. Runs automatically (amortized) after writes, then without waiting when another
   * process is evicting; an explicit call waits up to `lockTimeoutMs` for that process, then
   * reports `skipped`.
   */
  prune(): Promise<PruneReport> {
    return this.#prune(this.#lockTimeoutMs);
  }

  async #prune(waitMs: number): Promise<PruneReport> {
    const { root, locks } = await this.#init();
    const lease = await locks.acquire(EVICT_LOCK, 60_000, waitMs);
    if (lease === null) {
      return { skipped: true, entries: 0, bytes: 0, evicted: 0, cleaned: 0 };
    }
    try {
      this.#sinceWrites = 0;
      this.#sinceBytes = 0;
      const now = Date.now();
      let cleaned = 0;
      const files: { name: string; size: number; mtimeMs: number }[] = [];
      let entries = 0;
      let bytes = 0;
      let i = 0;
      for (const name of await this.#ops.list(root)) {
        await breathe(i++);
        const path = `${root}/${name}`;
        if (isEntryName(name)) {
          const st = await this.#ops.lstat(path);
          if (st === null) continue;
          if (st.isSymlink) {
            if (await this.#ops.remove(path)) cleaned++;
            continue;
          }
          if (!st.isFile) {
            // A FIFO, socket or device node under an entry name: unlink it (never opened).
            if (!st.isDirectory && await this.#ops.remove(path)) cleaned++;
            continue;
          }
          files.push({ name, size: st.size, mtimeMs: st.mtimeMs });
          entries++;
          bytes += st.size;
        } else if (name.startsWith(".tmp-") || name.startsWith(".probe-")) {
          const st = await this.#ops.lstat(path);
          if (st !== null && now - st.mtimeMs > ORPHAN_AGE_MS && await this.#ops.remove(path)) {
            cleaned++;
          }
        }
      }
      let evicted = 0;
      if (entries >= 0.9 * this.#maxEntries || bytes >= 0.9 * this.#maxSize) {
        const targetEntries = Math.floor(0.7 * this.#maxEntries);
        const targetBytes = Math.floor(0.7 * this.#maxSize);
        files.sort((a, b) => a.mtimeMs - b.mtimeMs);
        for (const f of files) {
          await breathe(i++);
          if (entries <= targetEntries && bytes <= targetBytes) break;
          const path = this.#entryPath(root, f.name);
          const st = await this.#ops.lstat(path);
          if (st === null) {
            entries--;
            bytes -= f.size;
            continue;
          }
          if (st.mtimeMs > f.mtimeMs) continue; // used or rewritten since the scan: keep it
          if (await this.#ops.remove(path)) evicted++;
          entries--;
          bytes -= st.size;
        }
      }
      // Tag index entries whose entry is gone.
      const tagsRoot = `${root}/.tags`;
      for (const tagDir of await this.#ops.list(tagsRoot)) {
        const dir = `${tagsRoot}/${tagDir}`;
        for (const name of await this.#ops.list(dir)) {
          const indexPath = `${dir}/${name}`;
          const st = await this.#ops.lstat(indexPath);
          if (st === null || now - st.mtimeMs < INDEX_GRACE_MS) continue;
          const orphanTmp = name.startsWith(".tmp-") && now - st.mtimeMs > ORPHAN_AGE_MS;
          const dangling = isEntryName(name) &&
            (await this.#ops.lstat(this.#entryPath(root, name))) === null;
          if ((orphanTmp || dangling) && await this.#ops.remove(indexPath)) cleaned++;
        }
        await this.#ops.removeEmptyDir(dir);
      }
      cleaned += await locks.sweep(ORPHAN_AGE_MS);
      this.#scanned = true;
      this.#scanAt = Date.now();
      this.#scanEntries = entries;
      this.#scanBytes = bytes;
      return { skipped: false, entries, bytes, evicted, cleaned };
    } finally {
      await locks.release(EVICT_LOCK, lease);
    }
  }
}
