/**
 * Lowercase hex of bytes, through one lookup table shared by the package (keys, fingerprints,
 * checksums, generation ids). Internal.
 *
 * @module
 */

/** The two lowercase hex digits of each byte value. */
export const HEX: readonly string[] = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);

/** Lowercase hex of `bytes[start..end)` (default: all of it). */
export function toHex(bytes: Uint8Array, start = 0, end: number = bytes.length): string {
  let s = "";
  for (let i = start; i < end; i++) s += HEX[bytes[i]];
  return s;
}
