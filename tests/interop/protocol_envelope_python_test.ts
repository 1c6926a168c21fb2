/**
 * ByteStorage envelope cross-checks against an independent implementation: Debian's Python with
 * python3-lz4 (liblz4), python3-xxhash (libxxhash) and python3-msgpack. Python builds envelopes (1.0
 * array-of-ints form, 1.1 bin form, named-map form) that we must open, and opens and verifies ours.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPython, runPythonJson } from "../_python.ts";
import { decodeEnvelope, encodeEnvelope } from "../../protocol/envelope.ts";
import { compressBlock } from "../../protocol/_lz4.ts";
import { xxh3 } from "../../protocol/_xxh3.ts";
import { writeEnvelopeFields } from "../../protocol/_envelope_msgpack.ts";

const b64 = (b: Uint8Array) => btoa(Array.from(b, (x) => String.fromCharCode(x)).join(""));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

/** Payloads covering the LZ4 edge cases: empty, tiny, incompressible, repeats near the block end. */
function payloads(): Uint8Array[] {
  const out: Uint8Array[] = [new Uint8Array(0), new Uint8Array([0]), new Uint8Array([0xff, 0x80])];
  // Short inputs with a repeat starting 9..13 bytes before the end (where MFLIMIT matters).
  for (let n = 12; n < 48; n++) {
    for (let k = 8; k <= 14; k++) {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = (i * 37 + 11) & 255;
      for (let j = 0; j < k && n - k + j < n; j++) a[n - k + j] = a[j];
      out.push(a);
    }
  }
  const rnd = new Uint8Array(70_000);
  for (let i = 0; i < rnd.length; i += 65536) crypto.getRandomValues(rnd.subarray(i, i + 65536));
  out.push(rnd); // incompressible, over the 64 KiB offset window
  out.push(new Uint8Array(300_000)); // zeros: long match lengths
  const text = new TextEncoder().encode(
    JSON.stringify(Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `user${i % 97}` }))),
  );
  out.push(text);
  const mixed = new Uint8Array(200_000);
  for (let i = 0; i < mixed.length; i++) mixed[i] = i % 1000 < 500 ? rnd[i % rnd.length] : i & 7;
  out.push(mixed);
  // Periodic data: liblz4 writes matches overlapping their own output (offset < length).
  for (const period of [1, 2, 3, 5, 8, 13, 31, 64]) {
    for (const n of [45, 100, 333, 4096]) {
      const a = new Uint8Array(n);
      for (let i = 0; i < n; i++) a[i] = i % period === 0 ? 0xaa : (i % period) * 7;
      out.push(a);
    }
  }
  return out;
}

test("envelope x python: xxh3_64 matches python3-xxhash", () => {
  const ps = payloads();
  const theirs = runPythonJson<string[]>(
    `import sys, json, base64, xxhash
print(json.dumps([xxhash.xxh3_64(base64.b64decode(s)).hexdigest() for s in json.load(sys.stdin)]))`,
    JSON.stringify(ps.map(b64)),
  );
  const ours = ps.map((p) => Array.from(xxh3(p), (x) => x.toString(16).padStart(2, "0")).join(""));
  assert.deepEqual(ours, theirs);
}, pythonTestOptions);

test(
  "envelope x python: liblz4 decompresses our blocks (edge cases included)",
  () => {
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
      JSON.stringify(ps.map((p) => ({ src: b64(p), blk: b64(compressBlock(p)) }))),
    );
    assert.deepEqual(res, ps.map(() => "ok"));
  },
  pythonTestOptions,
);

test(
  "envelope x python: we open envelopes Python builds (1.0, 1.1, map forms)",
  () => {
    const ps = payloads();
    const res = runPythonJson<{ forms: string[]; comp: string; cks: string }[]>(
      `import sys, json, base64, lz4.block, xxhash, msgpack
out = []
for s in json.load(sys.stdin):
    data = base64.b64decode(s)
    comp = lz4.block.compress(data, store_size=False)
    cks = list(xxhash.xxh3_64(data).digest())
    f10 = msgpack.packb([list(comp), cks, len(data), "msgpack"])
    f11 = msgpack.packb([comp, cks, len(data), "msgpack"], use_bin_type=True)
    fmap = msgpack.packb({"compressed_data": comp, "checksum": cks, "original_size": len(data),
                          "format": "msgpack"}, use_bin_type=True)
    fjson = msgpack.packb([comp, cks, len(data), "json"], use_bin_type=True)
    out.append({"forms": [base64.b64encode(x).decode() for x in (f10, f11, fmap, fjson)],
                "comp": base64.b64encode(comp).decode(), "cks": base64.b64encode(bytes(cks)).decode()})
print(json.dumps(out))`,
      JSON.stringify(ps.map(b64)),
    );
    assert.equal(res.length, ps.length);
    res.forEach((r, i) => {
      const [f10, f11, fmap, fjson] = r.forms.map(unb64);
      for (const env of [f10, f11, fmap]) {
        const out = decodeEnvelope(env);
        assert.equal(out.format, "msgpack");
        assert.deepEqual(out.data, ps[i]);
      }
      assert.equal(decodeEnvelope(fjson).format, "json");
      // Our writer produces the same bytes as python-msgpack for the same fields (both forms).
      const fields = {
        compressed: unb64(r.comp),
        checksum: unb64(r.cks),
        originalSize: ps[i].length,
        format: "msgpack",
      };
      assert.deepEqual(writeEnvelopeFields(fields, "1.0"), f10);
      assert.deepEqual(writeEnvelopeFields(fields, "1.1"), f11);
    });
  },
  pythonTestOptions,
);

test(
  "envelope x python: Python opens and verifies our envelopes (1.0 and 1.1)",
  () => {
    const ps = payloads();
    const items = ps.flatMap((p) =>
      (["1.0", "1.1"] as const).map((protocol) => ({
        src: b64(p),
        env: b64(encodeEnvelope(p, "msgpack", { protocol })),
        protocol,
      }))
    );
    const res = runPythonJson<string[]>(
      `import sys, json, base64, lz4.block, xxhash, msgpack
out = []
for it in json.load(sys.stdin):
    src = base64.b64decode(it["src"])
    env = msgpack.unpackb(base64.b64decode(it["env"]), raw=False)
    comp, cks, size, fmt = env
    if it["protocol"] == "1.0":
        assert isinstance(comp, list), "1.0 must be an array of ints"
        comp = bytes(comp)
    else:
        assert isinstance(comp, bytes), "1.1 must be bin"
    assert isinstance(cks, list) and len(cks) == 8
    data = lz4.block.decompress(comp, uncompressed_size=size)
    ok = (data == src and size == len(src) and fmt == "msgpack"
          and bytes(cks) == xxhash.xxh3_64(data).digest())
    out.append("ok" if ok else "mismatch")
print(json.dumps(out))`,
      JSON.stringify(items),
    );
    assert.deepEqual(res, items.map(() => "ok"));
  },
  pythonTestOptions,
);

test(
  "envelope x python: a Python envelope with a tampered checksum is refused",
  () => {
    const env = runPython(
      `import sys, lz4.block, xxhash, msgpack
data = b"hello world " * 100
cks = list(xxhash.xxh3_64(data).digest()); cks[0] ^= 1
sys.stdout.buffer.write(msgpack.packb([list(lz4.block.compress(data, store_size=False)), cks, len(data), "msgpack"]))`,
    );
    assert.throws(
      () => decodeEnvelope(env),
      (e: unknown) => (e as Error).name === "IntegrityError",
    );
  },
  pythonTestOptions,
);
