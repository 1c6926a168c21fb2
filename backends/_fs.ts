/**
 * The file operations the file backend needs, behind one narrow interface (internal).
 *
 * Implementation: `node:fs`, which Deno, Bun and Node all provide. It is used on Deno too, on
 * purpose: `Deno.open` has no `O_NOFOLLOW`, while Deno's `node:fs` passes the numeric open flags
 * through (`O_NOFOLLOW` → `ELOOP` on a symlink, `O_EXCL` → `EEXIST`, checked on Deno 2.9).
 *
 * Small files (≤ {@linkcode SYNC_IO_MAX_BYTES}) and metadata calls use the synchronous calls: on a
 * local disk they take a tenth or less of the thread-pool round trip of the promise
 * calls (measured on Deno 2.9, see `bench/file_backend_bench.ts`), and they block the event loop for
 * no longer than a memcpy of that size. Larger values are read and written asynchronously.
 *
 * Symlink refusal: reads and patches open with `O_NOFOLLOW`; temp files are created with
 * `O_CREAT | O_EXCL | O_NOFOLLOW` (which never follows a planted link); and the opened descriptor must
 * be a regular file (`fstat`). Bad-file removal re-checks the inode, so a fresh entry that a
 * concurrent writer renamed into place is never removed in its stead.
 *
 * Special files: reads and patches also open with `O_NONBLOCK`. The opens are synchronous, so a
 * named pipe planted as an entry would otherwise block `open(2)` until a writer appears — and with it
 * the whole event loop, where no deadline, timer or circuit breaker can act. With `O_NONBLOCK` a FIFO
 * or device opens at once and `fstat` reports it as `not-file`; a Unix socket fails `open` with
 * `ENXIO`, also reported as `not-file`. The flag changes nothing for regular files.
 *
 * @module
 */

import * as fs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import process from "node:process";

/** Values at or below this size use synchronous I/O. */
export const SYNC_IO_MAX_BYTES: number = 1024 * 1024;

const C = fs.constants;
const O_NOFOLLOW: number = C.O_NOFOLLOW ?? 0;
const O_NONBLOCK: number = C.O_NONBLOCK ?? 0; // absent on Windows, which has no FIFOs in a directory
const READ_FLAGS: number = C.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const RDWR_FLAGS: number = C.O_RDWR | O_NOFOLLOW | O_NONBLOCK;
const CREATE_FLAGS: number = C.O_WRONLY | C.O_CREAT | C.O_EXCL | O_NOFOLLOW;

/** Metadata of a directory entry or open file. */
export interface FileStat {
  /** Size in bytes. */
  size: number;
  /** Modification time (the backend's "last access"), Unix ms. */
  mtimeMs: number;
  /** Inode number (0 where the platform has none). */
  ino: number;
  /** Regular file. */
  isFile: boolean;
  /** Directory. */
  isDirectory: boolean;
  /** Symbolic link (lstat only). */
  isSymlink: boolean;
}

/** Outcome of {@linkcode FileOps.read}. */
export type ReadOutcome =
  | { status: "ok"; bytes: Uint8Array; stat: FileStat }
  | { status: "absent" }
  | { status: "symlink" }
  | { status: "not-file"; stat: FileStat }
  | { status: "too-large"; stat: FileStat };

/** Options of {@linkcode FileOps.read}. */
export interface ReadOptions {
  /** Files larger than this are reported `too-large` without being read. */
  maxBytes: number;
  /** Read at most this many bytes from the start (head reads). Default: the whole file. */
  limit?: number;
  /** Touch the mtime (LRU "access") when it is older than this many ms. Default: never. */
  touchOlderThanMs?: number;
}

/** Outcome of {@linkcode FileOps.restrictDir}. */
export type DirModeOutcome =
  | { status: "ok" }
  | { status: "tightened"; from: number; to: number }
  | { status: "foreign"; mode: number; uid: number };

/** Result of a patch callback: bytes to write at an offset, or `null` to leave the file alone. */
export type Patch = { offset: number; bytes: Uint8Array } | null;

/** The narrow, runtime-neutral file interface the file backend is written against. */
export interface FileOps {
  /** `mkdir -p` with `mode`, then the directory's real path. */
  ensureDir(path: string, mode: number): Promise<string>;
  /**
   * Take away the group/other write permission `path` has beyond `mode`: `tightened` when this
   * process's user owns the directory (it is chmod'ed to its mode masked by `mode`), `foreign` when
   * another user does (left alone), `ok` when there was nothing to take away or the platform has no
   * POSIX owners (Windows).
   */
  restrictDir(path: string, mode: number): Promise<DirModeOutcome>;
  /**
   * Read a regular file without following symlinks or blocking on special files: anything else is
   * `not-file` and a file above `maxBytes` is `too-large`, both reported without reading it.
   */
  read(path: string, opts: ReadOptions): Promise<ReadOutcome>;
  /**
   * Write `parts` to a new temp file `tmpPath` (exclusive, no-follow, `mode`), optionally fsync,
   * then rename it onto `path` atomically. The temp file is removed on failure.
   */
  writeAtomic(
    tmpPath: string,
    path: string,
    parts: readonly Uint8Array[],
    opts: { mode: number; fsync: boolean; exactMode: boolean },
  ): Promise<void>;
  /** Open read-write without following symlinks, read `headBytes`, write what `patch` returns. */
  patch(
    path: string,
    headBytes: number,
    patch: (head: Uint8Array, stat: FileStat) => Patch,
  ): Promise<"absent" | "unchanged" | "patched">;
  /** `unlink`; `false` when it did not exist. */
  remove(path: string): Promise<boolean>;
  /**
   * Remove `path` only if it is still the inode `ino` (a bad file we read). Moves it aside to
   * `asidePath` first; a different file found there is put back unless a newer one replaced it.
   */
  removeIfSame(path: string, ino: number, asidePath: string): Promise<boolean>;
  /** `lstat`, or `null` when absent. */
  lstat(path: string): Promise<FileStat | null>;
  /** Names in a directory (empty when it does not exist). */
  list(path: string): Promise<string[]>;
  /** Set atime and mtime. `false` when absent. */
  touch(path: string, timeMs: number): Promise<boolean>;
  /** Atomic rename. */
  rename(from: string, to: string): Promise<"ok" | "absent">;
  /** Hard link `to` → `from`; `exists` when `to` exists; `unsupported` on file systems without links. */
  link(from: string, to: string): Promise<"ok" | "exists" | "absent" | "unsupported">;
  /** Create `path` exclusively with `bytes`; `false` when it exists. */
  createExclusive(path: string, bytes: Uint8Array, mode: number): Promise<boolean>;
  /** Remove an empty directory (ignored when not empty or absent). */
  removeEmptyDir(path: string): Promise<void>;
  /** Whether process `pid` on this host is alive (`true` when unknown). */
  processAlive(pid: number): boolean;
  /** This process: pid, host name and runtime name. */
  readonly self: { pid: number; host: string; runtime: string };
}

function code(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

function toStat(s: fs.Stats, symlinkKnown = false): FileStat {
  return {
    size: s.size,
    mtimeMs: s.mtimeMs,
    ino: Number(s.ino ?? 0),
    isFile: s.isFile(),
    isDirectory: s.isDirectory(),
    isSymlink: symlinkKnown && s.isSymbolicLink(),
  };
}

function readFullySync(fd: number, buf: Uint8Array): number {
  let off = 0;
  while (off < buf.length) {
    const n = fs.readSync(fd, buf, off, buf.length - off, off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

function readAsync(fd: number, buf: Uint8Array, off: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.read(fd, buf, off, buf.length - off, pos, (err, n) => (err ? reject(err) : resolve(n)))
  );
}

async function readFullyAsync(fd: number, buf: Uint8Array): Promise<number> {
  let off = 0;
  while (off < buf.length) {
    const n = await readAsync(fd, buf, off, off);
    if (n === 0) break;
    off += n;
  }
  return off;
}

function writeAsync(fd: number, buf: Uint8Array, off: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, off, buf.length - off, null, (err, n) => (err ? reject(err) : resolve(n)))
  );
}

function openAsync(path: string, flags: number, mode: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.open(path, flags, mode, (err, fd) => (err ? reject(err) : resolve(fd)))
  );
}

function closeAsync(fd: number): Promise<void> {
  return new Promise((resolve) => fs.close(fd, () => resolve()));
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.fdatasync(fd, (err) => (err ? reject(err) : resolve()))
  );
}

const RENAME_RETRY = new Set(["EPERM", "EACCES", "EBUSY"]);

async function renameWithRetry(from: string, to: string): Promise<void> {
  // Windows refuses to replace a file another process has open; retry briefly.
  for (let attempt = 0;; attempt++) {
    try {
      fs.renameSync(from, to);
      return;
    } catch (e) {
      if (attempt >= 5 || !RENAME_RETRY.has(code(e) ?? "")) throw e;
      await new Promise((r) => setTimeout(r, 5 * (attempt + 1)));
    }
  }
}

function runtimeName(): string {
  const v = process.versions as Record<string, string | undefined>;
  if (v.deno) return `deno ${v.deno}`;
  if (v.bun) return `bun ${v.bun}`;
  return `node ${v.node}`;
}

let hostName: string | undefined;
function host(): string {
  if (hostName === undefined) {
    try {
      hostName = os.hostname();
    } catch {
      hostName = "unknown";
    }
  }
  return hostName;
}

/**
 * `mkdir -p`, one level at a time, instead of `mkdirSync(path, { recursive: true })`. Node's
 * recursive mkdir (seen on Node 20.20; Deno's and Bun's do not) loops forever, synchronously, when
 * `mkdir(2)` answers `ENOENT` under a parent that exists (under `/proc` or `/sys`: the process hung
 * with no output), and reports `ENOENT` for a directory it may not create where `mkdir(2)` said
 * `EROFS` (a read-only file system). Here every missing level is created once and the first real
 * error is thrown as `mkdir(2)` gave it. An existing non-directory at `path` is `ENOTDIR`.
 */
function makeDirs(path: string, mode: number): void {
  const missing: string[] = [];
  let p = nodePath.resolve(path);
  for (;;) {
    try {
      fs.mkdirSync(p, { mode });
      break;
    } catch (e) {
      const c = code(e);
      if (c === "EEXIST") {
        if (missing.length === 0 && !fs.statSync(p).isDirectory()) {
          throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${p}'`), {
            code: "ENOTDIR",
            path: p,
          });
        }
        break;
      }
      const parent = nodePath.dirname(p);
      // ENOENT under an existing parent is the file system's answer (nothing to create above).
      if (c !== "ENOENT" || parent === p || fs.existsSync(parent)) throw e;
      missing.push(p);
      p = parent;
    }
  }
  for (let i = missing.length - 1; i >= 0; i--) {
    try {
      fs.mkdirSync(missing[i], { mode });
    } catch (e) {
      if (code(e) !== "EEXIST") throw e; // created meanwhile by another process: fine
    }
  }
}

/** The `node:fs` implementation (Deno, Bun, Node). */
export const nodeFileOps: FileOps = {
  ensureDir(path, mode) {
    makeDirs(path, mode);
    return Promise.resolve(fs.realpathSync(path));
  },

  restrictDir(path, mode) {
    const getuid = process.getuid;
    if (process.platform === "win32" || typeof getuid !== "function") {
      return Promise.resolve({ status: "ok" });
    }
    const st = fs.statSync(path);
    const perm = st.mode & 0o777;
    if ((perm & ~mode & 0o022) === 0) return Promise.resolve({ status: "ok" });
    if (st.uid !== getuid.call(process)) {
      return Promise.resolve({ status: "foreign", mode: perm, uid: st.uid });
    }
    fs.chmodSync(path, perm & mode);
    return Promise.resolve({ status: "tightened", from: perm, to: perm & mode });
  },

  async read(path, opts) {
    let fd: number;
    try {
      fd = fs.openSync(path, READ_FLAGS);
    } catch (e) {
      const c = code(e);
      if (c === "ENOENT" || c === "ENOTDIR") return { status: "absent" };
      if (c === "ELOOP" || c === "EMLINK") return { status: "symlink" };
      if (c === "EISDIR" || c === "ENXIO" || c === "EOPNOTSUPP") {
        // A directory, or a Unix socket (which `open(2)` refuses): lstat never follows a link.
        try {
          return { status: "not-file", stat: toStat(fs.lstatSync(path)) };
        } catch (e2) {
          if (code(e2) === "ENOENT") return { status: "absent" };
          throw e2;
        }
      }
      throw e;
    }
    try {
      const stat = toStat(fs.fstatSync(fd));
      if (!stat.isFile) return { status: "not-file", stat };
      if (stat.size > opts.maxBytes) return { status: "too-large", stat };
      const want = Math.min(stat.size, opts.limit ?? stat.size);
      const buf = new Uint8Array(want);
      const got = want <= SYNC_IO_MAX_BYTES
        ? readFullySync(fd, buf)
        : await readFullyAsync(fd, buf);
      if (
        opts.touchOlderThanMs !== undefined && Date.now() - stat.mtimeMs > opts.touchOlderThanMs
      ) {
        try {
          const now = new Date();
          fs.futimesSync(fd, now, now);
        } catch { /* best effort: LRU precision only */ }
      }
      return { status: "ok", bytes: got === want ? buf : buf.subarray(0, got), stat };
    } finally {
      fs.closeSync(fd);
    }
  },

  async writeAtomic(tmpPath, path, parts, opts) {
    const total = parts.reduce((n, p) => n + p.length, 0);
    let fd: number | undefined;
    try {
      if (total <= SYNC_IO_MAX_BYTES && !opts.fsync) {
        fd = fs.openSync(tmpPath, CREATE_FLAGS, opts.mode);
        if (opts.exactMode) fs.fchmodSync(fd, opts.mode);
        for (const p of parts) {
          let off = 0;
          while (off < p.length) off += fs.writeSync(fd, p, off, p.length - off);
        }
        fs.closeSync(fd);
        fd = undefined;
      } else {
        fd = await openAsync(tmpPath, CREATE_FLAGS, opts.mode);
        if (opts.exactMode) fs.fchmodSync(fd, opts.mode);
        for (const p of parts) {
          let off = 0;
          while (off < p.length) off += await writeAsync(fd, p, off);
        }
        if (opts.fsync) await fdatasyncAsync(fd);
        await closeAsync(fd);
        fd = undefined;
      }
      await renameWithRetry(tmpPath, path);
    } catch (e) {
      if (fd !== undefined) await closeAsync(fd);
      try {
        fs.unlinkSync(tmpPath);
      } catch { /* already gone */ }
      throw e;
    }
  },

  patch(path, headBytes, patch) {
    let fd: number;
    try {
      fd = fs.openSync(path, RDWR_FLAGS);
    } catch (e) {
      const c = code(e);
      if (
        c === "ENOENT" || c === "ENOTDIR" || c === "ELOOP" || c === "EMLINK" || c === "EISDIR" ||
        c === "ENXIO" || c === "EOPNOTSUPP"
      ) {
        return Promise.resolve("absent");
      }
      throw e;
    }
    try {
      const stat = toStat(fs.fstatSync(fd));
      if (!stat.isFile) return Promise.resolve("absent");
      const head = new Uint8Array(Math.min(headBytes, stat.size));
      readFullySync(fd, head);
      const p = patch(head, stat);
      if (p === null) return Promise.resolve("unchanged");
      fs.writeSync(fd, p.bytes, 0, p.bytes.length, p.offset);
      return Promise.resolve("patched");
    } finally {
      fs.closeSync(fd);
    }
  },

  remove(path) {
    try {
      fs.unlinkSync(path);
      return Promise.resolve(true);
    } catch (e) {
      const c = code(e);
      if (c === "ENOENT" || c === "ENOTDIR") return Promise.resolve(false);
      return Promise.reject(e);
    }
  },

  removeIfSame(path, ino, asidePath) {
    try {
      fs.renameSync(path, asidePath);
    } catch (e) {
      if (code(e) === "ENOENT") return Promise.resolve(false);
      return Promise.reject(e);
    }
    let same = true;
    try {
      const st = fs.lstatSync(asidePath);
      same = ino === 0 || Number(st.ino) === ino;
      if (!same) {
        // A concurrent writer replaced the bad file: put its entry back unless a newer one exists.
        try {
          fs.linkSync(asidePath, path);
        } catch { /* a newer entry (EEXIST) wins; no links: the entry is lost, a miss */ }
      }
    } finally {
      try {
        fs.unlinkSync(asidePath);
      } catch { /* gone */ }
    }
    return Promise.resolve(same);
  },

  lstat(path) {
    try {
      return Promise.resolve(toStat(fs.lstatSync(path), true));
    } catch (e) {
      const c = code(e);
      if (c === "ENOENT" || c === "ENOTDIR") return Promise.resolve(null);
      return Promise.reject(e);
    }
  },

  async list(path) {
    try {
      return await fs.promises.readdir(path);
    } catch (e) {
      const c = code(e);
      if (c === "ENOENT" || c === "ENOTDIR") return [];
      throw e;
    }
  },

  touch(path, timeMs) {
    try {
      const t = new Date(timeMs);
      fs.utimesSync(path, t, t);
      return Promise.resolve(true);
    } catch (e) {
      if (code(e) === "ENOENT") return Promise.resolve(false);
      return Promise.reject(e);
    }
  },

  rename(from, to) {
    try {
      fs.renameSync(from, to);
      return Promise.resolve("ok");
    } catch (e) {
      if (code(e) === "ENOENT") return Promise.resolve("absent");
      return Promise.reject(e);
    }
  },

  link(from, to) {
    try {
      fs.linkSync(from, to);
      return Promise.resolve("ok");
    } catch (e) {
      const c = code(e);
      if (c === "EEXIST") return Promise.resolve("exists");
      if (c === "ENOENT") return Promise.resolve("absent");
      if (c === "EPERM" || c === "ENOTSUP" || c === "EOPNOTSUPP" || c === "ENOSYS") {
        return Promise.resolve("unsupported");
      }
      return Promise.reject(e);
    }
  },

  createExclusive(path, bytes, mode) {
    let fd: number;
    try {
      fd = fs.openSync(path, CREATE_FLAGS, mode);
    } catch (e) {
      if (code(e) === "EEXIST") return Promise.resolve(false);
      return Promise.reject(e);
    }
    try {
      let off = 0;
      while (off < bytes.length) off += fs.writeSync(fd, bytes, off, bytes.length - off);
    } finally {
      fs.closeSync(fd);
    }
    return Promise.resolve(true);
  },

  removeEmptyDir(path) {
    try {
      fs.rmdirSync(path);
    } catch { /* not empty, absent or busy */ }
    return Promise.resolve();
  },

  processAlive(pid) {
    if (!Number.isInteger(pid) || pid <= 0) return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch (e) {
      return code(e) !== "ESRCH";
    }
  },

  get self() {
    return { pid: process.pid, host: host(), runtime: runtimeName() };
  },
};
