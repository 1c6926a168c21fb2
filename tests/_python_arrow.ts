/**
 * cachekit-py 0.3.0's `serializer="arrow"` and `serializer="auto"` entries, rebuilt in Python from
 * Debian's python3-msgpack, -lz4, -xxhash, -numpy and -redis, following 0.3.0's
 * `arrow_serializer.py`, `auto_serializer.py` (`_serialize_numpy`), `wrapper.py` and the key
 * generator: the independent side of the Arrow and auto sharing tests.
 *
 * Debian (bookworm) has no pyarrow: the Arrow IPC **file** itself is made by apache-arrow on the
 * TypeScript side and handed over (base64 `ipc`); Python adds what 0.3.0 adds around it (the
 * `xxh3_64_digest` prefix, the document, the key) and, reading, checks that layout and hands the
 * IPC file back. Scripts read one JSON request on stdin and print one JSON line.
 *
 * Requests: `url` (Redis), `ns`, `func`, `args`, `integrity`, `ttl`, `serializer` ("arrow" or
 * "auto"), and for writes `kind`: `"arrow"` (with `ipc`), `"msgpack"` (with `value`) or `"numpy"`
 * (with `numpy`: `{dtype, shape, values}` passed to `numpy.array(values, dtype).reshape(shape)`).
 *
 * @module
 */

const PY_LIB = String.raw`
import sys, json, base64, hashlib, msgpack, lz4.block, xxhash, redis
def h(obj):
    return hashlib.blake2b(msgpack.packb(obj, use_bin_type=True), digest_size=32).hexdigest()
def key_of(req):
    # 0.3.0's decorator never passes the serializer to the key generator: always "s".
    return "t:default:ns:%s:func:%s:args:%s:%ss" % (req["ns"], req["func"], h([req["args"], {}]),
        "1" if req["integrity"] else "0")
def byte_storage(payload, fmt):
    comp = lz4.block.compress(payload, store_size=False)
    return msgpack.packb([list(comp), list(xxhash.xxh3_64_digest(payload)), len(payload), fmt])
def wrap(data, fmt, original_type, serializer):
    md = {"format": fmt, "encoding": "utf-8", "compressed": False, "original_type": original_type}
    return json.dumps({"data": base64.b64encode(data).decode("ascii"), "metadata": md,
        "serializer": serializer, "version": "2.0"}, ensure_ascii=False).encode("utf-8")
def serialize_numpy(arr):
    # auto_serializer.py _serialize_numpy, line for line.
    dtype_str = str(arr.dtype).encode("utf-8")
    dtype_len = len(dtype_str).to_bytes(2, byteorder="little")
    shape_data = b"".join(dim.to_bytes(4, byteorder="little") for dim in arr.shape)
    shape_len = len(shape_data).to_bytes(2, byteorder="little")
    return b"NUMPY_RAW" + dtype_len + dtype_str + shape_len + shape_data + arr.tobytes()
req = json.load(sys.stdin)
r = redis.Redis.from_url(req["url"])
`;

/** Write a 0.3.0 arrow or auto entry into Redis under 0.3.0's key: prints `{key}`. */
export const PY_ARROW_WRITE: string = PY_LIB + String.raw`
kind = req["kind"]
if kind == "arrow":
    ipc = base64.b64decode(req["ipc"])
    data = xxhash.xxh3_64_digest(ipc) + ipc if req["integrity"] else ipc
    stored = wrap(data, "arrow", "arrow", req["serializer"])
elif kind == "numpy":
    import numpy
    spec = req["numpy"]
    arr = numpy.array(spec["values"], dtype=spec["dtype"]).reshape(spec["shape"])
    stored = wrap(serialize_numpy(arr), "msgpack", "numpy", req["serializer"])
else:
    payload = msgpack.packb(req["value"], use_bin_type=True)
    data = byte_storage(payload, "msgpack") if req["integrity"] else payload
    stored = wrap(data, "msgpack", "msgpack", req["serializer"])
if req.get("corrupt"):
    doc = json.loads(stored)
    raw = bytearray(base64.b64decode(doc["data"]))
    raw[req["corrupt"]] ^= 0x01
    doc["data"] = base64.b64encode(bytes(raw)).decode("ascii")
    stored = json.dumps(doc).encode("utf-8")
key = key_of(req)
r.setex(key, req["ttl"], stored)
print(json.dumps({"key": key}))
`;

/**
 * Read our entry under 0.3.0's key and check it as 0.3.0 reads it: prints `{key, found,
 * document, ipc?, value?, prefix_ok?}` — for arrow, the IPC file (base64) after the checksum was
 * verified; for auto msgpack, the value.
 */
export const PY_ARROW_READ: string = PY_LIB + String.raw`
key = key_of(req)
raw = r.get(key)
out = {"key": key, "found": raw is not None}
if raw is not None:
    doc = json.loads(raw.decode("utf-8"))
    out["document"] = {k: v for k, v in doc.items() if k != "data"}
    data = base64.b64decode(doc["data"])
    if doc["metadata"]["format"] == "arrow":
        if req["integrity"]:
            assert len(data) >= 40, "ArrowSerializer's minimum"
            assert xxhash.xxh3_64_digest(data[8:]) == data[:8], "checksum"
            out["prefix_ok"] = data[8:14] == b"ARROW1"
            data = data[8:]
        assert data[:6] == b"ARROW1" and data[-6:] == b"ARROW1", "IPC file magic"
        out["ipc"] = base64.b64encode(data).decode("ascii")
    else:
        if req["integrity"]:
            comp, checksum, size, fmt = msgpack.unpackb(data, raw=False)
            assert isinstance(comp, list), "protocol 1.0 (0.3.0 reads no other): an array of ints"
            payload = lz4.block.decompress(bytes(comp), uncompressed_size=size)
            assert xxhash.xxh3_64_digest(payload) == bytes(checksum), "checksum"
            assert fmt == "msgpack"
        else:
            payload = data
        out["value"] = msgpack.unpackb(payload, raw=False)
print(json.dumps(out))
`;

/** Whether python3-numpy is importable (the NumPy cases need it). */
export const NUMPY_PROBE = "import numpy";
