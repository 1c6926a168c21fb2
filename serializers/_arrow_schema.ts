/**
 * The schema of an Arrow IPC file's footer, read with the bounds-checked reader (`_flatbuffer.ts`)
 * into what the record batch checks need (`_arrow_check.ts`): per field, the buffers apache-arrow's
 * `VectorLoader` reads for its type and the width of their elements.
 *
 * Field ids and type ids are those of Arrow's `Schema.fbs` (the `Type` union as apache-arrow 21
 * numbers it). Types apache-arrow cannot read (`RunEndEncoded`, `ListView`, `LargeListView`) and
 * type parameters it would misread (an `Int` of 7 bits, a big-endian schema) are refused here.
 *
 * @module
 */
import { bad, type Fb } from "./_flatbuffer.ts";

/** How a field's node and buffers are laid out (see `_arrow_check.ts`). */
export type Layout =
  | "null" // no buffers
  | "fixed" // validity, data of `width` bytes per element
  | "bool" // validity, data of one bit per element
  | "binary" // validity, offsets of `width` bytes, data
  | "view" // validity, 16-byte views, variadic data buffers
  | "list" // validity, offsets of `width` bytes, one child
  | "fixedlist" // validity, one child of `width` elements per element
  | "struct" // validity, children
  | "union" // (validity before V5), type ids, offsets when dense, children
  | "dict"; // validity, indices of `width` bytes (the values in a dictionary batch)

/** One field, as the checks see it. */
export interface Col {
  /** The layout of its node and buffers. */
  readonly layout: Layout;
  /** Element width in bytes (offset width for `binary` / `list`, list size for `fixedlist`). */
  readonly width: number;
  /** Child fields (nested layouts). */
  readonly children: readonly Col[];
  /** A dictionary-encoded field's dictionary id. */
  readonly dictId: number;
  /** A union: dense (with offsets) or sparse. */
  readonly dense: boolean;
  /** A union's type id of each child. */
  readonly typeIds: readonly number[];
}

/** The schema as the checks see it. */
export interface SchemaInfo {
  /** Top-level fields. */
  readonly fields: readonly Col[];
  /** The value field of each dictionary id (its first occurrence, as apache-arrow takes it). */
  readonly dicts: ReadonlyMap<number, Col>;
}

/** Nesting deeper than this is refused (pyarrow's own reader stops at 64). */
export const MAX_DEPTH = 64;

const T = {
  NONE: 0,
  Null: 1,
  Int: 2,
  FloatingPoint: 3,
  Binary: 4,
  Utf8: 5,
  Bool: 6,
  Decimal: 7,
  Date: 8,
  Time: 9,
  Timestamp: 10,
  Interval: 11,
  List: 12,
  Struct: 13,
  Union: 14,
  FixedSizeBinary: 15,
  FixedSizeList: 16,
  Map: 17,
  Duration: 18,
  LargeBinary: 19,
  LargeUtf8: 20,
  LargeList: 21,
  BinaryView: 23,
  Utf8View: 24,
} as const;

function col(layout: Layout, width: number, children: readonly Col[] = []): Col {
  return { layout, width, children, dictId: -1, dense: false, typeIds: [] };
}

/** Check a `[KeyValue]` vector (field `id` of table `t`): every key and value a string in range. */
export function checkKeyValues(fb: Fb, t: number, id: number): void {
  const v = fb.vector(t, id, 4);
  for (let i = 0; i < v.length; i++) {
    const kv = fb.tableAt(v, i);
    fb.string(kv, 0);
    fb.string(kv, 1);
  }
}

class SchemaReader {
  readonly dicts: Map<number, Col> = new Map();
  #budget: number;

  constructor(readonly fb: Fb) {
    // Each field needs its own 4-byte slot in some vector, unless tables are shared: the tree
    // read may not hold more fields than the footer has slots for.
    this.#budget = Math.floor(fb.size / 4);
  }

  fields(t: number, id: number, depth: number): Col[] {
    if (depth > MAX_DEPTH) bad(`fields nested deeper than ${MAX_DEPTH}`);
    const v = this.fb.vector(t, id, 4);
    const out: Col[] = [];
    for (let i = 0; i < v.length; i++) out.push(this.field(this.fb.tableAt(v, i), depth));
    return out;
  }

  field(f: number, depth: number): Col {
    if (--this.#budget < 0) bad("more fields than the footer has room for");
    const fb = this.fb;
    fb.string(f, 0);
    checkKeyValues(fb, f, 6);
    const children = this.fields(f, 5, depth + 1);
    const type = this.type(f, children);
    const dict = fb.table(f, 4);
    if (dict === 0) return type;
    const id = fb.scalar(dict, 0, "i64", 0);
    const index = fb.table(dict, 1);
    const width = index === 0 ? 4 : intWidth(fb, index);
    if (!this.dicts.has(id)) this.dicts.set(id, type);
    return { ...col("dict", width), dictId: id };
  }

  type(f: number, children: readonly Col[]): Col {
    const fb = this.fb;
    const typeId = fb.scalar(f, 2, "u8", 0);
    const t = fb.table(f, 3);
    const param = (id: number, kind: "i16" | "i32", dflt: number) =>
      t === 0 ? dflt : fb.scalar(t, id, kind, dflt);
    const one = () => {
      if (children.length !== 1) bad(`a list type with ${children.length} children`);
      return children;
    };
    switch (typeId) {
      case T.NONE:
      case T.Null:
        return col("null", 0);
      case T.Int:
        if (t === 0) bad("an Int type without its table");
        return col("fixed", intWidth(fb, t));
      case T.FloatingPoint:
        return col("fixed", pick(param(0, "i16", 0), [2, 4, 8], "float precision"));
      case T.Binary:
      case T.Utf8:
        return col("binary", 4);
      case T.LargeBinary:
      case T.LargeUtf8:
        return col("binary", 8);
      case T.BinaryView:
      case T.Utf8View:
        return col("view", 16);
      case T.Bool:
        return col("bool", 0);
      case T.Decimal: {
        const bits = param(2, "i32", 128);
        if (![32, 64, 128, 256].includes(bits)) bad(`decimal of ${bits} bits`);
        return col("fixed", bits / 8);
      }
      case T.Date:
        return col("fixed", pick(param(0, "i16", 1), [4, 8], "date unit"));
      case T.Time: {
        const bits = param(1, "i32", 32);
        if (bits !== 32 && bits !== 64) bad(`time of ${bits} bits`);
        return col("fixed", bits / 8);
      }
      case T.Timestamp:
      case T.Duration:
        return col("fixed", 8);
      case T.Interval:
        return col("fixed", pick(param(0, "i16", 0), [4, 8, 16], "interval unit"));
      case T.FixedSizeBinary: {
        const w = param(0, "i32", 0);
        if (w < 1) bad(`fixed-size binary of ${w} bytes`);
        return col("fixed", w);
      }
      case T.List:
      case T.Map:
        return col("list", 4, one());
      case T.LargeList:
        return col("list", 8, one());
      case T.FixedSizeList: {
        const n = param(0, "i32", 0);
        if (n < 1) bad(`fixed-size list of ${n}`);
        return col("fixedlist", n, one());
      }
      case T.Struct:
        return col("struct", 0, children);
      case T.Union:
        return this.union(t, children);
    }
    return bad(`type ${typeId} is not read by apache-arrow`);
  }

  union(t: number, children: readonly Col[]): Col {
    const fb = this.fb;
    if (t === 0) bad("a Union type without its table");
    const mode = fb.scalar(t, 0, "i16", 0);
    if (mode !== 0 && mode !== 1) bad(`union mode ${mode}`);
    const v = fb.vector(t, 1, 4);
    if (v.length !== children.length) bad(`union of ${children.length} children, ${v.length} ids`);
    const typeIds: number[] = [];
    for (let i = 0; i < v.length; i++) {
      const id = fb.i32(v.at + 4 * i);
      if (id < 0 || id > 127 || typeIds.includes(id)) bad(`union type id ${id}`);
      typeIds.push(id);
    }
    return { ...col("union", 0, children), dense: mode === 1, typeIds };
  }
}

function intWidth(fb: Fb, t: number): number {
  const bits = fb.scalar(t, 0, "i32", 0);
  if (bits !== 8 && bits !== 16 && bits !== 32 && bits !== 64) bad(`int of ${bits} bits`);
  return bits / 8;
}

function pick(i: number, widths: readonly number[], what: string): number {
  if (!(i >= 0 && i < widths.length)) bad(`${what} ${i}`);
  return widths[i];
}

/**
 * Read the footer's schema table (at `s` in `fb`).
 *
 * @throws {SerializationError} Anything out of bounds, refused or unreadable (see the module doc).
 */
export function readSchema(fb: Fb, s: number): SchemaInfo {
  if (fb.scalar(s, 0, "i16", 0) !== 0) bad("a big-endian schema");
  checkKeyValues(fb, s, 2);
  const r = new SchemaReader(fb);
  const fields = r.fields(s, 1, 0);
  return { fields, dicts: r.dicts };
}
