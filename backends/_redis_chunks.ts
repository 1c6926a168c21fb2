/**
 * Layout of chunked (large) values in Redis, and the Lua scripts that keep them atomic. Internal.
 *
 * A value larger than the chunk size is stored as:
 * - chunk keys `<base>:__ck:<generation>:<i>` (i = 0…n-1), each holding up to `chunkSize` bytes, where
 *   `generation` is 32 random hex digits and `<base>` is a hash tag (`{…}`) that puts every chunk in
 *   the same cluster slot as the value's own key;
 * - under the value's key, a manifest: the 10 magic bytes `\0cachekit\x01` followed by the JSON
 *   `{"v":1,"g":generation,"n":chunks,"s":totalBytes,"c":chunkSize,"b":base}`.
 *
 * A writer stores the chunks of a fresh generation first (with a provisional expiry, so a writer
 * that dies leaves nothing behind for long), then one Lua script checks they all exist, swaps the
 * manifest in, gives the chunks the value's TTL, and schedules the previous generation (if any) to
 * expire after a grace period. A reader takes the manifest, then the chunks of that generation,
 * which never change: it gets the whole value or, when a chunk is gone, a miss — never a mix.
 *
 * Every write, delete and expire of a plain key also retires a previous chunked value stored under
 * that key (a plain write uses `SET … GET` and retires the chunks of a manifest it replaced; the
 * others are scripts), so chunks never outlive their manifest beyond the grace period.
 * A small value that happens to start with the magic bytes is stored chunked, so a plain value can
 * never be mistaken for a manifest. A key whose value is being computed holds a lease marker
 * instead (`_redis_lease.ts`): the magic, `lease:` and the owner token, which no manifest decoding
 * accepts (every read takes it for absent).
 *
 * @module
 */
import { LuaScript } from "./_redis_driver.ts";
import { bytesToHex as toHex } from "@noble/hashes/utils.js";

/** The 10 bytes that start a manifest. */
export const MAGIC: Uint8Array = new Uint8Array([
  0x00,
  0x63,
  0x61,
  0x63,
  0x68,
  0x65,
  0x6b,
  0x69,
  0x74,
  0x01,
]);
/** {@linkcode MAGIC} as a binary (latin1) string, for Lua arguments. */
export const MAGIC_STR: string = String.fromCharCode(...MAGIC);

/** A decoded manifest. */
export interface Manifest {
  /** Generation id (32 hex digits). */
  g: string;
  /** Number of chunks. */
  n: number;
  /** Total size in bytes. */
  s: number;
  /** Chunk size in bytes (every chunk but the last is exactly this long). */
  c: number;
  /** Key base (a hash tag) of the chunk keys. */
  b: string;
}

/** Whether `bytes` starts with the manifest magic. */
export function hasMagic(bytes: Uint8Array): boolean {
  if (bytes.length < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

/** What follows the manifest magic in a lease marker, before the token. */
const LEASE_TAG = "lease:";
/** The start of every lease marker (ASCII: the same bytes in UTF-8 and latin1). */
export const LEASE_PREFIX: string = MAGIC_STR + LEASE_TAG;

/**
 * The lease marker of `token` (`_redis_lease.ts`: what a key holds while its value is computed;
 * it starts with the manifest magic, and {@linkcode decodeManifest} refuses it).
 *
 * @param token The owner token of the call that computes the value.
 * @returns The string stored under the key while the value is computed.
 */
export function leaseMarker(token: string): string {
  return LEASE_PREFIX + token;
}

/**
 * Whether bytes read from a key are a lease marker (the key's value is being computed).
 *
 * @param bytes What a key holds.
 * @returns `true` for a marker.
 */
export function isLeaseMarker(bytes: Uint8Array): boolean {
  const n = MAGIC.length;
  if (bytes.length < n + LEASE_TAG.length || !hasMagic(bytes)) return false;
  for (let i = 0; i < LEASE_TAG.length; i++) {
    if (bytes[n + i] !== LEASE_TAG.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * The chunk key base for a full Redis key: a hash tag that maps to the key's own cluster slot.
 * `sameSlot` is false only for keys with a `}` but no valid hash tag (no such tag can be written);
 * such keys cannot hold chunked values on a cluster.
 */
export function chunkBase(fullKey: string): { base: string; sameSlot: boolean } {
  const open = fullKey.indexOf("{");
  if (open >= 0) {
    const close = fullKey.indexOf("}", open + 1);
    if (close > open + 1) return { base: `{${fullKey.slice(open + 1, close)}}`, sameSlot: true };
  }
  if (!fullKey.includes("}")) return { base: `{${fullKey}}`, sameSlot: true };
  return { base: `{${fullKey.replaceAll("}", "%7D")}}`, sameSlot: false };
}

/** The key of chunk `i` of generation `gen`. */
export function chunkKey(base: string, gen: string, i: number): string {
  return `${base}:__ck:${gen}:${i}`;
}

/** Whether a key (as returned by SCAN) is a chunk key. */
export function isChunkKey(key: string): boolean {
  return /^\{.*\}:__ck:[0-9a-f]{32}:\d+$/.test(key);
}

/** A fresh random generation id. */
export function newGeneration(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** Encode a manifest (magic + JSON) as bytes. */
export function encodeManifest(m: Manifest): Uint8Array {
  const json = new TextEncoder().encode(
    JSON.stringify({ v: 1, g: m.g, n: m.n, s: m.s, c: m.c, b: m.b }),
  );
  const out = new Uint8Array(MAGIC.length + json.length);
  out.set(MAGIC);
  out.set(json, MAGIC.length);
  return out;
}

/**
 * Decode and validate a manifest read under `fullKey`. `null` when it is malformed or names chunk
 * keys that do not belong to this key (foreign or corrupt data is a miss, never a wrong value).
 */
export function decodeManifest(bytes: Uint8Array, fullKey: string): Manifest | null {
  // A manifest's JSON is an object; anything else (a lease marker, `_redis_lease.ts`) is none.
  if (bytes[MAGIC.length] !== 0x7b) return null;
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(MAGIC.length)));
  } catch {
    return null;
  }
  if (typeof m !== "object" || m === null || m.v !== 1) return null;
  const { g, n, s, c, b } = m;
  if (typeof g !== "string" || !/^[0-9a-f]{32}$/.test(g)) return null;
  if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0) return null;
  if (typeof c !== "number" || !Number.isSafeInteger(c) || c < 1) return null;
  if (typeof n !== "number" || n !== Math.max(1, Math.ceil(s / c))) return null;
  if (b !== chunkBase(fullKey).base) return null;
  return { g, n, s, c, b };
}

/** Lua helper shared by the scripts: retire the chunks of a manifest stored under `key`. */
const RETIRE = `
local MAGIC = ARGV[1]
local function retire(key, grace)
  local t = redis.call('TYPE', key)
  if type(t) == 'table' then t = t.ok end
  if t ~= 'string' then return end
  if redis.call('GETRANGE', key, 0, #MAGIC - 1) ~= MAGIC then return end
  local ok, m = pcall(cjson.decode, string.sub(redis.call('GET', key), #MAGIC + 1))
  if not ok or type(m) ~= 'table' or type(m.n) ~= 'number' or type(m.g) ~= 'string'
    or type(m.b) ~= 'string' or m.n > 1000000 then return end
  for i = 0, m.n - 1 do
    local ck = m.b .. ':__ck:' .. m.g .. ':' .. i
    if grace <= 0 then
      redis.call('UNLINK', ck)
    else
      local left = redis.call('PTTL', ck)
      if left == -1 or left > grace then redis.call('PEXPIRE', ck, grace) end
    end
  end
end
`;

/** Retire chunks after a grace period (0 = now): KEYS = chunk keys; ARGV: graceMs. */
export const RETIRE_CHUNKS_SCRIPT: LuaScript = new LuaScript(`
local grace = tonumber(ARGV[1])
for i = 1, #KEYS do
  if grace <= 0 then
    redis.call('UNLINK', KEYS[i])
  else
    local left = redis.call('PTTL', KEYS[i])
    if left == -1 or left > grace then redis.call('PEXPIRE', KEYS[i], grace) end
  end
end
return #KEYS
`);

/** SET a plain value (over a key of any type): KEYS[1]; ARGV: magic, value, ttlMs (0 = none), graceMs. */
export const SET_SCRIPT: LuaScript = new LuaScript(`${RETIRE}
retire(KEYS[1], tonumber(ARGV[4]))
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`);

/**
 * Commit a chunked value: KEYS[1] = key, KEYS[2…] = chunk keys; ARGV: magic, manifest, ttlMs,
 * graceMs. Returns 0 (nothing changed) when a chunk is missing.
 */
export const COMMIT_SCRIPT: LuaScript = new LuaScript(`${RETIRE}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return 0 end
end
retire(KEYS[1], tonumber(ARGV[4]))
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
  for i = 2, #KEYS do redis.call('PEXPIRE', KEYS[i], ttl) end
else
  redis.call('SET', KEYS[1], ARGV[2])
  for i = 2, #KEYS do redis.call('PERSIST', KEYS[i]) end
end
return 1
`);

/** Delete a key (and retire its chunks): KEYS[1]; ARGV: magic, graceMs. Returns 1 if it existed. */
export const DEL_SCRIPT: LuaScript = new LuaScript(`${RETIRE}
retire(KEYS[1], tonumber(ARGV[2]))
return redis.call('UNLINK', KEYS[1])
`);

/**
 * Set the TTL of a key and of its chunks: KEYS[1]; ARGV: magic, ttlMs (0 = persist), the lease
 * marker prefix. Returns 0 when the key does not exist or holds a lease marker.
 */
export const EXPIRE_SCRIPT: LuaScript = new LuaScript(`
local MAGIC = ARGV[1]
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local ttl = tonumber(ARGV[2])
local function apply(k)
  if ttl > 0 then redis.call('PEXPIRE', k, ttl) else redis.call('PERSIST', k) end
end
local t = redis.call('TYPE', key)
if type(t) == 'table' then t = t.ok end
-- A lease marker (ARGV[3], _redis_lease.ts) is no entry: its lease is left as it is.
local LEASE = ARGV[3]
if t == 'string' and LEASE and redis.call('GETRANGE', key, 0, #LEASE - 1) == LEASE then
  return 0
end
if t == 'string' and redis.call('GETRANGE', key, 0, #MAGIC - 1) == MAGIC then
  local ok, m = pcall(cjson.decode, string.sub(redis.call('GET', key), #MAGIC + 1))
  if ok and type(m) == 'table' and type(m.n) == 'number' and type(m.g) == 'string'
    and type(m.b) == 'string' and m.n <= 1000000 then
    for i = 0, m.n - 1 do apply(m.b .. ':__ck:' .. m.g .. ':' .. i) end
  end
end
apply(key)
return 1
`);

/** Release a lock only if `token` still owns it: KEYS[1]; ARGV: token. */
export const UNLOCK_SCRIPT: LuaScript = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/** Lua `addtag(set, member, ttlMs)`: the body of {@linkcode ADD_TAG_SCRIPT}. */
const ADD_TAG = `
local function addtag(tk, member, ttl)
  local existed = redis.call('EXISTS', tk)
  redis.call('SADD', tk, member)
  if existed == 0 then
    if ttl > 0 then redis.call('PEXPIRE', tk, ttl) end
    return
  end
  local cur = redis.call('PTTL', tk)
  if cur == -1 then return end
  if ttl <= 0 then redis.call('PERSIST', tk) elseif cur < ttl then redis.call('PEXPIRE', tk, ttl) end
end
`;

/**
 * Add a member to a tag set, keeping the set alive at least as long as its longest-lived member:
 * KEYS[1] = set; ARGV: member, ttlMs (0 = no expiry).
 */
export const ADD_TAG_SCRIPT: LuaScript = new LuaScript(`${ADD_TAG}
addtag(KEYS[1], ARGV[1], tonumber(ARGV[2]))
return 1
`);

/**
 * Store a plain value and add it to its tag sets in one step: KEYS[1] = value key, KEYS[2…] = tag
 * sets; ARGV: magic, value, ttlMs (0 = none), graceMs, member (the logical key). The tag sets are
 * written first: a tag set of the wrong type fails the script before the value is stored (a script
 * is not rolled back), so the value is never stored without its tags.
 */
export const SET_TAGGED_SCRIPT: LuaScript = new LuaScript(`${RETIRE}${ADD_TAG}
local ttl = tonumber(ARGV[3])
for i = 2, #KEYS do addtag(KEYS[i], ARGV[5], ttl) end
retire(KEYS[1], tonumber(ARGV[4]))
if ttl > 0 then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
else
  redis.call('SET', KEYS[1], ARGV[2])
end
return 1
`);

/** Take every member of a tag set and delete the set, atomically: KEYS[1] = set. */
export const POP_TAG_SCRIPT: LuaScript = new LuaScript(`
local m = redis.call('SMEMBERS', KEYS[1])
redis.call('UNLINK', KEYS[1])
return m
`);

/**
 * Read a value, or else take its lock: KEYS[1] = value key, KEYS[2] = its lock (same slot);
 * ARGV: token, leaseMs, lockOnly ("1": skip the read). Returns the value (a manifest for a
 * chunked one) when the key holds one, else 1 when the lock was free and is now the token's,
 * else 0.
 */
export const FETCH_LOCK_SCRIPT: LuaScript = new LuaScript(`
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return v end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`);

/**
 * {@linkcode FETCH_LOCK_SCRIPT} for several keys at once (concurrent misses batched into one
 * script call, `_redis_batch.ts`): KEYS = key₁, lock₁, key₂, lock₂, …; ARGV = token, leaseMs,
 * lockOnly for each key in turn. Returns one element per key: the value, 1 (lock taken) or 0
 * (held by another), or `{message}` when that key's command failed (e.g. `WRONGTYPE`), which fails
 * that key's operation alone.
 */
export const FETCH_LOCK_MANY_SCRIPT: LuaScript = new LuaScript(`
local out = {}
for i = 1, #KEYS / 2 do
  local a = 3 * i
  local r = 0
  if ARGV[a] ~= '1' then
    local v = redis.pcall('GET', KEYS[2 * i - 1])
    if type(v) == 'table' then r = {v.err or 'ERR'} elseif v then r = v end
  end
  if r == 0 then
    local l = redis.pcall('SET', KEYS[2 * i], ARGV[a - 2], 'NX', 'PX', ARGV[a - 1])
    if type(l) == 'table' and l.err then r = {l.err} elseif l then r = 1 end
  end
  out[i] = r
end
return out
`);

/**
 * {@linkcode SET_UNLOCK_SCRIPT} for several keys at once (concurrent writes batched into one
 * script call): KEYS = key₁, lock₁, …; ARGV[1] = the values one after the other, then length,
 * ttlMs, token for each key in turn. One argument for all the values because the client writes
 * each binary argument to the socket apart (a `writev` piece each; measured: a fifth of the CPU
 * of a batch of 100 writes). Returns per key what it held before (0 for nothing), or `{message}`
 * when its `SET` failed (nothing changed for that key, its lock included).
 */
export const SET_UNLOCK_MANY_SCRIPT: LuaScript = new LuaScript(`
local out = {}
local blob = ARGV[1]
local off = 1
for i = 1, #KEYS / 2 do
  local a = 3 * i + 1
  local len = tonumber(ARGV[a - 2])
  local v = string.sub(blob, off, off + len - 1)
  off = off + len
  local old
  if tonumber(ARGV[a - 1]) > 0 then
    old = redis.pcall('SET', KEYS[2 * i - 1], v, 'PX', ARGV[a - 1], 'GET')
  else
    old = redis.pcall('SET', KEYS[2 * i - 1], v, 'GET')
  end
  if type(old) == 'table' then
    out[i] = {old.err or 'ERR'}
  else
    if redis.pcall('GET', KEYS[2 * i]) == ARGV[a] then redis.call('DEL', KEYS[2 * i]) end
    out[i] = old or 0
  end
end
return out
`);

/**
 * Store a plain value and release its lock if the token holds it: KEYS[1] = value key, KEYS[2] =
 * its lock (same slot); ARGV: value, ttlMs (0 = none), token. Returns what the key held before
 * (`SET … GET`), so that the caller retires the chunks of a manifest it replaced. A key of another
 * type fails the script (`WRONGTYPE`) before anything changed.
 */
export const SET_UNLOCK_SCRIPT: LuaScript = new LuaScript(`
local old
if tonumber(ARGV[2]) > 0 then
  old = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
else
  old = redis.call('SET', KEYS[1], ARGV[1], 'GET')
end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return old
`);
