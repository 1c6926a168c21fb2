/**
 * Cross-process, cross-runtime lease locks on a shared directory (internal).
 *
 * Why lock files and not `flock`: Deno has `Deno.FsFile.lock` and Bun could reach `flock(2)` through
 * `bun:ffi`, but Node has no `flock` at all, and an `flock` held by a Deno process does not exclude
 * a Node process that only knows lock files (nor the reverse). A cache directory shared by several
 * runtimes therefore needs one protocol every runtime can speak, so all three use this one:
 *
 * - **Acquire**: write the lease record (`{token, pid, host, runtime, acquiredAt, expiresAt}`, JSON)
 *   to a private temp file, then `link(2)` it to the lock path. `link` fails with `EEXIST` when the
 *   lock is held, atomically, and a reader never sees a half-written record (on file systems
 *   without hard links we fall back to `open(O_CREAT | O_EXCL)`).
 * - **Lease**: a lock whose `expiresAt` has passed, or whose owner is on this host and its pid is
 *   gone (a crashed or SIGKILLed process), is stale. An unreadable record is stale after 10 s.
 * - **Steal**: rename the stale lock aside (only one contender's rename succeeds), re-read it, and
 *   delete it only if it is the record judged stale; a live record taken by mistake is linked back.
 * - **Release**: the same rename-and-verify, so a holder whose lease expired never deletes the lock
 *   of the process that took over.
 *
 * Leases compare wall clocks: processes sharing a directory over a network need synchronised
 * clocks (as with any lease).
 *
 * @module
 */

import type { FileOps } from "./_fs.ts";
import { bytesToHex as toHex } from "@noble/hashes/utils.js";

/** A lease record as stored in a lock file. */
export interface LeaseRecord {
  /** Random owner token. */
  token: string;
  /** Owner pid. */
  pid: number;
  /** Owner host name. */
  host: string;
  /** Owner runtime, e.g. `deno 2.9.6`. */
  runtime: string;
  /** Acquisition time, Unix ms. */
  acquiredAt: number;
  /** Lease end, Unix ms. */
  expiresAt: number;
}

const UNREADABLE_STALE_MS = 10_000;
const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** A random 128-bit token, hex. */
export function randomToken(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

function parseRecord(bytes: Uint8Array | null): LeaseRecord | null {
  if (bytes === null) return null;
  try {
    const r = JSON.parse(decoder.decode(bytes));
    if (
      r && typeof r.token === "string" && typeof r.expiresAt === "number" &&
      typeof r.pid === "number" && typeof r.host === "string"
    ) return r as LeaseRecord;
  } catch { /* unreadable */ }
  return null;
}

/** Thrown by {@linkcode FileLocks.acquire} when its signal aborts. */
export class LockAbortedError extends Error {}

/** Lease locks in one lock directory. */
export class FileLocks {
  readonly #ops: FileOps;
  readonly #dir: string;
  readonly #mode: number;

  /**
   * @param ops File operations.
   * @param dir Lock directory (must exist).
   * @param mode File mode of lock files.
   */
  constructor(ops: FileOps, dir: string, mode: number) {
    this.#ops = ops;
    this.#dir = dir;
    this.#mode = mode;
  }

  /** Path of a lock file by its file name. */
  path(name: string): string {
    return `${this.#dir}/${name}`;
  }

  async #readRecord(path: string): Promise<{ record: LeaseRecord | null; exists: boolean }> {
    const r = await this.#ops.read(path, { maxBytes: 4096 });
    if (r.status === "absent") return { record: null, exists: false };
    if (r.status !== "ok") return { record: null, exists: true };
    return { record: parseRecord(r.bytes), exists: true };
  }

  /** Try once. Resolves the record on success, `null` when held by a live owner. */
  async tryAcquire(name: string, leaseMs: number): Promise<LeaseRecord | null> {
    const path = this.path(name);
    const self = this.#ops.self;
    for (let attempt = 0; attempt < 3; attempt++) {
      const now = Date.now();
      const record: LeaseRecord = {
        token: randomToken(),
        pid: self.pid,
        host: self.host,
        runtime: self.runtime,
        acquiredAt: now,
        expiresAt: now + leaseMs,
      };
      const bytes = encoder.encode(JSON.stringify(record));
      const tmp = `${this.#dir}/.tmp-${record.token}`;
      if (!(await this.#ops.createExclusive(tmp, bytes, this.#mode))) continue;
      let linked: "ok" | "exists" | "absent" | "unsupported";
      try {
        linked = await this.#ops.link(tmp, path);
      } finally {
        await this.#ops.remove(tmp);
      }
      if (linked === "unsupported") {
        if (await this.#ops.createExclusive(path, bytes, this.#mode)) return record;
      } else if (linked === "ok") {
        return record;
      }
      // Held: is it stale?
      const st = await this.#ops.lstat(path);
      if (st === null) continue; // released meanwhile: retry
      const { record: held, exists } = await this.#readRecord(path);
      if (!exists) continue;
      const stale = held === null
        ? Date.now() - st.mtimeMs > UNREADABLE_STALE_MS
        : Date.now() >= held.expiresAt ||
          (held.host === self.host && held.pid !== self.pid && !this.#ops.processAlive(held.pid));
      if (!stale) return null;
      await this.#takeAway(path, held?.token ?? null, st.ino);
    }
    return null;
  }

  /**
   * Move the lock at `path` aside and delete it if it is still the record identified by `token`
   * (or, for an unreadable record, the inode `ino`); otherwise put it back. Resolves whether it
   * was the expected record.
   */
  async #takeAway(path: string, token: string | null, ino: number): Promise<boolean> {
    const aside = `${this.#dir}/.aside-${randomToken()}`;
    if ((await this.#ops.rename(path, aside)) === "absent") return false;
    const st = await this.#ops.lstat(aside);
    const { record } = await this.#readRecord(aside);
    const same = token === null
      ? record === null && (st?.ino ?? 0) === ino
      : record !== null && record.token === token;
    if (!same) await this.#ops.link(aside, path); // someone else's live lock: restore it
    await this.#ops.remove(aside);
    return same;
  }

  /**
   * Acquire, polling with jittered backoff until `waitMs` passes. `null` when not acquired;
   * throws {@linkcode LockAbortedError} when `signal` aborts or `stopped()` says to stop (the
   * backend was closed).
   */
  async acquire(
    name: string,
    leaseMs: number,
    waitMs: number,
    signal?: AbortSignal,
    stopped?: () => boolean,
  ): Promise<LeaseRecord | null> {
    const deadline = Date.now() + Math.max(0, waitMs);
    let pause = 2;
    for (;;) {
      if (signal?.aborted || stopped?.() === true) throw new LockAbortedError("aborted");
      const got = await this.tryAcquire(name, leaseMs);
      if (got !== null) return got;
      const left = deadline - Date.now();
      if (left <= 0) return null;
      await sleep(Math.min(left, pause * (0.5 + Math.random())), signal);
      pause = Math.min(pause * 2, 50);
    }
  }

  /** Release `record` if still owned. `false` when the lease had expired or moved on. */
  async release(name: string, record: LeaseRecord): Promise<boolean> {
    const path = this.path(name);
    const { record: held } = await this.#readRecord(path);
    if (held === null || held.token !== record.token) return false;
    const mine = await this.#takeAway(path, record.token, 0);
    return mine && Date.now() < record.expiresAt;
  }

  /** Remove lock files whose lease ended more than `graceMs` ago (housekeeping). */
  async sweep(graceMs: number): Promise<number> {
    let removed = 0;
    for (const name of await this.#ops.list(this.#dir)) {
      const path = this.path(name);
      if (name.startsWith(".")) {
        // Temp/aside files of a process killed mid-acquire.
        const st = await this.#ops.lstat(path);
        if (st !== null && Date.now() - st.mtimeMs > 60_000) await this.#ops.remove(path);
        continue;
      }
      const { record } = await this.#readRecord(path);
      if (record !== null && Date.now() - record.expiresAt > graceMs) {
        if (await this.#takeAway(path, record.token, 0)) removed++;
      }
    }
    return removed;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
