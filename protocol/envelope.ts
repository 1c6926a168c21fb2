/**
 * The ByteStorage envelope (cachekit protocol v1.0, layer 3): what integrity checking wraps around a
 * serialized value.
 *
 * An envelope is the MessagePack array `[compressed_data, checksum, original_size, format]`:
 * `compressed_data` is the LZ4 *block* (no frame, no size prefix) of the data, `checksum` the
 * xxHash3-64 of the uncompressed data as an array of 8 integers (big-endian byte order),
 * `original_size` an unsigned integer and `format` a string (`"msgpack"` by default). Protocol 1.1
 * (the default here, cachekit-core ≥ 0.4) writes `compressed_data` as MessagePack `bin`; protocol 1.0
 * (cachekit-core ≤ 0.3, Python cachekit 0.3.0) as an array of integers, one per byte.
 *
 * The MessagePack part is a small hand-written writer/reader (`_envelope_msgpack.ts`, which says why);
 * LZ4 and xxHash3-64 run in the package's WebAssembly codec (liblz4 and xxHash compiled to wasm32,
 * `_wasm_codec.ts`, which says why and what was measured), with the hand-written JavaScript LZ4
 * (`_lz4.ts`) and `hash-wasm`'s xxHash3 as the fallback where it cannot load. Values under 64 bytes
 * are stored as a literal-only LZ4 block (still a valid block for every reader), since compressing
 * them costs more than it saves (`_block_codec.ts`). Reading accepts both array forms and the
 * named-map form (`{compressed_data, checksum, original_size, format}`).
 *
 * Every failure on the read side — truncated input, wrong field types, sizes over 512 MiB, a
 * decompression bomb, a bad checksum, a size mismatch — is an {@linkcode IntegrityError}; no other
 * exception type escapes and wrong data is never returned.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEnvelope, encodeEnvelope } from "@cachekit/core/protocol";
 *
 * const bytes = encodeEnvelope(new TextEncoder().encode("hello hello hello hello"));
 * const { data, format } = decodeEnvelope(bytes);
 * assert.equal(new TextDecoder().decode(data), "hello hello hello hello");
 * assert.equal(format, "msgpack");
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import { sealBlock } from "./_block_codec.ts";
import { MAX_ENVELOPE_BYTES, writeEnvelopeFields } from "./_envelope_msgpack.ts";
import { openEnvelope } from "./_envelope_read.ts";

/** Options of {@linkcode encodeEnvelope}. */
export interface EncodeEnvelopeOptions {
  /**
   * Envelope protocol version: `"1.1"` (default) writes the compressed block as MessagePack `bin`;
   * `"1.0"` writes it as an array of integers, the only form Python cachekit 0.3.0 can read.
   */
  protocol?: "1.0" | "1.1";
}

/** A decoded, verified envelope. */
export interface DecodedEnvelope {
  /** The original (decompressed, checksum-verified) bytes. */
  data: Uint8Array;
  /** The format tag stored with them, e.g. `"msgpack"`. */
  format: string;
}

/**
 * Wrap `data` in a ByteStorage envelope: LZ4 block compression, xxHash3-64 checksum, original size
 * and format tag, serialized as rmp-serde does.
 *
 * Throws {@linkcode SerializationError} when `data` is not a `Uint8Array`, is larger than 512 MiB,
 * or `format` / `opts.protocol` are invalid.
 *
 * @param data The serialized value.
 * @param format Format tag stored in the envelope (default `"msgpack"`).
 * @param opts Protocol version (default `"1.1"`).
 * @returns The envelope bytes.
 *
 * @example Protocol 1.0 for Python cachekit 0.3.0
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeEnvelope } from "@cachekit/core/protocol";
 *
 * const env = encodeEnvelope(new Uint8Array([0xc0]), "msgpack", { protocol: "1.0" });
 * assert.equal(env[0], 0x94); // an array of 4
 * assert.equal(env[1], 0x92); // the LZ4 block as an array of 2 integers
 * ```
 */
export function encodeEnvelope(
  data: Uint8Array,
  format: string = "msgpack",
  opts: EncodeEnvelopeOptions = {},
): Uint8Array {
  if (!(data instanceof Uint8Array)) {
    throw new SerializationError("encodeEnvelope: data must be a Uint8Array");
  }
  if (data.length > MAX_ENVELOPE_BYTES) {
    throw new SerializationError(
      `encodeEnvelope: ${data.length} bytes is over the 512 MiB envelope limit`,
    );
  }
  if (typeof format !== "string") {
    throw new SerializationError("encodeEnvelope: format must be a string");
  }
  const protocol = opts.protocol ?? "1.1";
  if (protocol !== "1.0" && protocol !== "1.1") {
    throw new SerializationError(
      `encodeEnvelope: unknown protocol ${JSON.stringify(protocol)}; use "1.0" or "1.1"`,
    );
  }
  // `block` and `checksum` may be views of the codec's memory: written out before any other call.
  const { block, head, checksum } = sealBlock(data);
  return writeEnvelopeFields(
    { compressed: block, checksum, originalSize: data.length, format },
    protocol,
    head,
  );
}

/**
 * Open and verify a ByteStorage envelope written by any cachekit SDK (protocol 1.0 or 1.1, array or
 * named-map form).
 *
 * Checks, in order: total size ≤ 512 MiB; MessagePack structure and field types; compressed size
 * ≤ 512 MiB; original size ≤ 512 MiB; a zero-length block with a non-zero size; original size over
 * 1000 × compressed size; for an original size over 256 KiB, that the block's sequences add up to
 * it (walked before the output is allocated); decompression to exactly the original size; the
 * xxHash3-64 checksum; the length. Any failure throws {@linkcode IntegrityError}.
 *
 * @param bytes The stored envelope.
 * @returns The original bytes and their format tag.
 *
 * @example A corrupted envelope is refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeEnvelope, encodeEnvelope } from "@cachekit/core/protocol";
 * import { IntegrityError } from "@cachekit/core";
 *
 * const env = encodeEnvelope(new TextEncoder().encode("some cached value"));
 * env[5] ^= 0xff; // flip bits inside the compressed block
 * try {
 *   decodeEnvelope(env);
 * } catch (e) {
 *   assert.ok(e instanceof IntegrityError);
 * }
 * ```
 */
export function decodeEnvelope(bytes: Uint8Array): DecodedEnvelope {
  const { data, format } = openEnvelope(bytes);
  return { data, format };
}
