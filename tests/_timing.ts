/**
 * Timing helpers for tests that must pass on a loaded machine (CI runners, a second suite on the
 * same cores: `deno task test:load`). A timer fires late, never early, and a busy host can delay
 * any step by hundreds of milliseconds. So tests never expect a background task to be done after a
 * fixed sleep, nor a step to finish within a tight wall-clock bound:
 *
 * - {@linkcode until} polls a condition up to a long deadline (it returns as soon as the
 *   condition holds, so an idle machine stays fast);
 * - {@linkcode settlesBeforeTimers} checks "answers at once" structurally: the promise settles
 *   before a 0 ms timer fires, i.e. without waiting for any timer or I/O, however slow the host.
 *
 * @module
 */
import assert from "node:assert/strict";

/** Resolve after `ms` milliseconds. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Poll `cond` every `stepMs` until it holds or `ms` milliseconds passed; returns whether it held.
 * Use a deadline that only a hang reaches (seconds), never the expected latency.
 */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  stepMs = 5,
): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(stepMs);
  }
  return await cond();
}

/**
 * Whether `p` settles (resolves or rejects) before a 0 ms timer fires: it then waited for no timer,
 * no I/O and no other task, only microtasks. Unlike a wall-clock bound this holds however loaded
 * the machine is. The rejection, if any, is handled; await `p` itself for its outcome.
 */
export function settlesBeforeTimers(p: Promise<unknown>): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), 0);
    const done = () => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}

/**
 * Settle as `p` does, or reject when `ms` milliseconds pass first: a deadline that turns a hang into
 * a failure naming `what`. Give it seconds: it tells "answered" from "hung", not fast from slow.
 */
export function withDeadline<T>(p: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not settled after ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A `Date.now()` the test moves forward; see {@linkcode shiftDateNow}. */
export interface ShiftedClock {
  /** Move `Date.now()` forward by `ms` milliseconds (on top of real time). */
  advance(ms: number): void;
  /** Put the real `Date.now` back. */
  restore(): void;
}

/**
 * Replace `Date.now` with real time plus an offset that {@linkcode ShiftedClock.advance} raises, so
 * a test expires TTLs when it decides to, with TTLs long enough (a minute) that no load on the host
 * expires an entry earlier. Real time still runs, so timers and timeouts behave as usual. Call
 * `restore()` in a `finally`.
 *
 * @param frozen `Date.now()` moves only by `advance` (for a rate limit that real time must not
 * reach, however long the host stalls between two calls).
 */
export function shiftDateNow(frozen = false): ShiftedClock {
  const real = Date.now;
  const start = real();
  let offset = 0;
  Date.now = frozen ? () => start + offset : () => real() + offset;
  return {
    advance(ms: number) {
      offset += ms;
    },
    restore() {
      Date.now = real;
    },
  };
}

/** A promise and the function that resolves it (a gate a test opens when it wants). */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

/**
 * Assert that `actual` seconds are left of a `ttl`-second TTL written at or after `since` (a
 * `Date.now()` reading taken just before the write): at most `ttl`, and at least `ttl` minus the
 * time elapsed since then. A fixed window such as `> ttl - 1` fails when a loaded host stalls
 * between the write and the read.
 */
export function assertTtlLeft(
  actual: number | null | undefined,
  ttl: number,
  since: number,
  message = "remaining TTL",
): void {
  const elapsed = (Date.now() - since) / 1000;
  const min = ttl - elapsed - 0.005; // millisecond rounding
  assert.ok(
    typeof actual === "number" && actual >= min && actual <= ttl,
    `${message}: ${actual}, expected ${min.toFixed(3)}..${ttl} (${
      elapsed.toFixed(3)
    } s after the write)`,
  );
}
