/**
 * A bounds-checked reader of FlatBuffers tables, for the Arrow IPC checks (`_arrow_check.ts`).
 *
 * Hand-written because the generated readers apache-arrow ships (`apache-arrow/fb/*`) check
 * nothing: a read past the end of their buffer gives `undefined` (so `0`), and a vector's length
 * is whatever four bytes say, which is how a corrupted header made apache-arrow's decoder allocate
 * until the heap ran out. Every read here is checked against the bytes held, and a vector's length
 * against the room left for its elements; any failure is a `SerializationError`. Offsets are read
 * as FlatBuffers' JavaScript runtime reads them (signed 32-bit, relative), so that what passes
 * here is what apache-arrow then reads.
 *
 * @module
 */
import { SerializationError } from "../errors.ts";

/** Thrown for any bytes that are not a well-formed Arrow IPC file (see `_arrow_check.ts`). */
export function bad(what: string): never {
  throw new SerializationError(`Arrow IPC file refused: ${what}`);
}

/** A view of a vector: where its elements start and how many there are. */
export interface Vec {
  /** Absolute position of element 0. */
  readonly at: number;
  /** Number of elements. */
  readonly length: number;
}

const NO_VEC: Vec = { at: 0, length: 0 };

/** A bounds-checked reader over one FlatBuffers buffer (positions are relative to `bytes`). */
export class Fb {
  readonly #view: DataView;
  /** Length of the buffer. */
  readonly size: number;

  constructor(bytes: Uint8Array) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.size = bytes.byteLength;
  }

  #need(at: number, n: number, what: string): void {
    if (!(at >= 0 && at + n <= this.size)) bad(`${what} at ${at} outside ${this.size} bytes`);
  }

  /** Unsigned byte at `at`. */
  u8(at: number): number {
    this.#need(at, 1, "byte");
    return this.#view.getUint8(at);
  }
  /** Signed 16-bit (LE) at `at`. */
  i16(at: number): number {
    this.#need(at, 2, "int16");
    return this.#view.getInt16(at, true);
  }
  /** Signed 32-bit (LE) at `at`. */
  i32(at: number): number {
    this.#need(at, 4, "int32");
    return this.#view.getInt32(at, true);
  }
  /** Signed 64-bit (LE) at `at`, refused outside ±2^53 (apache-arrow reads it as a number). */
  i64(at: number): number {
    this.#need(at, 8, "int64");
    const lo = this.#view.getUint32(at, true);
    const hi = this.#view.getInt32(at + 4, true);
    if (hi > 0x1fffff || hi < -0x200000) bad(`int64 at ${at} beyond 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }

  /** The root table's position. */
  root(): number {
    return this.#ref(0, "root");
  }

  /** The position `at + i32(at)` (an offset field), checked to fall inside the buffer. */
  #ref(at: number, what: string): number {
    const to = at + this.i32(at);
    this.#need(to, 4, what);
    return to;
  }

  /**
   * Where field `id` of the table at `t` sits, or 0 when absent (checked: the vtable and the
   * field's first byte are inside the buffer).
   */
  field(t: number, id: number): number {
    const vt = t - this.i32(t);
    const vtSize = this.i16(vt);
    if (vtSize < 4 || (vtSize & 1) !== 0) bad(`vtable size ${vtSize}`);
    this.#need(vt, vtSize, "vtable");
    const slot = 4 + 2 * id;
    if (slot >= vtSize) return 0;
    const off = this.i16(vt + slot);
    if (off === 0) return 0;
    if (off < 4) bad(`field offset ${off}`);
    this.#need(t + off, 1, "field");
    return t + off;
  }

  /** A scalar field as a number (`i16`, `i32`, `u8` or `i64`), or `dflt` when absent. */
  scalar(t: number, id: number, kind: "u8" | "i16" | "i32" | "i64", dflt: number): number {
    const at = this.field(t, id);
    return at === 0 ? dflt : this[kind](at);
  }

  /** A table field's position, or 0 when absent. */
  table(t: number, id: number): number {
    const at = this.field(t, id);
    return at === 0 ? 0 : this.#ref(at, "table");
  }

  /** A vector field of `elem`-byte elements, checked to fit (empty when absent). */
  vector(t: number, id: number, elem: number): Vec {
    const at = this.field(t, id);
    if (at === 0) return NO_VEC;
    const v = this.#ref(at, "vector");
    const length = this.i32(v);
    if (length < 0 || length > (this.size - v - 4) / elem) {
      bad(`vector of ${length} × ${elem} bytes at ${v} in ${this.size} bytes`);
    }
    return { at: v + 4, length };
  }

  /** Element `i` of a vector of tables: the table's position. */
  tableAt(v: Vec, i: number): number {
    return this.#ref(v.at + 4 * i, "table");
  }

  /** Check a string field (a vector of bytes) fits; absent is fine. */
  string(t: number, id: number): void {
    this.vector(t, id, 1);
  }
}
