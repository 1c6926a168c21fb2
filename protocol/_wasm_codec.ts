/**
 * The envelope's WebAssembly codec: LZ4 block compression and decompression (liblz4 1.9.4) and
 * xxHash3-64 (xxHash 0.8.1), compiled from `tools/wasm/codec.c` by `tools/build_wasm.ts` and
 * shipped as base64 in `_codec_wasm_bytes.ts`. `null` where WebAssembly is missing or the module
 * cannot be instantiated; `_block_codec.ts` then falls back to the JavaScript codec (`_lz4.ts`).
 *
 * Why compiled here rather than taken from npm (measured 2026-12-04, `bench/envelope_bench.ts`):
 * - `lz4-wasm` / `lz4-wasm-nodejs` 0.9.2 (lz4_flex): write and read only a size-prefixed block,
 *   allocate a fresh result through wasm-bindgen on every call, and load their `.wasm` through a
 *   bundler import or Node's `fs`; `lz4-asm` 0.4 is asm.js from 2017 with the frame format;
 *   `lz4-napi` is a native addon (not in Deno or Bun without its binaries).
 * - `hash-wasm`'s xxHash3 (used before, now the fallback): three calls per hash and a new array
 *   per binary digest; here the bytes are copied in once and both the LZ4 pass and the hash read
 *   them there, and the decompressed bytes are hashed where they were written. Hashing alone
 *   measured 0.6–0.9× its time. Inputs over 64 KiB are hashed in pieces (xxHash's streaming
 *   state), so hashing never grows the memory.
 * - Against the JavaScript LZ4 (`_lz4.ts`) + `hash-wasm`, envelope encode is 1.6–3.4× faster and
 *   decode of compressible data 1.7–6.5× faster for 1 KB – 10 MB (`bench/MEASUREMENTS.md`).
 *
 * Memory: one shared instance serves working sets up to {@linkcode SHARED_MAX_BYTES} (its linear
 * memory grows to that once and is reused; WebAssembly memory never shrinks). Larger calls use a
 * second instance of the already compiled module that is held only through a `WeakRef`: large
 * values read or written back to back reuse its memory, and the garbage collector frees it once
 * it is idle, so a 10 MB value does not pin 20 MB for the life of the process. Instantiation is
 * synchronous (`new WebAssembly.Module` / `Instance`): the module is 16 KB, and server runtimes
 * allow it (browsers' main threads refuse synchronous compilation of modules over 4 KB; there
 * the codec falls back to JavaScript).
 *
 * Safety: `LZ4_decompress_safe` reads only the block and writes only the declared size; a
 * malformed block returns a negative count, turned into a `RangeError` here. WebAssembly's bounds
 * checks keep any mistake inside the module's own memory.
 *
 * @module
 */
import { CODEC_WASM_BASE64 } from "./_codec_wasm_bytes.ts";
import { fromBase64 } from "./_base64.ts";
import { HEX } from "./_hex.ts";

/** Largest working set (input + output bytes) served by the shared, kept instance. */
export const SHARED_MAX_BYTES: number = 2 * 1024 * 1024;

const PAGE = 65536;

interface CodecExports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  digest_ptr(): number;
  bound(n: number): number;
  compress(src: number, n: number, dst: number, cap: number): number;
  decompress(src: number, n: number, dst: number, size: number): number;
  xxh3(p: number, n: number): void;
  xxh3_reset(): void;
  xxh3_update(p: number, n: number): void;
  xxh3_digest(): void;
}

const EMPTY = new Uint8Array(0);

/** Inputs longer than this are hashed in pieces of this size (through the shared instance). */
const HASH_CHUNK = 64 * 1024;

/** A compressed block and the checksum of its input, both views into the codec's memory. */
export interface SealedView {
  /** The raw LZ4 block (valid until the next call into the codec). */
  block: Uint8Array;
  /** xxHash3-64 of the input, 8 bytes big-endian (valid until the next call). */
  checksum: Uint8Array;
}

/** One instance of the codec module and views of its memory. */
class Instance {
  readonly #x: CodecExports;
  readonly #base: number;
  readonly #digest: number;
  #u8: Uint8Array;
  /** `#u8` from the heap base on ({@linkcode Instance.openCheckedPrefix}), made from `#tailOf`. */
  #tail: Uint8Array = EMPTY;
  #tailOf: Uint8Array = EMPTY;

  constructor(module: WebAssembly.Module) {
    this.#x = new WebAssembly.Instance(module, {}).exports as unknown as CodecExports;
    this.#base = (Number(this.#x.__heap_base.value) + 15) & ~15;
    this.#digest = this.#x.digest_ptr();
    this.#u8 = new Uint8Array(this.#x.memory.buffer);
  }

  /** Make room for `bytes` after the heap base; returns the memory view. */
  #room(bytes: number): Uint8Array {
    const need = this.#base + bytes;
    // The view's own length answers without asking the memory (its `buffer` getter is a runtime
    // call on every read): a view of a buffer the memory outgrew is detached, of length 0.
    if (this.#u8.length >= need) return this.#u8;
    const mem = this.#x.memory;
    if (mem.buffer.byteLength < need) {
      mem.grow(Math.ceil((need - mem.buffer.byteLength) / PAGE));
    }
    this.#u8 = new Uint8Array(mem.buffer);
    return this.#u8;
  }

  /**
   * Copy `block` into the module's memory, decompress it right after, exactly `size` bytes, and
   * hash them (the digest at `#digest`). Returns where the bytes start in `#u8` (the heap base).
   *
   * @throws {RangeError} A malformed block, or one that does not expand to `size` bytes.
   */
  #inflate(block: Uint8Array, size: number, at = 0, n: number = block.length): number {
    // The bytes at the heap base, the block after them: where `openCheckedPrefix`'s view starts.
    const outAt = this.#base;
    const lead = (size + 15) & ~15;
    const inAt = outAt + lead;
    if (at === 0 || at > lead) {
      const u8 = this.#room(lead + n);
      u8.set(at === 0 && n === block.length ? block : block.subarray(at, at + n), inAt);
    } else {
      // `block[at, at + n)` is the block: the whole input is copied so that it lands at `inAt`
      // (no view made); what comes before falls in the output's room, which the decompression
      // then writes over, and what follows after the block, which it does not read.
      const u8 = this.#room(lead + block.length - at);
      u8.set(block, inAt - at);
    }
    const got = this.#x.decompress(inAt, n, outAt, size);
    if (got !== size) {
      throw new RangeError(
        got < 0
          ? `LZ4: malformed block (error at input byte ${-got - 1})`
          : `LZ4: block expands to ${got} bytes, expected ${size}`,
      );
    }
    this.#x.xxh3(outAt, size);
    return outAt;
  }

  bound(n: number): number {
    return this.#x.bound(n);
  }

  seal(src: Uint8Array, compress: boolean): SealedView | Uint8Array {
    const n = src.length;
    const cap = compress ? this.#x.bound(n) : 0;
    const inAt = this.#base;
    const outAt = this.#base + ((n + 15) & ~15);
    const u8 = this.#room(outAt - this.#base + cap);
    u8.set(src, inAt);
    this.#x.xxh3(inAt, n);
    const checksum = u8.subarray(this.#digest, this.#digest + 8);
    if (!compress) return checksum;
    const len = this.#x.compress(inAt, n, outAt, cap);
    if (len <= 0 && n > 0) throw new RangeError("LZ4: compression failed");
    return { block: u8.subarray(outAt, outAt + len), checksum };
  }

  open(block: Uint8Array, size: number, into: Uint8Array | undefined): Opened {
    const outAt = this.#inflate(block, size);
    const u8 = this.#u8;
    const checksumHex = hexAt(u8, this.#digest);
    const view = u8.subarray(outAt, outAt + size);
    let data: Uint8Array;
    if (into === undefined) {
      data = view.slice();
    } else {
      data = into.subarray(0, size);
      data.set(view);
    }
    return { data, checksumHex };
  }

  /**
   * {@linkcode Instance.open} verified in the same call: the digest compared as two numbers with
   * `hi`/`lo` (no string), `null` when it differs. With `own` false the result is a view of this
   * instance's memory (valid until the next call): no copy at all.
   */
  openChecked(
    block: Uint8Array,
    size: number,
    hi: number,
    lo: number,
    own: boolean,
  ): Uint8Array | null {
    const outAt = this.#inflate(block, size);
    const u8 = this.#u8;
    if (!digestIs(u8, this.#digest, hi, lo)) return null;
    const view = u8.subarray(outAt, outAt + size);
    return own ? view.slice() : view;
  }

  /**
   * {@linkcode Instance.openChecked} without a view per call: the bytes are the first `size` of
   * one view from the heap base to the end of memory, the same object every call until the memory
   * grows (msgpackr keeps its `DataView` on it).
   */
  openCheckedPrefix(
    src: Uint8Array,
    at: number,
    n: number,
    size: number,
    hi: number,
    lo: number,
  ): Uint8Array | null {
    const outAt = this.#inflate(src, size, at, n);
    const u8 = this.#u8;
    if (!digestIs(u8, this.#digest, hi, lo)) return null;
    if (this.#tailOf !== u8) {
      this.#tail = u8.subarray(outAt);
      this.#tailOf = u8;
    }
    return this.#tail;
  }

  blockLength(src: Uint8Array): number {
    return (this.seal(src, true) as SealedView).block.length;
  }

  hash(data: Uint8Array): Uint8Array {
    if (data.length <= HASH_CHUNK) return this.seal(data, false) as Uint8Array;
    // In pieces: memory stays small, and each piece is hashed while it is still in the CPU cache
    // (copying 10 MB in and then hashing it read it from memory twice: measured 2× slower).
    const x = this.#x;
    const u8 = this.#room(HASH_CHUNK);
    x.xxh3_reset();
    for (let at = 0; at < data.length; at += HASH_CHUNK) {
      const piece = data.subarray(at, at + HASH_CHUNK);
      u8.set(piece, this.#base);
      x.xxh3_update(this.#base, piece.length);
    }
    x.xxh3_digest();
    return u8.subarray(this.#digest, this.#digest + 8);
  }
}

/** Decompressed bytes and their xxHash3-64 as 16 lowercase hex digits. */
export interface Opened {
  /** The decompressed bytes (owned by the caller, or a view of the `into` buffer). */
  data: Uint8Array;
  /** xxHash3-64 of `data`, big-endian, lowercase hex. */
  checksumHex: string;
}

/** Whether the 8 bytes at `at` are the big-endian halves `hi`, `lo`. */
export function digestIs(u8: Uint8Array, at: number, hi: number, lo: number): boolean {
  return ((u8[at] << 24) | (u8[at + 1] << 16) | (u8[at + 2] << 8) | u8[at + 3]) >>> 0 === hi &&
    ((u8[at + 4] << 24) | (u8[at + 5] << 16) | (u8[at + 6] << 8) | u8[at + 7]) >>> 0 === lo;
}

function hexAt(u8: Uint8Array, at: number): string {
  return HEX[u8[at]] + HEX[u8[at + 1]] + HEX[u8[at + 2]] + HEX[u8[at + 3]] + HEX[u8[at + 4]] +
    HEX[u8[at + 5]] + HEX[u8[at + 6]] + HEX[u8[at + 7]];
}

/** The WebAssembly codec's operations. */
export interface WasmCodec {
  /**
   * xxHash3-64 of `src` and, when `compress`, its raw LZ4 block. The results are views into the
   * codec's memory, valid until the next call: copy them before calling the codec again.
   */
  seal(src: Uint8Array): SealedView;
  /** The length of the LZ4 block of `src` (for probing whether compression pays). */
  blockLength(src: Uint8Array): number;
  /** xxHash3-64 of `data`, 8 bytes big-endian, in a new array. */
  xxh3(data: Uint8Array): Uint8Array;
  /** xxHash3-64 of `data`, 8 bytes big-endian, as a view valid until the next call. */
  digest(data: Uint8Array): Uint8Array;
  /** xxHash3-64 of `data` as 16 lowercase hex digits. */
  xxh3Hex(data: Uint8Array): string;
  /**
   * Decompress `block`, which must expand to exactly `size` bytes, and hash the result. `into`
   * (at least `size` bytes) receives the bytes instead of a new array. Throws `RangeError` for a
   * malformed block.
   */
  open(block: Uint8Array, size: number, into?: Uint8Array): Opened;
  /**
   * {@linkcode WasmCodec.open} and the checksum check in one call: `null` when the xxHash3-64 of
   * the decompressed bytes is not `hi`, `lo` (its big-endian halves). With `own` false the bytes
   * are a view of the codec's memory, valid until the next call (deserialize them at once with a
   * serializer that copies what it keeps). Throws `RangeError` for a malformed block.
   */
  openChecked(
    block: Uint8Array,
    size: number,
    hi: number,
    lo: number,
    own: boolean,
  ): Uint8Array | null;
  /**
   * {@linkcode WasmCodec.openChecked} into the codec's memory for a reader that takes a length,
   * of the block `src[at, at + n)` (no view of it needed): the verified bytes are the first `size` of the result, a view that may be longer and is the
   * same object from call to call (valid until the next call: deserialize at once). `undefined`
   * when the work is too large for the shared memory (then use `openChecked`).
   */
  openCheckedPrefix(
    src: Uint8Array,
    at: number,
    n: number,
    size: number,
    hi: number,
    lo: number,
  ): Uint8Array | null | undefined;
}

/**
 * Instantiate the codec from the module's bytes; `null` when WebAssembly is missing or the bytes do
 * not compile or instantiate (the caller then uses the JavaScript codecs).
 */
export function loadCodec(bytes: Uint8Array): WasmCodec | null {
  let module: WebAssembly.Module;
  let shared: Instance;
  try {
    if (typeof WebAssembly !== "object") return null;
    module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    shared = new Instance(module);
    // A module that instantiates but lacks an export fails here, not at the first call.
    if (shared.bound(100) <= 100) return null;
  } catch {
    return null;
  }
  // Larger calls share a second instance held only weakly: back-to-back large values reuse its
  // memory (fresh memory costs page faults: ~0.5 ms per MB measured), and the garbage collector
  // frees it when it is idle.
  let large: WeakRef<Instance> | null = null;
  const pick = (work: number): Instance => {
    if (work <= SHARED_MAX_BYTES) return shared;
    let inst = large?.deref();
    if (inst === undefined) {
      inst = new Instance(module);
      large = new WeakRef(inst);
    }
    return inst;
  };
  return {
    seal(src) {
      return pick(2 * src.length + 64).seal(src, true) as SealedView;
    },
    blockLength(src) {
      return pick(2 * src.length + 64).blockLength(src);
    },
    xxh3(data) {
      return shared.hash(data).slice();
    },
    digest(data) {
      return shared.hash(data);
    },
    xxh3Hex(data) {
      return hexAt(shared.hash(data), 0);
    },
    open(block, size, into) {
      return pick(block.length + size + 16).open(block, size, into);
    },
    openChecked(block, size, hi, lo, own) {
      // A view of a large instance's memory would keep it alive: large values are always copied.
      const work = block.length + size + 16;
      return pick(work).openChecked(block, size, hi, lo, own || work > SHARED_MAX_BYTES);
    },
    openCheckedPrefix(src, at, n, size, hi, lo) {
      if (src.length + size + 16 > SHARED_MAX_BYTES) return undefined;
      return shared.openCheckedPrefix(src, at, n, size, hi, lo);
    },
  };
}

/** The codec, or `null` when WebAssembly is unavailable here (then use the JavaScript codecs). */
export const wasmCodec: WasmCodec | null = loadCodec(fromBase64(CODEC_WASM_BASE64));
