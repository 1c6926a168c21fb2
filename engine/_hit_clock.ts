/**
 * The clock of the inlined L1 hit (`cache.ts`): `Date.now()`, with one reading shared by a few
 * hits of a dense burst. Internal.
 *
 * A hit checks its entry's expiry against the wall clock, and where the clock reads slowly a
 * `Date.now()` is most of a hit's cost: 41 ns of the 70 ns of an awaited hit on the 2-core VM of
 * `bench/MEASUREMENTS.md` ("The clock of the L1 hit"). When {@linkcode STREAK} reads in a row
 * give the same millisecond, hits are coming much faster than one per millisecond. From then until
 * the event loop turns (a `setImmediate` retires the burst), a reading is shared by the next
 * {@linkcode MAX_SHARED} hits, and then the clock is read again.
 *
 * What it costs in accuracy: a hit may check expiry against a reading taken up to
 * {@linkcode MAX_SHARED} hits earlier, within one turn of the event loop. This is lru-cache's
 * `ttlResolution` trade, bounded in hits rather than in time. A turn can be long (a
 * `MessageChannel` or worker queue runs its queued tasks before immediates), but a reading still
 * serves at most {@linkcode MAX_SHARED} hits. A shared reading is never later than the clock, so
 * nothing expires early. Invalidations do not depend on it: they evict at once.
 *
 * What it costs in time: one `setImmediate` per burst (0.1–1 µs by runtime), paid only after
 * {@linkcode STREAK} reads in one millisecond, and one clock read per {@linkcode MAX_SHARED} hits
 * after that. A burst that shared too few hits to pay for its immediate doubles the reads needed
 * next time, up to {@linkcode MAX_STREAK}. A busy server making a few hits per request, many
 * requests per millisecond, soon reads the clock on every hit, as before; a burst that paid sets
 * the count back.
 *
 * Where nothing is shared, every hit reads the clock as before:
 * - while `Date.now` is not the function the runtime had when this module loaded and a native one:
 *   a test's fake clock (sinon, `FakeTime`, a replaced or bound `Date.now`), so advancing it
 *   expires entries at once;
 * - under `NODE_ENV=test` outside Deno (`bun test`, Jest, Vitest), where a test can freeze the
 *   native clock itself (Bun's `setSystemTime`, its Jest fake timers);
 * - once the process is about to exit (`beforeExit`, `beforeunload`): the retiring immediate would
 *   keep the event loop alive, and the exit handler that made the hits would run again, without end.
 *
 * Hand-written: there is no library for this. It uses `setImmediate` and not a timer because Deno's
 * op sanitizer (opt-in since Deno 2.8) reports a timer still pending at the end of a user's test.
 * It reports no immediate. The immediate is not unref'd, because Deno runs an unref'd immediate
 * only along with a ref'd one. It holds a script's exit by one turn of the event loop at most.
 *
 * @module
 */
import process from "node:process";
import { setImmediate } from "node:timers";

/** Reads in a row giving one millisecond before the reading is shared (at first: see `need`). */
export const STREAK = 16;
/** The most reads in a row `need` grows to. */
export const MAX_STREAK = 4096;
/** Most hits answered from one reading. */
export const MAX_SHARED = 16;
/** Shared hits that pay for a burst's immediate; a burst sharing fewer doubles `need`. */
const PAYS = 64;

const native: () => number = Date.now;
// A bound function prints as native code too, but is named "bound now".
const nativeOk = native.name === "now" &&
  /\[native code\]/.test(Function.prototype.toString.call(native));
// deno-lint-ignore no-explicit-any
const g = globalThis as any;
let reading = -1;
let streak = 0;
/** Reads in a row needed now: {@linkcode STREAK}, doubled after each burst that did not pay. */
let need = STREAK;
let left = 0;
let served = 0;
let armed = false;
/** The process is exiting, or the environment is a test run that may freeze the native clock. */
let off = !nativeOk;
let watching = false;

function retire(): void {
  need = served >= PAYS ? STREAK : Math.min(need * 2, MAX_STREAK);
  served = 0;
  left = 0;
  streak = 0;
  armed = false;
}

function exiting(): void {
  off = true;
  left = 0;
}

/** Whether a burst may share a reading now (checked once per burst). */
function mayShare(): boolean {
  if (off) return false;
  if (!watching) {
    watching = true;
    process.on?.("beforeExit", exiting);
    if (typeof g.addEventListener === "function") g.addEventListener("beforeunload", exiting);
  }
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
  if (!armed) {
    if (now !== reading) {
      streak = 0;
      reading = now;
      return now;
    }
    if (++streak < need) return now;
    if (!mayShare()) {
      streak = 0; // asked again after as many reads
      return now;
    }
    armed = true;
    setImmediate(retire); // not unref'd: Deno runs an unref'd immediate only with a ref'd one
  } else if (off) return now;
  left = MAX_SHARED;
  reading = now;
  return now;
}
