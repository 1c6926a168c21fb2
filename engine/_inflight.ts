/**
 * The engine's table of calls in flight (single flight: concurrent calls with one key share one
 * computation or L2 read). Internal.
 *
 * Hand-written rather than a `Map`: every call adds an entry and removes it when it settles, and
 * V8's `Map` handles that churn badly (a deleted entry stays a hole until the table is rebuilt, so
 * a long-lived `Map` with ~100 entries coming and going keeps allocating new tables). Measured
 * under Deno at 100 concurrent calls: the `Map` set/delete pair cost about nine times the same on a
 * null-prototype object, and the scavenges took 5–8 ms instead of 0.2 ms; the object left the
 * scavenges alone. Keys are {@linkcode ArgKey}s: numbers
 * and strings live in two dictionaries, so `1` and `"1"` stay distinct (within the numbers,
 * `String` is injective once `-0` is normalised to `0`, which `argKey` does; `NaN` matches
 * itself, as in a `Map`).
 *
 * @module
 */
import type { ArgKey } from "./_argkey.ts";
import { type Flight, flightOf } from "./_flight.ts";

type Dict = Record<string, Promise<unknown>>;

/** In-flight promises by L1 key. */
export class InflightTable {
  #strings: Dict = Object.create(null);
  #numbers: Dict = Object.create(null);
  /** Whether any tracked promise had a flight (`_flight.ts`): only then are joins counted. */
  #flights = false;

  /**
   * The promise in flight for `key`, if any: the caller joins it (counted by its flight, when a
   * call that can abort started it).
   */
  get(key: ArgKey): Promise<unknown> | undefined {
    const p = typeof key === "number" ? this.#numbers[key] : this.#strings[key];
    if (p !== undefined && this.#flights) {
      const f = flightOf.get(p);
      if (f !== undefined) f.joined++;
    }
    return p;
  }

  /**
   * Share `p` under `key` until it settles (then the entry is removed, unless replaced), with the
   * `flight` of a call that can abort.
   */
  track(key: ArgKey, p: Promise<unknown>, flight?: Flight): void {
    if (flight !== undefined) {
      this.#flights = true;
      flightOf.set(p, flight);
    }
    const dict = typeof key === "number" ? this.#numbers : this.#strings;
    dict[key] = p;
    // `then` is attached before any caller's reaction, so the entry is gone when callers resume.
    const done = () => {
      if (dict[key] === p) delete dict[key];
    };
    p.then(done, done);
  }

  /** Forget every entry (their promises still settle for whoever awaits them). */
  clear(): void {
    this.#strings = Object.create(null);
    this.#numbers = Object.create(null);
  }
}
