/**
 * The envelope's block codec: LZ4 block + xxHash3-64 of the data, through the WebAssembly codec
 * (`_wasm_codec.ts`) where it loads and the JavaScript one (`_lz4.ts`, `_xxh3.ts`) elsewhere. Both
 * produce blocks every LZ4 block decoder reads; they are not byte-identical (liblz4's match finder
 * is not the JavaScript one), which the protocol allows: readers decompress, they never compare
 * blocks.
 *
 * Small values are stored, not compressed: under {@linkcode MIN_COMPRESS_BYTES} the block is a
 * single literal run (a valid LZ4 block: one token, the length, the bytes), which Python cachekit
 * and every other reader decompress as usual. The envelope has no "compressed" flag (the wire's
 * `compressed`, and Python's metadata of that name, mean "in an envelope", which integrity needs);
 * a literal block is how it says "stored". Below that size LZ4 rarely saves a byte on MessagePack values,
 * and the attempt costs more than the copy (see `bench/MEASUREMENTS.md`). Large values whose
 * samples do not shrink are stored too ({@linkcode PROBE_MIN_BYTES}).
 *
 * @module
 */
import { compressBlock, decompressBlock, decompressedLength } from "./_lz4.ts";
import { xxh3Fallback, xxh3HexFallback } from "./_xxh3.ts";
import { digestIs, type Opened, type WasmCodec, wasmCodec } from "./_wasm_codec.ts";

export type { Opened };

/** Values shorter than this are stored as one literal run instead of being compressed. */
export const MIN_COMPRESS_BYTES: number = 64;

/** Values from this size on are probed first: compressed only if samples of them shrink. */
export const PROBE_MIN_BYTES: number = 256 * 1024;

/** Size of each probed sample (one at the start, one in the middle, one at the end). */
const PROBE_BYTES = 4096;

let wasm: WasmCodec | null = wasmCodec;

/** Which codec runs: `"wasm"` when the WebAssembly module loaded here, else `"js"`. */
export function activeCodec(): "wasm" | "js" {
  return wasm === null ? "js" : "wasm";
}

/**
 * For tests and benchmarks: run the JavaScript codec (`"js"`) or the WebAssembly one (`"wasm"`,
 * when it loaded). Returns the codec that ran before.
 */
export function useCodec(which: "wasm" | "js"): "wasm" | "js" {
  const before = activeCodec();
  wasm = which === "wasm" ? wasmCodec : null;
  return before;
}

/** Size of the literal-only block of `n` bytes. */
export function storedBlockLength(n: number): number {
  return n < 15 ? 1 + n : 2 + Math.floor((n - 15) / 255) + n;
}

/**
 * The header of a literal-only block of `n` bytes (the token and the length bytes that precede the
 * `n` literals), written into `out` at 0; returns its length.
 */
export function writeStoredHeader(n: number, out: Uint8Array): number {
  let p = 0;
  if (n < 15) {
    out[p++] = n << 4;
  } else {
    out[p++] = 0xf0;
    let rem = n - 15;
    while (rem >= 255) {
      out[p++] = 255;
      rem -= 255;
    }
    out[p++] = rem;
  }
  return p;
}

/** `data` as an LZ4 block of one literal run (no compression), written into `out` at 0. */
export function writeStoredBlock(data: Uint8Array, out: Uint8Array): number {
  const p = writeStoredHeader(data.length, out);
  out.set(data, p);
  return p + data.length;
}

const smallHead = new Uint8Array(storedBlockLength(MIN_COMPRESS_BYTES) - MIN_COMPRESS_BYTES);

/**
 * A block and the data's checksum; both may be views valid only until the next codec call. When
 * `head` is set the block is stored: `head` followed by `block`, which is then the data itself (so
 * the writer copies a large incompressible value once, not twice).
 */
export interface Sealed {
  /** The LZ4 block, or the literals of a stored block after `head`. */
  block: Uint8Array;
  /** The token and length bytes of a stored block, when it is one. */
  head?: Uint8Array;
  /** xxHash3-64 of the data, 8 bytes big-endian. */
  checksum: Uint8Array;
}

/**
 * The LZ4 block (compressed, or stored when under {@linkcode MIN_COMPRESS_BYTES} or incompressible)
 * and the xxHash3-64 of `data`. The results may be views into shared buffers: copy them before the
 * next call.
 */
export function sealBlock(data: Uint8Array): Sealed {
  const n = data.length;
  if (n < MIN_COMPRESS_BYTES || (n >= PROBE_MIN_BYTES && !compressionPays(data))) {
    const head = n < MIN_COMPRESS_BYTES ? smallHead : new Uint8Array(storedBlockLength(n) - n);
    return {
      block: data,
      head: head.subarray(0, writeStoredHeader(n, head)),
      checksum: wasm !== null ? wasm.digest(data) : xxh3Fallback(data),
    };
  }
  if (wasm !== null) return wasm.seal(data);
  return { block: compressBlock(data), checksum: xxh3Fallback(data) };
}

/**
 * Whether any of three samples (start, middle, end) of a large value shrinks by 1/32 or more under
 * LZ4. Incompressible data (media, ciphertext, already compressed blobs) is then stored, about
 * twice as fast as running LZ4 over all of it to gain nothing (`bench/MEASUREMENTS.md`).
 */
function compressionPays(data: Uint8Array): boolean {
  const n = data.length;
  for (const at of [0, (n >>> 1) - (PROBE_BYTES >>> 1), n - PROBE_BYTES]) {
    const sample = data.subarray(at, at + PROBE_BYTES);
    const len = wasm !== null ? wasm.blockLength(sample) : compressBlock(sample).length;
    if (len < PROBE_BYTES - (PROBE_BYTES >>> 5)) return true;
  }
  return false;
}

/**
 * Decompress `block` to exactly `size` bytes (into `into` when given) and hash the result. Throws
 * `RangeError` for a malformed block.
 */
export function openBlock(block: Uint8Array, size: number, into?: Uint8Array): Opened {
  if (wasm === null) {
    const data = decompressBlock(block, size, into);
    return { data, checksumHex: xxh3HexFallback(data) };
  }
  if (block.length >= size - (size >>> 3)) {
    // Mostly literals (stored or incompressible): the JavaScript decoder copies each run with one
    // native `set` straight into the result, one pass fewer than copying the block into the
    // codec's memory and the result out of it (measured faster from 1 MB on).
    const data = decompressBlock(block, size, into);
    return { data, checksumHex: wasm.xxh3Hex(data) };
  }
  return wasm.open(block, size, into);
}

/**
 * Decompress `block` to exactly `size` bytes and verify them against the checksum `hi`, `lo` (its
 * big-endian halves) in one step: the verified bytes, or `null` when the checksum differs. With
 * `scratch` (at least `size` bytes) the result may be a view of it or of the WebAssembly codec's
 * memory, valid until the next read; without, a new array. Throws `RangeError` for a malformed
 * block.
 */
export function openBlockChecked(
  block: Uint8Array,
  size: number,
  hi: number,
  lo: number,
  scratch?: Uint8Array,
): Uint8Array | null {
  let data: Uint8Array;
  if (wasm === null) {
    data = decompressBlock(block, size, scratch);
    return digestIs(xxh3Fallback(data), 0, hi, lo) ? data : null;
  }
  if (block.length >= size - (size >>> 3)) {
    // Mostly literals: as in `openBlock`.
    data = decompressBlock(block, size, scratch);
    return digestIs(wasm.digest(data), 0, hi, lo) ? data : null;
  }
  return wasm.openChecked(block, size, hi, lo, scratch === undefined);
}

/**
 * {@linkcode openBlockChecked} with `scratch`, for a reader that takes a length, of the block
 * `src[at, at + n)`: the verified bytes are the first `size` of the result, which may be longer (a
 * view of the WebAssembly codec's memory reused from read to read, see
 * `WasmCodec.openCheckedPrefix`), valid until the next read. `null` when the checksum differs;
 * throws `RangeError` for a malformed block.
 */
export function openBlockCheckedPrefix(
  src: Uint8Array,
  at: number,
  n: number,
  size: number,
  hi: number,
  lo: number,
  scratch: Uint8Array,
): Uint8Array | null {
  if (wasm !== null && n < size - (size >>> 3)) {
    const data = wasm.openCheckedPrefix(src, at, n, size, hi, lo);
    if (data !== undefined) return data;
  }
  const block = at === 0 && n === src.length ? src : src.subarray(at, at + n);
  return openBlockChecked(block, size, hi, lo, scratch);
}

export { decompressedLength };
