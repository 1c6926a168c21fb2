// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The digest layout of `serializer: "orjson"` (cachekit-py 0.3.0's orjson entries): the stored
// bytes on both wires, and the reader's rules. A document naming another serializer or format, a
// digest that does not match, an entry without the digest under integrity checking, an envelope
// under format orjson: each is a miss, logged once, the entry deleted, never a wrong value. Then
// every single-bit flip and truncation of an orjson entry of each mode.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { captureLogs } from "../_log_capture.ts";
import { type Backend, cache, type CacheOptions, MemoryBackend } from "../../mod.ts";
import { decodeWire, encodeWire } from "../../protocol/stored_value.ts";
import { xxh3 } from "../../protocol/_xxh3.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const MASTER = hex(crypto.getRandomValues(new Uint8Array(32)));
const utf8 = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const b64 = (b: Uint8Array) => btoa(Array.from(b, (x) => String.fromCharCode(x)).join(""));
const unb64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

const VALUE = { name: "Ada", id: 1, tags: ["x", "y"] };
const JSON_TEXT = '{"id":1,"name":"Ada","tags":["x","y"]}';

/** An orjson function over a recording MemoryBackend; `stored()` / `put()` the one entry. */
async function setup(opts: CacheOptions<[number]>, ...given: [first?: unknown]) {
  const first = given.length > 0 ? given[0] : VALUE; // `undefined` given is a value
  const rec = recording(new MemoryBackend());
  let n = 0;
  const fn = async (_id: number) => n++ === 0 ? first : { fresh: n };
  const f = cache(fn, {
    name: `wire.digest.${crypto.randomUUID()}`,
    ttl: 60,
    backend: rec.backend,
    l1: false,
    serializer: "orjson",
    ...bare,
    ...opts,
  });
  assert.deepEqual(await f(1), first);
  const key = rec.keys[0];
  return {
    f: () => f(1),
    calls: () => n,
    key,
    stored: async () => (await rec.inner.get(key))!,
    put: (b: Uint8Array) => rec.inner.set(key, b, 60),
    exists: () => rec.inner.exists(key),
  };
}

test("digest layout: the document is 0.3.0's, data = xxh3_64(json) ‖ json (integrity on) or json", async () => {
  for (const integrity of [true, false]) {
    const s = await setup({ wire: "document", integrityChecking: integrity });
    assert.ok(s.key.endsWith(integrity ? ":1s" : ":0s"), s.key);
    const doc = JSON.parse(text(await s.stored()));
    assert.equal(doc.serializer, "orjson");
    assert.equal(doc.version, "2.0");
    const { ck_check, ...md } = doc.metadata;
    assert.deepEqual(md, {
      format: "orjson",
      encoding: "utf-8",
      compressed: false,
      original_type: "orjson",
    });
    const data = unb64(doc.data);
    if (integrity) {
      assert.equal(hex(data.subarray(0, 8)), hex(xxh3(utf8.encode(JSON_TEXT))));
      assert.equal(text(data.subarray(8)), JSON_TEXT);
      assert.match(ck_check, /^[0-9a-f]{16}$/);
    } else {
      assert.equal(text(data), JSON_TEXT);
      assert.equal(ck_check, undefined);
    }
    assert.deepEqual(await s.f(), VALUE);
    assert.equal(s.calls(), 1, "a hit");
  }
});

test("digest layout: the framed form carries flag 0x10 and the same data", async () => {
  for (const integrity of [true, false]) {
    const s = await setup({ integrityChecking: integrity });
    const raw = await s.stored();
    assert.deepEqual([...raw.subarray(0, 5)], [0xc1, 0x63, 0x6b, 0x02, integrity ? 0x10 : 0]);
    const w = decodeWire(raw);
    assert.equal(w.serializer, "orjson");
    assert.equal(w.format, "orjson");
    assert.equal(w.digest, integrity);
    assert.equal(w.compressed, false);
    assert.equal(text(integrity ? w.data.subarray(8) : w.data), JSON_TEXT);
    assert.deepEqual(await s.f(), VALUE);
    assert.equal(s.calls(), 1, "a hit");
  }
});

/** Replace the stored entry with `edit(entry)`, read: a miss, one warning, the entry deleted. */
async function refused(
  s: Awaited<ReturnType<typeof setup>>,
  bytes: Uint8Array,
  why: RegExp,
) {
  await s.put(bytes);
  const logs = await captureLogs("warning");
  try {
    const before = s.calls();
    assert.deepEqual(await s.f(), { fresh: before + 1 }, "recomputed, never the stored value");
    const warned = logs.matching(/unreadable L2 entry/);
    assert.equal(warned.length, 1, "logged once");
    assert.match(String(warned[0].properties.error), why);
  } finally {
    await logs.stop();
  }
}

interface Doc {
  data: string;
  serializer: string;
  metadata: Record<string, unknown>;
}

function editDoc(b: Uint8Array, edit: (doc: Doc) => void): Uint8Array {
  const doc = JSON.parse(text(b));
  edit(doc);
  return utf8.encode(JSON.stringify(doc));
}

test("digest layout: another serializer, another format, a bad digest are misses", async () => {
  const s = await setup({ wire: "document" });
  const good = await s.stored();
  await refused(s, editDoc(good, (d) => (d.serializer = "default")), /serializer default/);
  await refused(s, editDoc(good, (d) => (d.serializer = "arrow")), /serializer arrow/);
  await refused(s, editDoc(good, (d) => (d.metadata.format = "msgpack")), /format msgpack/);
  await refused(s, editDoc(good, (d) => (d.metadata.compressed = true)), /envelope/);
  // The JSON changed under its digest: `{"id":1,…}` → `{"id":2,…}`.
  const flipped = editDoc(good, (d) => {
    const data = unb64(d.data);
    data[8 + 6] = 0x32;
    d.data = b64(data);
  });
  await refused(s, flipped, /checksum mismatch/);
  // A document without the digest (written with integrity off) under a reader with it on.
  const off = await setup({ wire: "document", integrityChecking: false });
  await refused(s, await off.stored(), /checksum mismatch|no room/);
  // A framed entry without flag 0x10 under a reader with integrity on.
  const framedOff = await setup({ integrityChecking: false });
  await refused(s, await framedOff.stored(), /without its checksum/);
  // An std entry (envelope) under the same key.
  const std = await setup({ serializer: "std", wire: "document" });
  await refused(s, await std.stored(), /envelope where format orjson has none/);
});

test("digest layout: an integrity-off reader refuses a digest-prefixed document (as 0.3.0 does)", async () => {
  const on = await setup({ wire: "document" });
  const off = await setup({ wire: "document", integrityChecking: false });
  await refused(off, await on.stored(), /deserialize orjson/);
});

test("digest layout: undefined is null under the marker digest, and a lost flag is a miss", async () => {
  for (const wire of ["document", "envelope"] as const) {
    const s = await setup({ wire }, undefined);
    assert.equal(await s.f(), undefined);
    assert.equal(s.calls(), 1, `${wire}: a hit answering undefined`);
    const w = decodeWire(await s.stored());
    assert.equal(w.jsUndefined, true);
    assert.equal(text(w.data.subarray(8)), "null");
    assert.notEqual(hex(w.data.subarray(0, 8)), hex(xxh3(utf8.encode("null"))), "a marker digest");
    // The flag cut out: the digest is not null's own, so never null.
    const cut = encodeWire({ ...w, jsUndefined: false, check: undefined }, wire);
    const stripped = wire === "document" ? editDoc(cut, (d) => delete d.metadata.ck_check) : cut;
    await refused(s, stripped, /checksum mismatch/);
  }
});

/** A backend whose `get` answers `fixed` when set (and whose writes then do nothing). */
function fixedBackend(inner: Backend) {
  let fixed: Uint8Array | null = null;
  const backend: Backend = {
    type: inner.type,
    capabilities: inner.capabilities,
    get: (k, o) => fixed !== null ? Promise.resolve(fixed.slice()) : inner.get(k, o),
    set: (k, v, t, o) => fixed !== null ? Promise.resolve() : inner.set(k, v, t, o),
    delete: (k, o) => fixed !== null ? Promise.resolve(false) : inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
    close: () => Promise.resolve(),
  };
  return { backend, fix: (b: Uint8Array | null) => fixed = b };
}

const MODES: [string, CacheOptions<[number]>, unknown][] = [
  ["envelope wire", {}, VALUE],
  ["envelope wire, fail-safe", { staleTtl: 60 }, VALUE],
  ["envelope wire, undefined", {}, undefined],
  ["document wire", { wire: "document" }, VALUE],
  ["document wire, fail-safe", { wire: "document", staleTtl: 60 }, VALUE],
  ["document wire, undefined", { wire: "document" }, undefined],
  ["secure, document wire", {
    wire: "document",
    encryption: { enabled: true, masterKey: MASTER, singleTenant: true },
  }, VALUE],
  ["secure, envelope wire, undefined", {
    encryption: { enabled: true, masterKey: MASTER, singleTenant: true },
  }, undefined],
];

test("digest layout: every single-bit flip and truncation answers the value or recomputes", async () => {
  for (const [mode, opts, first] of MODES) {
    const rec = recording(new MemoryBackend());
    const { backend, fix } = fixedBackend(rec.backend);
    let n = 0;
    let last: unknown = undefined;
    const fn = async (_id: number) => (last = n++ === 0 ? first : { fresh: n });
    const f = cache(fn, {
      name: `wire.digest.flip.${crypto.randomUUID()}`,
      ttl: 60,
      backend,
      l1: false,
      serializer: "orjson",
      ...bare,
      ...opts,
    });
    assert.deepEqual(await f(1), first);
    const good = (await rec.inner.get(rec.keys[0]))!;
    const check = async (b: Uint8Array, what: string) => {
      fix(b);
      const before = n;
      let got: unknown;
      try {
        got = await f(1);
      } catch (e) {
        assert.fail(`${mode}, ${what}: threw ${e}`);
      }
      if (n === before) assert.deepEqual(got, first, `${mode}, ${what}: served another value`);
      else assert.deepEqual(got, last, `${mode}, ${what}: not the function's value`);
    };
    await check(good, "control");
    assert.equal(n, 1, `${mode}: the control is a hit`);
    for (let i = 0; i < good.length * 8; i++) {
      const b = good.slice();
      b[i >> 3] ^= 1 << (i & 7);
      await check(b, `bit ${i}`);
    }
    for (let len = 0; len < good.length; len++) await check(good.subarray(0, len), `first ${len}`);
    fix(null);
    assert.ok(n > good.length, `${mode}: ${n} runs for ${good.length} bytes`);
  }
});
