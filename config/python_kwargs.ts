/**
 * {@linkcode pythonKwargs}: the common `pythonArgs` option, for a function whose trailing
 * parameters Python callers pass as keyword arguments.
 *
 * @module
 */
import { CacheKeyError } from "../errors.ts";
import type { PythonCall } from "./options.ts";
import { definedLength } from "../protocol/internal.ts";

/**
 * A `pythonArgs` option: the first `positional` arguments are positional, the next ones keyword
 * arguments named `names` (in order), as a Python call `f(a, b, name=c)` passes them. An
 * argument left `undefined` is not passed (cachekit-py 0.3.0 hashes the call as written, without
 * the signature's defaults), so `getUser(42)` mirrors `get_user(42)` and `getUser(42, true)`
 * mirrors `get_user(42, include_deleted=True)`, not `get_user(42, True)`: cachekit-py hashes
 * those two differently. A call with more arguments than `positional + names.length` is refused
 * (a {@linkcode CacheKeyError}); trailing `undefined` arguments do not count (`f(42, true,
 * undefined)` is `f(42, true)`, as everywhere in the keys).
 *
 * @param positional How many leading arguments are positional.
 * @param names The Python names of the following arguments.
 * @returns The function to pass as `pythonArgs`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { pythonKwargs } from "@cachekit/core";
 *
 * const split = pythonKwargs(1, ["include_deleted"]);
 * assert.deepEqual(split(42, true), { args: [42], kwargs: { include_deleted: true } });
 * assert.deepEqual(split(42), { args: [42], kwargs: {} });
 * ```
 */
export function pythonKwargs(
  positional: number,
  names: readonly string[],
): (...args: unknown[]) => PythonCall {
  if (!Number.isInteger(positional) || positional < 0) {
    throw new RangeError("pythonKwargs: positional must be an integer >= 0");
  }
  const list = [...names];
  if (list.some((n) => typeof n !== "string" || n === "") || new Set(list).size !== list.length) {
    throw new RangeError("pythonKwargs: names must be distinct non-empty strings");
  }
  const max = positional + list.length;
  const split = (...args: unknown[]): PythonCall => {
    // Trailing `undefined` arguments are the call without them (as everywhere in the keys).
    const n = definedLength(args);
    if (n > max) {
      throw new CacheKeyError(
        "pythonArgs()",
        `${n} arguments, more than the ${positional} positional and ${list.length} keyword arguments declared`,
      );
    }
    const kwargs: Record<string, unknown> = {};
    for (let i = positional; i < n; i++) {
      if (args[i] !== undefined) kwargs[list[i - positional]] = args[i];
    }
    return { args: args.slice(0, Math.min(positional, n)), kwargs };
  };
  BY_POSITION.add(split);
  return split;
}

/**
 * The mappings {@linkcode pythonKwargs} made. Each sends argument `i` to one place of the Python
 * call, the same for every call, and reads nothing else of it: the L1 key of the arguments
 * themselves is then the key of the Python call (`engine/_keys.ts` `fastKey`), so a hit need not
 * run the mapping.
 */
export const BY_POSITION: WeakSet<object> = new WeakSet();
