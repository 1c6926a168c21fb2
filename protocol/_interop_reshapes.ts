/**
 * Whether an interop value comes back as something else once decoded (see
 * `serializers/_reshaped.ts` for why the cache asks). Kept apart from the canonical encoder, which
 * builds cache keys too and stays as lean as it is: this walk runs only on a miss, after the value
 * encoded without refusal, and errs on the side of `true` (which only costs a decode).
 *
 * @module
 */

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

/**
 * Whether `decodeInteropValue(encodeInteropValue(v))` may differ from `v`, for a `v` the encoder
 * accepted: `-0`, integral numbers beyond the safe range (read back as `bigint`), safe `bigint`s
 * (read back as numbers), `Map`s and null-prototype objects (plain objects), `float64()` wrappers
 * (numbers), subclasses of `Uint8Array` or `Date`, objects shaped like a `__datetime__` sentinel
 * or holding a `"__proto__"` key, and top-level `undefined` (stored as `null`).
 */
export function interopReshapes(v: unknown): boolean {
  switch (typeof v) {
    case "number":
      return (v === 0 && 1 / v < 0) || (Number.isInteger(v) && !Number.isSafeInteger(v));
    case "bigint":
      return v <= MAX_SAFE && v >= MIN_SAFE;
    case "undefined":
      return true;
    case "object": {
      if (v === null) return false;
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) if (interopReshapes(v[i])) return true;
        return false;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto === Object.prototype) {
        const o = v as Record<string, unknown>;
        if (o.__datetime__ === true || Object.hasOwn(o, "__proto__")) return true;
        const keys = Object.keys(o);
        for (let i = 0; i < keys.length; i++) if (interopReshapes(o[keys[i]])) return true;
        return false;
      }
      return proto !== Uint8Array.prototype && proto !== Date.prototype;
    }
    default:
      return false;
  }
}
