/**
 * Self-verifying values for the multi-process file backend tests: a reader can tell a whole value
 * written for its key from a torn, mixed or misplaced one without knowing who wrote it.
 *
 * @module
 */

/** Deterministic value: header (magic, key index, writer, seq, length) + xorshift payload. */
export function makeValue(
  keyIndex: number,
  writer: number,
  seq: number,
  length: number,
): Uint8Array {
  const v = new Uint8Array(20 + length);
  const dv = new DataView(v.buffer);
  dv.setUint32(0, 0x56414c31); // "VAL1"
  dv.setUint32(4, keyIndex);
  dv.setUint32(8, writer);
  dv.setUint32(12, seq);
  dv.setUint32(16, length);
  let x = (keyIndex * 1_000_003 ^ writer * 7919 ^ seq * 104_729) >>> 0 || 1;
  for (let i = 20; i < v.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    v[i] = x & 0xff;
  }
  return v;
}

/** `null` when `v` is a whole value written for `keyIndex`, else what is wrong. */
export function verify(v: Uint8Array, keyIndex: number): string | null {
  if (v.length < 20) return `short value (${v.length} bytes)`;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  if (dv.getUint32(0) !== 0x56414c31) return "bad value magic";
  if (dv.getUint32(4) !== keyIndex) return `value of key ${dv.getUint32(4)} under key ${keyIndex}`;
  const length = dv.getUint32(16);
  if (length !== v.length - 20) return `length ${v.length - 20}, header says ${length}`;
  const expect = makeValue(keyIndex, dv.getUint32(8), dv.getUint32(12), length);
  for (let i = 0; i < v.length; i++) if (v[i] !== expect[i]) return `byte ${i} differs (torn)`;
  return null;
}
