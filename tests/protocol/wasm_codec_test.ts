/**
 * The envelope's WebAssembly codec (liblz4 + xxHash compiled to wasm32) against the JavaScript
 * codecs it replaced, which stay as the fallback: differential round trips, xxHash3 against
 * `hash-wasm`, corrupt blocks (a typed error, never data from outside the block), the literal-only
 * blocks of small values, and both codecs reading each other's envelopes. Cross-checks with
 * Debian's Python (liblz4, libxxhash) live in `tests/interop/wasm_codec_python_test.ts`.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { test } from "../_harness.ts";
import { loadCodec, SHARED_MAX_BYTES, wasmCodec } from "../../protocol/_wasm_codec.ts";
import {
  activeCodec,
  MIN_COMPRESS_BYTES,
  openBlock,
  PROBE_MIN_BYTES,
  sealBlock,
  storedBlockLength,
  useCodec,
  writeStoredBlock,
} from "../../protocol/_block_codec.ts";
import { compressBlock, decompressBlock } from "../../protocol/_lz4.ts";
import { xxh3, xxh3Fallback, xxh3Hex, xxh3HexFallback } from "../../protocol/_xxh3.ts";
import { decodeEnvelope, encodeEnvelope } from "../../protocol/envelope.ts";
import { openEnvelope, openEnvelopeScratch } from "../../protocol/_envelope_read.ts";
import { readEnvelopeFields, writeEnvelopeFields } from "../../protocol/_envelope_msgpack.ts";
import { IntegrityError } from "../../errors.ts";

const MiB = 1024 * 1024;
const codec = wasmCodec!;

/** A small deterministic PRNG (xorshift32), so a failure names its seed. */
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randomBytes(n: number, next: () => number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() & 0xff;
  return out;
}

/** Inputs of every shape LZ4 cares about: random, runs, periodic, text-like, mixed. */
function inputs(seed: number, n: number): Uint8Array[] {
  const next = rng(seed);
  const rnd = randomBytes(n, next);
  const zeros = new Uint8Array(n);
  const periodic = new Uint8Array(n);
  const period = 1 + (next() % 70);
  for (let i = 0; i < n; i++) periodic[i] = (i % period) * 7;
  const text = new TextEncoder().encode(
    JSON.stringify(Array.from({ length: 1 + (n >> 4) }, (_, i) => ({ id: i, n: `u${i % 13}` }))),
  ).subarray(0, n);
  const mixed = new Uint8Array(n);
  for (let i = 0; i < n; i++) mixed[i] = i % 200 < 100 ? rnd[i] : i & 3;
  // A repeat near the end (where LZ4's end-of-block rules apply).
  const late = rnd.slice();
  for (let j = 0; j < 14 && n - 14 + j >= 0; j++) late[n - 14 + j] = late[j];
  return [rnd, zeros, periodic, text, mixed, late];
}

const eq = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

test("wasm codec: it loads here, and the envelope runs it", () => {
  assert.ok(wasmCodec !== null, "the WebAssembly module should instantiate on this runtime");
  assert.equal(activeCodec(), "wasm");
});

test("wasm codec: xxh3 equals hash-wasm's on sizes 0..300, unaligned views and large inputs", () => {
  const next = rng(7);
  const big = randomBytes(300 + 64, next);
  for (let n = 0; n <= 300; n++) {
    for (const off of [0, 1, 3]) {
      const v = big.subarray(off, off + n);
      assert.equal(xxh3Hex(v), xxh3HexFallback(v), `n=${n} offset=${off}`);
    }
    const v = big.subarray(0, n);
    assert.ok(eq(xxh3(v), xxh3Fallback(v)), `binary n=${n}`);
    assert.ok(eq(codec.digest(v), xxh3Fallback(v)), `digest n=${n}`);
  }
  for (const n of [1024, 4095, 65536 + 7, MiB + 3, SHARED_MAX_BYTES + 1, 3 * MiB]) {
    const v = randomBytes(n, next);
    assert.equal(xxh3Hex(v), xxh3HexFallback(v), `n=${n}`);
  }
  // A Node Buffer (a Uint8Array subclass) hashes like its bytes.
  assert.equal(xxh3Hex(Buffer.from("hello")), xxh3HexFallback(new TextEncoder().encode("hello")));
});

test("wasm codec: its blocks decode with the JS decoder and its own; JS blocks decode with it", () => {
  let seed = 1;
  for (const n of [0, 1, 12, 13, 14, 15, 16, 31, 64, 100, 255, 256, 1000, 4096, 70_000]) {
    for (const src of inputs(seed++, n)) {
      const sealed = codec.seal(src);
      const block = sealed.block.slice();
      assert.ok(eq(sealed.checksum, xxh3Fallback(src)), `checksum n=${n}`);
      assert.ok(block.length <= codec_bound(n), `bound n=${n}`);
      assert.ok(eq(decompressBlock(block, n), src), `js decodes wasm n=${n}`);
      const back = codec.open(block, n);
      assert.ok(eq(back.data, src), `wasm decodes wasm n=${n}`);
      assert.equal(back.checksumHex, xxh3HexFallback(src));
      const viaJs = codec.open(compressBlock(src), n);
      assert.ok(eq(viaJs.data, src), `wasm decodes js n=${n}`);
    }
  }
});

function codec_bound(n: number): number {
  return n + Math.floor(n / 255) + 16;
}

test("wasm codec: values over the shared instance's size round trip (the large instance)", () => {
  for (const src of inputs(99, SHARED_MAX_BYTES + 12345).slice(0, 4)) {
    const env = encodeEnvelope(src);
    const back = decodeEnvelope(env);
    assert.ok(eq(back.data, src));
    const prev = useCodec("js");
    try {
      assert.ok(eq(decodeEnvelope(env).data, src), "the JS codec reads the wasm envelope");
    } finally {
      useCodec(prev);
    }
  }
});

test("wasm codec: a corrupt block is a RangeError, or decodes exactly as the JS decoder does", () => {
  const next = rng(12345);
  let refused = 0;
  for (let round = 0; round < 3000; round++) {
    const n = 1 + (next() % 600);
    const src = inputs(round + 1, n)[round % 6];
    const block = codec.seal(src).block.slice();
    // Mutate: flip bytes, truncate, extend, or replace with garbage.
    let bad: Uint8Array;
    switch (round % 4) {
      case 0:
        bad = block.slice();
        for (let k = 0; k <= next() % 4; k++) bad[next() % bad.length] ^= 1 + (next() % 255);
        break;
      case 1:
        bad = block.subarray(0, next() % block.length);
        break;
      case 2:
        bad = new Uint8Array([...block, ...randomBytes(1 + (next() % 8), next)]);
        break;
      default:
        bad = randomBytes(1 + (next() % 64), next);
    }
    const size = round % 5 === 0 ? n + (next() % 3) - 1 : n;
    let wasmOut: Uint8Array | RangeError;
    try {
      wasmOut = codec.open(bad, size).data;
      assert.equal(wasmOut.length, size, "never more or fewer bytes than declared");
    } catch (e) {
      assert.ok(e instanceof RangeError, `round ${round}: ${e}`);
      refused++;
      continue;
    }
    // liblz4 is the stricter decoder: what it accepts, the JS decoder reads to the same bytes.
    assert.ok(eq(decompressBlock(bad, size), wasmOut), `round ${round}`);
  }
  assert.ok(refused > 1000, `only ${refused} refused`);
});

test("wasm codec: a match reaching before the output start never reads earlier memory", () => {
  // Leave known bytes in the codec's memory, then ask for a match at an offset before the output.
  const secret = new TextEncoder().encode("secret ".repeat(40));
  codec.open(codec.seal(secret).block.slice(), secret.length);
  const lits = new TextEncoder().encode("abcdefgh");
  for (const offset of [1, 8, 9, 280, 1000, 65535]) {
    // 8 literals, then a match of 7 at `offset` (8 bytes of output exist), then 5 literals.
    const block = new Uint8Array([0x83, ...lits, offset & 0xff, offset >> 8, 0x50, 1, 2, 3, 4, 5]);
    if (offset <= 8) {
      assert.ok(eq(codec.open(block, 20).data, decompressBlock(block, 20)), `offset ${offset}`);
    } else {
      assert.throws(() => codec.open(block, 20), RangeError, `offset ${offset}`);
      assert.throws(() => decompressBlock(block, 20), RangeError, `js offset ${offset}`);
    }
  }
});

test("wasm codec: a block expanding past or short of the declared size is refused", () => {
  const src = new TextEncoder().encode("abcdefgh".repeat(100));
  const block = codec.seal(src).block.slice();
  assert.throws(() => codec.open(block, src.length - 1), RangeError);
  assert.throws(() => codec.open(block, src.length + 1), /expands to 800 bytes, expected 801/);
  assert.throws(() => codec.open(new Uint8Array(0), 5), RangeError);
  assert.equal(codec.open(new Uint8Array([0]), 0).data.length, 0);
  // Through the envelope: an IntegrityError, bounded by maxSize before anything is decompressed.
  const env = encodeEnvelope(src);
  assert.throws(() => openEnvelope(env, { maxSize: 799 }), /over the limit of 799/);
  const fields = readEnvelopeFields(env);
  fields.compressed[fields.compressed.length - 1] ^= 0xff;
  assert.throws(() => decodeEnvelope(env), IntegrityError);
});

test("wasm codec: values under MIN_COMPRESS_BYTES are stored as one literal run", () => {
  const next = rng(5);
  for (let n = 0; n < MIN_COMPRESS_BYTES; n++) {
    const src = new Uint8Array(n).fill(0x61); // compressible, stored anyway
    const { compressed, checksum } = readEnvelopeFields(encodeEnvelope(src));
    assert.equal(compressed.length, storedBlockLength(n), `n=${n}`);
    assert.ok(eq(compressed.subarray(compressed.length - n), src), `literals n=${n}`);
    assert.ok(eq(checksum, xxh3Fallback(src)));
    assert.ok(eq(decompressBlock(compressed, n), src));
    const r = randomBytes(n, next);
    assert.ok(eq(decodeEnvelope(encodeEnvelope(r)).data, r));
  }
  // From the threshold on, a compressible value is compressed.
  const big = new Uint8Array(MIN_COMPRESS_BYTES).fill(0x61);
  const { compressed } = readEnvelopeFields(encodeEnvelope(big));
  assert.ok(compressed.length < MIN_COMPRESS_BYTES / 2);
  // The literal-only block around the 15 and 255 length-byte boundaries, read by both decoders.
  for (const n of [14, 15, 16, 269, 270, 271, 524, 525, 526]) {
    const src = randomBytes(n, next);
    const out = new Uint8Array(storedBlockLength(n));
    assert.equal(writeStoredBlock(src, out), out.length, `n=${n}`);
    assert.ok(eq(decompressBlock(out, n), src), `js n=${n}`);
    assert.ok(eq(codec.open(out, n).data, src), `wasm n=${n}`);
  }
  const sealed = sealBlock(new Uint8Array([1, 2, 3]));
  assert.deepEqual([...sealed.head!, ...sealed.block], [0x30, 1, 2, 3]);
});

test("wasm codec: both codecs read each other's envelopes (1.0 and 1.1, scratch and not)", () => {
  let seed = 300;
  for (const n of [0, 5, 63, 64, 65, 500, 5000, 300_000]) {
    for (const src of inputs(seed++, n)) {
      for (const protocol of ["1.0", "1.1"] as const) {
        const byCodec: Record<string, Uint8Array> = {};
        for (const c of ["wasm", "js"] as const) {
          useCodec(c);
          byCodec[c] = encodeEnvelope(src, "msgpack", { protocol });
        }
        for (const c of ["wasm", "js"] as const) {
          useCodec(c);
          for (const env of Object.values(byCodec)) {
            assert.ok(eq(openEnvelope(env).data, src), `${c} n=${n} ${protocol}`);
            assert.ok(eq(openEnvelopeScratch(env).data, src), `${c} scratch n=${n}`);
          }
        }
        useCodec("wasm");
      }
    }
  }
});

test("wasm codec: openBlock under either codec gives the same bytes and checksum", () => {
  const src = inputs(77, 10_000)[3];
  const block = compressBlock(src);
  const a = openBlock(block, src.length);
  const prev = useCodec("js");
  try {
    const b = openBlock(block, src.length);
    assert.ok(eq(a.data, b.data));
    assert.equal(a.checksumHex, b.checksumHex);
  } finally {
    useCodec(prev);
  }
});

test("wasm codec: a large value whose samples do not shrink is stored, others compressed", () => {
  const next = rng(2024);
  const n = PROBE_MIN_BYTES + 1000;
  const rnd = randomBytes(n, next);
  for (const c of ["wasm", "js"] as const) {
    const prev = useCodec(c);
    try {
      const env = encodeEnvelope(rnd);
      assert.equal(readEnvelopeFields(env).compressed.length, storedBlockLength(n), c);
      assert.ok(eq(decodeEnvelope(env).data, rnd));
      // Compressible only in the middle (one sample shrinks): compressed.
      const mid = rnd.slice();
      mid.fill(7, (n >> 1) - 20000, (n >> 1) + 20000);
      const envMid = encodeEnvelope(mid);
      assert.ok(readEnvelopeFields(envMid).compressed.length < n - 30000, c);
      assert.ok(eq(decodeEnvelope(envMid).data, mid));
    } finally {
      useCodec(prev);
    }
  }
  // Under the probe size, random data goes through LZ4 (whose block is about the stored size).
  const under = randomBytes(PROBE_MIN_BYTES - 1, next);
  assert.ok(eq(decodeEnvelope(encodeEnvelope(under)).data, under));
});

test("wasm codec: mostly-literal blocks (read by the JS decoder) verify like the others", () => {
  const next = rng(31);
  for (const n of [100, 5000, 300_000]) {
    const rnd = randomBytes(n, next);
    const out = new Uint8Array(storedBlockLength(n));
    writeStoredBlock(rnd, out);
    const opened = openBlock(out, n);
    assert.ok(eq(opened.data, rnd));
    assert.equal(opened.checksumHex, xxh3HexFallback(rnd));
    assert.throws(() => openBlock(out.subarray(0, out.length - 1), n), RangeError);
    assert.throws(() => openBlock(out, n + 1), RangeError);
  }
});

test("wasm codec: bytes that do not compile or instantiate give no codec (the JS fallback runs)", () => {
  assert.equal(loadCodec(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0, 0xff])), null);
  assert.equal(loadCodec(new Uint8Array(0)), null);
  // A valid but empty module: instantiates, has none of the exports.
  assert.equal(loadCodec(new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0])), null);
  const prev = useCodec("js");
  try {
    assert.equal(activeCodec(), "js");
    const src = new TextEncoder().encode("the JavaScript fallback ".repeat(20));
    assert.ok(eq(decodeEnvelope(encodeEnvelope(src)).data, src));
  } finally {
    useCodec(prev);
  }
});

test("wasm codec: a stored block written from its head and the data is the block written whole", () => {
  const next = rng(404);
  for (const n of [0, 1, 14, 15, 16, 63, PROBE_MIN_BYTES + 17]) {
    const src = randomBytes(n, next);
    const whole = new Uint8Array(storedBlockLength(n));
    writeStoredBlock(src, whole);
    for (const protocol of ["1.0", "1.1"] as const) {
      const env = encodeEnvelope(src, "msgpack", { protocol });
      const expected = writeEnvelopeFields(
        { compressed: whole, checksum: xxh3Fallback(src), originalSize: n, format: "msgpack" },
        protocol,
      );
      assert.ok(eq(env, expected), `n=${n} ${protocol}`);
    }
  }
});
