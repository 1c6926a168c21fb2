/**
 * The core of {@linkcode FileBackend}: the validated settings, the directory (created on first
 * use, its mode checked), the operation wrapper that turns file errors into `BackendError`s, and
 * reading and writing one entry. The capability files (`_file_keys.ts`, `_file_tags.ts`,
 * `_file_lock_handle.ts`, `_file_eviction.ts`) go through a `FileStore`, so every path is checked
 * to be an entry inside the root and every failure is classified the same way. Its members are
 * public for those files only: the class is internal, and `FileBackend` exposes none of them.
 *
 * @module
 */
import { BackendError, type BackendErrorKind, CacheConfigError } from "../errors.ts";
import { checkTtl, closedError, withDeadline } from "./_common.ts";
import {
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
} from "./_file_format.ts";
import { FileLocks, randomToken } from "./_file_lock.ts";
import type { FileOps, ReadOutcome } from "./_fs.ts";
import type { FileSettings } from "./_file_options.ts";
import type { OperationOptions } from "./types.ts";
import { getLogger } from "@logtape/logtape";

/** The backend's `type`, in every error it raises. */
export const TYPE = "file";
const TOUCH_AFTER_MS = 1000;
const HEAD_READ = 4096;
const YIELD_EVERY = 256;

/** The backend's logger (`["cachekit", "backend", "file"]`, as `getCacheLogger` would give). */
const log = getLogger(["cachekit", "backend", "file"]);

/** Let timers and I/O run during long directory scans (the per-file calls are synchronous). */
export function breathe(i: number): Promise<void> | undefined {
  return i % YIELD_EVERY === YIELD_EVERY - 1 ? new Promise((r) => setTimeout(r, 0)) : undefined;
}

/** The kind of `BackendError` a file-system error code means. */
export function errnoKind(e: unknown): BackendErrorKind {
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

/** Settings, directory and entry I/O shared by the file backend's capabilities. */
export class FileStore {
  /** The cache directory (absolute). */
  readonly directory: string;
  /** File operations (tests inject faults). */
  readonly ops: FileOps;
  /** `maxSizeBytes`. */
  readonly maxSize: number;
  /** `maxValueBytes`. */
  readonly maxValue: number;
  /** `maxEntries`. */
  readonly maxEntries: number;
  /** `lockTimeoutMs`. */
  readonly lockTimeoutMs: number;
  /** `fileMode`. */
  readonly fileMode: number;
  /** `dirMode`. */
  readonly dirMode: number;
  /** `fsync`. */
  readonly fsync: boolean;
  /** Largest valid entry file (head of the longest key + the largest value). */
  readonly maxFileBytes: number;
  /** Set by `close()`: later operations reject. */
  closed = false;
  readonly #onWrite: (bytes: number) => void;
  #root?: Promise<{ root: string; locks: FileLocks }>;
  #refusedDirLogged = false;

  /** A store over `ops`; `onWrite` hears the size of each entry written (eviction's estimate). */
  constructor(s: FileSettings, ops: FileOps, onWrite: (bytes: number) => void) {
    this.directory = s.directory;
    this.maxSize = s.maxSize;
    this.maxValue = s.maxValue;
    this.maxEntries = s.maxEntries;
    this.lockTimeoutMs = s.lockTimeoutMs;
    this.fileMode = s.fileMode;
    this.dirMode = s.dirMode;
    this.fsync = s.fsync;
    this.maxFileBytes = headLength(MAX_KEY_BYTES) + s.maxValue;
    this.ops = ops;
    this.#onWrite = onWrite;
  }

  /** The root directory (created and checked once; retried after a failure) and its locks. */
  init(): Promise<{ root: string; locks: FileLocks }> {
    if (this.#root === undefined) {
      const init = (async () => {
        const root = await this.#ensureDir(this.directory);
        await this.#checkDirMode(root);
        const lockDir = await this.#ensureDir(`${root}/.locks`);
        return { root, locks: new FileLocks(this.ops, lockDir, this.fileMode) };
      })();
      init.catch(() => this.#root = undefined); // retry the next time
      this.#root = init;
    }
    return this.#root;
  }

  /** Create `dir`; a failure names the directory (a permanent error when nothing will change). */
  async #ensureDir(dir: string): Promise<string> {
    try {
      return await this.ops.ensureDir(dir, this.dirMode);
    } catch (e) {
      const kind = errnoKind(e);
      throw new BackendError(
        `cannot create or open the cache directory ${dir}: ${(e as Error)?.message ?? e}`,
        // Nothing to retry soon (no such parent, e.g. under /proc): a configuration error.
        {
          kind: kind === "unknown" ? "permanent" : kind,
          backend: TYPE,
          operation: "init",
          cause: e,
        },
      );
    }
  }

  /**
   * A pre-existing directory that other users may write to would let them plant entries (forged
   * values for any key). Ours: tighten it to `dirMode` and say so; another user's: refuse it.
   */
  async #checkDirMode(root: string): Promise<void> {
    const r = await this.ops.restrictDir(root, this.dirMode);
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

  /** Run `fn` under the deadline of `opts`; file errors become `BackendError`s. */
  op<T>(
    operation: string,
    opts: OperationOptions | undefined,
    fn: () => T | Promise<T>,
  ): Promise<T> {
    if (this.closed) return Promise.reject(closedError(TYPE, operation));
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

  /** The UTF-8 key, or a `permanent` BackendError (not a string, lone surrogate, too long). */
  keyBytes(operation: string, key: unknown): Uint8Array {
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
  entryPath(root: string, name: string): string {
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
      await this.ops.removeIfSame(path, ino, `${root}/.tmp-bad-${randomToken()}`);
    } catch { /* best effort: a miss either way */ }
  }

  /**
   * Read an entry's head (or the whole file) and classify it. Bad files are removed. `null` = miss.
   */
  async readEntry(
    root: string,
    keyBytes: Uint8Array,
    whole: boolean,
  ): Promise<{ head: ParsedHead; bytes: Uint8Array } | null> {
    const path = this.entryPath(root, entryName(keyBytes));
    const limit = whole ? undefined : headLength(keyBytes.length);
    const r: ReadOutcome = await this.ops.read(path, {
      maxBytes: this.maxFileBytes,
      limit,
      touchOlderThanMs: whole ? TOUCH_AFTER_MS : undefined,
    });
    switch (r.status) {
      case "absent":
        return null;
      case "not-file":
        // A FIFO, socket, device or directory where an entry belongs: unlink the name (rmdir for
        // an empty directory), never anything it points to, so the next set can write the entry.
        if (r.stat.isDirectory) await this.ops.removeEmptyDir(path);
        else await this.#discard(root, path, r.stat.ino);
        return null;
      case "too-large":
        await this.#discard(root, path, r.stat.ino); // never read, e.g. a huge sparse file
        return null;
      case "symlink":
        await this.ops.remove(path).catch(() => false); // removes the link, never its target
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

  /** Read the head of the file at `path`: `null` when absent or not an entry, `"bad"` to remove. */
  async readHeadAt(path: string): Promise<{ head: ParsedHead; ino: number } | "bad" | null> {
    let limit = HEAD_READ;
    for (;;) {
      const r = await this.ops.read(path, { maxBytes: this.maxFileBytes, limit });
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

  /** Write the entry of `key` (atomic replace). */
  async write(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
  ): Promise<void> {
    const kb = this.keyBytes("set", key);
    if (!(value instanceof Uint8Array)) {
      throw new BackendError("value must be a Uint8Array", {
        kind: "permanent",
        backend: TYPE,
        operation: "set",
      });
    }
    checkTtl(TYPE, "set", ttlSeconds);
    if (value.length > this.maxValue) {
      throw new BackendError(
        `value of ${value.length} bytes exceeds maxValueBytes (${this.maxValue})`,
        { kind: "permanent", backend: TYPE, operation: "set" },
      );
    }
    const { root } = await this.init();
    const head = encodeHead(kb, expiryFor(ttlSeconds, Date.now()), value.length);
    await this.ops.writeAtomic(
      `${root}/.tmp-${randomToken()}`,
      this.entryPath(root, entryName(kb)),
      [head, value],
      { mode: this.fileMode, fsync: this.fsync, exactMode: this.fileMode !== 0o600 },
    );
    this.#onWrite(head.length + value.length);
  }
}
