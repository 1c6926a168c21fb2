/**
 * Checks of an Arrow IPC **file**'s structure against the bytes held, before apache-arrow reads
 * it: what makes a stored table safe to hand to apache-arrow with integrity checking off (no
 * checksum: cachekit-py writes the bare file then), where one flipped byte could otherwise make
 * its decoder allocate until the process died.
 *
 * Hand-written over a bounds-checked FlatBuffers reader (`_flatbuffer.ts`) because apache-arrow
 * offers no bounded way to look at metadata: its `Footer` / `Message` classes decode every vector
 * into arrays of the length its bytes claim, and its generated `fb/` readers check no bounds (and
 * are not part of the module `loadArrow` receives). What is checked, mirroring what apache-arrow
 * 21's file reader and `VectorLoader` then read:
 *
 * - the file: `ARROW1` at both ends, the footer's length and position inside the file, metadata
 *   version V4 or V5 (footer and messages), little-endian schema, every field's type one apache-arrow reads with sane
 *   parameters, nesting at most 64 deep, no more fields than the footer has room for;
 * - each dictionary and record batch block: offset, metadata length and body length inside the
 *   data between the magic and the footer; the message at the offset (its length prefix, its
 *   FlatBuffers metadata, its body length) inside it too, of the block's kind; messages disjoint;
 *   no compressed body (apache-arrow has no codec by default, and a codec's declared sizes would
 *   be unbounded);
 * - each batch: one field node per field and one buffer per buffer read, no more and no fewer;
 *   lengths at most 2^31 − 1 and null counts at most the length; buffers inside the body, in
 *   order and disjoint; validity, data, offsets and type-id buffers as long as the node's length
 *   times the type's width; offsets from 0 up, never decreasing, the last within the data buffer
 *   or the child's length; views within their variadic buffers; children at least as long as
 *   their parent needs; dictionaries loaded before use; top-level nodes as long as the batch;
 * - rows: a node of a type holding no bytes (`Null`, a struct without children, a batch without
 *   columns) at most 2^20 rows; every other length is bounded by the bytes of its buffers, and the
 *   rows of all batches together by 2^31 − 1.
 *
 * The work is linear in the file's size: every buffer read is read once (buffers and messages are
 * disjoint), every vector's length is checked against the bytes left before it is walked.
 *
 * @module
 */
import { bad, Fb, type Vec } from "./_flatbuffer.ts";
import { checkKeyValues, type Col, readSchema } from "./_arrow_schema.ts";

/** The longest node (elements) accepted: apache-arrow indexes with 32-bit integers. */
export const MAX_LENGTH: number = 0x7fff_ffff;
/** The longest node of a type that holds no bytes (see the module doc). */
export const MAX_BYTELESS_ROWS: number = 1 << 20;

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;
const HEADER_DICTIONARY = 2;
const HEADER_RECORD_BATCH = 3;
const BLOCK_BYTES = 24;

interface Buf {
  at: number; // absolute, in the file
  length: number;
}

/** One record or dictionary batch being checked against the schema. */
class BatchCheck {
  #node = 0;
  #buffer = 0;
  #variadic = 0;
  #end = 0; // end of the last non-empty buffer, relative to the body
  readonly #view: DataView;
  readonly #file: Uint8Array;

  constructor(
    readonly fb: Fb,
    readonly nodes: Vec,
    readonly buffers: Vec,
    readonly variadic: Vec,
    readonly body: Buf,
    file: Uint8Array,
    readonly loaded: ReadonlySet<number>,
    readonly unionValidity: boolean,
  ) {
    this.#view = new DataView(file.buffer, file.byteOffset, file.byteLength);
    this.#file = file;
  }

  done(): void {
    if (this.#node !== this.nodes.length) {
      bad(`${this.nodes.length} field nodes, ${this.#node} read`);
    }
    if (this.#buffer !== this.buffers.length) {
      bad(`${this.buffers.length} buffers, ${this.#buffer} read`);
    }
  }

  #nextNode(): { length: number; nulls: number } {
    if (this.#node >= this.nodes.length) bad("fewer field nodes than fields");
    const at = this.nodes.at + 16 * this.#node++;
    const length = this.fb.i64(at);
    const nulls = this.fb.i64(at + 8);
    if (length < 0 || length > MAX_LENGTH) bad(`a node of length ${length}`);
    if (nulls < 0 || nulls > length) bad(`${nulls} nulls in a node of ${length}`);
    return { length, nulls };
  }

  #nextBuffer(need: number, what: string): Buf {
    if (this.#buffer >= this.buffers.length) bad("fewer buffers than the fields need");
    const at = this.buffers.at + 16 * this.#buffer++;
    const offset = this.fb.i64(at);
    const length = this.fb.i64(at + 8);
    if (offset < 0 || length < 0 || offset + length > this.body.length) {
      bad(`${what} buffer ${offset}+${length} outside a body of ${this.body.length}`);
    }
    if (length > 0) {
      if (offset < this.#end) bad(`${what} buffer at ${offset} overlaps the one before`);
      this.#end = offset + length;
    }
    if (length < need) bad(`${what} buffer of ${length} bytes, ${need} needed`);
    return { at: this.body.at + offset, length };
  }

  #validity(length: number, nulls: number): void {
    this.#nextBuffer(nulls > 0 ? Math.ceil(length / 8) : 0, "validity");
  }

  /** Offsets `0 ≤ o[0] ≤ … ≤ o[length]`; returns the last (0 for an empty node). */
  #offsets(length: number, width: number): number {
    const b = this.#nextBuffer(length === 0 ? 0 : (length + 1) * width, "offsets");
    if (length === 0) return 0;
    const words = (length + 1) * (width / 4);
    const at = this.#file.byteOffset + b.at;
    // A typed array where the host and the alignment allow (several times faster than a DataView
    // on a million offsets), else a DataView.
    const o = LITTLE_ENDIAN && at % 4 === 0
      ? new Int32Array(this.#file.buffer, at, words)
      : Int32Array.from({ length: words }, (_, i) => this.#view.getInt32(b.at + 4 * i, true));
    const step = width / 4;
    let prev = 0;
    for (let i = 0; i < words; i += step) {
      const x = o[i];
      if (x < prev || (step === 2 && o[i + 1] !== 0)) bad(`offset ${x} after ${prev}`);
      prev = x;
    }
    return prev;
  }

  /** Check the node(s) and buffers of `col`; returns its length. */
  visit(col: Col): number {
    const { length, nulls } = this.#nextNode();
    switch (col.layout) {
      case "null":
        if (length > MAX_BYTELESS_ROWS) bad(`a null column of ${length} rows`);
        return length;
      case "fixed":
      case "dict":
        if (col.layout === "dict" && length > 0 && !this.loaded.has(col.dictId)) {
          bad(`dictionary ${col.dictId} used before it is loaded`);
        }
        this.#validity(length, nulls);
        this.#nextBuffer(length * col.width, "data");
        return length;
      case "bool":
        this.#validity(length, nulls);
        this.#nextBuffer(Math.ceil(length / 8), "data");
        return length;
      case "binary": {
        this.#validity(length, nulls);
        const last = this.#offsets(length, col.width);
        this.#nextBuffer(last, "data");
        return length;
      }
      case "view":
        this.#validity(length, nulls);
        this.#views(length);
        return length;
      case "list": {
        this.#validity(length, nulls);
        const last = this.#offsets(length, col.width);
        if (this.visit(col.children[0]) < last) bad(`list child shorter than offset ${last}`);
        return length;
      }
      case "fixedlist":
        this.#validity(length, nulls);
        if (this.visit(col.children[0]) < length * col.width) bad("fixed-size list child short");
        return length;
      case "struct":
        if (col.children.length === 0 && length > MAX_BYTELESS_ROWS) {
          bad(`a struct without children of ${length} rows`);
        }
        this.#validity(length, nulls);
        for (const c of col.children) {
          if (this.visit(c) < length) bad("struct child shorter than the struct");
        }
        return length;
      case "union":
        this.#union(col, length, nulls);
        return length;
    }
  }

  #views(length: number): void {
    const views = this.#nextBuffer(length * 16, "views");
    if (this.#variadic >= this.variadic.length) bad("a view column without its buffer count");
    const count = this.fb.i64(this.variadic.at + 8 * this.#variadic++);
    if (count < 0 || count > this.buffers.length - this.#buffer) bad(`${count} variadic buffers`);
    const sizes: number[] = [];
    for (let i = 0; i < count; i++) sizes.push(this.#nextBuffer(0, "variadic").length);
    const v = this.#view;
    for (let i = 0, at = views.at; i < length; i++, at += 16) {
      const n = v.getInt32(at, true);
      if (n < 0) bad(`a view of length ${n}`);
      if (n <= 12) continue;
      const b = v.getInt32(at + 8, true);
      const o = v.getInt32(at + 12, true);
      if (b < 0 || b >= count || o < 0 || o + n > sizes[b]) bad(`a view outside its buffer`);
    }
  }

  #union(col: Col, length: number, nulls: number): void {
    if (this.unionValidity) this.#validity(length, nulls);
    const ids = this.#nextBuffer(length, "type ids");
    const offs = col.dense ? this.#nextBuffer(length * 4, "union offsets") : null;
    const lengths = col.children.map((c) => this.visit(c));
    const v = this.#view;
    for (let i = 0; i < length; i++) {
      const child = col.typeIds.indexOf(v.getInt8(ids.at + i));
      if (child < 0) bad(`union type id ${v.getInt8(ids.at + i)} of no child`);
      // Sparse: apache-arrow's own writer leaves children shorter than the union (a read past
      // a child's end gives no value, and allocates nothing), so their lengths are not checked.
      if (offs !== null) {
        const o = v.getInt32(offs.at + 4 * i, true);
        if (o < 0 || o >= lengths[child]) bad(`dense union offset ${o}`);
      }
    }
  }
}

interface Message {
  header: number; // table position in `fb`
  fb: Fb;
  body: Buf;
  start: number; // absolute: the block's offset
  end: number; // absolute end of the body
}

/** The message a block points at, checked (see the module doc). */
function readMessage(
  file: Uint8Array,
  block: number,
  footer: Fb,
  dataEnd: number,
  want: number,
): Message {
  const offset = footer.i64(block);
  const metaLength = footer.i32(block + 8);
  const bodyLength = footer.i64(block + 16);
  if (
    offset < 8 || metaLength < 0 || bodyLength < 0 || offset + metaLength + bodyLength > dataEnd
  ) {
    bad(`block ${offset}+${metaLength}+${bodyLength} outside ${dataEnd} bytes of batches`);
  }
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (offset + 8 > dataEnd) bad("a message without room for its length");
  let length = view.getInt32(offset, true);
  let start = offset + 4;
  if (length === -1) {
    length = view.getInt32(offset + 4, true);
    start += 4;
  }
  if (length <= 0 || start + length > dataEnd) bad(`message metadata of ${length} bytes`);
  const fb = new Fb(file.subarray(start, start + length));
  const m = fb.root();
  // apache-arrow reads buffers of 24 bytes (with a page id) before V4: V4 and V5 only.
  const version = fb.scalar(m, 0, "i16", 0);
  if (version !== 3 && version !== 4) bad(`a message of metadata version V${version + 1}`);
  const type = fb.scalar(m, 1, "u8", 0);
  if (type !== want) bad(`a message of type ${type} where ${want} is expected`);
  const header = fb.table(m, 2);
  if (header === 0) bad("a message without its header");
  const bodySize = fb.scalar(m, 3, "i64", 0);
  checkKeyValues(fb, m, 4);
  const bodyAt = start + length;
  if (bodySize < 0 || bodyAt + bodySize > dataEnd) bad(`a message body of ${bodySize} bytes`);
  return {
    header,
    fb,
    body: { at: bodyAt, length: bodySize },
    start: offset,
    end: bodyAt + bodySize,
  };
}

/** Check the RecordBatch table at `rb`: its nodes and buffers against `cols`; returns its rows. */
function checkBatch(
  file: Uint8Array,
  msg: Message,
  rb: number,
  cols: readonly Col[],
  loaded: ReadonlySet<number>,
  unionValidity: boolean,
): number {
  const fb = msg.fb;
  const rows = fb.scalar(rb, 0, "i64", 0);
  if (rows < 0 || rows > MAX_LENGTH) bad(`a batch of ${rows} rows`);
  if (cols.length === 0 && rows > MAX_BYTELESS_ROWS) bad(`${rows} rows without columns`);
  if (fb.table(rb, 3) !== 0) bad("a compressed batch (not read here)");
  const check = new BatchCheck(
    fb,
    fb.vector(rb, 1, 16),
    fb.vector(rb, 2, 16),
    fb.vector(rb, 4, 8),
    msg.body,
    file,
    loaded,
    unionValidity,
  );
  for (const c of cols) {
    if (check.visit(c) !== rows) bad("a column not as long as its batch");
  }
  check.done();
  return rows;
}

/** Every block's message, checked to be inside the file and disjoint from the others. */
function readMessages(file: Uint8Array, fb: Fb, footer: number, dataEnd: number) {
  const read = (blocks: Vec, want: number) => {
    const out: Message[] = [];
    for (let i = 0; i < blocks.length; i++) {
      out.push(readMessage(file, blocks.at + BLOCK_BYTES * i, fb, dataEnd, want));
    }
    return out;
  };
  const dictionaries = read(fb.vector(footer, 2, BLOCK_BYTES), HEADER_DICTIONARY);
  const batches = read(fb.vector(footer, 3, BLOCK_BYTES), HEADER_RECORD_BATCH);
  // Disjoint before any buffer is read: so that reading them is linear in the file's size.
  const spans = [...dictionaries, ...batches].sort((a, b) => a.start - b.start);
  for (let i = 1; i < spans.length; i++) {
    if (spans[i].start < spans[i - 1].end) bad("two blocks share bytes");
  }
  return { dictionaries, batches };
}

/**
 * Check an Arrow IPC file's structure against its bytes (see the module doc).
 *
 * @param file The whole file, `ARROW1` … `ARROW1`.
 * @throws {SerializationError} Anything apache-arrow would read out of bounds or could be made to
 *   allocate more than the bytes can hold for.
 */
export function checkArrowFile(file: Uint8Array): void {
  const n = file.length;
  if (n < 8 + 10 || !magicAt(file, 0) || !magicAt(file, n - 6)) {
    bad("no ARROW1 magic at both ends");
  }
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const footerLength = view.getInt32(n - 10, true);
  const dataEnd = n - 10 - footerLength;
  if (footerLength <= 0 || dataEnd < 8) bad(`footer of ${footerLength} bytes in ${n}`);
  const fb = new Fb(file.subarray(dataEnd, n - 10));
  const footer = fb.root();
  const version = fb.scalar(footer, 0, "i16", 0);
  if (version !== 3 && version !== 4) bad(`metadata version V${version + 1}`);
  const s = fb.table(footer, 1);
  if (s === 0) bad("a footer without its schema");
  const schema = readSchema(fb, s);
  const { dictionaries, batches } = readMessages(file, fb, footer, dataEnd);
  // Before V5, unions carry a validity buffer.
  const unionValidity = version < 4;
  const loaded = new Set<number>();
  for (const m of dictionaries) {
    const id = m.fb.scalar(m.header, 0, "i64", 0);
    const col = schema.dicts.get(id);
    if (col === undefined) bad(`a dictionary batch for id ${id}, not in the schema`);
    const rb = m.fb.table(m.header, 1);
    if (rb === 0) bad("a dictionary batch without data");
    checkBatch(file, m, rb, [col], loaded, unionValidity);
    loaded.add(id);
  }
  let rows = 0;
  for (const m of batches) {
    rows += checkBatch(file, m, m.header, schema.fields, loaded, unionValidity);
    if (rows > MAX_LENGTH) bad(`more than ${MAX_LENGTH} rows`);
  }
}

const MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31]; // "ARROW1"

function magicAt(b: Uint8Array, at: number): boolean {
  for (let i = 0; i < 6; i++) if (b[at + i] !== MAGIC[i]) return false;
  return true;
}
