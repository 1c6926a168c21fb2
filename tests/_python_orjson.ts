/**
 * cachekit-py 0.3.0's `serializer="orjson"` entries and keyword-argument keys, rebuilt in Python
 * from Debian's packages (python3-msgpack, -xxhash, -redis, `hashlib.blake2b`), following the
 * 0.3.0 source (`serializers/orjson_serializer.py`, `serializers/wrapper.py`,
 * `serializers/base.py`, `key_generator.py`, `cache_handler.py`), not our code: the independent
 * side of the orjson and `pythonArgs` tests. Scripts read one JSON request on stdin and print one
 * JSON line; run them with `runPythonJson` from `_python.ts`.
 *
 * orjson itself is not packaged by Debian, so `orjson.dumps(obj, option=OPT_SORT_KEYS)` is played
 * by `json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`. The two write
 * the same bytes for what the tests store (dicts with str keys, lists, str, bool, None, ints within
 * 64 bits, floats whose shortest repr has no exponent): both sort keys in code point order (orjson
 * compares UTF-8 bytes, Python compares code points: the same order), write compact JSON and raw
 * UTF-8. They differ elsewhere, where no test looks: orjson writes `NaN`/`Infinity` as `null`
 * (json.dumps writes `NaN`; `allow_nan=False` here refuses it), an exponent as `1e16` (json:
 * `1e+16`), refuses ints beyond 64 bits (json writes them), and writes `datetime` (json refuses).
 * Reading, `json.loads` accepts what `orjson.loads` accepts for these values.
 *
 * Requests: `ns`, `func` (`module.qualname`), `args`, `kwargs` (default `{}`), `integrity`
 * (default true), `value` for writes, `url` for Redis.
 *
 * @module
 */

const PY_ORJSON_LIB = String.raw`
import sys, json, base64, hashlib, msgpack, xxhash

def _normalize(obj):
    # key_generator.CacheKeyGenerator._normalize, for the types the tests pass
    if isinstance(obj, dict):
        return {k: _normalize(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [_normalize(x) for x in obj]
    if isinstance(obj, float):
        return 0.0 if obj == 0.0 else obj
    return obj

def args_hash(args, kwargs):
    # key_generator.CacheKeyGenerator._blake2b_hash
    normalized_args = [_normalize(a) for a in args]
    normalized_kwargs = {k: _normalize(v) for k, v in sorted(kwargs.items())}
    packed = msgpack.packb([normalized_args, normalized_kwargs], use_bin_type=True, strict_types=True)
    return hashlib.blake2b(packed, digest_size=32).hexdigest()

def cachekit_key(req):
    # generate_key: the decorator passes no serializer, so the code is always "s"; then the
    # default tenant segment the Redis handler writes under.
    ic = "1" if req.get("integrity", True) else "0"
    key = "ns:%s:func:%s:args:%s:%ss" % (req["ns"], req["func"],
        args_hash(req["args"], req.get("kwargs", {})), ic)
    return "t:default:" + key

def orjson_dumps(obj):
    # orjson.dumps(obj, option=orjson.OPT_SORT_KEYS), for the values tested (see the module doc)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
        allow_nan=False).encode("utf-8")

def orjson_entry(req):
    # OrjsonSerializer.serialize, then SerializationWrapper.wrap(data, metadata.to_dict(), "orjson")
    json_data = orjson_dumps(req["value"])
    data = xxhash.xxh3_64_digest(json_data) + json_data if req.get("integrity", True) else json_data
    metadata = {"format": "orjson", "encoding": "utf-8", "compressed": False,
        "original_type": "orjson"}
    wrapper = {"data": base64.b64encode(data).decode("ascii"), "metadata": metadata,
        "serializer": "orjson", "version": "2.0"}
    return json.dumps(wrapper, ensure_ascii=False).encode("utf-8")

def frame_decode(req, raw):
    # Not cachekit-py's: @cachekit/core's framed form (its stored_value.ts layout table), parsed
    # here to check the digest layout inside it.
    assert raw[:4] == b"\xc1ck\x02", raw[:4]
    flags = raw[4]
    o = 5
    name = raw[o + 1:o + 1 + raw[o]].decode(); o += 1 + raw[o]
    fmt = raw[o + 1:o + 1 + raw[o]].decode(); o += 1 + raw[o]
    size = int.from_bytes(raw[o:o + 4], "big"); o += 4
    if flags & 0x11:
        assert xxhash.xxh3_64_digest(raw[:o]) == raw[o:o + 8], "header check"
        o += 8
    data = raw[o:]
    assert len(data) == size
    if flags & 0x10:
        assert xxhash.xxh3_64_digest(data[8:]) == data[:8], "digest"
        data = data[8:]
    return {"frame": {"flags": flags, "serializer": name, "format": fmt}, "json": data.decode(),
        "value": json.loads(data)}

def orjson_decode(req, raw):
    # SerializationWrapper.unwrap, the handler's serializer check, OrjsonSerializer.deserialize
    if raw[:1] == b"\xc1":
        return frame_decode(req, raw)
    wrapper = json.loads(raw.decode("utf-8"))
    data = base64.b64decode(wrapper["data"].encode("ascii"))
    name = wrapper.get("serializer", "unknown")
    if name != "orjson" and name != "unknown":
        return {"error": "Serializer mismatch: cached data uses '%s'" % name}
    if req.get("integrity", True):
        if len(data) < 10:
            return {"error": "Invalid data: Expected at least 10 bytes"}
        if xxhash.xxh3_64_digest(data[8:]) != data[:8]:
            return {"error": "Checksum validation failed"}
        json_data = data[8:]
    else:
        json_data = data
    return {"metadata": wrapper["metadata"], "serializer": name, "json": json_data.decode("utf-8"),
        "value": json.loads(json_data)}

req = json.load(sys.stdin)
`;

/** Write cachekit-py's orjson entry into Redis (`SETEX`) at `url`: prints `{key}`. */
export const PY_ORJSON_REDIS_WRITE: string = PY_ORJSON_LIB + String.raw`
import redis
key = cachekit_key(req)
redis.Redis.from_url(req["url"]).setex(key, req.get("ttl", 60), orjson_entry(req))
print(json.dumps({"key": key}))
`;

/**
 * Compute the key as cachekit-py does, `GET` it from Redis and decode it as 0.3.0's orjson reader:
 * prints `{key, found, metadata?, serializer?, json?, value?, error?}`.
 */
export const PY_ORJSON_REDIS_READ: string = PY_ORJSON_LIB + String.raw`
import redis
key = cachekit_key(req)
raw = redis.Redis.from_url(req["url"]).get(key)
out = {"key": key, "found": raw is not None}
if raw is not None:
    out.update(orjson_decode(req, raw))
print(json.dumps(out))
`;

/**
 * Key vectors: the key of each call of `calls` (`{args, kwargs}`) under `ns`/`func`/`integrity`:
 * prints `{keys}`.
 */
export const PY_KEYS: string = PY_ORJSON_LIB + String.raw`
print(json.dumps({"keys": [cachekit_key(dict(req, args=c["args"], kwargs=c.get("kwargs", {})))
    for c in req["calls"]]}))
`;

/** The orjson bytes (base64) of `value` as the Python side writes them: prints `{json}`. */
export const PY_ORJSON_DUMPS: string = PY_ORJSON_LIB + String.raw`
print(json.dumps({"json": [base64.b64encode(orjson_dumps(v)).decode() for v in req["values"]]}))
`;
