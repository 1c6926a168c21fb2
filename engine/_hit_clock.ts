/**
 * The clock of the inlined L1 hit (`cache.ts`): `Date.now()`, with one reading shared by the hits
 * of a dense burst. Internal.
 *
 * A hit checks its entry's expiry against the wall clock, and where the clock reads slowly a
 * `Date.now()` is most of a hit's cost: 41 ns of the 70 ns of an awaited hit on the 2-core VM of
 * `bench/MEASUREMENTS.md` ("The clock of the L1 hit"). When {@linkcode STREAK} reads in a row
 * give the same millisecond, hits are coming much faster than one per millisecond: the reading is
 * then shared by the next hits, at most {@linkcode MAX_SHARED} of them and only until the event
 * loop turns (a `setImmediate` retires it), and the clock is read again after that.
 *
 * What it costs in accuracy: an entry that expires during such a burst can be answered until the
 * burst's turn of the event loop ends, and for at most {@linkcode MAX_SHARED} hits after the
 * reading. This is lru-cache's `ttlResolution` trade, with a bound in hits besides. A shared
 * reading is never later than the clock, so nothing expires early. Invalidations do not depend
 * on it: they evict at once.
 *
 * What it costs in time: one `setImmediate` per burst (0.1–1 µs by runtime), paid only after
 * {@linkcode STREAK} reads in one millisecond. A burst that shared too few hits to pay for its
 * immediate (a busy server making a few hits per request, many requests per millisecond) doubles
 * the reads needed next time, up to {@linkcode MAX_STREAK}, so such an application soon reads
 * the clock on every hit, as before; a burst that paid sets it back.
 *
 * Hand-written: there is no library for this. It uses `setImmediate` and not a timer because Deno's
 * op sanitizer (opt-in since Deno 2.8) reports a timer still pending at the end of a user's test.
 * It reports no immediate. The immediate is not unref'd (Deno runs an unref'd immediate only
 * along with a ref'd one); it holds a script's exit by one turn of the event loop at most. Nothing is shared while `Date.now` is not the runtime's own, such as a
 * test's fake clock (sinon, `FakeTime`, a replaced `Date.now`): every hit then reads it, so
 * advancing the fake clock expires entries at once.
 *
 * @module
 */
import { setImmediate } from "node:timers";

/** Reads in a row giving one millisecond before the reading is shared (at first: see `need`). */
export const STREAK = 16;
/** The most reads in a row `need` grows to. */
export const MAX_STREAK = 4096;
/** Most hits answered from one shared reading. */
export const MAX_SHARED = 1024;
/** Shared hits that pay for a burst's immediate; a burst sharing fewer doubles `need`. */
const PAYS = 64;

const native: () => number = Date.now;
const nativeOk = /\[native code\]/.test(Function.prototype.toString.call(native));
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
  if (!armed) {
    if (now !== reading) {
      streak = 0;
      reading = now;
      return now;
    }
    if (++streak < need || !nativeOk) return now;
    armed = true;
    setImmediate(retire); // not unref'd: Deno runs an unref'd immediate only with a ref'd one
  }
  left = MAX_SHARED;
  reading = now;
  return now;
}
