/**
 * A data source for tests of work in flight: a cached function's computations return the
 * source's `version` as it was when they started, and the next computation after `hold()` waits
 * until the test releases it (so that something else can happen meanwhile: an invalidation,
 * another instance's write).
 *
 * @module
 */

/** A held computation: `started` resolves once it runs (and waits); `release` lets it end. */
export interface HeldComputation {
  /** Resolves when the held computation has started. */
  started: Promise<void>;
  /** Let it return. */
  release: () => void;
}

/** What {@linkcode heldSource} gives. */
export interface HeldSource {
  /** What the next computation reads. */
  version: string;
  /** How many computations ran. */
  calls: number;
  /** The function to cache. */
  work: (x: unknown) => Promise<string>;
  /** Hold the next computation. */
  hold: () => HeldComputation;
}

/** A source at `version` (see the module documentation). */
export function heldSource(version = "old"): HeldSource {
  let next: { started: () => void; wait: Promise<void> } | null = null;
  const s: HeldSource = {
    version,
    calls: 0,
    work: async (_x: unknown): Promise<string> => {
      s.calls++;
      const mine = s.version;
      const h = next;
      if (h !== null) {
        next = null;
        h.started();
        await h.wait;
      }
      return mine;
    },
    hold: (): HeldComputation => {
      let started!: () => void;
      let release!: () => void;
      const startedP = new Promise<void>((r) => started = r);
      next = { started, wait: new Promise<void>((r) => release = r) };
      return { started: startedP, release: () => release() };
    },
  };
  return s;
}
