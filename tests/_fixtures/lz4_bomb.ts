/**
 * Decompression bombs for the size-limit tests: ByteStorage envelopes whose LZ4 block is one
 * literal byte and then offset-1 matches (a run of `a`), so a block of about `expands / 255` bytes
 * expands to `expands` bytes, while the envelope declares `declares` bytes (and carries a checksum
 * that is not the data's, as a forged entry would).
 *
 * @module
 */
import { writeEnvelopeFields } from "../../protocol/_envelope_msgpack.ts";

/** The LZ4 block: literal `a`, then one match of `expands - 1` bytes at offset 1, then a final token. */
export function bombBlock(expands: number): Uint8Array {
  let rest = expands - 1 - 4 - 15; // match length beyond the token's 15 and the minimum 4
  if (rest < 0) throw new RangeError("a bomb expands to at least 20 bytes");
  const ext = Math.floor(rest / 255) + 1;
  const out = new Uint8Array(1 + 1 + 2 + ext + 1);
  let p = 0;
  out[p++] = 0x1f; // 1 literal, match length 15+
  out[p++] = 0x61; // "a"
  out[p++] = 1; // offset 1 (little endian)
  out[p++] = 0;
  out.fill(255, p, p + ext - 1);
  p += ext - 1;
  rest -= 255 * (ext - 1);
  out[p++] = rest;
  out[p++] = 0x00; // last sequence: no literals, no match
  return out;
}

/** An envelope (protocol 1.1) whose block expands to `expands` bytes and declares `declares`. */
export function bombEnvelope(expands: number, declares: number = expands): Uint8Array {
  return writeEnvelopeFields({
    compressed: bombBlock(expands),
    checksum: new Uint8Array(8), // not the data's
    originalSize: declares,
    format: "msgpack",
  }, "1.1");
}
