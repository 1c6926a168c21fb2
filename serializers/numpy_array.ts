/**
 * NumPy arrays as cachekit-py 0.3.0's AutoSerializer writes them (`_serialize_numpy`), read into a
 * typed array: hand-written because the layout is cachekit-py's own, not NumPy's `.npy`:
 *
 * ```text
 * "NUMPY_RAW" | u16 LE dtype length | dtype (UTF-8, str(arr.dtype)) | u16 LE shape length
 *             | u32 LE per dimension | the array's bytes (arr.tobytes(): C order, native = LE)
 * ```
 *
 * Read dtypes: `bool`, `int8`…`int64`, `uint8`…`uint64`, `float32`, `float64` (64-bit integers as
 * `BigInt64Array` / `BigUint64Array`, `bool` as `Uint8Array` of 0/1). Any other dtype (strings,
 * objects, complex, datetimes, an explicit byte order such as `>f8`), or bytes whose length is not
 * exactly the shape's, is refused: a miss, never a wrong array.
 *
 * 0.3.0 stores these bytes bare, with no checksum even with integrity checking on: the exact length
 * check (shape × dtype size equal to the bytes after the header, computed without overflow) and at
 * most 64 dimensions (NumPy's own limit) are all a reader can verify.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeNumpyRaw } from "@cachekit/core/serializers";
 *
 * const head = new TextEncoder().encode("NUMPY_RAW\x07\x00float64\x04\x00\x02\x00\x00\x00");
 * const bytes = new Uint8Array(head.length + 16);
 * bytes.set(head);
 * new DataView(bytes.buffer).setFloat64(head.length, 1.5, true);
 * new DataView(bytes.buffer).setFloat64(head.length + 8, -2, true);
 * const a = decodeNumpyRaw(bytes);
 * assert.deepEqual(a.shape, [2]);
 * assert.equal(a.dtype, "float64");
 * assert.deepEqual([...a.data], [1.5, -2]);
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";

/** A typed array of the dtypes {@linkcode decodeNumpyRaw} reads. */
export type NumpyData =
  | Uint8Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** A NumPy array read from cachekit-py: its elements in C (row-major) order, shape and dtype. */
export interface NumpyArray {
  /** The elements, flat, in C order (a new buffer: never a view of the stored bytes). */
  readonly data: NumpyData;
  /** The dimensions (`[]` for a 0-d array, whose `data` has one element). */
  readonly shape: readonly number[];
  /** NumPy's dtype name, e.g. `"float64"`. */
  readonly dtype: string;
}

type Ctor = { new (buffer: ArrayBuffer): NumpyData; BYTES_PER_ELEMENT: number };
const DTYPES: Record<string, Ctor> = {
  bool: Uint8Array,
  uint8: Uint8Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint16: Uint16Array,
  uint32: Uint32Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
};
const MAGIC = "NUMPY_RAW";
/** NumPy's own limit on dimensions (`NPY_MAXDIMS` is 64 since NumPy 2.0). */
const MAX_DIMS = 64;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Whether `b` starts with cachekit-py's `NUMPY_RAW` marker.
 *
 * @param b Bytes.
 */
export function isNumpyRaw(b: Uint8Array): boolean {
  if (b.length < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (b[i] !== MAGIC.charCodeAt(i)) return false;
  return true;
}

/**
 * Read cachekit-py 0.3.0's `NUMPY_RAW` bytes (layout in the module doc).
 *
 * @param b The stored bytes.
 * @returns The array.
 * @throws {SerializationError} Not this layout, a dtype not listed, or a length that does not match.
 */
export function decodeNumpyRaw(b: Uint8Array): NumpyArray {
  if (!isNumpyRaw(b)) throw new SerializationError("not a NUMPY_RAW array");
  if (!LITTLE_ENDIAN) throw new SerializationError("NUMPY_RAW is read on little-endian hosts only");
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = MAGIC.length;
  const need = (n: number) => {
    if (at + n > b.length) throw new SerializationError("NUMPY_RAW array truncated");
  };
  need(2);
  const dtLen = view.getUint16(at, true);
  at += 2;
  need(dtLen);
  let dtype: string;
  try {
    dtype = new TextDecoder("utf-8", { fatal: true }).decode(b.subarray(at, at + dtLen));
  } catch {
    throw new SerializationError("NUMPY_RAW dtype is not UTF-8");
  }
  at += dtLen;
  const ctor = Object.hasOwn(DTYPES, dtype) ? DTYPES[dtype] : undefined;
  if (ctor === undefined) throw new SerializationError(`NUMPY_RAW dtype ${dtype} is not read here`);
  need(2);
  const shapeLen = view.getUint16(at, true);
  at += 2;
  if (shapeLen % 4 !== 0) {
    throw new SerializationError("NUMPY_RAW shape length not a multiple of 4");
  }
  if (shapeLen / 4 > MAX_DIMS) {
    throw new SerializationError(
      `NUMPY_RAW of ${shapeLen / 4} dimensions (NumPy allows ${MAX_DIMS})`,
    );
  }
  need(shapeLen);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < shapeLen; i += 4) {
    const d = view.getUint32(at + i, true);
    shape.push(d);
    // Exact while below 2^53: cap it there (a product over the cap can never equal a length).
    count = Math.min(count * d, Number.MAX_SAFE_INTEGER);
  }
  at += shapeLen;
  const size = b.length - at;
  if (count * ctor.BYTES_PER_ELEMENT !== size) {
    throw new SerializationError(
      `NUMPY_RAW ${dtype} of shape [${shape}] does not hold in the ${size} bytes after its header`,
    );
  }
  // A copy: aligned for the typed array, and independent of the buffer read from.
  const data = new ctor(b.slice(at).buffer);
  return Object.freeze({ data, shape: Object.freeze(shape), dtype });
}
