/**
 * Shared deadline timers for Redis operations. Internal.
 *
 * One `setTimeout` per distinct timeout value instead of one per operation (arming and clearing a
 * timer per command measured a third of a loopback round trip per sequential GET under Deno):
 * operations with the same timeout expire in the order they started, so each
 * {@linkcode DeadlineQueue} is a FIFO linked list with a single timer armed for (at most) its head.
 * Settled operations unlink themselves in O(1) and leave the timer alone; when it fires it expires
 * what is due and re-arms for the new head, or stays unarmed when the queue is empty. The timer is
 * unref'd (it never keeps a process alive) and {@linkcode DeadlineQueue.dispose} clears it.
 *
 * @module
 */
import { unrefTimer } from "./_common.ts";

/** A pending deadline; pass it back to {@linkcode DeadlineQueue.remove} when the operation settles. */
export interface Deadline {
  at: number;
  fire: () => void;
  prev: Deadline | undefined;
  next: Deadline | undefined;
  linked: boolean;
}

/** FIFO of deadlines that all have the same duration. */
export class DeadlineQueue {
  readonly ms: number;
  #head: Deadline | undefined;
  #tail: Deadline | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(ms: number) {
    this.ms = ms;
  }

  /**
   * Schedule `fire` to run `ms` after `start` (default: now, by `performance.now()`) unless removed
   * first.
   */
  add(fire: () => void, start: number = performance.now()): Deadline {
    const d: Deadline = { at: 0, fire, prev: undefined, next: undefined, linked: false };
    this.link(d, start);
    return d;
  }

  /**
   * Schedule an object that is its own deadline (its `fire` method runs `ms` after `start`, by
   * default now) unless removed first: an operation that is also its deadline allocates nothing
   * more. `d` must not be linked already.
   */
  link(d: Deadline, start: number = performance.now()): void {
    d.at = start + this.ms;
    d.prev = this.#tail;
    d.next = undefined;
    d.linked = true;
    if (this.#tail) this.#tail.next = d;
    else this.#head = d;
    this.#tail = d;
    if (this.#timer === undefined) this.#arm(d.at);
  }

  /** Cancel a deadline (no-op when it already fired or was removed). */
  remove(d: Deadline): void {
    if (!d.linked) return;
    d.linked = false;
    if (d.prev) d.prev.next = d.next;
    else this.#head = d.next;
    if (d.next) d.next.prev = d.prev;
    else this.#tail = d.prev;
    d.prev = d.next = undefined;
  }

  /** Whether no deadline is pending. */
  get empty(): boolean {
    return this.#head === undefined;
  }

  /** Clear the timer and forget every pending deadline (they never fire). */
  dispose(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (let d = this.#head; d; d = d.next) d.linked = false;
    this.#head = this.#tail = undefined;
  }

  #arm(at: number): void {
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, Math.ceil(at - performance.now())));
    unrefTimer(this.#timer);
  }

  #tick(): void {
    this.#timer = undefined;
    const now = performance.now();
    while (this.#head && this.#head.at <= now + 1) {
      const d = this.#head;
      this.remove(d);
      d.fire();
    }
    if (this.#head && this.#timer === undefined) this.#arm(this.#head.at);
  }
}
