/**
 * The canonical encoder's data model and its refusals: the float64 marker, the three profiles,
 * the nesting limit, and {@linkcode EncodeRefusal} with the messages that say what to pass instead
 * and where (the argument path). Apart from the encoder (`_canonical.ts`) because none of it
 * touches the output buffer: it is what the encoder accepts and how it reports the rest.
 *
 * @module
 */

/**
 * A number marked to encode as MessagePack float64; build one with `float64(x)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Float64, float64 } from "@cachekit/core/protocol";
 * const f = float64(-0);
 * assert.ok(f instanceof Float64);
 * assert.ok(Object.is(f.value, 0));
 * ```
 */
export class Float64 {
  /** The number, with `-0` already turned into `+0`. */
  readonly value: number;
  /**
   * Mark `value` as a float64.
   *
   * @param value The number to encode as float64.
   */
  constructor(value: number) {
    if (typeof value !== "number") {
      throw new TypeError(`float64() expects a number, got ${typeof value}`);
    }
    this.value = value === 0 ? 0 : value;
  }
}

/** Profile: the Python SDK's standard cache-key normalization. */
export const STD = 0;
/** Profile: interop/v1 arguments. */
export const ARGS = 1;
/** Profile: interop/v1 values. */
export const VALUE = 2;
/** One of {@linkcode STD}, {@linkcode ARGS}, {@linkcode VALUE}. */
export type Profile = 0 | 1 | 2;

/** Thrown inside the encoder; the path is collected while it unwinds. */
export class EncodeRefusal extends Error {
  /** Path segments, innermost first (reverse order). */
  readonly segments: (string | number)[] = [];
  /** Innermost segments that are not part of the refused value's path (see `refuseDeep`). */
  trim = 0;
  /**
   * A cycle: the refused value is the container `back` levels above it on its own path (the
   * reason then names that ancestor's path).
   */
  back = 0;
  /** @param reason Why the value was refused. */
  constructor(readonly reason: string) {
    super(reason);
  }
  /** The path below `root`, e.g. `args[1].user.tags`. */
  pathFrom(root: string): string {
    return this.#path(root, this.trim);
  }
  /** Why the value was refused, naming paths below `root` where the reason refers to one. */
  reasonFrom(root: string): string {
    if (this.back === 0) return this.reason;
    return `it is ${this.#path(root, this.trim + this.back)} again: ${this.reason}`;
  }
  #path(root: string, drop: number): string {
    let p = root;
    for (let i = this.segments.length - 1; i >= drop; i--) p += formatSegment(this.segments[i]);
    return p;
  }
}

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
/** `[3]` for an index, `.name` for an identifier-like key, `["a b"]` otherwise. */
export function formatSegment(s: string | number): string {
  if (typeof s === "number") return `[${s}]`;
  return IDENT.test(s) ? `.${s}` : `[${JSON.stringify(s)}]`;
}

/**
 * Deepest container nesting accepted in one value: an argument that is an array is at level 1, an
 * array inside it at level 2, and so on. Far above real arguments, far below the call stack.
 */
export const MAX_DEPTH = 256;

/** Throw an {@linkcode EncodeRefusal} for `reason`. */
export function refuse(reason: string): never {
  throw new EncodeRefusal(reason);
}

/** How a refusal names a value outside the model (`a Set`, `an instance of Foo`). */
export function describe(v: unknown): string {
  if (v === undefined) return "undefined";
  if (typeof v === "function") return "a function";
  if (typeof v === "symbol") return "a symbol";
  if (v instanceof Set) return "a Set";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor?.name ?? "typed array"}`;
  const name = (v as object).constructor?.name;
  return name ? `an instance of ${name}` : "an object with an unusual prototype";
}

/**
 * The number of arguments without the trailing `undefined` ones: `f("a", undefined)` is the call
 * `f("a")`, as JavaScript itself reads a missing argument as `undefined`.
 */
export function definedLength(args: readonly unknown[]): number {
  let n = args.length;
  while (n > 0 && args[n - 1] === undefined) n--;
  return n;
}

/** Refuse a value whose type is outside `profile`'s model, saying what to pass instead. */
export function refuseType(v: unknown, profile: Profile): never {
  const what = describe(v);
  if (v === undefined) {
    refuse(
      profile === VALUE
        ? "undefined has no interop value form; use null (object properties holding undefined " +
          "are left out)"
        : "undefined in an array, Map or Set has no cache-key form (a function may treat it " +
          "unlike null); pass null (object properties holding undefined are left out)",
    );
  }
  if (v instanceof Set && profile !== ARGS) {
    refuse("a Set has no defined order; pass a sorted array");
  }
  refuse(
    `${what} is not supported; use null, booleans, numbers, bigints, strings, Uint8Array, ` +
      `Date, arrays, plain objects or Maps with string keys${
        profile === ARGS ? ", Sets" : ""
      } (or a custom key function)`,
  );
}

/** Refuse an `undefined` argument before a defined one (it has no cache-key form). */
export function encodeUndefined(): never {
  throw new EncodeRefusal(
    "undefined before a defined argument has no cache-key form (a function may treat it unlike " +
      "null); pass null, or move the optional parameter last (trailing undefined arguments are " +
      "the same call as leaving them out)",
  );
}
