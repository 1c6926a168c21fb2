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
import type { CallRecord } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import { type Flight, flightOf } from "./_flight.ts";
import { REFUSED, vetCopy, type Vetted } from "./_l1_copy.ts";

const vetted: Vetted = { bytes: 0, unfreezable: false };

/**
 * Whether a call or computation of one of the backend `keys` may be under way in `eng`: a single
 * flight of one ({@linkcode InflightTable.leadsAny}), the background refresh of its L1 entry (it
 * checks that its entry is still there only before its store, which takes its time when the value
 * is encrypted), or any computation going on past a soft or hard timeout (not known by key).
 */
export function worksOn(eng: Engine, keys: readonly string[]): boolean {
  if (eng.inflight.leadsAny(keys) || eng.lateWork.size !== 0 || eng.failsafe?.running === true) {
    return true;
  }
  for (const e of eng.refreshing) {
    if (e.backendKey !== null && keys.includes(e.backendKey)) return true;
  }
  return false;
}

/**
 * What a caller that joins a computation gets under `l1.copy` `"clone"` or `"freeze"`: its own
 * copy of an object answer (the caller that started the computation keeps the answer itself), so
 * that no caller's mutation reaches another's value. A frozen answer (`"freeze"`) is shared; a
 * value outside the copy space is shared as before (it cannot be copied).
 */
export function joinerCopy(v: unknown): unknown {
  if (typeof v !== "object" || v === null || Object.isFrozen(v)) return v;
  const c = vetCopy(v, vetted);
  return c === REFUSED ? v : c;
}

/** A single flight: its shared promise, and its backend key when the leader gave it. */
interface Flying {
  p: Promise<unknown>;
  backendKey: string | undefined;
}
type Dict = Record<string, Flying>;

/** In-flight promises by L1 key. */
export class InflightTable {
  #strings: Dict = Object.create(null);
  #numbers: Dict = Object.create(null);
  /**
   * Whether an observed call (`withStatus`, tracing, an event listener) ever ran on this engine:
   * from then on leaders keep a record that the calls joining them read (`_call_record.ts`).
   */
  watched = false;
  /** The records of leaders, by their shared promise (only once {@linkcode watched}). */
  readonly #records: WeakMap<Promise<unknown>, CallRecord> = new WeakMap();

  /** The record the leader of `p` keeps, if any. */
  recordOf(p: Promise<unknown>): CallRecord | undefined {
    return this.#records.get(p);
  }
  /** Whether any tracked promise had a flight (`_flight.ts`): only then are joins counted. */
  #flights = false;
  readonly #copyJoins: boolean;

  /**
   * @param copyJoins Whether a caller joining a computation gets its own copy of an object
   * answer (`l1.copy` other than `"none"`: see `joinerCopy`).
   */
  constructor(copyJoins = false) {
    this.#copyJoins = copyJoins;
  }

  /**
   * The promise in flight for `key`, if any: the caller joins it (counted by its flight, when a
   * call that can abort started it).
   */
  get(key: ArgKey): Promise<unknown> | undefined {
    const e = typeof key === "number" ? this.#numbers[key] : this.#strings[key];
    if (e === undefined) return undefined;
    const p = e.p;
    const f = this.#flights ? flightOf.get(p) : undefined;
    if (f !== undefined) {
      if (f.abandoned) return undefined; // cancelled by all its callers: start anew (`track`)
      f.joined++;
    }
    if (!this.#copyJoins) return p;
    const mine = p.then(joinerCopy);
    if (f !== undefined) flightOf.set(mine, f);
    if (this.watched) {
      const r = this.#records.get(p); // the joiner's copy answers for the leader's record too
      if (r !== undefined) this.#records.set(mine, r);
    }
    return mine;
  }

  /** Whether a computation of `key` is in flight (not counted as a join). */
  has(key: ArgKey): boolean {
    return (typeof key === "number" ? this.#numbers[key] : this.#strings[key]) !== undefined;
  }

  /**
   * Share `p` under `key` until it settles (then the entry is removed, unless replaced), with the
   * `flight` of a call that can abort, the record of a leader an observed call may join, and the
   * call's L2 key (another instance's deletion of it stops the call: {@linkcode leadsAny}).
   */
  track(
    key: ArgKey,
    p: Promise<unknown>,
    flight?: Flight,
    rec: CallRecord | null = null,
    backendKey?: string,
  ): void {
    if (rec !== null) this.#records.set(p, rec);
    if (flight !== undefined) {
      this.#flights = true;
      flightOf.set(p, flight);
    }
    const dict = typeof key === "number" ? this.#numbers : this.#strings;
    const e: Flying = { p, backendKey };
    dict[key] = e;
    // `then` is attached before any caller's reaction, so the entry is gone when callers resume.
    const done = () => {
      if (dict[key] === e) delete dict[key];
    };
    p.then(done, done);
  }

  /**
   * Whether a single flight of one of the L2 `keys` is in flight (a walk of the flights: an
   * invalidation from another instance is rare next to the calls).
   */
  leadsAny(keys: readonly string[]): boolean {
    for (const dict of [this.#strings, this.#numbers]) {
      for (const k in dict) {
        const bk = dict[k].backendKey;
        if (bk !== undefined && keys.includes(bk)) return true;
      }
    }
    return false;
  }

  /** Forget every entry (their promises still settle for whoever awaits them). */
  clear(): void {
    this.#strings = Object.create(null);
    this.#numbers = Object.create(null);
  }
}
