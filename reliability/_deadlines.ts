/**
 * One shared, coarse timer that expires many operation deadlines, so a guarded operation costs an
 * array push instead of a `setTimeout`/`clearTimeout` pair (each costs more on Deno than a whole
 * in-memory backend `get`).
 *
 * Deadlines fire at most one tick late and never early. The timer is armed only while some entry is
 * pending and is unref'd (`Deno.unrefTimer` / `timer.unref()`), so it never keeps a process alive
 * by itself: a pending backend operation (a socket, a file) does that.
 *
 * @module
 */
import { unrefTimer } from "../backends/internal.ts";

/** A pending deadline. `done` is set by the owner when the operation settles first. */
export interface DeadlineEntry {
  /** Absolute time (in the sweeper's clock) at which {@linkcode DeadlineEntry.expire} runs. */
  deadline: number;
  /** Set to `true` when the operation settled; the sweeper then drops the entry. */
  done: boolean;
  /** Called once when the deadline passed while `done` was still `false`. */
  expire(): void;
}

/** Expires {@linkcode DeadlineEntry}s with one timer ticking every `tickMs` while work is pending. */
export class DeadlineSweeper {
  #entries: DeadlineEntry[] = [];
  #head = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #tickMs: number;
  readonly #now: () => number;

  constructor(tickMs: number, now: () => number) {
    this.#tickMs = Math.max(1, tickMs);
    this.#now = now;
  }

  /** Track `entry`; its `expire` runs after `entry.deadline` unless `done` is set first. */
  add(entry: DeadlineEntry): void {
    const entries = this.#entries;
    // Operations mostly settle in start order: drop settled entries at the head right away.
    while (this.#head < entries.length && entries[this.#head].done) this.#head++;
    if (this.#head === entries.length) {
      entries.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > entries.length) {
      entries.splice(0, this.#head);
      this.#head = 0;
    }
    entries.push(entry);
    if (this.#timer === undefined) this.#arm();
  }

  /** Number of entries not yet settled or expired (for tests and stats). */
  get pending(): number {
    let n = 0;
    for (let i = this.#head; i < this.#entries.length; i++) if (!this.#entries[i].done) n++;
    return n;
  }

  /** Stop the timer and forget every entry without expiring it. */
  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#entries = [];
    this.#head = 0;
  }

  #arm(): void {
    this.#timer = setTimeout(() => this.#sweep(), this.#tickMs);
    unrefTimer(this.#timer);
  }

  #sweep(): void {
    this.#timer = undefined;
    const now = this.#now();
    const kept: DeadlineEntry[] = [];
    const expired: DeadlineEntry[] = [];
    const entries = this.#entries;
    for (let i = this.#head; i < entries.length; i++) {
      const e = entries[i];
      if (e.done) continue;
      if (e.deadline <= now) {
        e.done = true;
        expired.push(e);
      } else {
        kept.push(e);
      }
    }
    this.#entries = kept;
    this.#head = 0;
    if (kept.length > 0) this.#arm();
    for (const e of expired) {
      try {
        e.expire();
      } catch {
        // An expiry callback must not stop the others.
      }
    }
  }
}
