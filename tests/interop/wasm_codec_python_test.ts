/**
 * The envelope's WebAssembly codec against Debian's Python (python3-lz4 = liblz4, python3-xxhash =
 * libxxhash): xxHash3-64 on random inputs of every size 0..300 and large ones, liblz4 reading our
 * blocks, and our decoder reading liblz4's blocks (default and high-compression modes).
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { SHARED_MAX_BYTES, wasmCodec } from "../../protocol/_wasm_codec.ts";
import { PROBE_MIN_BYTES, sealBlock, storedBlockLength } from "../../protocol/_block_codec.ts";

const codec = wasmCodec!;
const b64 = (b: Uint8Array) => {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s);
};
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

function random(n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
}

/** Random and structured inputs, small to larger than the shared instance. */
function payloads(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let n = 0; n <= 300; n++) out.push(random(n));
  const text = new TextEncoder().encode(
    JSON.stringify(Array.from({ length: 40_000 }, (_, i) => ({ id: i, name: `user${i % 97}` }))),
  );
  out.push(text.subarray(0, 1000), text.subarray(0, 70_000), text);
  const mixed = random(SHARED_MAX_BYTES + 100_000);
  for (let i = 0; i < mixed.length; i++) if (i % 1000 < 600) mixed[i] = i & 7;
  out.push(random(1 << 20), mixed, new Uint8Array(300_000));
  return out;
}

test("wasm codec x python: xxh3_64 of random inputs (0..300 bytes, and large) matches", () => {
  const ps = payloads();
  const theirs = runPythonJson<string[]>(
    `import sys, json, base64, xxhash
print(json.dumps([xxhash.xxh3_64(base64.b64decode(s)).hexdigest() for s in json.load(sys.stdin)]))`,
    JSON.stringify(ps.map(b64)),
  );
  assert.deepEqual(ps.map((p) => codec.xxh3Hex(p)), theirs);
  assert.deepEqual(ps.map((p) => hex(codec.xxh3(p))), theirs);
}, pythonTestOptions);

test("wasm codec x python: liblz4 decompresses our blocks", () => {
  const ps = payloads();
  const res = runPythonJson<string[]>(
    `import sys, json, base64, lz4.block
out = []
for item in json.load(sys.stdin):
    src = base64.b64decode(item["src"]); blk = base64.b64decode(item["blk"])
    try:
        ok = lz4.block.decompress(blk, uncompressed_size=len(src)) == src
        out.append("ok" if ok else "different")
    except Exception as e:
        out.append(str(e))
print(json.dumps(out))`,
    JSON.stringify(ps.map((p) => ({ src: b64(p), blk: b64(codec.seal(p).block) }))),
  );
  assert.deepEqual(res, ps.map(() => "ok"));
}, pythonTestOptions);

test(
  "wasm codec x python: liblz4 decompresses the stored blocks of small and incompressible values",
  () => {
    const ps = [...payloads().slice(0, 64), random(PROBE_MIN_BYTES), random(PROBE_MIN_BYTES + 300)];
    const blocks = ps.map((p) => {
      const { head, block } = sealBlock(p);
      return new Uint8Array([...head ?? [], ...block]);
    });
    blocks.forEach((b, i) =>
      assert.equal(b.length, storedBlockLength(ps[i].length), `stored ${i}`)
    );
    const res = runPythonJson<string[]>(
      `import sys, json, base64, lz4.block
out = []
for item in json.load(sys.stdin):
    src = base64.b64decode(item["src"]); blk = base64.b64decode(item["blk"])
    try:
        out.append("ok" if lz4.block.decompress(blk, uncompressed_size=len(src)) == src else "different")
    except Exception as e:
        out.append(str(e))
print(json.dumps(out))`,
      JSON.stringify(ps.map((p, i) => ({ src: b64(p), blk: b64(blocks[i]) }))),
    );
    assert.deepEqual(res, ps.map(() => "ok"));
  },
  pythonTestOptions,
);

test("wasm codec x python: we decompress liblz4's blocks (default and high compression)", () => {
  const ps = payloads().filter((_, i) => i % 7 === 0 || i > 300);
  const blocks = runPythonJson<string[][]>(
    `import sys, json, base64, lz4.block
out = []
for s in json.load(sys.stdin):
    d = base64.b64decode(s)
    out.append([base64.b64encode(lz4.block.compress(d, store_size=False)).decode(),
                base64.b64encode(lz4.block.compress(d, store_size=False, mode="high_compression")).decode()])
print(json.dumps(out))`,
    JSON.stringify(ps.map(b64)),
  );
  ps.forEach((p, i) => {
    for (const blk of blocks[i]) {
      const { data, checksumHex } = codec.open(unb64(blk), p.length);
      assert.equal(checksumHex, codec.xxh3Hex(p), `payload ${i}`);
      assert.equal(data.length, p.length);
      assert.ok(data.every((x, j) => x === p[j]), `payload ${i}`);
    }
  });
}, pythonTestOptions);
