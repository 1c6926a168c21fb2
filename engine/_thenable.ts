/**
 * Whether a value is a thenable (what `await` would wait for). Internal.
 *
 * @module
 */

/** Whether `v` is an object with a callable `then`. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && typeof v === "object" &&
    typeof (v as { then?: unknown }).then === "function";
}
