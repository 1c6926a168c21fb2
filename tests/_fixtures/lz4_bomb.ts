/**
 * Decompression bombs for the size-limit tests: ByteStorage envelopes whose LZ4 block is one
 * literal byte, an offset-1 match (a run of `a`) and five literals, so a block of about `expands / 255` bytes
 * expands to `expands` bytes, while the envelope declares `declares` bytes (and carries a checksum
 * that is not the data's, as a forged entry would).
 *
 * @module
 */
import { writeEnvelopeFields } from "../../protocol/_envelope_msgpack.ts";

/**
 * The LZ4 block: literal `a`, then one match at offset 1 (a run of `a`), then a last sequence of
 * five literal `a`s. A valid block: liblz4's decoder (the WebAssembly codec's) requires the last
 * five bytes to be literals and refuses a block ending in a match.
 */
export function bombBlock(expands: number): Uint8Array {
  let rest = expands - 1 - 5 - 4 - 15; // match length beyond the token's 15 and the minimum 4
  if (rest < 0) throw new RangeError("a bomb expands to at least 25 bytes");
  const ext = Math.floor(rest / 255) + 1;
  const out = new Uint8Array(1 + 1 + 2 + ext + 1 + 5);
  let p = 0;
  out[p++] = 0x1f; // 1 literal, match length 15+
  out[p++] = 0x61; // "a"
  out[p++] = 1; // offset 1 (little endian)
  out[p++] = 0;
  out.fill(255, p, p + ext - 1);
  p += ext - 1;
  rest -= 255 * (ext - 1);
  out[p++] = rest;
  out[p++] = 0x50; // last sequence: 5 literals, no match
  out.fill(0x61, p, p + 5);
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
