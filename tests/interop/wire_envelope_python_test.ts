// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The envelope wire cross-checked against an independent Python reader/writer (Debian's
// python3-msgpack, -lz4, -xxhash), written from the documented byte layout
// (protocol/stored_value.ts) and the protocol (not from our code): Python decodes the engine's bare and framed entries, and writes bare
// envelopes (protocol 1.0 and 1.1) and framed entries that the engine answers from.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { cache, MemoryBackend } from "../../mod.ts";

const PY = String.raw`
import sys, json, base64, struct, hashlib, msgpack, lz4.block, xxhash
req = json.load(sys.stdin)
def key(ns, func, args, ic):
    h = hashlib.blake2b(msgpack.packb([args, {}], use_bin_type=True), digest_size=32).hexdigest()
    return "t:default:ns:%s:func:%s:args:%s:%ss" % (ns, func, h, "1" if ic else "0")
def envelope(payload, proto):
    comp = lz4.block.compress(payload, store_size=False)
    block = comp if proto == "1.1" else list(comp)
    return msgpack.packb([block, list(xxhash.xxh3_64_digest(payload)), len(payload), "msgpack"],
        use_bin_type=True)
def open_envelope(b):
    comp, checksum, size, fmt = msgpack.unpackb(b, raw=False)
    comp = bytes(comp)
    payload = lz4.block.decompress(comp, uncompressed_size=size)
    assert xxhash.xxh3_64_digest(payload) == bytes(checksum), "checksum"
    return payload, fmt
def read(b):
    out = {}
    if b[0] in (0x94, 0x84):
        payload, fmt = open_envelope(b)
        out.update(form="bare", format=fmt)
    else:
        assert b[:4] == b"\xc1ck\x02", b[:4]
        flags = b[4]; o = 5
        n = b[o]; o += 1; out["serializer"] = b[o:o+n].decode(); o += n
        m = b[o]; o += 1; out["format"] = b[o:o+m].decode(); o += m
        if flags & 4:
            out["fresh_until_ms"] = struct.unpack(">d", b[o:o+8])[0]; o += 8
        assert not flags & 2
        (p,) = struct.unpack(">I", b[o:o+4]); o += 4
        if flags & 1:
            assert xxhash.xxh3_64_digest(b[:o]) == b[o:o+8], "header check"; o += 8
        assert o + p == len(b), "payload length"
        payload = b[o:]
        if flags & 1:
            payload, _ = open_envelope(payload)
        out.update(form="framed", flags=flags)
    out["value"] = msgpack.unpackb(payload, raw=False)
    return out
if req["op"] == "read":
    print(json.dumps(read(base64.b64decode(req["stored"]))))
else:
    payload = msgpack.packb(req["value"], use_bin_type=True)
    if req["form"] == "bare":
        stored = envelope(payload, req["proto"])
    else:
        ic = req["integrity"]
        body = envelope(payload, "1.1") if ic else payload
        flags = (1 if ic else 0) | (4 if "fresh_until_ms" in req else 0)
        stored = b"\xc1ck\x02" + bytes([flags, 7]) + b"default" + bytes([7]) + b"msgpack"
        if flags & 4:
            stored += struct.pack(">d", req["fresh_until_ms"])
        stored += struct.pack(">I", len(body))
        if flags & 1:
            stored += xxhash.xxh3_64_digest(stored)
        stored += body
    k = key(req["ns"], req["func"], req["args"], req.get("integrity", True))
    print(json.dumps({"key": k, "stored": base64.b64encode(stored).decode()}))
`;

const VALUE = { id: 42, name: "Ada Lovelace", tags: ["math", "poetry"], score: 1.5, ok: true };
const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test("envelope wire: Python decodes the engine's bare and framed entries", async () => {
  const cases = [
    { integrity: true, staleTtl: 0, form: "bare" },
    { integrity: false, staleTtl: 0, form: "framed" },
    { integrity: true, staleTtl: 300, form: "framed" },
  ];
  for (const c of cases) {
    const { backend, keys } = recording(new MemoryBackend());
    const f = cache(async (id: number) => ({ ...VALUE, id }), {
      name: "app.wire_ts",
      namespace: "users",
      ttl: 60,
      staleTtl: c.staleTtl,
      integrityChecking: c.integrity,
      backend,
      l1: false,
      ...bare,
    });
    const t0 = Date.now();
    await f(42);
    const out = runPythonJson<{ form: string; value: unknown; fresh_until_ms?: number }>(
      PY,
      JSON.stringify({ op: "read", stored: b64((await backend.get(keys[0]))!) }),
    );
    assert.equal(out.form, c.form, JSON.stringify(c));
    assert.deepEqual(out.value, { ...VALUE, id: 42 });
    if (c.staleTtl > 0) {
      assert.ok(
        out.fresh_until_ms! >= t0 + 60_000 && out.fresh_until_ms! <= Date.now() + 60_000,
        `fresh_until ${out.fresh_until_ms}`,
      );
    }
  }
}, pythonTestOptions);

test(
  "envelope wire: the engine answers from Python's bare (1.0, 1.1) and framed entries",
  async () => {
    const writes = [
      { form: "bare", proto: "1.0", integrity: true },
      { form: "bare", proto: "1.1", integrity: true },
      { form: "framed", integrity: true },
      { form: "framed", integrity: false },
      { form: "framed", integrity: true, fresh_until_ms: Date.now() + 60_000 },
    ];
    for (const w of writes) {
      const backend = new MemoryBackend();
      const { key, stored } = runPythonJson<{ key: string; stored: string }>(
        PY,
        JSON.stringify({
          op: "write",
          ns: "users",
          func: "app.wire_py",
          args: [7],
          value: VALUE,
          ...w,
        }),
      );
      await backend.set(key, unb64(stored), 60);
      let calls = 0;
      const f = cache(async (_id: number) => ({ computed: ++calls }), {
        name: "app.wire_py",
        namespace: "users",
        ttl: 60,
        integrityChecking: w.integrity,
        staleTtl: w.fresh_until_ms ? 300 : 0,
        backend,
        l1: false,
        ...bare,
      });
      assert.deepEqual(await f(7), VALUE, JSON.stringify(w));
      assert.equal(calls, 0, `${JSON.stringify(w)}: answered from Python's entry`);
    }
  },
  pythonTestOptions,
);
