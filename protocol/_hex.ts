/**
 * Hex of bytes, through one lookup table shared by the package (keys, fingerprints, checksums,
 * generation ids), and the strict way back. Internal.
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

/** Strict hex decode (even length, `[0-9a-fA-F]` only); `null` when malformed. Never throws. */
export function fromHex(hex: string): Uint8Array | null {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) return null;
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
