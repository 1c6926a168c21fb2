/**
 * What cachekit-py 0.3.0 writes and reads, rebuilt in Python from Debian's python3-msgpack, -lz4,
 * -xxhash and `hashlib.blake2b` (following cachekit-py's protocol description, not our code): the
 * independent side of the engine's sharing tests, for any backend. Scripts read one JSON request on
 * stdin and print one JSON line; run them with `runPythonJson` from `_python.ts`.
 *
 * Requests name the entry like Python does: `ns`, `func` (the `module.qualname`), `args` (the
 * positional arguments), `integrity` (envelope on/off) or `interop: true` (plain msgpack under
 * `{ns}:{func}:{hash}`), and `value` for writes.
 *
 * @module
 */

/** Python functions shared by the scripts: the key, the stored bytes, and decoding them. */
const PY_LIB = String.raw`
import sys, json, base64, hashlib, msgpack, lz4.block, xxhash
def h(obj):
    return hashlib.blake2b(msgpack.packb(obj, use_bin_type=True), digest_size=32).hexdigest()
def cachekit_key(req):
    if req.get("interop"):
        return "%s:%s:%s" % (req["ns"], req["func"], h(req["args"]))
    return "t:%s:ns:%s:func:%s:args:%s:%ss" % (req.get("tenant", "default"), req["ns"], req["func"],
        h([req["args"], {}]), "1" if req.get("integrity", True) else "0")
def cachekit_entry(req):
    payload = msgpack.packb(req["value"], use_bin_type=True)
    if req.get("interop"):
        return cachekit_key(req), payload
    ic = req.get("integrity", True)
    if ic:
        comp = lz4.block.compress(payload, store_size=False)
        checksum = xxhash.xxh3_64_digest(payload)
        data = msgpack.packb([list(comp), list(checksum), len(payload), "msgpack"])
    else:
        data = payload
    stored = json.dumps({"data": base64.b64encode(data).decode(), "metadata": {"format": "msgpack",
        "encoding": "utf-8", "compressed": ic, "original_type": "msgpack"},
        "serializer": "default", "version": "2.0"}).encode()
    return cachekit_key(req), stored
def cachekit_decode(req, raw):
    if req.get("interop"):
        return {"value": msgpack.unpackb(raw, raw=False)}
    doc = json.loads(raw.decode("utf-8"))
    assert doc["version"] == "2.0" and doc["serializer"] == "default", doc
    md = doc["metadata"]
    data = base64.b64decode(doc["data"])
    if md["compressed"]:
        comp, checksum, size, fmt = msgpack.unpackb(data, raw=False)
        assert isinstance(comp, list), "protocol 1.0: compressed block as an array of ints"
        payload = lz4.block.decompress(bytes(comp), uncompressed_size=size)
        assert xxhash.xxh3_64_digest(payload) == bytes(checksum), "checksum"
        assert fmt == "msgpack"
    else:
        payload = data
    return {"metadata": md, "value": msgpack.unpackb(payload, raw=False)}
req = json.load(sys.stdin)
`;

/** Build cachekit-py's key and stored bytes for `value`: prints `{key, stored (base64)}`. */
export const PY_WRITE: string = PY_LIB + String.raw`
key, stored = cachekit_entry(req)
print(json.dumps({"key": key, "stored": base64.b64encode(stored).decode()}))
`;

/**
 * Decode one of our entries (`stored`, base64) the way cachekit-py 0.3.0 does, and check that our
 * `key` is the one Python computes: prints `{key_ok, metadata?, value}`.
 */
export const PY_READ: string = PY_LIB + String.raw`
out = cachekit_decode(req, base64.b64decode(req["stored"]))
if not req.get("interop") and "integrity" not in req:
    req["integrity"] = out["metadata"]["compressed"]
out["key_ok"] = req["key"] == cachekit_key(req)
print(json.dumps(out))
`;

/**
 * Write the entry straight into Redis with redis-py as cachekit-py does (`SETEX key ttl value`,
 * `SET` without a TTL) at `url`: prints `{key}`.
 */
export const PY_REDIS_WRITE: string = PY_LIB + String.raw`
import redis
key, stored = cachekit_entry(req)
r = redis.Redis.from_url(req["url"])
if req.get("ttl"):
    r.setex(key, req["ttl"], stored)
else:
    r.set(key, stored)
print(json.dumps({"key": key}))
`;

/**
 * Compute the key as cachekit-py does, `GET` it from Redis at `url` with redis-py and decode it:
 * prints `{key, found, ttl, metadata?, value?}`.
 */
export const PY_REDIS_READ: string = PY_LIB + String.raw`
import redis
key = cachekit_key(req)
r = redis.Redis.from_url(req["url"])
raw = r.get(key)
out = {"key": key, "found": raw is not None, "ttl": r.ttl(key)}
if raw is not None:
    out.update(cachekit_decode(req, raw))
print(json.dumps(out))
`;

/**
 * The protocol's key schedule in Python (python3-cryptography, from the spec text): `derive`
 * (HKDF-SHA256 with the length-prefixed `cachekit_v1_` salt), `fingerprint` (16 bytes) and `aad`
 * (v0x03, length-prefixed tenant, cache key, format, compressed flag, optional original type).
 * cachekit-py 0.3.0's StandardSerializer sets original type `"msgpack"`, which its EncryptionWrapper
 * appends: a script playing it passes `"msgpack"`, and to decrypt the stored `original_type`.
 * Prepend it to a script.
 */
export const PY_CRYPTO: string = String.raw`
import struct, hashlib
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

def derive(master, domain, tenant):
    d = domain.encode("utf-8"); t = tenant.encode("utf-8")
    salt = b"cachekit_v1_" + bytes([len(d)]) + d + struct.pack(">H", len(t)) + t
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=d).derive(master)

def fingerprint(key):
    return hashlib.sha256(b"key_fingerprint_v1" + key).digest()[:16]

def aad(tenant, cache_key, fmt, compressed, original_type=None):
    parts = [tenant, cache_key, fmt, "True" if compressed else "False"]
    if original_type:
        parts.append(original_type)
    out = b"\x03"
    for p in parts:
        b = p.encode("utf-8")
        out += struct.pack(">I", len(b)) + b
    return out
`;
