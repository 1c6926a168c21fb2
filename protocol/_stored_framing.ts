/**
 * How the auto serializer stores its payload, as cachekit-py 0.3.0's `AutoSerializer` does: plain
 * values as the standard serializer's envelope (LZ4 + xxHash3, format `msgpack`) with integrity
 * checking on, bare MessagePack with it off, and `original_type: "msgpack"` — but
 * `compressed: false` either way (0.3.0's auto never sets it), so the reader's configuration, not
 * the flag, says what `data` is. Reading, also Arrow frames (`format: "arrow"`: the digest layout,
 * `_digest_layout.ts`, with integrity on; the bare IPC file with it off) and NumPy arrays
 * (`original_type: "numpy"`, `NUMPY_RAW…` bare: 0.3.0 puts no checksum on them, with integrity on
 * or off). The arrow serializer itself needs nothing here: its format takes the digest layout.
 *
 * The reader's configuration decides: an entry whose format, original type or layout it does not
 * expect is refused, and a checksum that does not match is an `IntegrityError` — a miss.
 *
 * @module
 */
import { IntegrityError } from "../errors.ts";
import { hasArrowMagic, isNumpyRaw } from "../serializers/internal.ts";
import { encodeEnvelope } from "./envelope.ts";
import { openEnvelope } from "./_envelope_read.ts";
import { openDigest } from "./_digest_layout.ts";
import { type WireDocument, WireFormatError } from "./_stored_types.ts";

/** A serializer's own stored layout (see the module doc). */
export interface StoredFraming {
  /** `metadata.original_type` written. */
  readonly originalType: string;
  /** The stored `data` for a payload the serializer wrote. */
  seal(payload: Uint8Array, integrity: boolean, protocol: "1.0" | "1.1"): Uint8Array;
  /**
   * The payload held in an accepted entry's plaintext `data`, its checks passed.
   *
   * @throws {IntegrityError} A checksum that does not match.
   * @throws {WireFormatError} A format, original type or layout the reader does not expect.
   */
  open(doc: WireDocument, data: Uint8Array, integrity: boolean, maxSize: number): Uint8Array;
}

/** Python's ArrowSerializer refuses less than the checksum and a minimal IPC file. */
const MIN_CHECKED_ARROW = 40;

function openArrow(data: Uint8Array, integrity: boolean, maxSize: number): Uint8Array {
  if (integrity && data.length < MIN_CHECKED_ARROW) {
    throw new IntegrityError(`${data.length} bytes: too short for a checksum and an Arrow file`);
  }
  const file = integrity ? openDigest(data, false, data).payload : data;
  if (file.length > maxSize) throw new WireFormatError(`Arrow file over maxValueSize (${maxSize})`);
  if (!hasArrowMagic(file, 0)) throw new WireFormatError("not an Arrow IPC file (no ARROW1 magic)");
  return file;
}

const AUTO: StoredFraming = {
  originalType: "msgpack",
  seal: (payload, integrity, protocol) =>
    integrity ? encodeEnvelope(payload, "msgpack", { protocol }) : payload,
  open(doc, data, integrity, maxSize) {
    const format = doc.format ?? "msgpack";
    if (format === "arrow") return openArrow(data, integrity, maxSize);
    if (format !== "msgpack") {
      throw new WireFormatError(`format ${format}, expected msgpack or arrow`);
    }
    const type = doc.originalType;
    if (type === "numpy" || (type == null && isNumpyRaw(data))) {
      if (!isNumpyRaw(data)) throw new WireFormatError("a numpy entry without NUMPY_RAW");
      if (data.length > maxSize) throw new WireFormatError(`over maxValueSize (${maxSize})`);
      return data;
    }
    if (type != null && type !== "msgpack") {
      throw new WireFormatError(`original_type ${type} is not read here`);
    }
    if (!integrity) {
      if (data.length > maxSize) throw new WireFormatError(`over maxValueSize (${maxSize})`);
      return data;
    }
    const env = openEnvelope(data, { maxSize });
    if (env.format !== "msgpack") throw new WireFormatError(`envelope format ${env.format}`);
    return env.data;
  },
};

/**
 * The stored layout of a built-in serializer that brings its own (`"auto"`), or `null` (the
 * envelope, or the digest layout by format).
 *
 * @param name The serializer option.
 */
export function storedFraming(name: string): StoredFraming | null {
  return name === "auto" ? AUTO : null;
}
