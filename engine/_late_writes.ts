/**
 * Late writes: a value this instance computed and wrote to L2 just as another instance's
 * invalidation of its key went by. Internal.
 *
 * A computation checks, before it stores, that no invalidation came since it started (the
 * engine's epoch, which the bus's events move). Another instance's invalidation deletes in L2
 * first and announces it after, and the announcement takes its time to arrive (Redis pub/sub:
 * about a round trip; the file backend's journal: up to a poll interval). A computation that
 * started before the deletion but wrote after it, and heard of it only once its write was issued,
 * put back a value the invalidation was meant to remove: every instance then answered it until
 * it expired.
 *
 * So the engine remembers its recent writes of computed values ({@linkcode LateWrites}: a ring of
 * the last {@linkcode LATE_WRITES}, for {@linkcode LATE_WINDOW_MS} after each was issued: the L2
 * key, the tags and the bytes written, at most {@linkcode LATE_BUDGET} of bytes per engine, the
 * newest kept), and when the bus brings an invalidation that names one of them (a key deleted or
 * set on purpose elsewhere, a prefix, a tag, everything), it reads the key once its own writes in
 * flight have landed, and deletes it if it still holds exactly the bytes this instance wrote
 * ({@linkcode deleteLateWrites}): then the write landed after the deletion (or over the value set
 * on purpose). A key that holds anything else (nothing: the deletion came after the write; a
 * newer value) is left alone. A value larger than {@linkcode LATE_BYTES}, or one whose bytes were
 * let go for the budget, is remembered without its bytes and deleted without the comparison: a
 * miss more at worst. Between the read and the deletion another write may land and be deleted: a
 * miss more, never a wrong answer.
 *
 * A cache object's `set` is not remembered: the value it stores, given by its caller, is not older
 * than an invalidation that reaches it (it was asked for when it was stored). A forced refresh
 * (`f.refresh()`) is: it computes, as a miss does, from what it read before such an invalidation.
 *
 * @module
 */
import type { Backend, InvalidationEvent } from "../backends/types.ts";
import type { Engine } from "./_engine.ts";
import { publish, reapply, underTarget, writesLanded } from "./_invalidation.ts";
import { recordFailure } from "./_status.ts";
import { compareBytes } from "../protocol/internal.ts";

/** How long after it was issued a write is checked against the invalidations heard, ms. */
export const LATE_WINDOW_MS: number = 5_000;
/** How many recent writes are remembered (a ring: the oldest go first). */
export const LATE_WRITES: number = 1024;
/** The largest write whose bytes are kept for the comparison. */
export const LATE_BYTES: number = 8 * 1024;
/** The most bytes one engine keeps: past it, the oldest writes' bytes are let go first. */
export const LATE_BUDGET: number = 256 * 1024;

/** A remembered write that names the event (see {@linkcode LateWrites.take}). */
export interface LateWrite {
  /** The L2 key. */
  key: string;
  /** The bytes written, or `null` past {@linkcode LATE_BYTES}. */
  bytes: Uint8Array | null;
}

/**
 * The recent writes of computed values of one engine (see the module documentation): a fixed
 * ring of arrays, so that noting a write (on every miss) allocates nothing.
 */
export class LateWrites {
  readonly #keys: (string | undefined)[] = new Array(LATE_WRITES).fill(undefined);
  readonly #tags: (readonly string[] | null)[] = new Array(LATE_WRITES).fill(null);
  readonly #bytes: (Uint8Array | null)[] = new Array(LATE_WRITES).fill(null);
  readonly #at: Float64Array = new Float64Array(LATE_WRITES);
  /** The slot the next write takes (the oldest one). */
  #next = 0;
  /** Bytes kept in all. */
  #held = 0;
  /** The oldest slot that may keep bytes: those from the oldest up to it were let go. */
  #dropAt = 0;

  /** A write of `bytes` under `key` (with `tags`) issued at `now` (`performance.now()` ms). */
  note(key: string, tags: readonly string[] | null, bytes: Uint8Array, now: number): void {
    const i = this.#next;
    const old = this.#bytes[i];
    if (old !== null) this.#held -= old.byteLength;
    const next = i + 1 === LATE_WRITES ? 0 : i + 1;
    if (this.#dropAt === i) this.#dropAt = next; // the slot becomes the newest
    const keep = bytes.byteLength <= LATE_BYTES ? bytes : null;
    this.#keys[i] = key;
    this.#tags[i] = tags;
    this.#bytes[i] = keep;
    this.#at[i] = now;
    this.#next = next;
    if (keep === null) return;
    this.#held += keep.byteLength;
    // Over the budget: let the oldest writes' bytes go (they are then deleted without comparing).
    while (this.#held > LATE_BUDGET && this.#dropAt !== i) {
      const d = this.#dropAt;
      const b = this.#bytes[d];
      if (b !== null) {
        this.#held -= b.byteLength;
        this.#bytes[d] = null;
      }
      this.#dropAt = d + 1 === LATE_WRITES ? 0 : d + 1;
    }
  }

  /** The bytes kept in all (at most {@linkcode LATE_BUDGET}). */
  get held(): number {
    return this.#held;
  }

  /** The writes issued within the window before `now` that `ev` names (then forgotten). */
  take(ev: InvalidationEvent, now: number): LateWrite[] {
    const out: LateWrite[] = [];
    // Another instance's computed value: as fresh as this one's (and the most frequent event).
    if (ev.level === "key" && ev.reason === "write") return out;
    for (let i = 0; i < LATE_WRITES; i++) {
      const key = this.#keys[i];
      if (key === undefined || now - this.#at[i] > LATE_WINDOW_MS) continue;
      if (names(ev, key, this.#tags[i])) {
        const bytes = this.#bytes[i];
        out.push({ key, bytes });
        if (bytes !== null) this.#held -= bytes.byteLength;
        this.#keys[i] = undefined;
        this.#tags[i] = null;
        this.#bytes[i] = null;
      }
    }
    return out;
  }
}

/** Whether `ev` invalidates the write of `key` (see the module documentation). */
function names(ev: InvalidationEvent, key: string, tags: readonly string[] | null): boolean {
  switch (ev.level) {
    case "key":
      return ev.targets.includes(key);
    case "prefix":
      return ev.targets.some((p) => underTarget(key, p));
    case "tags":
      return tags !== null && tags.some((t) => ev.targets.includes(t));
    default:
      return true;
  }
}

/**
 * Another instance's `ev` arrived: the keys of this engine's recent writes that it names, once
 * this engine's writes in flight have landed (a deletion must not overtake the write it is meant
 * to undo), are deleted on `b` where they still hold what this engine wrote.
 */
export function deleteLateWrites(eng: Engine, b: Backend, ev: InvalidationEvent): void {
  const late = eng.lateWrites;
  if (late === null) return;
  const writes = late.take(ev, performance.now());
  if (writes.length === 0) return;
  const run = () => {
    for (const w of writes) {
      withdraw(eng, b, w).catch((e) => recordFailure(eng, "delete", e));
    }
  };
  const landed = writesLanded([eng]);
  if (landed === null) run();
  else landed.then(run, run);
}

/**
 * Delete `w.key` if it still holds `w.bytes` (without bytes: at once). Until then any instance may
 * have read the value into L1: here, a call made since the event evicted the key; elsewhere, after
 * the late write's own announcement (`write`, sent when it landed). So the deletion is applied to
 * this process's L1 as another instance's change of the key (evicted, and a read in flight refused
 * its fill: `_write_marks.ts`) and announced as one (`write`: no one's work is stopped by it).
 */
async function withdraw(eng: Engine, b: Backend, w: LateWrite): Promise<void> {
  if (w.bytes !== null) {
    const now = await b.get(w.key);
    if (now === null || compareBytes(now, w.bytes) !== 0) return;
  }
  await b.delete(w.key);
  reapply(b, { level: "key", targets: [w.key], reason: "write", sender: "" });
  publish(eng, b, { level: "key", targets: [w.key], reason: "write" });
}
