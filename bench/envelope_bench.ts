/**
 * ByteStorage envelope encode/decode of 1 MiB (compressible JSON-like data and random data) against
 * the raw LZ4 block + xxHash3-64 calls it is made of, and against `lz4js`'s block compressor (which
 * is not used: it writes blocks liblz4 rejects, see `protocol/_lz4.ts`). MB/s = 1 MiB / time.
 *
 * Run: `deno bench -A bench/envelope_bench.ts`
 */
import lz4js from "lz4js";
import { decodeEnvelope, encodeEnvelope } from "../protocol/envelope.ts";
import { compressBlock, decompressBlock } from "../protocol/_lz4.ts";
import { xxh3 } from "../protocol/_xxh3.ts";

const MiB = 1024 * 1024;
const text = new TextEncoder().encode(
  JSON.stringify(
    Array.from({ length: 20000 }, (_, i) => ({ id: i, name: `user-${i}`, ok: i % 2 })),
  ),
).subarray(0, MiB);
const random = new Uint8Array(MiB);
for (let i = 0; i < MiB; i += 65536) crypto.getRandomValues(random.subarray(i, i + 65536));

const hashTable = new Uint32Array(1 << 16);
const lz4jsOut = new Uint8Array(lz4js.compressBound(MiB));

for (const [label, data] of [["json 1MiB", text], ["random 1MiB", random]] as const) {
  const env = encodeEnvelope(data);
  const block = compressBlock(data);
  console.log(
    `${label}: envelope ${env.length} B (${(env.length / data.length * 100).toFixed(1)} %)`,
  );

  Deno.bench({
    name: `encodeEnvelope 1.1 ${label}`,
    group: `encode ${label}`,
    baseline: true,
    fn: () => {
      encodeEnvelope(data);
    },
  });
  Deno.bench({
    name: `encodeEnvelope 1.0 ${label}`,
    group: `encode ${label}`,
    fn: () => {
      encodeEnvelope(data, "msgpack", { protocol: "1.0" });
    },
  });
  Deno.bench({
    name: `raw compressBlock + xxh3 ${label}`,
    group: `encode ${label}`,
    fn: () => {
      compressBlock(data);
      xxh3(data);
    },
  });
  Deno.bench({
    name: `raw xxh3 only ${label}`,
    group: `encode ${label}`,
    fn: () => {
      xxh3(data);
    },
  });
  Deno.bench({
    name: `lz4js compressBlock (not used) ${label}`,
    group: `encode ${label}`,
    fn: () => {
      hashTable.fill(0);
      lz4js.compressBlock(data, lz4jsOut, 0, data.length, hashTable);
    },
  });

  Deno.bench({
    name: `decodeEnvelope ${label}`,
    group: `decode ${label}`,
    baseline: true,
    fn: () => {
      decodeEnvelope(env);
    },
  });
  Deno.bench({
    name: `raw decompressBlock + xxh3 ${label}`,
    group: `decode ${label}`,
    fn: () => {
      xxh3(decompressBlock(block, data.length));
    },
  });
  Deno.bench({
    name: `lz4js decompressBlock ${label}`,
    group: `decode ${label}`,
    fn: () => {
      lz4js.decompressBlock(block, new Uint8Array(data.length), 0, block.length, 0);
    },
  });
}
