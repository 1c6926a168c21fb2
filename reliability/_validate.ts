/**
 * Option validation shared by the reliability modules: a bad value is a `CacheConfigError` naming
 * the option, the value and what is allowed.
 *
 * @module
 */

import { CacheConfigError } from "../errors.ts";

/** An integer ≥ `min`, or the default when `undefined`. */
export function intOption(path: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new CacheConfigError(path, value, `an integer >= ${min}`);
  }
  return value;
}

/** A finite number ≥ `min` (or > `min` when `exclusive`), or the default when `undefined`. */
export function numOption(
  path: string,
  value: unknown,
  fallback: number,
  min: number,
  exclusive = false,
): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== "number" || !Number.isFinite(value) || value < min ||
    (exclusive && value === min)
  ) {
    throw new CacheConfigError(path, value, `a finite number ${exclusive ? ">" : ">="} ${min}`);
  }
  return value;
}

/** A function or `undefined`. */
export function fnOption<T>(path: string, value: unknown): T | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "function") throw new CacheConfigError(path, value, "a function");
  return value as T;
}
