/**
 * `performance.now()` read at most once per microtask checkpoint. Internal.
 *
 * The guard reads the clock when an operation starts and when it settles (for the adaptive
 * timeout, the latency histogram and the deadline the backend arms). Under concurrency the
 * settlements come in bursts: the batched reply of 100 concurrent L2 hits settles them in one run
 * of promise reactions, 100 clock reads (~0.3 µs each, a call into the runtime) a few
 * microseconds apart. {@linkcode turnNow} reads the clock once and keeps the reading until the
 * microtasks queued before it have run (a microtask clears it), so a burst shares one reading.
 *
 * What that costs in accuracy: none that makes a duration short. A reaction that shares the
 * reading was queued before it was taken, so its operation had finished by then: the end it
 * records is never before the operation's outcome was known, and late by at most the CPU time of
 * the reactions run in between (no timer or I/O event can fall in between). Only ends use it: an
 * operation's start is read fresh, because a start sharing a reading taken before a long
 * synchronous stretch would count its deadline from before the operation existed and could time
 * out a healthy backend early.
 *
 * @module
 */

let reading = -1;
const forget = (): void => {
  reading = -1;
};

/** `performance.now()`, shared by every caller until the current microtasks have run. */
export function turnNow(): number {
  if (reading < 0) {
    reading = performance.now();
    queueMicrotask(forget);
  }
  return reading;
}
