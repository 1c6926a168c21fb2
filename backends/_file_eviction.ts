/**
 * Eviction and maintenance of {@linkcode FileBackend}: this process's estimate of the directory
 * (last scan + its own writes since), the background scan it triggers, and the scan itself
 * (least recently used entries evicted down to 70 % of the limits, orphan temp files, dangling tag
 * index entries and dead locks removed), one evictor at a time across processes.
 *
 * @module
 */
import { isEntryName } from "./_file_format.ts";
import { breathe, type FileStore } from "./_file_store.ts";

const ORPHAN_AGE_MS = 60_000;
const INDEX_GRACE_MS = 5_000;
const EVICT_LOCK = "evict.lock";
/** A writing process rescans at least this often (orphan temp files of killed writers). */
const RESCAN_EVERY_MS = 5 * 60_000;

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

/** The scan state of one backend, and its amortized trigger. */
export class FileEviction {
  /** Whether a scan completed (the figures below are known). */
  scanned = false;
  /** Entries found by the last scan. */
  scanEntries = 0;
  /** Bytes found by the last scan. */
  scanBytes = 0;
  /** Message of the last background maintenance failure, `null` after a success. */
  lastMaintenanceError: string | null = null;
  /** The background scan under way, if any. */
  maintenance?: Promise<void>;
  readonly #store: FileStore;
  #scanAt = 0;
  #sinceWrites = 0;
  #sinceBytes = 0;

  /** Eviction of `store`'s directory. */
  constructor(store: FileStore) {
    this.#store = store;
  }

  /** Count a write of `bytes`; start a background scan when the estimate says one is due. */
  noteWrite(bytes: number): void {
    this.#sinceWrites++;
    this.#sinceBytes += bytes;
    if (this.maintenance !== undefined || this.#store.closed) return;
    const estEntries = this.scanEntries + this.#sinceWrites;
    const estBytes = this.scanBytes + this.#sinceBytes;
    const over = estEntries >= this.#store.maxEntries || estBytes >= this.#store.maxSize;
    const high = estEntries >= 0.9 * this.#store.maxEntries ||
      estBytes >= 0.9 * this.#store.maxSize;
    const sinceScan = Date.now() - this.#scanAt;
    const due = !this.scanned || sinceScan >= RESCAN_EVERY_MS ||
      (high && (over || sinceScan >= 1000));
    if (!due) return;
    this.maintenance = this.prune(0)
      .then(() => void (this.lastMaintenanceError = null))
      .catch((e) => void (this.lastMaintenanceError = String((e as Error)?.message ?? e)))
      .finally(() => this.maintenance = undefined);
  }

  /** Scan now (waiting up to `waitMs` for another process's scan), evict and clean. */
  async prune(waitMs: number): Promise<PruneReport> {
    const { root, locks } = await this.#store.init();
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
      for (const name of await this.#store.ops.list(root)) {
        await breathe(i++);
        const path = `${root}/${name}`;
        if (isEntryName(name)) {
          const st = await this.#store.ops.lstat(path);
          if (st === null) continue;
          if (st.isSymlink) {
            if (await this.#store.ops.remove(path)) cleaned++;
            continue;
          }
          if (!st.isFile) {
            // A FIFO, socket or device node under an entry name: unlink it (never opened).
            if (!st.isDirectory && await this.#store.ops.remove(path)) cleaned++;
            continue;
          }
          files.push({ name, size: st.size, mtimeMs: st.mtimeMs });
          entries++;
          bytes += st.size;
        } else if (name.startsWith(".tmp-") || name.startsWith(".probe-")) {
          const st = await this.#store.ops.lstat(path);
          if (
            st !== null && now - st.mtimeMs > ORPHAN_AGE_MS && await this.#store.ops.remove(path)
          ) {
            cleaned++;
          }
        }
      }
      let evicted = 0;
      if (entries >= 0.9 * this.#store.maxEntries || bytes >= 0.9 * this.#store.maxSize) {
        const targetEntries = Math.floor(0.7 * this.#store.maxEntries);
        const targetBytes = Math.floor(0.7 * this.#store.maxSize);
        files.sort((a, b) => a.mtimeMs - b.mtimeMs);
        for (const f of files) {
          await breathe(i++);
          if (entries <= targetEntries && bytes <= targetBytes) break;
          const path = this.#store.entryPath(root, f.name);
          const st = await this.#store.ops.lstat(path);
          if (st === null) {
            entries--;
            bytes -= f.size;
            continue;
          }
          if (st.mtimeMs > f.mtimeMs) continue; // used or rewritten since the scan: keep it
          if (await this.#store.ops.remove(path)) evicted++;
          entries--;
          bytes -= st.size;
        }
      }
      cleaned += await sweepTagIndex(this.#store, root, now);
      cleaned += await locks.sweep(ORPHAN_AGE_MS);
      this.scanned = true;
      this.#scanAt = Date.now();
      this.scanEntries = entries;
      this.scanBytes = bytes;
      return { skipped: false, entries, bytes, evicted, cleaned };
    } finally {
      await locks.release(EVICT_LOCK, lease);
    }
  }
}

/**
 * Remove tag index records whose entry is gone (or orphan temp files of a killed tag write), then
 * the index directories left empty. Resolves how many files were removed.
 */
async function sweepTagIndex(store: FileStore, root: string, now: number): Promise<number> {
  let cleaned = 0;
  const tagsRoot = `${root}/.tags`;
  for (const tagDir of await store.ops.list(tagsRoot)) {
    const dir = `${tagsRoot}/${tagDir}`;
    for (const name of await store.ops.list(dir)) {
      const indexPath = `${dir}/${name}`;
      const st = await store.ops.lstat(indexPath);
      if (st === null || now - st.mtimeMs < INDEX_GRACE_MS) continue;
      const orphanTmp = name.startsWith(".tmp-") && now - st.mtimeMs > ORPHAN_AGE_MS;
      const dangling = isEntryName(name) &&
        (await store.ops.lstat(store.entryPath(root, name))) === null;
      if ((orphanTmp || dangling) && await store.ops.remove(indexPath)) cleaned++;
    }
    await store.ops.removeEmptyDir(dir);
  }
  return cleaned;
}
