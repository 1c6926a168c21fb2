/**
 * LZ4 *block* format codec (no frame, no size prefix), as liblz4's `LZ4_compress_default` /
 * `LZ4_decompress_safe` and Rust's `lz4_flex::block` read and write it.
 *
 * The envelope normally runs liblz4 compiled to WebAssembly (`_wasm_codec.ts`); this codec is the
 * fallback where that module cannot load, the decoder of mostly-literal blocks (`_block_codec.ts`
 * says why), and the reference the WebAssembly codec is tested against.
 *
 * Hand-written because no kept npm library does this correctly:
 * - `lz4js@0.2` `compressBlock` lets the last match start up to 10 bytes before the end of the block,
 *   but the LZ4 block format requires the last match to start at least 12 bytes before the end
 *   (MFLIMIT). liblz4's safe decoder rejects such blocks: measured here, 54 of 135 small inputs with a
 *   late repeat produced blocks Debian's python3-lz4 refused. It also returns `0` (nothing) for input
 *   it cannot compress instead of a literal-only block.
 * - `lz4js` `decompressBlock` does no bounds checking (offsets before the output start, reads past the
 *   input, writes past the output): unacceptable for bytes read back from a shared cache.
 * - The wasm/native packages (`lz4-wasm-nodejs`, `lz4-napi`) either prepend a size, load a binary
 *   through Node's `fs`, or are native addons: not web-standard (hence `_wasm_codec.ts`).
 *
 * The compressor is the classic greedy single-probe LZ4 (hash of 4 bytes, skip acceleration), with
 * the format's end-of-block rules: the last 5 bytes are always literals and no match starts in the
 * last 12 bytes. The decompressor validates every length and offset and decodes to exactly the
 * expected size or throws.
 *
 * @module
 */

const MIN_MATCH = 4;
const LAST_LITERALS = 5;
const MF_LIMIT = 12;
const MAX_OFFSET = 65535;
const MAX_HASH_BITS = 16;
const SKIP_TRIGGER = 6;

let table = new Int32Array(1 << MAX_HASH_BITS);

/** Worst-case size of an LZ4 block for `n` input bytes (liblz4's `LZ4_COMPRESSBOUND`). */
export function compressBound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

function read32(a: Uint8Array, i: number): number {
  return a[i] | (a[i + 1] << 8) | (a[i + 2] << 16) | (a[i + 3] << 24);
}

function writeLength(out: Uint8Array, op: number, rem: number): number {
  while (rem >= 255) {
    out[op++] = 255;
    rem -= 255;
  }
  out[op++] = rem;
  return op;
}

function copyBytes(out: Uint8Array, op: number, src: Uint8Array, from: number, n: number): void {
  if (n < 32) {
    for (let i = 0; i < n; i++) out[op + i] = src[from + i];
  } else {
    out.set(src.subarray(from, from + n), op);
  }
}

/** Compress `src` into one raw LZ4 block (empty input gives the single token byte `00`). */
export function compressBlock(src: Uint8Array): Uint8Array {
  const n = src.length;
  const out = new Uint8Array(compressBound(n));
  let op = 0;
  let anchor = 0;

  if (n >= MF_LIMIT + 1) {
    let bits = 8;
    while (bits < MAX_HASH_BITS && 1 << bits < n) bits++;
    const shift = 32 - bits;
    if (table.length < 1 << bits) table = new Int32Array(1 << MAX_HASH_BITS);
    const t = table;
    t.fill(0, 0, 1 << bits); // entries hold position + 1; 0 = empty

    const mfLimit = n - MF_LIMIT; // a match may start at most here
    const matchLimit = n - LAST_LITERALS; // and end at most here
    let ip = 0;
    let searches = (1 << SKIP_TRIGGER) + 3;

    while (ip <= mfLimit) {
      const seq = read32(src, ip);
      const h = Math.imul(seq, 0x9e3779b1) >>> shift;
      let ref = t[h] - 1;
      t[h] = ip + 1;
      if (ref < 0 || ip - ref > MAX_OFFSET || read32(src, ref) !== seq) {
        ip += searches++ >> SKIP_TRIGGER;
        continue;
      }
      searches = (1 << SKIP_TRIGGER) + 3;
      // Extend backwards into the pending literals.
      while (ip > anchor && ref > 0 && src[ip - 1] === src[ref - 1]) {
        ip--;
        ref--;
      }
      // Extend forwards, never into the last literals.
      let len = MIN_MATCH;
      while (ip + len < matchLimit && src[ip + len] === src[ref + len]) len++;

      const lit = ip - anchor;
      const ml = len - MIN_MATCH;
      out[op++] = ((lit >= 15 ? 15 : lit) << 4) | (ml >= 15 ? 15 : ml);
      if (lit >= 15) op = writeLength(out, op, lit - 15);
      copyBytes(out, op, src, anchor, lit);
      op += lit;
      const offset = ip - ref;
      out[op++] = offset & 0xff;
      out[op++] = offset >>> 8;
      if (ml >= 15) op = writeLength(out, op, ml - 15);

      ip += len;
      anchor = ip;
      // Index a position inside the match so the next search has a recent candidate.
      if (ip - 2 <= mfLimit) t[Math.imul(read32(src, ip - 2), 0x9e3779b1) >>> shift] = ip - 2 + 1;
    }
  }

  const lit = n - anchor;
  out[op++] = (lit >= 15 ? 15 : lit) << 4;
  if (lit >= 15) op = writeLength(out, op, lit - 15);
  copyBytes(out, op, src, anchor, lit);
  op += lit;
  return out.slice(0, op);
}

/**
 * The number of bytes `src` expands to, or -1 when it is malformed (a length running past the
 * input, an offset before the output start), found by walking the sequences without writing
 * anything: a block declaring a large size is checked this way before that much is allocated.
 */
export function decompressedLength(src: Uint8Array): number {
  const end = src.length;
  if (end === 0) return 0;
  let ip = 0;
  let op = 0;
  for (;;) {
    if (ip >= end) return -1;
    const token = src[ip++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) return -1;
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (lit > end - ip) return -1;
    ip += lit;
    op += lit;
    if (ip === end) return op;
    if (end - ip < 2) return -1;
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) return -1;
    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do {
        if (ip >= end) return -1;
        b = src[ip++];
        ml += b;
      } while (b === 255);
    }
    op += ml + MIN_MATCH;
  }
}

/**
 * Decompress one raw LZ4 block that must expand to exactly `size` bytes. Throws `RangeError` on any
 * malformed input (bad length, offset before the output start, output overrun or underrun).
 *
 * `into`, when given (at least `size` bytes long), receives the output instead of a new array, and
 * the result is its first `size` bytes (a view).
 */
export function decompressBlock(src: Uint8Array, size: number, into?: Uint8Array): Uint8Array {
  const out = into === undefined ? new Uint8Array(size) : into.subarray(0, size);
  const end = src.length;
  if (end === 0) {
    if (size === 0) return out;
    throw new RangeError("LZ4: empty block");
  }
  let ip = 0;
  let op = 0;
  for (;;) {
    if (ip >= end) throw new RangeError("LZ4: truncated block");
    const token = src[ip++];
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) throw new RangeError("LZ4: truncated literal length");
        b = src[ip++];
        lit += b;
      } while (b === 255);
    }
    if (lit > end - ip) throw new RangeError("LZ4: literals run past the input");
    if (lit > size - op) throw new RangeError("LZ4: literals run past the output");
    copyBytes(out, op, src, ip, lit);
    ip += lit;
    op += lit;
    if (ip === end) break; // the last sequence has no match
    if (end - ip < 2) throw new RangeError("LZ4: truncated match offset");
    const offset = src[ip] | (src[ip + 1] << 8);
    ip += 2;
    if (offset === 0 || offset > op) throw new RangeError("LZ4: match offset out of range");
    let ml = token & 15;
    if (ml === 15) {
      let b: number;
      do {
        if (ip >= end) throw new RangeError("LZ4: truncated match length");
        b = src[ip++];
        ml += b;
      } while (b === 255);
    }
    ml += MIN_MATCH;
    if (ml > size - op) throw new RangeError("LZ4: match runs past the output");
    let from = op - offset;
    if (ml < 32) {
      const stop = op + ml;
      while (op < stop) out[op++] = out[from++];
    } else if (offset >= ml) {
      out.copyWithin(op, from, from + ml);
      op += ml;
    } else if (offset === 1) {
      out.fill(out[from], op, op + ml); // a run of one byte
      op += ml;
    } else {
      // Overlapping: the output repeats with period `offset`, so each copy may take twice the
      // bytes of the previous one (any multiple of the period back is the same pattern).
      let dist = offset;
      while (ml > 0) {
        const n = dist < ml ? dist : ml;
        out.copyWithin(op, op - dist, op - dist + n);
        op += n;
        ml -= n;
        dist += n;
      }
    }
  }
  if (op !== size) throw new RangeError(`LZ4: block expands to ${op} bytes, expected ${size}`);
  return out;
}
