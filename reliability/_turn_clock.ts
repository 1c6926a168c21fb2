/**
 * `performance.now()` read at most once per microtask checkpoint. Internal.
 *
 * The guard reads the clock when an operation starts and when it settles (for the adaptive
 * timeout, the latency histogram and the deadline the backend arms). Under concurrency those
 * readings come in bursts: 100 concurrent L2 hits start in one synchronous stretch, and their
 * batched reply settles them in one run of promise reactions, 200 clock reads (~0.3 µs each, a call
 * into the runtime) a few microseconds apart. {@linkcode turnNow} reads the clock once and keeps
 * the reading until the microtasks queued before it have run (a microtask clears it), so a burst
 * shares one reading.
 *
 * What that costs in accuracy: a reading is late by at most the CPU time of the microtasks that ran
 * between the read and the use, all in the same checkpoint, i.e. no timer or I/O event can fall in
 * between. A settle that shares an earlier reading measures the operation as ending when the reply
 * was being handled (which it was); a start that shares one counts the deadline from slightly
 * earlier (a hung backend times out no later). Deadlines themselves are checked against a fresh
 * `performance.now()` by the timers that fire them.
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
