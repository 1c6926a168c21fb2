/**
 * Read-your-writes for L1 fills: the writes of keys that an L2 read started earlier must not undo.
 * Internal. Two kinds are noted: this instance's (a cache object's `set` and `expire`, from
 * {@linkcode WriteMarks.begin} to {@linkcode WriteMarks.end}) and another instance's, heard on the
 * invalidation bus as a key event naming a key of the function (`onRemoteEvent` in
 * `_invalidation.ts`: {@linkcode WriteMarks.note}). Events that concern more than keys (tags, a
 * prefix, everything) move the engine's epoch instead, which refuses every fill.
 *
 * An L2 read takes {@linkcode WriteMarks.seq} before it starts (`_l2.ts`: the hit carries it);
 * when it ends, it fills L1 with what it read only if {@linkcode WriteMarks.mayFill} says no write
 * of its key was noted since and none is under way (a read that ends while a local write runs may
 * have read either value). Without this, a `get` whose read was in flight while `set` stored a new
 * value put the old value into L1 over the new one, a read racing `expire` put the expired entry
 * back as fresh, and a read in flight as another instance's write was announced found no L1 copy
 * for the event to evict, then filled L1 with the value it had read, the old one: this instance
 * then answered it until the L1 copy expired, while every other instance had the new state.
 *
 * A read that started after the event fills L1: an announcement follows its write, so the read
 * found the new value (or a newer one). Another instance's write that lands just before the read
 * starts but is announced while the read is in flight refuses the fill too (the read cannot tell
 * which value it found): that call answers what it read, and the next one fills L1.
 *
 * The marks are bounded: past {@linkcode MAX_WRITE_MARKS} they are forgotten at once, and every
 * read that started before then is refused its fill (it answers what it read; the next read fills
 * L1). The common path costs two field reads: no write since the read started.
 *
 * Write-backs (an `expire` rewriting the entry it read, a key rotation re-encrypting one) are the
 * other side: they are counted while they run ({@linkcode beginWriteBack}), so that a write of
 * their key stops them rather than being undone by them.
 *
 * @module
 */
import type { Engine } from "./_engine.ts";

/** Most keys remembered; beyond, the marks are cleared (reads started before do not fill L1). */
export const MAX_WRITE_MARKS = 1024;

/** The writes an L1 fill from an L2 read must not undo (see the module documentation). */
export class WriteMarks {
  #seq = 0;
  #clearedAt = 0;
  readonly #marks = new Map<string, number>();
  /** Local writes under way, by L2 key (how many). */
  readonly #pending = new Map<string, number>();

  /** The count of writes noted so far: what a read takes before it starts. */
  get seq(): number {
    return this.#seq;
  }

  /** A write of the L2 key `backendKey`: by this instance, or another instance's, announced. */
  note(backendKey: string): void {
    this.#seq++;
    if (this.#marks.size >= MAX_WRITE_MARKS) {
      this.#marks.clear();
      this.#clearedAt = this.#seq;
    }
    this.#marks.set(backendKey, this.#seq);
  }

  /** A local write of `backendKey` starts (noted, and under way until {@linkcode end}). */
  begin(backendKey: string): void {
    this.note(backendKey);
    this.#pending.set(backendKey, (this.#pending.get(backendKey) ?? 0) + 1);
  }

  /** The local write {@linkcode begin} started has landed (or failed): noted again. */
  end(backendKey: string): void {
    const n = this.#pending.get(backendKey) ?? 1;
    if (n > 1) this.#pending.set(backendKey, n - 1);
    else this.#pending.delete(backendKey);
    this.note(backendKey);
  }

  /**
   * Whether a write of `backendKey` was noted since `seq` (taken when a read started): unlike
   * {@linkcode mayFill}, a local write under way since before then does not count.
   */
  wroteSince(backendKey: string, seq: number): boolean {
    if (seq === this.#seq) return false;
    if (seq < this.#clearedAt) return true;
    const m = this.#marks.get(backendKey);
    return m !== undefined && m > seq;
  }

  /**
   * Whether a read of `backendKey` that started at `seq` may fill L1 with what it read: no write of
   * that key was noted since it started, and none is under way.
   */
  mayFill(backendKey: string, seq: number): boolean {
    if (this.#pending.size !== 0 && this.#pending.has(backendKey)) return false;
    if (seq === this.#seq) return true;
    if (seq < this.#clearedAt) return false;
    const m = this.#marks.get(backendKey);
    return m === undefined || m <= seq;
  }
}

/**
 * A write-back of `backendKey` starts (a cache object's `expire`, a key rotation's rewrite): it
 * writes what it read back, so it counts in `eng.expiring` until {@linkcode endWriteBack}, and a
 * write of the key meanwhile (`supersede` in `_invalidation.ts`, or one another instance
 * announces) moves the epoch that stops it.
 */
export function beginWriteBack(eng: Engine, backendKey: string): void {
  eng.expiring.set(backendKey, (eng.expiring.get(backendKey) ?? 0) + 1);
}

/** The write-back {@linkcode beginWriteBack} started has ended (written or given up). */
export function endWriteBack(eng: Engine, backendKey: string): void {
  const n = eng.expiring.get(backendKey) ?? 1;
  if (n > 1) eng.expiring.set(backendKey, n - 1);
  else eng.expiring.delete(backendKey);
}
