/**
 * ByteStorage envelope (protocol layer 3): round trips, the README's worked example bytes, and every
 * read-side rejection. Cross-checks with Debian's Python live in `protocol_envelope_python_test.ts`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { encode as msgpackEncode } from "@msgpack/msgpack";
import { test } from "../_harness.ts";
import { decodeEnvelope, encodeEnvelope } from "../../protocol/envelope.ts";
import { readEnvelopeFields, writeEnvelopeFields } from "../../protocol/_envelope_msgpack.ts";
import { IntegrityError } from "../../errors.ts";

const MiB = 1024 * 1024;

function hex(s: string): Uint8Array {
  return Uint8Array.from(s.trim().split(/\s+/), (x) => parseInt(x, 16));
}

function randomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

function compressible(n: number): Uint8Array {
  const pat = new TextEncoder().encode('{"id": 12345, "name": "user", "tags": ["a", "b"]}, ');
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = pat[i % pat.length] ^ ((i >>> 13) & 3);
  return out;
}

function rejects(bytes: Uint8Array, pattern: RegExp): void {
  assert.throws(() => decodeEnvelope(bytes), (e: unknown) => {
    assert.ok(e instanceof IntegrityError, `expected IntegrityError, got ${e}`);
    assert.match(e.message, pattern);
    return true;
  });
}

// --- The README's worked example (bytes from rmp-serde 1.1.1) ---------------------------------

const EXAMPLE = {
  compressed: hex("01 c8 00 ff"),
  checksum: hex("00 01 7f 80 c8 ff 10 20"),
  originalSize: 70000,
  format: "msgpack",
};
const EXAMPLE_10 = hex(
  "94 94 01 cc c8 00 cc ff 98 00 01 7f cc 80 cc c8 cc ff 10 20 ce 00 01 11 70 a7 6d 73 67 70 61 63 6b",
);
const EXAMPLE_11 = hex(
  "94 c4 04 01 c8 00 ff 98 00 01 7f cc 80 cc c8 cc ff 10 20 ce 00 01 11 70 a7 6d 73 67 70 61 63 6b",
);

test("envelope: writer reproduces the README worked example (1.0 and 1.1)", () => {
  assert.deepEqual(writeEnvelopeFields(EXAMPLE, "1.0"), EXAMPLE_10);
  assert.deepEqual(writeEnvelopeFields(EXAMPLE, "1.1"), EXAMPLE_11);
});

test("envelope: reader parses both worked-example forms to the same fields", () => {
  for (const bytes of [EXAMPLE_10, EXAMPLE_11]) {
    const f = readEnvelopeFields(bytes);
    assert.deepEqual(f.compressed, EXAMPLE.compressed);
    assert.deepEqual(f.checksum, EXAMPLE.checksum);
    assert.equal(f.originalSize, 70000);
    assert.equal(f.format, "msgpack");
  }
});

test("envelope: the worked example is a decompression bomb (70000 > 1000 × 4) and is refused", () => {
  rejects(EXAMPLE_10, /over 1000 ×/);
  rejects(EXAMPLE_11, /over 1000 ×/);
});

// --- Round trips ----------------------------------------------------------------------------

test("envelope: round trips empty, 1 byte, 1 MiB random in both protocols", () => {
  for (const data of [new Uint8Array(0), new Uint8Array([0x2a]), randomBytes(MiB)]) {
    for (const protocol of ["1.0", "1.1"] as const) {
      const env = encodeEnvelope(data, "msgpack", { protocol });
      const out = decodeEnvelope(env);
      assert.equal(out.format, "msgpack");
      assert.equal(out.data.length, data.length);
      assert.deepEqual(out.data, data);
    }
  }
});

test("envelope: round trips 64 MiB of compressible data, and compresses it", () => {
  const data = compressible(64 * MiB);
  const env = encodeEnvelope(data);
  assert.ok(env.length < data.length / 20, `64 MiB compressed to ${env.length} bytes`);
  const out = decodeEnvelope(env);
  assert.equal(out.data.length, data.length);
  assert.ok(Buffer.compare(out.data, data) === 0);
});

test("envelope: 1.1 stores the block as bin, 1.0 as an array of ints; default is 1.1", () => {
  const data = new TextEncoder().encode("x");
  // LZ4 block of one byte is token 0x10 then the literal.
  assert.deepEqual(encodeEnvelope(data).subarray(0, 5), hex("94 c4 02 10 78"));
  assert.deepEqual(
    encodeEnvelope(data, "msgpack", { protocol: "1.0" }).subarray(0, 4),
    hex("94 92 10 78"),
  );
});

test("envelope: format tag round trips and never contains the LZ4 frame magic", () => {
  const data = compressible(100_000);
  for (const format of ["json", "", "é".repeat(40), "f".repeat(300)]) {
    const env = encodeEnvelope(data, format);
    assert.equal(decodeEnvelope(env).format, format);
    const s = Buffer.from(env).toString("hex");
    assert.ok(!s.includes("04224d18"), "frame magic found");
  }
});

test("envelope: accepts the named-map form (written by an independent msgpack library)", () => {
  const data = compressible(5000);
  const f = readEnvelopeFields(encodeEnvelope(data));
  for (const compressed of [f.compressed, Array.from(f.compressed)]) {
    // the checksum as an array of integers (rmp-serde) or as `bin` (other writers)
    for (const checksum of [Array.from(f.checksum), f.checksum]) {
      const map = msgpackEncode({
        format: "msgpack",
        original_size: f.originalSize,
        checksum,
        compressed_data: compressed,
      });
      assert.deepEqual(decodeEnvelope(map).data, data);
      const bad = checksum.slice();
      bad[3] ^= 0x80;
      rejects(
        msgpackEncode({
          format: "msgpack",
          original_size: f.originalSize,
          checksum: bad,
          compressed_data: compressed,
        }),
        /checksum mismatch/,
      );
      rejects(
        msgpackEncode({
          format: "msgpack",
          original_size: f.originalSize,
          checksum: checksum.slice(0, 7),
          compressed_data: compressed,
        }),
        /checksum has 7 bytes/,
      );
    }
  }
});

test("envelope: encode refuses bad arguments with SerializationError", () => {
  // deno-lint-ignore no-explicit-any
  const bad = encodeEnvelope as any;
  for (
    const call of [
      () => bad("abc"),
      () => bad(new Uint8Array(1), 5),
      () => bad(new Uint8Array(1), "msgpack", { protocol: "2.0" }),
    ]
  ) {
    assert.throws(call, (e: unknown) => (e as Error).name === "SerializationError");
  }
});

// --- Rejections -----------------------------------------------------------------------------

const SAMPLE = compressible(3000);
const fieldsOf = () => readEnvelopeFields(encodeEnvelope(SAMPLE));

test("envelope: bad checksum is refused", () => {
  const f = fieldsOf();
  const checksum = f.checksum.slice();
  checksum[7] ^= 1;
  rejects(writeEnvelopeFields({ ...f, checksum }, "1.1"), /checksum mismatch/);
  // A flipped bit anywhere in the block is refused too (checksum or LZ4 structure).
  const env = encodeEnvelope(SAMPLE);
  for (let i = 5; i < env.length - 30; i += 7) {
    const bad = env.slice();
    bad[i] ^= 0x10;
    assert.throws(() => decodeEnvelope(bad), IntegrityError);
  }
});

test("envelope: size mismatch is refused (larger and smaller original_size)", () => {
  const f = fieldsOf();
  rejects(writeEnvelopeFields({ ...f, originalSize: f.originalSize + 1 }, "1.1"), /LZ4/);
  rejects(writeEnvelopeFields({ ...f, originalSize: f.originalSize - 1 }, "1.1"), /LZ4/);
});

test("envelope: every truncation of a valid envelope is refused", () => {
  for (const protocol of ["1.0", "1.1"] as const) {
    const env = encodeEnvelope(compressible(400), "msgpack", { protocol });
    for (let n = 0; n < env.length; n++) {
      assert.throws(() => decodeEnvelope(env.subarray(0, n)), IntegrityError);
    }
  }
  rejects(new Uint8Array(0), /truncated/);
});

test("envelope: trailing bytes are refused", () => {
  const env = encodeEnvelope(SAMPLE);
  const longer = new Uint8Array(env.length + 1);
  longer.set(env);
  rejects(longer, /trailing/);
});

test("envelope: zero-length compressed block with a non-zero size is refused", () => {
  const f = fieldsOf();
  rejects(
    writeEnvelopeFields({ ...f, compressed: new Uint8Array(0), originalSize: 1 }, "1.1"),
    /empty compressed/,
  );
  rejects(
    writeEnvelopeFields({ ...f, compressed: new Uint8Array(0), originalSize: 1 }, "1.0"),
    /empty compressed/,
  );
});

test("envelope: ratio over 1000:1 is refused, exactly 1000:1 reaches decompression", () => {
  const f = fieldsOf();
  const compressed = new Uint8Array(10);
  rejects(writeEnvelopeFields({ ...f, compressed, originalSize: 10_001 }, "1.1"), /over 1000 ×/);
  rejects(
    writeEnvelopeFields({ ...f, compressed, originalSize: 10_000 }, "1.1"),
    /LZ4 decompression/,
  );
});

test("envelope: sizes over 512 MiB are refused before allocation", () => {
  const over = 512 * MiB + 1;
  const u32 = (v: number) => [v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];
  const tail = [0x98, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0xa7, ...new TextEncoder().encode("msgpack")];
  // compressed block declared as bin32 / array32 over 512 MiB (the bytes are not there)
  rejects(Uint8Array.from([0x94, 0xc6, ...u32(over), ...tail]), /over 512 MiB/);
  rejects(Uint8Array.from([0x94, 0xdd, ...u32(over), ...tail]), /over 512 MiB/);
  // original_size over 512 MiB, as u32 and as u64
  const head = [0x94, 0xc4, 0x01, 0x00, 0x98, 0, 0, 0, 0, 0, 0, 0, 0];
  const fmt = [0xa7, ...new TextEncoder().encode("msgpack")];
  rejects(
    Uint8Array.from([...head, 0xce, ...u32(over), ...fmt]),
    /original size \d+ is over 512 MiB/,
  );
  rejects(
    Uint8Array.from([...head, 0xcf, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, ...fmt]),
    /over 512 MiB/,
  );
  // the whole envelope over 512 MiB (zero pages, never written)
  rejects(new Uint8Array(over), /over 512 MiB/);
});

test("envelope: wrong field types are refused", () => {
  const f = fieldsOf();
  const good = {
    compressed_data: f.compressed,
    checksum: Array.from(f.checksum),
    original_size: f.originalSize,
    format: "msgpack",
  };
  const order = ["compressed_data", "checksum", "original_size", "format"] as const;
  const asArray = (o: Record<string, unknown>) => msgpackEncode(order.map((k) => o[k]));
  // sanity: the independent encoder's array form is accepted
  assert.deepEqual(decodeEnvelope(asArray(good)).data, SAMPLE);
  const cases: [string, Record<string, unknown>][] = [
    ["compressed as string", { ...good, compressed_data: "abc" }],
    ["compressed as nil", { ...good, compressed_data: null }],
    ["compressed with a non-byte int", {
      ...good,
      compressed_data: [...f.compressed.slice(0, 5), 256],
    }],
    ["compressed with a negative int", { ...good, compressed_data: [-1, ...f.compressed] }],
    ["checksum of 7 bytes", { ...good, checksum: good.checksum.slice(0, 7) }],
    ["checksum of 9 bytes", { ...good, checksum: [...good.checksum, 0] }],
    ["checksum as string", { ...good, checksum: "12345678" }],
    ["checksum element 300", { ...good, checksum: [300, ...good.checksum.slice(1)] }],
    ["checksum element float", { ...good, checksum: [1.5, ...good.checksum.slice(1)] }],
    ["original_size negative", { ...good, original_size: -1 }],
    ["original_size float", { ...good, original_size: 3000.5 }],
    ["original_size string", { ...good, original_size: "3000" }],
    ["format as int", { ...good, format: 7 }],
    ["format as bin", { ...good, format: new Uint8Array([1]) }],
  ];
  for (const [name, o] of cases) {
    assert.throws(() => decodeEnvelope(asArray(o)), IntegrityError, name);
    assert.throws(() => decodeEnvelope(msgpackEncode(o)), IntegrityError, `${name} (map)`);
  }
  // wrong shapes
  for (
    const v of [
      null,
      "envelope",
      [],
      order.slice(0, 3).map((k) => good[k]),
      [...order.map((k) => good[k]), 1],
      { ...good, extra: 1 },
      { compressed_data: good.compressed_data, checksum: good.checksum, original_size: 1 },
    ]
  ) {
    assert.throws(() => decodeEnvelope(msgpackEncode(v)), IntegrityError, JSON.stringify(v));
  }
  // invalid UTF-8 in format
  const bad = Uint8Array.from([...writeEnvelopeFields({ ...f, format: "ab" }, "1.1")]);
  bad[bad.length - 1] = 0xff;
  rejects(bad, /envelope rejected/);
  // not a Uint8Array at all
  // deno-lint-ignore no-explicit-any
  assert.throws(() => decodeEnvelope("abc" as any), IntegrityError);
});

test("envelope: random garbage and random mutations never escape as another error or wrong data", () => {
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 2000; i++) {
    const g = randomBytes(Math.floor(rnd() * 64));
    if (i % 2 === 0 && g.length > 0) g[0] = 0x94; // make it look like an envelope
    try {
      decodeEnvelope(g);
    } catch (e) {
      assert.ok(e instanceof IntegrityError, String(e));
    }
  }
  for (const protocol of ["1.0", "1.1"] as const) {
    const env = encodeEnvelope(SAMPLE, "msgpack", { protocol });
    for (let i = 0; i < 2000; i++) {
      const m = env.slice();
      const flips = 1 + Math.floor(rnd() * 3);
      for (let j = 0; j < flips; j++) m[Math.floor(rnd() * m.length)] = Math.floor(rnd() * 256);
      try {
        const out = decodeEnvelope(m);
        assert.deepEqual(out.data, SAMPLE); // only a harmless mutation can pass
      } catch (e) {
        assert.ok(e instanceof IntegrityError, String(e));
      }
    }
  }
});
