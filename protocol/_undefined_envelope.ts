/**
 * The envelope of a JavaScript `undefined` result, told apart from `null` by its checksum.
 *
 * MessagePack and Python have one "nothing", nil, so `undefined` is stored as nil plus a flag in
 * the wire metadata (`js_undefined`, or the framed header's `0x08`). A flag beside the checksummed
 * bytes is not enough: an entry with the flag cut out (a splice, a truncated document) would read as
 * `null`, another value. So with integrity checking on, the envelope of an `undefined` result
 * carries a marker checksum instead of the nil byte's own xxHash3-64: the xxHash3-64 of the nil
 * byte followed by the ASCII text `cachekit:js_undefined`. Then the checksum itself says which of
 * the two it is:
 *
 * - an entry flagged `undefined` must be exactly this envelope (nil data, marker checksum);
 * - an entry not flagged must verify against its data's own checksum, which the marker never is, so
 *   an `undefined` entry that lost its flag is a checksum failure (a miss), never `null`.
 *
 * cachekit-py 0.3.0 has no `undefined`: it sees the marker as a checksum mismatch and recomputes.
 *
 * @module
 */
import { IntegrityError } from "../errors.ts";
import { compressBlock, decompressBlock } from "./_lz4.ts";
import { xxh3 } from "./_xxh3.ts";
import { toHex } from "./_hex.ts";
import { parseEnvelope, writeEnvelopeFields } from "./_envelope_msgpack.ts";

const MARK = new TextEncoder().encode("cachekit:js_undefined");

/** The marker checksum of `nil`, the serializer's bytes of `null`. */
export function marker(nil: Uint8Array): Uint8Array {
  const input = new Uint8Array(nil.length + MARK.length);
  input.set(nil);
  input.set(MARK, nil.length);
  return xxh3(input);
}

/**
 * The envelope of an `undefined` result: the serializer's `null` under the marker checksum.
 *
 * @param nil The serializer's bytes of `null` (MessagePack `c0`, JSON `null`).
 * @param format The serializer's format tag.
 * @param protocol Envelope protocol version.
 * @returns The envelope bytes.
 */
export function undefinedEnvelope(
  nil: Uint8Array,
  format: string,
  protocol: "1.0" | "1.1",
): Uint8Array {
  return writeEnvelopeFields(
    { compressed: compressBlock(nil), checksum: marker(nil), originalSize: nil.length, format },
    protocol,
  );
}

/**
 * Check that `bytes` are the envelope of an `undefined` result.
 *
 * @param bytes The envelope read (plaintext).
 * @param nil The reader's serializer's bytes of `null`.
 * @param format The reader's format tag.
 * @returns The marker checksum, as hex (what a document's `ck_check` covers).
 * @throws {IntegrityError} Anything else: other data, another checksum, size or format.
 */
export function openUndefinedEnvelope(bytes: Uint8Array, nil: Uint8Array, format: string): string {
  let env;
  let data;
  try {
    env = parseEnvelope(bytes);
    data = env.originalSize === nil.length ? decompressBlock(env.compressed, nil.length) : null;
  } catch (e) {
    // A malformed structure or block (RangeError, invalid UTF-8 in the format): typed, a miss.
    throw new IntegrityError(`envelope rejected: ${(e as Error)?.message ?? String(e)}`, {
      cause: e,
    });
  }
  if (
    env.checksumHex !== toHex(marker(nil)) || env.format !== format || data === null ||
    data.length !== nil.length || data.some((b, i) => b !== nil[i])
  ) {
    throw new IntegrityError("an entry flagged undefined that is not the undefined envelope");
  }
  return env.checksumHex;
}
