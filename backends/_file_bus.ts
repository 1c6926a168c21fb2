/**
 * The file backend's invalidation bus: a journal in the cache directory that every process using
 * the directory appends its events to and polls. Internal (the `invalidation` capability of
 * `FileBackend`).
 *
 * Why: a process's L1 keeps copies of what it read. Without a bus, an entry another process
 * rewrote, deleted or invalidated (an admin script, another worker, `clearFunction` from a shell)
 * was answered from such a copy until the copy expired, up to the TTL. Redis has pub/sub for this;
 * a directory has no notification that works alike on Linux, macOS and Windows, and in Deno, Bun
 * and Node (`fs.watch` differs by platform and misses events on network file systems), so the bus
 * polls: one `stat`-sized read of the journal every `pollMs` per backend, nothing while no
 * engine subscribes.
 *
 * - **Publish**: one line of JSON per event, the Redis bus's message (`{ v, level, targets,
 *   sender, reason }`), appended to `<dir>/.bus`. The events of one synchronous run go out in one
 *   `write` on a descriptor opened with `O_APPEND`, so lines of concurrent writers never interleave
 *   (appends to a local file are atomic).
 * - **Receive**: every `pollMs` (an unref'd timer: it never keeps a process alive) the journal is
 *   read from where this subscriber stopped, whole lines only. This instance's own lines are
 *   dropped; the rest go to the handlers. Writers append whole events only, so a line that is not
 *   one (a torn write continued by the next append, bytes garbled on disk, anything another
 *   process wrote) may have held an event: it is skipped and the poll calls `onGap`.
 * - **Size**: a writer that finds the journal over {@linkcode MAX_JOURNAL_BYTES} renames it to
 *   `.bus.1` (replacing the one before). Every journal starts with a line naming it: a random id
 *   and a sequence number, one more than the journal renamed before it (the line is made whole in
 *   a temp file and linked into place, so no event can come before it). Readers tell journals
 *   apart by the id, not by inode numbers, which a file system reuses, and find a journal they
 *   never saw by the sequence. A reader whose journal was renamed reads its rest in `.bus.1`, then
 *   the new journal from its start. A reader that cannot (a journal renamed away before it was
 *   read, a renamed one gone while its last line was still torn, or more than
 *   {@linkcode MAX_READ_BYTES} behind) has missed events: its `onGap` handlers run (the engine
 *   then drops its whole L1), as after a Redis subscriber reconnect. A writer that finds the
 *   journal without its first line (emptied by hand) replaces it.
 * - **Failures**: a publish that cannot write rejects (the engine logs it and queues it for
 *   recovery). A poll that cannot read marks the subscription down (`subscriptionUp` false, health
 *   `degraded`, `onDown`); the next poll that reads again calls `onGap`.
 * - **Files**: opened with `O_NOFOLLOW` and `O_NONBLOCK`, and used only when `fstat` says regular
 *   file: a symlink or FIFO planted as the journal is never followed or waited on.
 *
 * @module
 */
import * as fs from "node:fs";
import { BackendError } from "../errors.ts";
import type { InvalidationCapability, InvalidationEvent } from "./types.ts";
import { closedError, unrefTimer } from "./_common.ts";
import {
  callEach,
  checkHandler,
  deliver,
  eventMessage,
  invalidEvent,
  readEvent,
} from "./_bus_message.ts";

/** The journal's size at which a writer starts a new one (the previous is kept as `.bus.1`). */
export const MAX_JOURNAL_BYTES: number = 256 * 1024;
/** The most a poll reads; a reader further behind has missed events (`onGap`). */
export const MAX_READ_BYTES: number = 2 * MAX_JOURNAL_BYTES;
/**
 * Test seam (internal): `beforeRest` runs in a poll just before it reads the rest of the renamed
 * journal, so that a test can rename another journal over it at that moment (a second rotation
 * between the poll's two reads, which no timing can reproduce reliably). `undefined` in use.
 */
export const journalTestHooks: { beforeRest?: () => void } = {};
/** Lines that are not events a poll parses in one read before it takes the rest unread (a gap). */
const MAX_DAMAGED_LINES = 16;

const C = fs.constants;
const O_NOFOLLOW: number = C.O_NOFOLLOW ?? 0;
const O_NONBLOCK: number = C.O_NONBLOCK ?? 0;
const READ_FLAGS: number = C.O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const APPEND_FLAGS: number = C.O_RDWR | C.O_APPEND | O_NOFOLLOW | O_NONBLOCK;
const NEWLINE = 0x0a;
const utf8 = new TextEncoder();
const utf8Decode = new TextDecoder();

/** What the bus needs of the file store: the directory (made on demand) and the file mode. */
export interface FileBusHost {
  /** The cache directory, created if needed. */
  root(): Promise<string>;
  /** Mode of the journal when it is created. */
  readonly fileMode: number;
  /** Whether the backend is closed (publish then rejects). */
  readonly closed: boolean;
}

/** A read of the journal file at `path`: its id, where its events start, its size, its bytes. */
interface JournalRead {
  /** The id its first line names (`null`: no valid first line). */
  id: string | null;
  /** Its sequence number (0 when the first line has none). */
  seq: number;
  /** Bytes of that first line, newline included. */
  start: number;
  size: number;
  /** From the offset asked for on (`null`: nothing there). */
  bytes: Uint8Array | null;
}

/** The most the first line of a journal takes: `{"journal":"<uuid>","seq":n}` and its newline. */
const HEAD_MAX = 96;

/** The first line of a new journal named `id`, number `seq`. */
function headLine(id: string, seq: number): Uint8Array {
  return utf8.encode(`${JSON.stringify({ journal: id, seq })}\n`);
}

/** The id, sequence number and length of the first line of the journal open as `fd`. */
function headOf(fd: number, size: number): { id: string | null; seq: number; start: number } {
  const head = new Uint8Array(Math.min(HEAD_MAX, size));
  const h = fs.readSync(fd, head, 0, head.length, 0);
  const nl = head.subarray(0, h).indexOf(NEWLINE);
  if (nl > 0) {
    try {
      const j = JSON.parse(utf8Decode.decode(head.subarray(0, nl)));
      if (typeof j?.journal === "string") {
        const seq = Number.isSafeInteger(j.seq) && j.seq > 0 ? j.seq as number : 0;
        return { id: j.journal, seq, start: nl + 1 };
      }
    } catch {
      // not a journal's first line: no events are read from it
    }
  }
  return { id: null, seq: 0, start: 0 };
}

/**
 * Open `path` without following a link and read its first line and, from `from` on (the first
 * line's end when `from` is smaller), at most `max` bytes: `null` when it does not exist,
 * `undefined` when it is not a regular file.
 */
function readJournal(path: string, from: number, max: number): JournalRead | null | undefined {
  let fd: number;
  try {
    fd = fs.openSync(path, READ_FLAGS);
  } catch (e) {
    if ((e as { code?: string }).code === "ENOENT") return null;
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return undefined;
    const size = st.size;
    const { id, seq, start } = headOf(fd, size);
    const at = Math.max(from, start);
    if (id === null || size <= at || max <= 0) return { id, seq, start, size, bytes: null };
    const n = Math.min(size - at, max);
    const bytes = new Uint8Array(n);
    let got = 0;
    while (got < n) {
      const r = fs.readSync(fd, bytes, got, n - got, at + got);
      if (r === 0) break;
      got += r;
    }
    return { id, seq, start, size, bytes: bytes.subarray(0, got) };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Make `<root>/.bus` a new journal if there is none: its first line (numbered one more than the
 * renamed journal's) written whole in a temp file, then linked into place (another writer's
 * journal, made meanwhile, stays).
 */
function createJournal(root: string, mode: number): void {
  let before = 0;
  try {
    before = readJournal(`${root}/.bus.1`, 0, 0)?.seq ?? 0;
  } catch {
    // unreadable: number this one 1
  }
  const tmp = `${root}/.tmp-bus-${crypto.randomUUID()}`;
  const fd = fs.openSync(tmp, C.O_WRONLY | C.O_CREAT | C.O_EXCL | O_NOFOLLOW, mode);
  try {
    fs.writeSync(fd, headLine(crypto.randomUUID(), before + 1));
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(tmp, `${root}/.bus`);
  } catch (e) {
    if ((e as { code?: string }).code !== "EEXIST") throw e;
  } finally {
    fs.unlinkSync(tmp);
  }
}

/** The invalidation bus of one `FileBackend` (see the module documentation). */
export class FileBus implements InvalidationCapability {
  /** This backend object's id: the `sender` of its events. */
  readonly instanceId: string = crypto.randomUUID();
  readonly #host: FileBusHost;
  readonly #pollMs: number;
  readonly #handlers = new Set<(event: InvalidationEvent) => void>();
  readonly #gapHandlers = new Set<() => void>();
  readonly #downHandlers = new Set<() => void>();
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Where this subscriber stopped: the journal's id (`null`: none seen) and offset. */
  #id: string | null = null;
  #offset = 0;
  /**
   * The journal read before the current one, now `.bus.1`, and where in it: read again on every
   * poll while it is there, for a line a writer appended as it was renamed.
   */
  #prevId: string | null = null;
  #prevOffset = 0;
  /**
   * The renamed journal held bytes past `#prevOffset` at its last read: a line without its newline
   * (torn, or being written). If it goes before that line is whole, its event is lost: a gap.
   */
  #prevUnread = false;
  /** The sequence number of the newest journal this subscriber has started to read. */
  #lastSeq = 0;
  /** The poll's start, while it runs (`subscribe` calls made meanwhile wait for it). */
  #starting: Promise<void> | undefined;
  #up = true;
  /** Events waiting for the end of the current synchronous run, and what they resolve. */
  #queue: string[] = [];
  #flushed: Promise<void> | null = null;
  #root: string | null = null;

  /**
   * @param host The file store's directory and mode.
   * @param pollMs How often a subscribed bus reads the journal.
   */
  constructor(host: FileBusHost, pollMs: number) {
    this.#host = host;
    this.#pollMs = pollMs;
  }

  /** `false` while the journal cannot be read (events are being missed), else `true`. */
  get subscriptionUp(): boolean {
    return this.#up;
  }

  /**
   * Append `event` to the journal, with the other events of this synchronous run (one write).
   *
   * @throws {BackendError} A malformed event (`permanent`), a closed backend, or a failed write.
   */
  publish(event: Omit<InvalidationEvent, "sender">): Promise<void> {
    const refused = invalidEvent(event, "file");
    if (refused !== null) return refused;
    if (this.#host.closed) return Promise.reject(closedError("file", "publish"));
    this.#queue.push(eventMessage(event, this.instanceId));
    return this.#flushed ??= Promise.resolve().then(() => this.#flush());
  }

  async #flush(): Promise<void> {
    const lines = this.#queue;
    this.#queue = [];
    this.#flushed = null;
    const root = this.#root ??= await this.#host.root();
    const path = `${root}/.bus`;
    const bytes = utf8.encode(lines.join("\n") + "\n");
    let size = 0;
    try {
      for (let attempt = 0;; attempt++) {
        let fd: number;
        try {
          fd = fs.openSync(path, APPEND_FLAGS);
        } catch (e) {
          // None yet, or renamed away by another writer just now: make one, then append.
          if ((e as { code?: string }).code !== "ENOENT" || attempt === 3) throw e;
          createJournal(root, this.#host.fileMode);
          continue;
        }
        let replaced = false;
        try {
          const st = fs.fstatSync(fd);
          if (!st.isFile()) throw new Error("the journal is not a regular file");
          if (headOf(fd, st.size).id === null) {
            // Without its first line (emptied by hand): readers would skip every line. Replaced,
            // unless another writer replaced it already.
            if (attempt === 3) throw new Error("the journal has no first line");
            try {
              if (fs.lstatSync(path).ino === st.ino) fs.unlinkSync(path);
            } catch {
              // gone already: another writer replaced it
            }
            replaced = true;
            continue;
          }
          let at = 0;
          while (at < bytes.length) at += fs.writeSync(fd, bytes, at, bytes.length - at);
          size = st.size + bytes.length;
        } finally {
          fs.closeSync(fd);
          if (replaced) createJournal(root, this.#host.fileMode);
        }
        break;
      }
    } catch (e) {
      throw new BackendError(`invalidation journal ${path}: ${(e as Error)?.message ?? e}`, {
        kind: "transient",
        backend: "file",
        operation: "publish",
        cause: e,
      });
    }
    if (size > MAX_JOURNAL_BYTES) {
      try {
        fs.renameSync(path, `${root}/.bus.1`);
      } catch {
        // Another writer renamed it first, or the directory refuses: the next write tries again.
      }
    }
  }

  /**
   * Receive the events other backend objects append from now on (own lines are dropped; a line
   * that is not an event calls `onGap`). The first subscription starts the poll; the last
   * unsubscribe stops it.
   */
  async subscribe(
    handler: (event: InvalidationEvent) => void,
    onGap?: () => void,
    onDown?: () => void,
  ): Promise<() => Promise<void>> {
    checkHandler(handler, "file");
    if (this.#host.closed) throw closedError("file", "subscribe");
    if (this.#timer === undefined) {
      // One start for subscriptions made together (one timer: the last unsubscribe stops it).
      const starting = this.#starting ??= this.#start();
      try {
        await starting;
      } finally {
        if (this.#starting === starting) this.#starting = undefined;
      }
    }
    this.#handlers.add(handler);
    if (typeof onGap === "function") this.#gapHandlers.add(onGap);
    if (typeof onDown === "function") this.#downHandlers.add(onDown);
    let active = true;
    return () => {
      if (active) {
        active = false;
        this.#handlers.delete(handler);
        if (onGap) this.#gapHandlers.delete(onGap);
        if (onDown) this.#downHandlers.delete(onDown);
        if (this.#handlers.size === 0) this.stop();
      }
      return Promise.resolve();
    };
  }

  /** Start polling from the journal's end: only what is appended from now on is delivered. */
  async #start(): Promise<void> {
    const root = this.#root ??= await this.#host.root();
    if (this.#timer !== undefined || this.#host.closed) return;
    // A journal that cannot be read (a symlink or FIFO planted in its place) starts the
    // subscription down (`subscriptionUp` false); the first poll that reads it calls `onGap`.
    const read = (path: string) => {
      try {
        return notSpecial(readJournal(path, 0, 0), path);
      } catch {
        this.#up = false;
        return null;
      }
    };
    this.#up = true;
    const cur = read(`${root}/.bus`);
    const old = read(`${root}/.bus.1`);
    this.#id = cur?.id ?? null;
    this.#offset = cur?.id != null ? cur.size : 0;
    // Both journals are old news, whatever their numbers say (`.bus.1` numbered past `.bus` is a
    // damaged or foreign first line): events in either are not delivered.
    this.#lastSeq = Math.max(cur?.id != null ? cur.seq : 0, old?.seq ?? 0);
    this.#prevId = null;
    this.#prevUnread = false;
    this.#timer = setInterval(() => this.poll(), this.#pollMs);
    unrefTimer(this.#timer);
  }

  /** Stop polling (the backend is closing, or nobody listens). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Drop every handler and stop polling (the backend is closing). */
  clear(): void {
    this.#handlers.clear();
    this.#gapHandlers.clear();
    this.#downHandlers.clear();
    this.stop();
  }

  /** Read what was appended since the last poll and deliver it (the timer calls it). */
  poll(): void {
    const root = this.#root;
    if (root === null || this.#host.closed) return;
    const busPath = `${root}/.bus`;
    const oldPath = `${root}/.bus.1`;
    let gap = false;
    try {
      const old = notSpecial(readJournal(oldPath, 0, 0), oldPath);
      const cur = notSpecial(readJournal(busPath, 0, 0), busPath);
      if (this.#id !== null && cur?.id !== this.#id) {
        // This subscriber's journal was renamed: its rest is in `.bus.1`, unless it was renamed
        // over since (then what was appended to it after the last poll is lost).
        if (old?.id === this.#id) {
          if (this.#forgetPrev()) gap = true;
          this.#prevId = this.#id;
          this.#prevOffset = this.#offset;
        } else gap = true;
        this.#id = null;
      }
      // The renamed journal was renamed over.
      if (this.#prevId !== null && old?.id !== this.#prevId && this.#forgetPrev()) gap = true;
      if (old?.id != null && old.id !== this.#prevId && old.seq > this.#lastSeq) {
        // A journal renamed before this subscriber read it: all its events are new here. One
        // numbered further on means others came and went between, unread.
        if (old.seq > this.#lastSeq + 1) gap = true;
        this.#prevId = old.id;
        this.#prevOffset = old.start;
        this.#lastSeq = old.seq;
      }
      if (this.#prevId !== null && old !== null && old.size > this.#prevOffset) {
        // The rest of the renamed journal (and a line a writer appended as it was renamed).
        journalTestHooks.beforeRest?.();
        const r = notSpecial(readJournal(oldPath, this.#prevOffset, MAX_READ_BYTES), oldPath);
        if (r?.id === this.#prevId && r.bytes !== null) {
          const d = this.#deliver(r.bytes, false);
          this.#prevOffset += d.read;
          this.#prevUnread = r.size > this.#prevOffset;
          if (d.damaged) gap = true;
        } else {
          // Renamed over (or emptied) since this poll saw it with bytes unread: those are lost.
          this.#forgetPrev();
          gap = true;
        }
      } else this.#prevUnread = false;
      if (cur?.id != null) {
        if (this.#id === null) {
          if (cur.seq > this.#lastSeq + 1) gap = true; // journals came and went, unread
          this.#id = cur.id;
          this.#offset = cur.start;
          this.#lastSeq = Math.max(this.#lastSeq, cur.seq);
        }
        if (cur.id === this.#id) {
          if (cur.size < this.#offset) {
            gap = true; // cut short in place (by hand): start over at its end
            this.#offset = cur.size;
          } else if (cur.size - this.#offset > MAX_READ_BYTES) {
            gap = true; // too far behind: skip to the end
            this.#offset = cur.size;
          } else if (cur.size > this.#offset) {
            const r = notSpecial(readJournal(busPath, this.#offset, MAX_READ_BYTES), busPath);
            if (r?.id === this.#id && r.bytes !== null) {
              const d = this.#deliver(r.bytes, false);
              this.#offset += d.read;
              if (d.damaged) gap = true;
            }
          }
        }
      }
    } catch {
      if (this.#up) {
        this.#up = false;
        callEach(this.#downHandlers);
      }
      return;
    }
    if (!this.#up) {
      this.#up = true;
      gap = true;
    }
    if (gap) callEach(this.#gapHandlers);
  }

  /**
   * Stop reading the renamed journal (renamed over, or followed by the next one renamed); `true`
   * when it went with bytes unread (a torn last line): events may be lost, a gap.
   */
  #forgetPrev(): boolean {
    const lost = this.#prevId !== null && this.#prevUnread;
    this.#prevId = null;
    this.#prevUnread = false;
    return lost;
  }

  /**
   * Deliver the whole lines of `bytes`; returns how many bytes they take (a last line without its
   * newline is left for the next poll, unless `all`: the rest of a renamed journal) and whether
   * one of them was not an event. After {@linkcode MAX_DAMAGED_LINES} such lines the rest is
   * taken unread: the gap the caller reports covers whatever it held, and a read of garbage costs
   * a scan, not a failed parse per line (up to a second for a read of short lines).
   */
  #deliver(bytes: Uint8Array, all: boolean): { read: number; damaged: boolean } {
    let start = 0;
    let damaged = 0;
    const line = (from: number, to: number) => {
      if (
        damaged < MAX_DAMAGED_LINES && !this.#onLine(utf8Decode.decode(bytes.subarray(from, to)))
      ) {
        damaged++;
      }
    };
    for (let i = 0; i < bytes.length; i++) {
      if (bytes[i] !== NEWLINE) continue;
      if (i > start) line(start, i);
      start = i + 1;
    }
    if (all && start < bytes.length) line(start, bytes.length);
    return { read: start, damaged: damaged > 0 };
  }

  /**
   * Deliver the event of one line (dropped when this instance wrote it). `false` when the line is
   * not an event: writers append whole events only, so it is a torn or damaged write, which may
   * have been an event, and the caller reports a gap.
   */
  #onLine(line: string): boolean {
    const event = readEvent(line);
    if (event === null) return false;
    if (event.sender !== this.instanceId) deliver(this.#handlers, event);
    return true;
  }
}

/** `r`, unless the path is not a regular file (a FIFO, a directory): then a failed read. */
function notSpecial(r: JournalRead | null | undefined, path: string): JournalRead | null {
  if (r === undefined) throw new Error(`${path} is not a regular file`);
  return r;
}
