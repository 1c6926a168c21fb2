/**
 * The clock of the inlined L1 hit (`cache.ts`): `Date.now()`, with one reading reused by a few
 * hits of a dense burst. Internal.
 *
 * A hit checks its entry's expiry against the wall clock, and where the clock reads slowly a
 * `Date.now()` is most of a hit's cost: 41 ns of the 70 ns of an awaited hit on the 2-core VM of
 * `bench/MEASUREMENTS.md` ("The clock of the L1 hit"). When {@linkcode STREAK} reads in a row after
 * the first give the same millisecond, hits are coming much faster than one per millisecond. From
 * then until the event loop turns (a `setImmediate` retires the burst), a reading is reused by the
 * next {@linkcode MAX_SHARED} hits; the clock is then read again, and reused again only while it
 * still gives the same millisecond. Hits more than a millisecond apart read it every time.
 *
 * What it costs in accuracy: a hit may check expiry against a reading taken up to
 * {@linkcode MAX_SHARED} hits earlier in the same turn, however far apart those hits were (the
 * reading cannot tell). This is lru-cache's `ttlResolution` trade, bounded in hits rather than in
 * time. A shared reading is never later than the clock, so nothing expires early. Invalidations do
 * not depend on it: they evict at once.
 *
 * What it costs in time: one `setImmediate` per burst (0.1–1 µs by runtime), and one clock read
 * per {@linkcode MAX_SHARED} hits after it. A burst that shared too few hits to pay for its
 * immediate doubles the reads in a row needed next time, up to {@linkcode MAX_STREAK}. A busy
 * server making a few hits per request, many requests per millisecond, soon reads the clock on
 * every hit, as before; a burst that paid sets the count back.
 *
 * Where nothing is shared, every hit reads the clock as before:
 * - while `Date.now` is not the function the runtime had when this module loaded, or that one
 *   was not native (a bound function, a Proxy): a test's fake clock (sinon, `FakeTime`, a replaced
 *   `Date.now`), so advancing it expires entries at once;
 * - while `Date.now()` strays more than a second from the monotonic clock's time
 *   (`performance.timeOrigin + performance.now()`): a native clock set elsewhere (Bun's
 *   `setSystemTime`), or stepped since the process started;
 * - under `NODE_ENV=test` outside Deno (`bun test`, Jest, Vitest), where a test can freeze the
 *   native clock at the current time;
 * - from the first `beforeExit` or `beforeunload` on. Otherwise a burst's immediate would keep the
 *   event loop alive, and the application's exit handler that made the hits would run again. The
 *   listeners are registered when the module loads, first in line, once per process.
 *
 * Not caught: a fake made to look native (a bound function renamed `now`) installed before this
 * module loads, and a native clock frozen at the current time outside a test run, then moved
 * during a burst (Bun's `setSystemTime` in a script). Either is seen after at most
 * {@linkcode MAX_SHARED} hits.
 *
 * Hand-written: there is no library for this. It uses `setImmediate` and not a timer because Deno's
 * op sanitizer (opt-in since Deno 2.8) reports a timer still pending at the end of a user's test.
 * It reports no immediate. The immediate is not unref'd, because Deno runs an unref'd immediate
 * only along with a ref'd one. It holds a script's end by one turn of the event loop at most.
 *
 * @module
 */
import process from "node:process";
import { setImmediate } from "node:timers";
import { types } from "node:util";

/** Reads in a row giving one millisecond, after the first, before a reading is reused. */
export const STREAK = 16;
/** The most reads in a row `need` grows to. */
export const MAX_STREAK = 4096;
/** Most hits that reuse one reading after the hit that took it. */
export const MAX_SHARED = 16;
/** Shared hits that pay for a burst's immediate; a burst sharing fewer doubles `need`. */
const PAYS = 64;
/** How far `Date.now()` may stray from the monotonic clock's time before nothing is shared. */
const STRAY_MS = 1000;

const native: () => number = Date.now;
// A bound function prints as native code too, but is named "bound now"; a Proxy prints as its
// target does.
const nativeOk = native.name === "now" && !types.isProxy(native) &&
  /\[native code\]/.test(Function.prototype.toString.call(native));
// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/**
 * Whether the process is exiting, shared by every copy of this module in the process (one pair of
 * listeners in all). Registered when the module loads, and first in line (`prependListener`), so
 * that it is set before an application's own exit handler makes its hits.
 */
const exit: { exiting: boolean } = g[Symbol.for("@cachekit/core hit clock exit")] ??= (() => {
  const flag = { exiting: false };
  const set = () => {
    flag.exiting = true;
  };
  if (typeof process.prependListener === "function") process.prependListener("beforeExit", set);
  else process.on?.("beforeExit", set);
  if (typeof g.addEventListener === "function") g.addEventListener("beforeunload", set);
  return flag;
})();

let reading = -1;
let streak = 0;
/** Reads in a row needed now: {@linkcode STREAK}, doubled after each burst that did not pay. */
let need = STREAK;
let left = 0;
let served = 0;
let armed = false;

function retire(): void {
  need = served >= PAYS ? STREAK : Math.min(need * 2, MAX_STREAK);
  served = 0;
  left = 0;
  streak = 0;
  armed = false;
}

/** Whether a burst may share readings now (checked once per burst). */
function mayShare(now: number): boolean {
  if (!nativeOk || exit.exiting) return false;
  // A native clock set apart from real time (Bun's `setSystemTime`), or stepped since start.
  if (Math.abs(now - (performance.timeOrigin + performance.now())) > STRAY_MS) return false;
  // Outside Deno only (a variable read there may need a permission); Deno's test runner does
  // not set it, and its fake clocks replace `Date`.
  return g.Deno !== undefined || process.env?.NODE_ENV !== "test";
}

/**
 * `Date.now()`, or the reading shared by the current burst of hits (see the module doc).
 *
 * @returns Milliseconds since the epoch, never later than `Date.now()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hitNow } from "./_hit_clock.ts";
 *
 * const before = Date.now();
 * const t = hitNow();
 * assert.ok(t >= before && t <= Date.now());
 * ```
 */
export function hitNow(): number {
  if (Date.now !== native) {
    left = 0; // a fake clock: read it every time, share nothing read before it
    return Date.now();
  }
  if (left > 0) {
    left--;
    served++;
    return reading;
  }
  const now = native();
  if (now !== reading) {
    // Not (or no longer) dense: hits more than a millisecond apart read the clock every time.
    streak = 0;
    reading = now;
    return now;
  }
  if (!armed) {
    if (++streak < need) return now;
    if (!mayShare(now)) {
      streak = 0; // asked again after as many reads
      return now;
    }
    armed = true;
    setImmediate(retire); // not unref'd: Deno runs an unref'd immediate only with a ref'd one
  } else if (exit.exiting) return now;
  left = MAX_SHARED;
  return now;
}
