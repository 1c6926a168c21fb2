/**
 * The reader's rules for a plaintext stored entry, in one place: what a cached function accepts
 * from a decoded wire entry, and how its payload becomes the value. The engine reads through it,
 * and so does the fuzzer's wire target, so the rules it checks are the ones that run.
 *
 * The reader's configuration decides what it accepts; an entry can narrow it, never widen it:
 *
 * - **Integrity checking on**: only an entry whose value and metadata a checksum covers — the
 *   ByteStorage envelope, plus the framed header's check, a document's `ck_check`, or
 *   cachekit-py's plain document form (no `js_undefined`, no `fresh_until`).
 * - **Serializer and format**: the entry must name the reader's serializer (cachekit-py's name or
 *   ours) and its format, in the wire header or inside the envelope.
 * - **`undefined`**: stored as the serializer's `null` with a flag. With the envelope, the flag must
 *   come with the undefined envelope (a marker checksum, `protocol/_undefined_envelope.ts`), and an
 *   entry without the flag must verify against its own data, so neither a set nor a lost flag turns
 *   one value into the other. Without the envelope (integrity off), the flag over any payload but
 *   `null` is not believed.
 * - **Size**: nothing larger than `maxValueSize` is decompressed or deserialized.
 * - **Digest layout** (cachekit-py 0.3.0's orjson and arrow, `_digest_layout.ts`): no envelope;
 *   with integrity checking on, the 8-byte xxHash3-64 before the payload must match (a document
 *   does not say whether it is there: the reader's configuration decides, as cachekit-py's does;
 *   a framed entry says it in its header, and one without it is refused). An envelope under such
 *   a format is refused.
 *
 * Decryption stays with the engine (it needs the tenant's keys); it hands the plaintext here.
 *
 * @module
 */
import { CacheKitError, IntegrityError } from "../errors.ts";
import type { Serializer } from "../serializers/types.ts";
import { newHead, openEnvelopeData, openEnvelopePrefix } from "./_envelope_read.ts";
import { digestHex } from "./_envelope_msgpack.ts";
import { openUndefinedEnvelope } from "./_undefined_envelope.ts";
import { verifyDocumentCheck } from "./_document.ts";
import { openDigest, usesDigestLayout } from "./_digest_layout.ts";
import { type WireDocument, WireFormatError } from "./_stored_types.ts";
import type { StoredFraming } from "./_stored_framing.ts";

/** What a reader accepts: taken from the function's configuration, never from the entry. */
export interface ReadPolicy {
  /** The configured serializer. */
  serializer: Serializer;
  /** Serializer names an entry may carry (cachekit-py's `"default"` and ours for std). */
  acceptNames: ReadonlySet<string>;
  /** `integrityChecking`: refuse any entry a checksum does not cover. */
  integrityChecking: boolean;
  /** Largest value accepted, serialized bytes (`maxValueSize`): one object, reused by every read. */
  limits: { readonly maxSize: number };
  /** Decompress into the shared scratch buffer (the serializer copies what it keeps). */
  scratch: boolean;
  /**
   * With `scratch`: the serializer's deserialize of the first `n` bytes of a longer buffer (the
   * std serializer's `deserializePrefix`); the envelope's data then stays in the codec's reused
   * view. Unset or `null`: `serializer.deserialize` of the exact bytes.
   */
  prefix?: ((buf: Uint8Array, n: number) => unknown) | null;
  /**
   * The serializer's own stored layout (`arrow`, `auto`: `_stored_framing.ts`), which checks
   * integrity and format itself; `null` for the envelope's.
   */
  framing?: StoredFraming | null;
}

/** A value over `maxValueSize`: answered but not cached on write, a miss on read. */
export class ValueTooLargeError extends CacheKitError {
  /**
   * Create the error.
   *
   * @param size The value's size in bytes.
   * @param limit The limit it is over.
   */
  constructor(size: number, limit: number) {
    super(`${size} bytes serialized, over maxValueSize (${limit})`, "CACHE_VALUE_TOO_LARGE");
  }
}

/**
 * `bytes` itself when within `limit`.
 *
 * @throws {ValueTooLargeError} Over the limit.
 */
export function checkValueSize(bytes: Uint8Array, limit: number): Uint8Array {
  if (bytes.length > limit) throw new ValueTooLargeError(bytes.length, limit);
  return bytes;
}

/** The fields of the envelope being read: one object for every read (reads are synchronous). */
const head = newHead();

/**
 * Refuse an entry the policy does not accept, before anything is decrypted or decompressed.
 *
 * @throws {IntegrityError} Integrity checking on and the entry not covered by a checksum.
 * @throws {WireFormatError} Another serializer or format.
 */
export function acceptEntry(doc: WireDocument, policy: ReadPolicy): void {
  const digestLayout = usesDigestLayout(policy.serializer.format);
  if (policy.framing) {
    // Its layout carries its own checksum (checked by `framing.open`), never our flags.
    if (doc.compressed || doc.digest || doc.jsUndefined || doc.check) {
      throw new WireFormatError(`an entry ${policy.serializer.name} does not write`);
    }
  } else if (digestLayout && doc.compressed) {
    throw new WireFormatError(`an envelope where format ${policy.serializer.format} has none`);
  } else if (policy.integrityChecking) {
    if (digestLayout ? doc.digest === false : !doc.compressed) {
      throw new IntegrityError("an entry without its checksum");
    }
    if (doc.check === null && (doc.jsUndefined || doc.freshUntil !== null)) {
      throw new IntegrityError("a document with js_undefined or fresh_until and no ck_check");
    }
  }
  if (!policy.acceptNames.has(doc.serializer)) {
    throw new WireFormatError(
      `written by serializer ${doc.serializer}, not ${policy.serializer.name}`,
    );
  }
  // A bare envelope (envelope wire) names its format inside: checked once it is opened.
  if (!policy.framing && doc.format !== undefined && doc.format !== policy.serializer.format) {
    throw new WireFormatError(`format ${doc.format}, expected ${policy.serializer.format}`);
  }
}

/**
 * The value of an accepted entry, from its plaintext `data` (the stored bytes, or what decryption
 * gave): the envelope opened and verified (sizes, checksum, the document's `ck_check`), then
 * deserialized.
 *
 * @throws {CacheKitError} Anything that does not verify or decode (a miss for the engine).
 */
export function openEntry(
  doc: WireDocument,
  data: Uint8Array,
  policy: ReadPolicy,
): unknown {
  const { serializer, limits } = policy;
  if (policy.framing) {
    return serializer.deserialize(
      policy.framing.open(doc, data, policy.integrityChecking, limits.maxSize),
    );
  }
  if (usesDigestLayout(serializer.format) && (doc.digest ?? policy.integrityChecking)) {
    return openDigestEntry(doc, data, policy);
  }
  if (doc.jsUndefined && doc.compressed) {
    // Exactly the undefined envelope, whose checksum says `undefined` (see _undefined_envelope.ts).
    const checksum = openUndefinedEnvelope(data, serializer.serialize(null), serializer.format);
    if (doc.check && !verifyDocumentCheck(doc, checksum)) {
      throw new IntegrityError("the document's metadata does not match its ck_check");
    }
    return undefined;
  }
  let plain = data;
  let checksum: string | null = null;
  const prefix = policy.prefix;
  if (doc.compressed && prefix != null && policy.scratch) {
    // As below, with the bytes left where the codec wrote them, in a view longer than they are.
    const buf = openEnvelopePrefix(data, limits.maxSize, head);
    if (doc.format === undefined && head.format !== serializer.format) {
      throw new WireFormatError(`format ${head.format}, expected ${serializer.format}`);
    }
    if (doc.check) checksum = digestHex(head.hi, head.lo);
    return checkedValue(doc, prefix(buf, head.originalSize), checksum);
  }
  if (doc.compressed) {
    // The decompressed bytes only live until deserialized: a built-in serializer copies what it
    // keeps, so they may stay where the codec wrote them, or go to the shared scratch buffer (no
    // allocation per read). Nothing may call the codec before they are deserialized.
    plain = openEnvelopeData(data, policy.scratch, limits.maxSize, head);
    if (doc.format === undefined && head.format !== serializer.format) {
      throw new WireFormatError(`format ${head.format}, expected ${serializer.format}`);
    }
    if (doc.check) checksum = digestHex(head.hi, head.lo);
  } else checkValueSize(plain, limits.maxSize);
  return checkedValue(doc, serializer.deserialize(plain), checksum);
}

/** The deserialized `value` of `doc`, once its `ck_check` (the envelope's `checksum`) verifies. */
function checkedValue(doc: WireDocument, value: unknown, checksum: string | null): unknown {
  // After deserializing: the check hashes through the codec, which would overwrite the bytes. The
  // value is not answered unless it passes.
  if (checksum !== null && !verifyDocumentCheck(doc, checksum)) {
    throw new IntegrityError("the document's metadata does not match its ck_check");
  }
  if (!doc.jsUndefined) return value;
  // `undefined` is stored as nil: a flag over any other value is not believed.
  if (value !== null && value !== undefined) {
    throw new WireFormatError("an undefined entry whose payload is not nil");
  }
  return undefined;
}

/**
 * {@linkcode openEntry} for the digest layout (`_digest_layout.ts`): the 8-byte digest verified
 * (or, flagged `undefined`, the marker over the serializer's `null`), the document's `ck_check`
 * against it, then the payload deserialized.
 */
function openDigestEntry(
  doc: WireDocument,
  data: Uint8Array,
  policy: ReadPolicy,
): unknown {
  const { serializer, limits } = policy;
  checkValueSize(data, limits.maxSize + 8);
  const undef = doc.jsUndefined === true;
  const { payload, checksum } = openDigest(data, undef, undef ? serializer.serialize(null) : data);
  if (doc.check && !verifyDocumentCheck(doc, checksum)) {
    throw new IntegrityError("the document's metadata does not match its ck_check");
  }
  if (undef) return undefined;
  return serializer.deserialize(payload);
}
