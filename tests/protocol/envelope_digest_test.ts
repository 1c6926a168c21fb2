// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The read path's checksum compared as numbers (`readEnvelopeHead`, `openBlockChecked`,
// `xxh3Matches`): the same digest as the hex form, every bit of it checked, under either codec;
// and a document's `ck_check`, verified after the value is deserialized (the check hashes through
// the codec, whose memory holds the decompressed bytes), still reads its own entries and refuses
// altered metadata.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import {
  digestHex,
  parseEnvelope,
  readEnvelopeHead,
  writeEnvelopeFields,
} from "../../protocol/_envelope_msgpack.ts";
import { openBlockChecked, sealBlock, useCodec } from "../../protocol/_block_codec.ts";
import { xxh3, xxh3Matches } from "../../protocol/_xxh3.ts";
import { encodeEnvelope } from "../../protocol/mod.ts";
import { newHead, openEnvelopeData } from "../../protocol/_envelope_read.ts";
import { cache, MemoryBackend } from "../../mod.ts";
import { loadCodec } from "../../protocol/_wasm_codec.ts";
import { CODEC_WASM_BASE64 } from "../../protocol/_codec_wasm_bytes.ts";
import { fromBase64 } from "../../protocol/_base64.ts";

function sample(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = i % 5 === 0 ? (x >>> 24) : 0x61 + (i % 3);
  }
  return out;
}

test("envelope digest: the halves read are the checksum parseEnvelope spells, both protocols", () => {
  for (const protocol of ["1.0", "1.1"] as const) {
    for (const n of [0, 10, 700, 5000]) {
      const env = encodeEnvelope(sample(n, n + 1), "msgpack", { protocol });
      const h = readEnvelopeHead(env, newHead());
      assert.equal(digestHex(h.hi, h.lo), parseEnvelope(env).checksumHex);
      assert.equal(
        digestHex(h.hi, h.lo),
        [...xxh3(sample(n, n + 1))].map((b) => b.toString(16).padStart(2, "0")).join(""),
      );
      const data = openEnvelopeData(env, true, undefined, h);
      assert.deepEqual([...data], [...sample(n, n + 1)]);
    }
  }
});

test("envelope digest: a checksum differing in any one bit is refused, under either codec", () => {
  for (const codec of ["wasm", "js"] as const) {
    const before = useCodec(codec);
    try {
      for (const n of [20, 100, 900]) { // stored (under 64 bytes) and compressed blocks
        const src = sample(n, 7);
        const s = sealBlock(src);
        const block = s.head ? new Uint8Array([...s.head, ...s.block]) : s.block.slice();
        const sum = s.checksum.slice();
        const hi = new DataView(sum.buffer).getUint32(0),
          lo = new DataView(sum.buffer).getUint32(4);
        for (const scratch of [undefined, new Uint8Array(n)]) {
          assert.deepEqual([...openBlockChecked(block, n, hi, lo, scratch)!], [...src]);
          for (let bit = 0; bit < 32; bit++) {
            const flip = (1 << bit) >>> 0;
            assert.equal(openBlockChecked(block, n, (hi ^ flip) >>> 0, lo, scratch), null);
            assert.equal(openBlockChecked(block, n, hi, (lo ^ flip) >>> 0, scratch), null);
          }
        }
        // The whole envelope: a checksum with one byte changed is an IntegrityError.
        for (let i = 0; i < 8; i++) {
          for (const protocol of ["1.0", "1.1"] as const) {
            const bad = sum.slice();
            bad[i] ^= 0x10;
            const env = writeEnvelopeFields(
              { compressed: block, checksum: bad, originalSize: n, format: "msgpack" },
              protocol,
            );
            assert.throws(
              () => openEnvelopeData(env, true, undefined, newHead()),
              /checksum mismatch/,
            );
          }
        }
        const env = writeEnvelopeFields(
          { compressed: block, checksum: sum, originalSize: n, format: "msgpack" },
          "1.0",
        );
        const h = newHead();
        assert.deepEqual([...openEnvelopeData(env, false, undefined, h)], [...src]);
        assert.ok(h.hi === hi && h.lo === lo);
      }
    } finally {
      useCodec(before);
    }
  }
});

test("envelope digest: xxh3Matches compares all 8 bytes where they sit", () => {
  const data = sample(300, 3);
  const sum = xxh3(data);
  const buf = new Uint8Array(20);
  buf.set(sum, 5);
  assert.equal(xxh3Matches(data, buf, 5), true);
  for (let i = 0; i < 8; i++) {
    const bad = buf.slice();
    bad[5 + i] ^= 1;
    assert.equal(xxh3Matches(data, bad, 5), false, `byte ${i}`);
  }
});

test("envelope digest: document wire with ck_check reads compressible values back intact", async () => {
  const backend = new MemoryBackend();
  let calls = 0;
  const values = ["repeat ".repeat(40), { a: "x".repeat(500), b: [1, 2, 3] }, sample(2000, 9)];
  const f = cache(async (i: number) => (calls++, values[i]), {
    name: "digest.document",
    backend,
    l1: false,
    wire: "document",
    staleTtl: 600,
    ttl: 3600,
  });
  for (let i = 0; i < values.length; i++) await f(i);
  const before = calls;
  for (let i = 0; i < values.length; i++) assert.deepEqual(await f(i), values[i]);
  assert.equal(calls, before, "all hits");
  await backend.close?.();
});

test("envelope head: the fast reader agrees with the general one on valid and mutated envelopes", () => {
  let x = 12345;
  const rnd = () => (x = (x * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const formats = ["msgpack", "json", "orjson", "arrow", "x"];
  let fast = 0;
  for (let k = 0; k < 3000; k++) {
    const n = [0, 5, 63, 64, 200, 300, 70000][k % 7];
    const env = encodeEnvelope(sample(n, k), formats[k % 5], {
      protocol: k % 3 === 0 ? "1.0" : "1.1",
    });
    const bad = env.slice(0, rnd() < 0.2 ? Math.floor(rnd() * env.length) : env.length);
    for (let m = Math.floor(rnd() * 3); m > 0 && bad.length > 0; m--) {
      bad[Math.floor(rnd() * bad.length)] = Math.floor(rnd() * 256);
    }
    for (const b of [env, bad]) {
      let want: unknown, got: unknown;
      try {
        const p = parseEnvelope(b);
        want = [[...p.compressed], p.checksumHex, p.originalSize, p.format];
      } catch (e) {
        want = e instanceof Error ? e.constructor.name : "?";
      }
      try {
        const h = readEnvelopeHead(b, newHead());
        got = [[...h.compressed], digestHex(h.hi, h.lo), h.originalSize, h.format];
      } catch (e) {
        got = e instanceof Error ? e.constructor.name : "?";
      }
      assert.deepEqual(got, want, `envelope ${k}`);
      if (Array.isArray(got)) fast++;
    }
  }
  assert.ok(fast > 3000, `${fast} read`);
});

test("wasm codec: reads stay right across the memory growing (the detached view is noticed)", () => {
  const codec = loadCodec(fromBase64(CODEC_WASM_BASE64));
  if (codec === null) return; // no WebAssembly here: nothing to grow
  const halves = (sum: Uint8Array) => {
    const v = new DataView(sum.buffer, sum.byteOffset, 8);
    return [v.getUint32(0), v.getUint32(4)] as const;
  };
  for (const n of [500, 1_500_000, 700, 3_000_000, 900]) { // the second and fourth grow it
    const src = sample(n, n);
    const sealed = codec.seal(src);
    const block = sealed.block.slice();
    const [hi, lo] = halves(sealed.checksum.slice());
    for (const own of [false, true]) {
      const out = codec.openChecked(block, n, hi, lo, own);
      assert.ok(out !== null && out.length === n, `n=${n}`);
      for (let i = 0; i < n; i += 997) assert.equal(out[i], src[i], `n=${n} at ${i}`);
    }
    assert.equal(codec.openChecked(block, n, hi, (lo ^ 1) >>> 0, false), null);
  }
});
