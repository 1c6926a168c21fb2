/**
 * The value checks every option resolver shares: small predicates with the wording of their
 * error messages kept next to the resolvers, and the shape tests of a backend and a serializer.
 * Separate so that each resolver file holds only its own option group.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import type { Serializer } from "../serializers/types.ts";

/** A predicate on an option value. */
export type Check = (value: unknown) => boolean;
/** A boolean. */
export const isBool: Check = (v) => typeof v === "boolean";
/** A function. */
export const isFn: Check = (v) => typeof v === "function";
/** A finite number > 0. */
export const isPosNum: Check = (v) => typeof v === "number" && Number.isFinite(v) && v > 0;
/** A finite number >= 0. */
export const isNonNegNum: Check = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0;
/** A safe integer > 0. */
export const isPosInt: Check = (v) => Number.isSafeInteger(v) && (v as number) > 0;
/** A safe integer >= 0. */
export const isNonNegInt: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
/** A number within 0..1. */
export const isFraction: Check = (v) => typeof v === "number" && v >= 0 && v <= 1;

/** An object literal (not a class instance, array or null). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Whether `v` could be key material (a hex string, bytes, or a list of them). */
export function mayBeKey(v: unknown): boolean {
  return typeof v === "string" || v instanceof Uint8Array || Array.isArray(v);
}

/** Whether `v` has the shape of a {@linkcode Backend}. */
export function isBackend(v: unknown): v is Backend {
  if (typeof v !== "object" || v === null) return false;
  const b = v as Record<string, unknown>;
  return ["get", "set", "delete", "exists", "healthCheck"].every((m) =>
    typeof b[m] === "function"
  ) &&
    typeof b.capabilities === "object" && b.capabilities !== null;
}

/** Whether `v` has the shape of a {@linkcode Serializer}. */
export function isSerializer(v: unknown): v is Serializer {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s.serialize === "function" && typeof s.deserialize === "function" &&
    typeof s.name === "string" && s.name.length > 0;
}
