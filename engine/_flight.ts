/**
 * Cancellation of shared computations. A call with an `AbortSignal` stops waiting when its signal
 * aborts (it rejects with the signal's reason), and the computation it waited for goes on for
 * whoever else shares it. The computation's own signal (the factory's `ctx.signal`) aborts only
 * when every caller that joined it has aborted: a caller without a signal never aborts, so a
 * computation shared with one is never cancelled.
 *
 * A {@linkcode Flight} is made only by a call that can abort (a `getOrSet`, a `withSignal` call)
 * when it starts a computation; the in-flight table (`_inflight.ts`) counts the callers that join
 * it. Plain calls neither make nor look for one.
 *
 * Hand-written: the counting has to sit inside the engine's single flight.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";

/** The callers of one shared computation, and its signal. */
export class Flight {
  /** Callers waiting on the computation (the one that started it included). */
  joined = 1;
  /** Callers that stopped waiting because their signal aborted. */
  aborted = 0;
  #controller: AbortController | null = null;

  /** The computation's signal: aborted once every caller has aborted. */
  get signal(): AbortSignal {
    return (this.#controller ??= new AbortController()).signal;
  }

  /**
   * Whether every caller aborted, and with them the computation: a new caller must not join it
   * (it would get another caller's abort reason), but start a computation of its own.
   */
  get abandoned(): boolean {
    return this.#controller !== null && this.#controller.signal.aborted;
  }

  /** One caller aborted with `reason`: abort the computation when it was the last one. */
  abortOne(reason: unknown): void {
    if (++this.aborted >= this.joined) (this.#controller ??= new AbortController()).abort(reason);
  }
}

/** The flight of each shared promise that has one (read by the in-flight table on a join). */
export const flightOf: WeakMap<Promise<unknown>, Flight> = new WeakMap();

/**
 * Wait for `p` until `signal` aborts: then reject with the signal's reason and tell `flight`.
 * Without a signal, `p` itself.
 */
export function waitFor<T>(
  p: Promise<T>,
  signal: AbortSignal | undefined,
  flight: Flight | undefined,
): Promise<T> {
  if (signal === undefined) return p;
  if (signal.aborted) {
    flight?.abortOne(signal.reason);
    p.catch(() => {}); // nobody else may wait for it
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      flight?.abortOne(signal.reason);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    p.then((v) => {
      signal.removeEventListener("abort", onAbort);
      resolve(v);
    }, (e) => {
      signal.removeEventListener("abort", onAbort);
      reject(e);
    });
  });
}

/**
 * Check that `signal` is an `AbortSignal` (or `undefined`), so that a wrong argument is a typed
 * error rather than a `TypeError` from inside the wait.
 *
 * @throws {CacheConfigError} Something else.
 */
export function checkSignal(signal: unknown): void {
  if (
    signal !== undefined &&
    (typeof signal !== "object" || signal === null ||
      typeof (signal as AbortSignal).addEventListener !== "function" ||
      typeof (signal as AbortSignal).aborted !== "boolean")
  ) {
    throw new CacheConfigError(
      "signal",
      signal === null ? null : typeof signal,
      "an AbortSignal (or no signal)",
    );
  }
}

/** Reject at once when `signal` is already aborted (before any work starts). */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw signal.reason;
}
