/**
 * The read side of the ByteStorage envelope: parse, decompression-bomb checks, LZ4, checksum.
 * Internal; {@linkcode openEnvelope} backs the public `decodeEnvelope`, and
 * {@linkcode openEnvelopeScratch} is the engine's allocation-free variant.
 *
 * Why a scratch buffer: under Deno an `ArrayBuffer` costs some 25 times a view to allocate and free
 * (measured for 48 and 450 bytes alike), and a stream of them makes V8 run full
 * collections for external memory: reading 100 envelopes at a time showed 25–90 ms pauses that the
 * same reads into a reused buffer do not. The engine deserializes the decompressed bytes at once
 * with a built-in serializer, which copies what it keeps (`std` decodes with msgpackr's
 * `copyBuffers`, `json` builds strings), so the bytes can live in one buffer reused by every read.
 * Where the WebAssembly codec decompresses, that buffer is its own memory: the bytes are hashed
 * and compared with the stored checksum where they were written, and deserialized from there.
 *
 * @module
 */
import { IntegrityError } from "../errors.ts";
import { decompressedLength, openBlockChecked, openBlockCheckedPrefix } from "./_block_codec.ts";
import {
  digestHex,
  type EnvelopeHead,
  fail,
  MAX_ENVELOPE_BYTES,
  readEnvelopeHead,
} from "./_envelope_msgpack.ts";

/** Largest accepted ratio of original size to compressed size (decompression-bomb guard). */
const MAX_COMPRESSION_RATIO = 1000;

/**
 * Largest value decompressed into the shared scratch buffer; larger ones get their own array, so
 * the buffer never holds more than this however large a value was read.
 */
export const SCRATCH_MAX_BYTES: number = 256 * 1024;

let scratch = new Uint8Array(4096);

/** The bytes the shared scratch buffer holds now (at most {@linkcode SCRATCH_MAX_BYTES}). */
export function scratchCapacity(): number {
  return scratch.length;
}

/** Limits of one read. */
export interface OpenEnvelopeOptions {
  /**
   * Largest original (uncompressed) size accepted, bytes (the engine's `maxValueSize`): a larger
   * declared size is refused before anything is allocated or decompressed. Default: 512 MiB, the
   * envelope limit.
   */
  maxSize?: number;
}

/** Decoded, verified data, its format tag and its (verified) checksum. */
export interface OpenedEnvelope {
  data: Uint8Array;
  format: string;
  /** xxHash3-64 of `data`, 16 lowercase hex digits (what the wire document's `ck_check` binds). */
  checksum: string;
}

/** Open an envelope into a new array. Throws IntegrityError on anything wrong. */
export function openEnvelope(bytes: Uint8Array, opts?: OpenEnvelopeOptions): OpenedEnvelope {
  return opened(bytes, false, opts?.maxSize);
}

/**
 * Open an envelope; `data` may be a view of the scratch buffer or of the WebAssembly codec's
 * memory, which the next read, and any other call into the codec (an envelope written, an
 * xxHash3), overwrites. Use it only to deserialize at once with a deserializer that copies what it
 * keeps. Throws IntegrityError.
 */
export function openEnvelopeScratch(
  bytes: Uint8Array,
  opts?: OpenEnvelopeOptions,
): OpenedEnvelope {
  return opened(bytes, true, opts?.maxSize);
}

function opened(bytes: Uint8Array, useScratch: boolean, maxSize?: number): OpenedEnvelope {
  const head = newHead();
  const data = openEnvelopeData(bytes, useScratch, maxSize, head);
  return { data, format: head.format, checksum: digestHex(head.hi, head.lo) };
}

/** A fresh {@linkcode EnvelopeHead} for {@linkcode openEnvelopeData}. */
export function newHead(): EnvelopeHead {
  return {
    compressed: EMPTY,
    blockAt: -1,
    blockLength: 0,
    hi: 0,
    lo: 0,
    originalSize: 0,
    format: "",
  };
}

const EMPTY = new Uint8Array(0);

/**
 * The engine's read: the envelope's verified data, its fields left in `head` (format, checksum
 * halves: `digestHex` makes the hex a document's `ck_check` binds, only when there is one). With
 * `useScratch` the data may be a view of a buffer the next read overwrites (see
 * {@linkcode openEnvelopeScratch}). No result object and no string per read. Throws
 * IntegrityError.
 */
export function openEnvelopeData(
  bytes: Uint8Array,
  useScratch: boolean,
  maxSize: number = MAX_ENVELOPE_BYTES,
  head: EnvelopeHead,
): Uint8Array {
  try {
    return open(bytes, useScratch, maxSize, head);
  } catch (e) {
    if (e instanceof IntegrityError) throw e;
    throw new IntegrityError(`envelope rejected: ${(e as Error)?.message ?? String(e)}`, {
      cause: e,
    });
  }
}

/**
 * {@linkcode openEnvelopeData} with the scratch buffer, for a reader that takes a length: the
 * verified data are the first `head.originalSize` bytes of the result, which may be longer (a
 * view of the WebAssembly codec's memory, the same object from read to read, so that the reader
 * makes no view of its own: `serializers/std.ts` `deserializePrefix`). Valid until the next read.
 * Throws IntegrityError.
 */
export function openEnvelopePrefix(
  bytes: Uint8Array,
  maxSize: number = MAX_ENVELOPE_BYTES,
  head: EnvelopeHead,
): Uint8Array {
  try {
    return open(bytes, true, maxSize, head, true);
  } catch (e) {
    if (e instanceof IntegrityError) throw e;
    throw new IntegrityError(`envelope rejected: ${(e as Error)?.message ?? String(e)}`, {
      cause: e,
    });
  }
}

function open(
  bytes: Uint8Array,
  useScratch: boolean,
  maxSize: number,
  head: EnvelopeHead,
  prefix = false,
): Uint8Array {
  if (!(bytes instanceof Uint8Array)) fail("not a byte array");
  if (bytes.length > MAX_ENVELOPE_BYTES) fail(`${bytes.length} bytes is over 512 MiB`);
  // A subclass (Node's `Buffer`) would make every `subarray` below a `Buffer` too (its species
  // constructor): read a plain view of the same memory instead.
  if (bytes.constructor !== Uint8Array) {
    bytes = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  // For a prefix read the block is only located: the codec copies it from `bytes`.
  readEnvelopeHead(bytes, head, !prefix);
  const size = head.originalSize;
  const blockLength = head.blockLength;
  if (size > MAX_ENVELOPE_BYTES) fail(`original size ${size} is over 512 MiB`);
  if (size > maxSize) fail(`original size ${size} is over the limit of ${maxSize} bytes`);
  if (blockLength === 0 && size !== 0) {
    fail(`empty compressed block claims ${size} original bytes`);
  }
  if (size > MAX_COMPRESSION_RATIO * blockLength) {
    fail(`original size ${size} is over 1000 × the compressed size ${blockLength}`);
  }
  const at = head.blockAt;
  const block = !prefix || at < 0 ? head.compressed : EMPTY; // a view only where one is needed
  let into: Uint8Array | undefined;
  if (useScratch && size <= SCRATCH_MAX_BYTES) {
    if (scratch.length < size) {
      scratch = new Uint8Array(Math.min(SCRATCH_MAX_BYTES, Math.max(size, 2 * scratch.length)));
    }
    into = scratch;
  } else if (
    size > SCRATCH_MAX_BYTES &&
    decompressedLength(block === EMPTY ? bytes.subarray(at, at + blockLength) : block) !== size
  ) {
    // A block that does not expand to its declared size (a bomb declaring more than it holds, or
    // garbage) is found by walking its sequences, before `size` bytes are allocated for it.
    fail(`LZ4 block is malformed or does not expand to the declared ${size} bytes`);
  }
  let data: Uint8Array | null;
  try {
    // Decompressed and verified in one step; the checksum compared as numbers.
    data = prefix && into !== undefined
      ? block === EMPTY
        ? openBlockCheckedPrefix(bytes, at, blockLength, size, head.hi, head.lo, into)
        : openBlockCheckedPrefix(block, 0, blockLength, size, head.hi, head.lo, into)
      : openBlockChecked(
        block === EMPTY ? bytes.subarray(at, at + blockLength) : block,
        size,
        head.hi,
        head.lo,
        into,
      );
  } catch (e) {
    fail(`LZ4 decompression failed (${(e as Error).message})`);
  }
  if (data === null) fail("checksum mismatch");
  if (prefix ? data.length < size : data.length !== size) {
    fail(`decompressed ${data.length} bytes, expected ${size}`);
  }
  return data;
}
