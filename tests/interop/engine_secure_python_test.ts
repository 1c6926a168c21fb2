// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Secure entries shared with an independent implementation: Debian's python3-cryptography (HKDF,
// AES-256-GCM), msgpack, lz4 and xxhash build an encrypted entry exactly as the protocol and
// cachekit-py 0.3.0's metadata describe (per-tenant HKDF key, AAD v0x03 over tenant, cache key,
// format, compressed flag and the metadata's original_type — "msgpack", which 0.3.0's
// StandardSerializer always sets and its EncryptionWrapper appends —, key_fingerprint of the
// tenant's encryption key, ByteStorage envelope 1.0 inside), writes it to Redis or hands it over,
// and the engine serves it without calling the function; the reverse: Python finds, decrypts (with
// the AAD rebuilt from the stored metadata, as 0.3.0 does) and checks what the engine wrote. Both
// tenant-key modes: "plain" (cachekit-py's `t:{quoted tenant}:`) and "hashed" (`t:@{HMAC}:`,
// derived in Python from the documented recipe).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_CRYPTO } from "../_python_cachekit.ts";
import { type Backend, cache, MemoryBackend, RedisBackend, withTenant } from "../../mod.ts";

const PY = PY_CRYPTO + String.raw`
import sys, os, json, base64, hmac, msgpack, lz4.block, xxhash
from urllib.parse import quote

def segment(master, tenant, mode):
    if mode == "plain":
        return quote(tenant, safe="")
    k = derive(master, "tenant_segment", "cachekit")
    return "@" + hmac.new(k, tenant.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

def proto_key(job):
    h = hashlib.blake2b(msgpack.packb([job["args"], {}], use_bin_type=True), digest_size=32)
    return "ns:%s:func:%s:args:%s:1s" % (job["ns"], job["func"], h.hexdigest())

job = json.load(sys.stdin)
masters = [bytes.fromhex(m) for m in job["masters"]]
tenant, mode = job["tenant"], job["mode"]
pk = proto_key(job)
key = "t:%s:%s" % (segment(masters[0], tenant, mode), pk)
label = tenant if mode == "plain" else segment(masters[0], tenant, mode)
r = None
if job.get("redis"):
    import redis
    r = redis.Redis(host="127.0.0.1", port=6379)

if job["op"] == "write":
    payload = msgpack.packb(job["value"], use_bin_type=True)
    comp = lz4.block.compress(payload, store_size=False)
    envelope = msgpack.packb([list(comp), list(xxhash.xxh3_64_digest(payload)), len(payload),
        "msgpack"])
    k = derive(masters[0], "encryption", tenant)
    nonce = os.urandom(12)
    # 0.3.0's StandardSerializer sets original_type "msgpack"; a job may name another (or None).
    ot = job.get("original_type", "msgpack")
    ct = nonce + AESGCM(k).encrypt(nonce, envelope, aad(tenant, pk, "msgpack", True, ot))
    doc = {"data": base64.b64encode(ct).decode(), "metadata": {"format": "msgpack",
        "encoding": "utf-8", "compressed": True, "original_type": ot, "encrypted": True,
        "tenant_id": label, "encryption_algorithm": "AES-256-GCM",
        "key_fingerprint": fingerprint(k).hex()}, "serializer": "default", "version": "2.0"}
    stored = json.dumps(doc).encode()
    if r is not None:
        r.set(job["redis"] + key, stored, ex=60)
    print(json.dumps({"key": key, "stored": base64.b64encode(stored).decode()}))
else:
    if r is not None:
        raw = r.get(job["redis"] + key)
    else:
        raw = base64.b64decode(job["entries"][key]) if key in job["entries"] else None
    if raw is None:
        print(json.dumps({"found": False, "key": key}))
        sys.exit(0)
    doc = json.loads(raw.decode("utf-8"))
    md = doc["metadata"]
    assert doc["version"] == "2.0" and doc["serializer"] == "default", doc
    assert md["encrypted"] is True and md["encryption_algorithm"] == "AES-256-GCM", md
    assert md["tenant_id"] == label, (md["tenant_id"], label)
    key_by_fp = {}
    for m in masters:
        k = derive(m, "encryption", tenant)
        key_by_fp[fingerprint(k).hex()] = k
    k = key_by_fp[md["key_fingerprint"]]
    blob = base64.b64decode(doc["data"])
    # As 0.3.0 decrypts: the AAD rebuilt from the stored metadata, original_type included.
    envelope = AESGCM(k).decrypt(blob[:12], blob[12:],
        aad(tenant, pk, md["format"], md["compressed"], md.get("original_type")))
    comp, checksum, size, fmt = msgpack.unpackb(envelope, raw=False)
    comp = bytes(comp) if isinstance(comp, list) else comp
    payload = lz4.block.decompress(comp, uncompressed_size=size)
    assert xxhash.xxh3_64_digest(payload) == bytes(checksum), "checksum"
    print(json.dumps({"found": True, "key": key, "value": msgpack.unpackb(payload, raw=False),
        "current_key": md["key_fingerprint"] == fingerprint(derive(masters[0], "encryption", tenant)).hex(),
        "original_type": md.get("original_type")}))
`;

type PyWrite = { key: string; stored: string };
type PyRead = {
  found: boolean;
  key: string;
  value?: unknown;
  current_key?: boolean;
  original_type?: string | null;
};

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const randKey = () => hex(crypto.getRandomValues(new Uint8Array(32)));
const K_OT = randKey();
const VALUE = { id: 42, name: "Ada Lovelace", tags: ["math", "poetry"], score: 1.5, ok: true };
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const fromB64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const toB64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));

function redisBackend() {
  const prefix = `cktest:securepy:${crypto.randomUUID().slice(0, 8)}:`;
  return {
    prefix,
    backend: new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: prefix }),
  };
}

const never = async (_id: number, _who: string): Promise<typeof VALUE> => {
  throw new Error("the function must not run: the entry is in the cache");
};

for (const mode of ["plain", "hashed"] as const) {
  test(`python writes a secure entry to Redis (${mode}); the engine serves it`, async () => {
    const { prefix, backend } = redisBackend();
    try {
      const master = randKey();
      const w = runPythonJson<PyWrite>(
        PY,
        JSON.stringify({
          op: "write",
          masters: [master],
          tenant: "acme corp/eu",
          mode,
          ns: "users",
          func: `app.get_user_${mode}`,
          args: [42, "ada"],
          value: VALUE,
          redis: prefix,
        }),
      );
      if (mode === "hashed") assert.match(w.key, /^t:@[0-9a-f]{32}:ns:users:func:/);
      else assert.match(w.key, /^t:acme%20corp%2Feu:ns:users:func:/);
      const f = cache.secure(never, {
        name: `app.get_user_${mode}`,
        wire: "document",
        namespace: "users",
        ttl: 60,
        backend,
        ...bare,
        encryption: { masterKey: master, singleTenant: false, tenantKeys: mode },
      });
      assert.deepEqual(await withTenant("acme corp/eu", () => f(42, "ada")), VALUE);
      assert.equal(f.cacheInfo().l2Hits, 1);
      // The same entry under another tenant's context is not found (another key): the function.
      await assert.rejects(withTenant("globex", () => f(42, "ada")), /must not run/);
    } finally {
      await backend.capabilities.prefix?.deleteByPrefix("");
      await backend.close();
    }
  }, { ...pythonTestOptions, sanitize: false });

  test(
    `the engine writes a secure entry to Redis (${mode}); python finds and decrypts it`,
    async () => {
      const { prefix, backend } = redisBackend();
      try {
        const master = randKey();
        let n = 0;
        const f = cache.secure(async (id: number, who: string) => ({ ...VALUE, id, who, n: ++n }), {
          name: `app.put_user_${mode}`,
          wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
          namespace: "users",
          ttl: 60,
          backend,
          ...bare,
          encryption: { masterKey: master, singleTenant: false, tenantKeys: mode },
        });
        const value = await withTenant("tenant-7", () => f(7, "grace"));
        const r = runPythonJson<PyRead>(
          PY,
          JSON.stringify({
            op: "read",
            masters: [master],
            tenant: "tenant-7",
            mode,
            ns: "users",
            func: `app.put_user_${mode}`,
            args: [7, "grace"],
            redis: prefix,
          }),
        );
        assert.ok(r.found, `python computed key ${r.key}`);
        assert.deepEqual(r.value, value);
        assert.equal(r.current_key, true);
        assert.equal(r.original_type, "msgpack", "decrypted with 0.3.0's five-field AAD");
      } finally {
        await backend.capabilities.prefix?.deleteByPrefix("");
        await backend.close();
      }
    },
    { ...pythonTestOptions, sanitize: false },
  );
}

test(
  "python's original_type (None, empty, another type) is read from the document into the AAD",
  async () => {
    // 0.3.0 appends original_type only when truthy, and decrypts with the one the document holds.
    for (const ot of [null, "", "custom-type"]) {
      const backend = new MemoryBackend();
      const job = {
        tenant: "acme",
        mode: "plain",
        ns: "ot",
        func: "app.ot",
        args: [1, `ot-${ot}`],
      };
      const w = runPythonJson<PyWrite>(
        PY,
        JSON.stringify({ ...job, op: "write", masters: [K_OT], value: VALUE, original_type: ot }),
      );
      await backend.set(w.key, fromB64(w.stored), 60);
      const f = cache.secure(never, {
        name: "app.ot",
        wire: "document",
        namespace: "ot",
        ttl: 60,
        backend,
        l1: false,
        ...bare,
        encryption: { masterKey: K_OT, singleTenant: false, tenantKeys: "plain" },
      });
      assert.deepEqual(
        await withTenant("acme", () => f(1, `ot-${ot}`)),
        VALUE,
        `original_type ${ot}`,
      );
    }
  },
  pythonTestOptions,
);

test(
  "rotation with python's entries: K1 entry read under K2+[K1], rewritten, then python reads it with K2",
  async () => {
    const k1 = randKey();
    const k2 = randKey();
    const inner = new MemoryBackend();
    const keys = new Set<string>();
    const backend: Backend = {
      type: "spy",
      capabilities: inner.capabilities,
      get: (k, o) => inner.get(k, o),
      set: (k, v, t, o) => (keys.add(k), inner.set(k, v, t, o)),
      delete: (k, o) => inner.delete(k, o),
      exists: (k, o) => inner.exists(k, o),
      healthCheck: () => inner.healthCheck(),
    };
    const job = { tenant: "acme", mode: "hashed", ns: "rot", func: "app.rotate", args: [1, "x"] };
    const w = runPythonJson<PyWrite>(
      PY,
      JSON.stringify({ ...job, op: "write", masters: [k1], value: VALUE }),
    );
    await backend.set(w.key, fromB64(w.stored), 60);
    const f = cache.secure(never, {
      name: "app.rotate",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      namespace: "rot",
      ttl: 60,
      backend,
      l1: false,
      ...bare,
      encryption: { masterKey: k2, previousKeys: [k1], singleTenant: false },
    });
    assert.deepEqual(await withTenant("acme", () => f(1, "x")), VALUE);
    // The rewrite runs in the background: wait for python to find it under K2's segment.
    let r: PyRead = { found: false, key: "" };
    for (let i = 0; i < 200 && !r.found; i++) {
      await new Promise((res) => setTimeout(res, 5));
      const entries: Record<string, string> = {};
      for (const k of keys) {
        const v = await inner.get(k);
        if (v !== null) entries[k] = toB64(v);
      }
      if (Object.keys(entries).some((k) => k !== w.key)) {
        r = runPythonJson<PyRead>(
          PY,
          JSON.stringify({ ...job, op: "read", masters: [k2], entries }),
        );
      }
    }
    assert.ok(r.found, "rewritten under the current key's segment");
    assert.deepEqual(r.value, VALUE);
    assert.equal(r.current_key, true);
    assert.equal(r.original_type, "msgpack", "the rewrite keeps 0.3.0's original type and AAD");
    assert.equal(await inner.exists(w.key), false, "the old copy is deleted");
  },
  pythonTestOptions,
);
