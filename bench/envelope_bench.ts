/**
 * ByteStorage envelope encode/decode: the WebAssembly codec (`protocol/_wasm_codec.ts`) against the
 * JavaScript one it replaced (`protocol/_lz4.ts` + `hash-wasm` xxHash3, still the fallback), and
 * against the npm candidate `lz4-wasm-nodejs` (lz4_flex; size-prefixed blocks only, so not a
 * drop-in: its figures are the LZ4 part alone, plus `hash-wasm` for the checksum).
 *
 * Paired: every variant runs once per round, in a rotated order; each round's time of a variant is
 * divided by that round's time of the WebAssembly codec, and the median of those ratios is printed
 * with its quartiles (the machine's speed drifts over seconds; ratios taken within one round do
 * not). The `before` row is the encode path before the change (JS LZ4 on every value, `hash-wasm`,
 * the writer's trimming copy); on decode the JS codec is the path before the change.
 *
 * A second table measures where compression starts to pay (`MIN_COMPRESS_BYTES` in
 * `protocol/_block_codec.ts`): for small MessagePack records, the envelope size when compressed
 * against stored (one literal run), and the time of each.
 *
 * Run: `deno run -A --lock=deno.dev.lock bench/envelope_bench.ts [rounds]`
 */
// A bench-only package, inline (locked in deno.dev.lock), as in l1_bench.ts.
// deno-lint-ignore no-import-prefix
import lz4wasm from "npm:lz4-wasm-nodejs@^0.9.2";
import { encode as msgpack } from "@msgpack/msgpack";
import { decodeEnvelope, encodeEnvelope } from "../protocol/envelope.ts";
import { useCodec, writeStoredBlock } from "../protocol/_block_codec.ts";
import { wasmCodec } from "../protocol/_wasm_codec.ts";
import { compressBlock } from "../protocol/_lz4.ts";
import { writeEnvelopeFields } from "../protocol/_envelope_msgpack.ts";
import { xxh3Fallback, xxh3HexFallback } from "../protocol/_xxh3.ts";

const ROUNDS = Number(Deno.args[0] ?? 21);
const KiB = 1024;
const MiB = 1024 * KiB;

/** MessagePack of user-like records, cut to `n` bytes (compressible, like cached values). */
function records(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let p = 0;
  for (let i = 0; p < n; i++) {
    const rec = msgpack({
      id: i,
      name: `user-${i}`,
      email: `user${i}@example.com`,
      active: i % 3 !== 0,
      score: (i * 7919) % 1000 / 10,
      tags: ["a", "b", `t${i % 17}`],
    });
    out.set(rec.subarray(0, Math.min(rec.length, n - p)), p);
    p += rec.length;
  }
  return out;
}

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

const q = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))];
};

type Variant = [name: string, run: () => void];

/** Paired rounds; returns per-variant median µs/op and median [q1, q3] ratio to the first. */
function paired(variants: Variant[], iters: number) {
  for (const [, run] of variants) run(); // warm up
  const times = variants.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (k + r) % variants.length;
      const t0 = performance.now();
      for (let i = 0; i < iters; i++) variants[v][1]();
      times[v].push((performance.now() - t0) / iters);
    }
  }
  return variants.map(([name], v) => {
    const ratios = times[v].map((t, r) => t / times[0][r]);
    return {
      name,
      "µs/op": (q(times[v], 0.5) * 1000).toFixed(2),
      "÷ wasm [q1, q3]": `${q(ratios, 0.5).toFixed(2)} [${q(ratios, 0.25).toFixed(2)}, ${
        q(ratios, 0.75).toFixed(2)
      }]`,
    };
  });
}

const sizes: [string, number][] = [
  ["1 KB", KiB],
  ["10 KB", 10 * KiB],
  ["100 KB", 100 * KiB],
  ["1 MB", MiB],
  ["10 MB", 10 * MiB],
];

if (wasmCodec === null) throw new Error("the WebAssembly codec did not load");
console.log(`envelope encode/decode, paired over ${ROUNDS} rounds (Deno ${Deno.version.deno})`);
for (const [label, n] of sizes) {
  for (const [kind, data] of [["records", records(n)], ["random", random(n)]] as const) {
    const iters = Math.max(1, Math.floor(256 * KiB / n));
    useCodec("wasm");
    const env = encodeEnvelope(data);
    const prefixed = lz4wasm.compress(data);
    const withCodec = (which: "wasm" | "js", f: () => void) => () => {
      useCodec(which);
      f();
    };
    const enc = paired([
      ["encodeEnvelope, wasm codec", withCodec("wasm", () => encodeEnvelope(data))],
      ["encodeEnvelope, js codec (fallback)", withCodec("js", () => encodeEnvelope(data))],
      ["before: JS compressBlock + hash-wasm + writer", () => {
        // The encode path before the WebAssembly codec: no probe, no literal-only small values,
        // and the writer's final trimming copy.
        writeEnvelopeFields({
          compressed: compressBlock(data),
          checksum: xxh3Fallback(data),
          originalSize: data.length,
          format: "msgpack",
        }, "1.1").slice();
      }],
      ["lz4-wasm-nodejs compress + hash-wasm xxh3", () => {
        lz4wasm.compress(data);
        xxh3Fallback(data);
      }],
    ], iters);
    const dec = paired([
      ["decodeEnvelope, wasm codec", withCodec("wasm", () => decodeEnvelope(env))],
      ["decodeEnvelope, js codec (= before)", withCodec("js", () => decodeEnvelope(env))],
      ["lz4-wasm-nodejs decompress + hash-wasm xxh3", () => {
        xxh3HexFallback(lz4wasm.decompress(prefixed));
      }],
    ], iters);
    useCodec("wasm");
    console.log(
      `\n${kind} ${label}: envelope ${env.length} B (${(env.length / n * 100).toFixed(1)} %)`,
    );
    console.table([...enc, ...dec]);
  }
}

// ------------------------------------------------------------- where compression starts to pay
const codec = wasmCodec;
const stored = new Uint8Array(1024);
const rows = [];
for (const n of [16, 24, 32, 48, 64, 96, 128, 192, 256]) {
  // Small values as they are cached: one record, a short list, a string.
  const samples = [
    msgpack({ id: n, name: "x".repeat(Math.max(0, n - 40)), ok: true }).subarray(0, n),
    records(n),
    new TextEncoder().encode(JSON.stringify("lorem ipsum dolor sit amet ".repeat(10))).subarray(
      0,
      n,
    ),
  ];
  let saved = 0;
  for (const s of samples) {
    const blk = codec.seal(s).block.length;
    saved += (n < 15 ? 1 + n : 2 + Math.floor((n - 15) / 255) + n) - blk;
  }
  const s = samples[1];
  const res = paired([
    ["compress", () => codec.seal(s)],
    ["store", () => {
      writeStoredBlock(s, stored);
      codec.digest(s);
    }],
  ], 2000);
  rows.push({
    bytes: n,
    "bytes saved by compressing (3 samples)": saved,
    "compress µs": res[0]["µs/op"],
    "store µs": res[1]["µs/op"],
    "store ÷ compress": res[1]["÷ wasm [q1, q3]"],
  });
}
console.log("\nsmall values: compress or store (wasm codec)");
console.table(rows);
