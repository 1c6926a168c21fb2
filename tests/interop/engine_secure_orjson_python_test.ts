// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Encrypted `serializer: "orjson"` entries shared with an independent implementation, both ways:
// Debian's python3-cryptography, -xxhash and -msgpack play cachekit-py 0.3.0's EncryptionWrapper
// around its OrjsonSerializer (the 8-byte xxh3_64 digest ‖ JSON encrypted with the tenant's
// HKDF key under AAD v0x03 over tenant, cache key, format "orjson", compressed False and
// original_type "orjson"; metadata `compressed: false`), `json.dumps` playing orjson as in
// `_python_orjson.ts`. The entries are handed over through a MemoryBackend.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_CRYPTO } from "../_python_cachekit.ts";
import { recording } from "../_recording_backend.ts";
import { cache, MemoryBackend, withTenant } from "../../mod.ts";

const PY = PY_CRYPTO + String.raw`
import sys, os, json, base64, msgpack, xxhash

def proto_key(job):
    h = hashlib.blake2b(msgpack.packb([job["args"], {}], use_bin_type=True), digest_size=32)
    return "ns:%s:func:%s:args:%s:1s" % (job["ns"], job["func"], h.hexdigest())

def orjson_dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        allow_nan=False).encode("utf-8")

job = json.load(sys.stdin)
master = bytes.fromhex(job["master"])
tenant = job["tenant"]
pk = proto_key(job)
key = "t:%s:%s" % (tenant, pk)
k = derive(master, "encryption", tenant)
if job["op"] == "write":
    json_data = orjson_dumps(job["value"])
    data = xxhash.xxh3_64_digest(json_data) + json_data
    nonce = os.urandom(12)
    ct = nonce + AESGCM(k).encrypt(nonce, data, aad(tenant, pk, "orjson", False, "orjson"))
    doc = {"data": base64.b64encode(ct).decode(), "metadata": {"format": "orjson",
        "encoding": "utf-8", "compressed": False, "original_type": "orjson", "encrypted": True,
        "tenant_id": tenant, "encryption_algorithm": "AES-256-GCM",
        "key_fingerprint": fingerprint(k).hex()}, "serializer": "orjson", "version": "2.0"}
    print(json.dumps({"key": key, "stored": base64.b64encode(json.dumps(doc).encode()).decode()}))
else:
    doc = json.loads(base64.b64decode(job["stored"]).decode("utf-8"))
    md = doc["metadata"]
    assert doc["serializer"] == "orjson" and md["format"] == "orjson", doc
    assert md["compressed"] is False and md["encrypted"] is True, md
    assert md["key_fingerprint"] == fingerprint(k).hex()
    blob = base64.b64decode(doc["data"])
    data = AESGCM(k).decrypt(blob[:12], blob[12:],
        aad(tenant, pk, md["format"], md["compressed"], md.get("original_type")))
    assert xxhash.xxh3_64_digest(data[8:]) == data[:8], "digest"
    print(json.dumps({"key": key, "json": data[8:].decode(), "value": json.loads(data[8:])}))
`;

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const fromB64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const toB64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
const VALUE = { name: "Ada", id: 42, tags: ["x"], nested: { b: 1, a: "ü" } };

test("orjson + encryption: Python's entry is served, and Python decrypts ours", async () => {
  const master = hex(crypto.getRandomValues(new Uint8Array(32)));
  const base = { ns: "users", args: [42], master, tenant: "acme" };
  const w = runPythonJson<{ key: string; stored: string }>(
    PY,
    JSON.stringify({ ...base, op: "write", func: "app.secure_oj_read", value: VALUE }),
  );
  const inner = new MemoryBackend();
  await inner.set(w.key, fromB64(w.stored), 60);
  const opts = {
    wire: "document" as const,
    namespace: "users",
    ttl: 60,
    serializer: "orjson" as const,
    ...bare,
    encryption: { masterKey: master, singleTenant: false, tenantKeys: "plain" as const },
  };
  const f = cache.secure(async (_id: number): Promise<unknown> => {
    throw new Error("the function must not run: the entry is in the cache");
  }, { ...opts, name: "app.secure_oj_read", backend: inner });
  assert.deepEqual(await withTenant("acme", () => f(42)), VALUE);

  const rec = recording(new MemoryBackend());
  const g = cache.secure(async (id: number) => ({ ...VALUE, id: id + 1 }), {
    ...opts,
    name: "app.secure_oj_write",
    backend: rec.backend,
  });
  await withTenant("acme", () => g(42));
  const stored = (await rec.inner.get(rec.keys[0]))!;
  const r = runPythonJson<{ key: string; json: string; value: unknown }>(
    PY,
    JSON.stringify({ ...base, op: "read", func: "app.secure_oj_write", stored: toB64(stored) }),
  );
  assert.equal(r.key, rec.keys[0], "the key Python computes");
  assert.deepEqual(r.value, { ...VALUE, id: 43 });
  assert.equal(r.json, '{"id":43,"name":"Ada","nested":{"a":"ü","b":1},"tags":["x"]}');
}, pythonTestOptions);
