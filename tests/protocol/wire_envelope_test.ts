// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The envelope wire (protocol/_frame.ts): byte layout against the documented table (hand-built literals),
// malformed entries → WireFormatError / a miss, round trips through the engine on Memory, File and
// Redis for both wires, each wire reading the other's entries, fail-safe and secure entries.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import {
  type Backend,
  cache,
  FileBackend,
  MemoryBackend,
  RedisBackend,
  WireFormatError,
  withTenant,
} from "../../mod.ts";
import { decodeWire, encodeWire } from "../../protocol/stored_value.ts";
import { encodeEnvelope } from "../../protocol/mod.ts";
import { xxh3 } from "../../protocol/_xxh3.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { readEnvConfig } from "../../config/env.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const hexKey = () =>
  Array.from(crypto.getRandomValues(new Uint8Array(32)), (x) => x.toString(16).padStart(2, "0"))
    .join("");

// Protocol README worked example, protocol 1.1 (compressed 01 c8 00 ff, original size 70000).
const SPEC_ENVELOPE_11 = new Uint8Array([
  0x94,
  0xc4,
  0x04,
  0x01,
  0xc8,
  0x00,
  0xff,
  0x98,
  0x00,
  0x01,
  0x7f,
  0xcc,
  0x80,
  0xcc,
  0xc8,
  0xcc,
  0xff,
  0x10,
  0x20,
  0xce,
  0x00,
  0x01,
  0x11,
  0x70,
  0xa7,
  0x6d,
  0x73,
  0x67,
  0x70,
  0x61,
  0x63,
  0x6b,
]);

/** The framed layout of stored_value.ts's table, built by hand. */
function framed(opts: {
  flags?: number;
  serializer?: string;
  format?: string;
  fresh?: number;
  fingerprint?: number[];
  label?: string;
  payload: number[];
}): Uint8Array {
  const name = ascii(opts.serializer ?? "default");
  const fmt = ascii(opts.format ?? "msgpack");
  const out = [0xc1, 0x63, 0x6b, 0x02, opts.flags ?? 0, name.length, ...name, fmt.length, ...fmt];
  if (opts.fresh !== undefined) {
    const f = new Uint8Array(8);
    new DataView(f.buffer).setFloat64(0, opts.fresh); // big-endian
    out.push(...f);
  }
  if (opts.fingerprint) {
    const label = ascii(opts.label!);
    out.push(...opts.fingerprint, label.length >> 8, label.length & 0xff, ...label);
  }
  const n = opts.payload.length;
  out.push(n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  // Flag 0x01 (integrity): xxh3-64 of every header byte before it.
  if ((opts.flags ?? 0) & 0x01) out.push(...xxh3(new Uint8Array(out)));
  out.push(...opts.payload);
  return new Uint8Array(out);
}

test("envelope wire: the bare envelope is stored as is and read without a copy", () => {
  const stored = encodeWire(
    { data: SPEC_ENVELOPE_11, compressed: true, serializer: "default" },
    "envelope",
  );
  assert.deepEqual(Array.from(stored), Array.from(SPEC_ENVELOPE_11));
  const doc = decodeWire(SPEC_ENVELOPE_11);
  assert.equal(doc.data.buffer, SPEC_ENVELOPE_11.buffer, "a view, not a copy");
  assert.equal(doc.data.length, SPEC_ENVELOPE_11.length);
  assert.equal(doc.compressed, true);
  assert.equal(doc.serializer, "default");
  assert.equal(doc.format, undefined, "named inside the envelope");
  // The map form (first byte 0x84) is an envelope too.
  assert.equal(decodeWire(new Uint8Array([0x84, 0xc0])).compressed, true);
});

test("envelope wire: framed entries follow the documented byte layout", () => {
  // Integrity off: plain msgpack 42 framed, no optional fields.
  const plain = framed({ payload: [0x2a] });
  assert.deepEqual(
    Array.from(
      encodeWire(
        { data: new Uint8Array([0x2a]), compressed: false, serializer: "default" },
        "envelope",
      ),
    ),
    Array.from(plain),
  );
  const p = decodeWire(plain);
  assert.deepEqual(Array.from(p.data), [0x2a]);
  assert.equal(p.data.buffer, plain.buffer, "payload is a view");
  assert.equal(p.compressed, false);
  assert.equal(p.format, "msgpack");
  assert.equal(p.encryption, null);
  assert.equal(p.freshUntil, null);
  assert.equal(p.jsUndefined, false);
  // Every field: envelope + encrypted + fresh_until + undefined.
  const fp = Array.from({ length: 16 }, (_, i) => i * 17);
  const all = framed({
    flags: 0x0f,
    serializer: "json",
    format: "json",
    fresh: 1_700_000_000_123.5,
    fingerprint: fp,
    label: "@0123abcd",
    payload: [1, 2, 3, 4, 5],
  });
  const enc = {
    data: new Uint8Array([1, 2, 3, 4, 5]),
    compressed: true,
    serializer: "json",
    format: "json",
    encryption: { tenantId: "@0123abcd", keyFingerprint: "00112233445566778899aabbccddeeff" },
    jsUndefined: true,
    freshUntil: 1_700_000_000_123.5,
  };
  assert.deepEqual(Array.from(encodeWire(enc, "envelope")), Array.from(all));
  const d = decodeWire(all);
  assert.deepEqual(d, {
    ...enc,
    encryption: { ...enc.encryption, algorithm: "AES-256-GCM" },
    digest: false, // flag 0x10 clear: not the digest layout of orjson / arrow
    data: d.data,
    aad: d.aad,
  });
  // The AAD extension of an encrypted frame: its header from the magic to the tenant label.
  assert.deepEqual(Array.from(d.aad!), Array.from(all.subarray(0, all.length - 5 - 4 - 8)));
  assert.deepEqual(Array.from(d.data), [1, 2, 3, 4, 5]);
  // A non-ASCII tenant label survives (UTF-8).
  const utf = encodeWire(
    { ...enc, encryption: { ...enc.encryption, tenantId: "tënant ✓" } },
    "envelope",
  );
  assert.equal(decodeWire(utf).encryption!.tenantId, "tënant ✓");
  // The document wire still starts with "{" and its readers see the same fields.
  const doc = encodeWire(enc, "document");
  assert.equal(doc[0], 0x7b);
  assert.deepEqual(decodeWire(doc).freshUntil, enc.freshUntil);
});

test("envelope wire: malformed framed entries are WireFormatError, never a value", () => {
  const good = framed({
    flags: 0x06,
    fresh: 1e12,
    fingerprint: new Array(16).fill(0xab),
    label: "acme",
    payload: [9, 9, 9],
  });
  decodeWire(good); // the control decodes
  // Every truncation of a framed entry is refused (the payload length catches the tail).
  for (let n = 1; n < good.length; n++) {
    assert.throws(() => decodeWire(good.subarray(0, n)), WireFormatError, `prefix ${n}`);
  }
  const mutate = (i: number, v: number) => {
    const b = good.slice();
    b[i] = v;
    return b;
  };
  const nan = new Uint8Array(8);
  new DataView(nan.buffer).setFloat64(0, NaN);
  const variants: [string, Uint8Array][] = [
    ["magic", mutate(1, 0x43)],
    ["version 1 (the old layout)", mutate(3, 0x01)],
    ["version 3", mutate(3, 0x03)],
    ["unknown flag", mutate(4, 0x16)],
    ["zero-length serializer", mutate(5, 0)],
    ["trailing byte", new Uint8Array([...good, 0])],
    ["length over", framed({ payload: [1, 2] }).map((x, i, a) => i === a.length - 3 ? 3 : x)],
    ["invalid UTF-8 name", framed({ serializer: "\xff\xfe", payload: [1] })],
    [
      "NaN fresh_until",
      (() => {
        const b = framed({ flags: 0x04, fresh: 0, payload: [1] });
        b.set(nan, 5 + 8 + 8);
        return b;
      })(),
    ],
    [
      "zero-length tenant",
      framed({ flags: 0x02, fingerprint: new Array(16).fill(1), label: "", payload: [1] }),
    ],
    ["magic byte alone", new Uint8Array([0xc1])],
  ];
  for (const [what, bytes] of variants) {
    assert.throws(() => decodeWire(bytes), WireFormatError, what);
  }
  // Encoding refuses what the layout cannot hold.
  assert.throws(
    () =>
      encodeWire({
        data: new Uint8Array(1),
        compressed: true,
        serializer: "default",
        encryption: { tenantId: "a", keyFingerprint: "not hex" },
      }, "envelope"),
    WireFormatError,
  );
  assert.throws(
    () =>
      encodeWire(
        { data: new Uint8Array(1), compressed: false, serializer: "x".repeat(256) },
        "envelope",
      ),
    WireFormatError,
  );
});

test("config: wire defaults to envelope, takes document, refuses anything else and interop", () => {
  const env = readEnvConfig({});
  assert.equal(resolveConfig({ name: "f" }, undefined, env).wire, "envelope");
  assert.equal(resolveConfig({ name: "f", wire: "document" }, undefined, env).wire, "document");
  assert.equal(resolveConfig({ name: "f" }, "production", env).wire, "envelope");
  for (const bad of ["json", "", null, 1]) {
    assert.throws(
      () => resolveConfig({ name: "f", wire: bad as never }, undefined, env),
      (e: unknown) => (e as { code?: string; option?: string }).code === "CACHE_CONFIG",
    );
  }
  assert.throws(
    () =>
      resolveConfig(
        { namespace: "ns", name: "op", interop: true, wire: "envelope" },
        undefined,
        env,
      ),
    /wire/,
  );
});

/** A backend that remembers written keys. */

const VALUE = { id: 7, name: "Ada", tags: ["x", "y"], score: 1.5, nested: { ok: true, n: null } };

async function roundTrips(make: () => Backend, label: string, ns: string) {
  for (const integrity of [true, false]) {
    for (const writer of ["envelope", "document"] as const) {
      const { backend, keys } = recording(make());
      let calls = 0;
      const mk = (wire: "envelope" | "document") =>
        cache(async (id: number) => ({ ...VALUE, id, calls: ++calls }), {
          name: `wire.rt.${writer}.${integrity}`,
          namespace: ns,
          ttl: 60,
          backend,
          l1: false,
          wire,
          integrityChecking: integrity,
          ...bare,
        });
      const first = await mk(writer)(3);
      assert.equal(calls, 1);
      const stored = (await backend.get(keys[0]))!;
      const want = writer === "document" ? 0x7b : integrity ? 0x94 : 0xc1;
      assert.equal(stored[0], want, `${label} ${writer}/${integrity}: first byte`);
      // Read back by both wires' readers (fresh instances, L1 off): no recompute.
      for (const reader of ["envelope", "document"] as const) {
        assert.deepEqual(await mk(reader)(3), first, `${label} ${writer}→${reader}/${integrity}`);
      }
      assert.equal(calls, 1, `${label} ${writer}/${integrity}: answered from L2`);
    }
  }
}

test(
  "engine: both wires round trip and read each other on MemoryBackend and FileBackend",
  async () => {
    await roundTrips(() => new MemoryBackend(), "memory", "wmem");
    const dir = mkdtempSync(join(tmpdir(), "ck-wire-"));
    try {
      const fb = new FileBackend({ directory: dir });
      await roundTrips(() => fb, "file", "wfile");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  { sanitize: false },
); // the file backend keeps an eviction timer

test(
  "engine: both wires round trip and read each other on Redis",
  async () => {
    const id = crypto.randomUUID().slice(0, 8);
    const rb = new RedisBackend({
      url: SHARED_REDIS_URL,
      keyPrefix: `test:wire:${id}:`,
      invalidationChannel: `test:wire:${id}:inv`,
    });
    try {
      await roundTrips(() => rb, "redis", `wr${id}`);
      await rb.deleteByPrefix("").catch(() => 0);
    } finally {
      await rb.close();
    }
  },
  { ...sharedRedisTestOptions, sanitize: false },
);

test("engine, envelope wire: corrupt, truncated or foreign entries are misses, then overwritten", async () => {
  const { backend, keys } = recording(new MemoryBackend());
  let n = 0;
  const mk = () =>
    cache(async (id: number) => ({ id, n: ++n }), {
      name: "wire.corrupt",
      ttl: 60,
      backend,
      l1: false,
      ...bare,
    });
  await mk()(1);
  const key = keys[0];
  const good = (await backend.get(key))!;
  assert.equal(good[0], 0x94);
  const flipped = good.slice();
  flipped[4] ^= 0xff;
  const payload = new Uint8Array([0x82, 0xa2, 0x69, 0x64, 0x01, 0xa1, 0x6e, 0x63]); // {id: 1, n: 99}
  const variants: [string, Uint8Array][] = [
    ["empty", new Uint8Array(0)],
    ["truncated envelope", good.subarray(0, good.length - 2)],
    ["flipped envelope byte", flipped],
    ["envelope of another format", encodeEnvelope(payload, "json")],
    ["map junk", new Uint8Array([0x84, 0xa1, 0x61, 0x01])],
    ["magic only", new Uint8Array([0xc1, 0x63, 0x6b])],
    ["frame v1", framed({ payload: Array.from(payload) }).map((x, i) => i === 3 ? 1 : x)],
    ["frame without an envelope, integrity on", framed({ payload: Array.from(payload) })],
    ["frame of another serializer", framed({ serializer: "pickle", payload: Array.from(payload) })],
    ["frame claims an envelope", framed({ flags: 0x01, payload: Array.from(payload) })],
    ["frame truncated", framed({ payload: Array.from(payload) }).subarray(0, 20)],
    [
      "frame encrypted, no key configured",
      framed({
        flags: 0x02,
        fingerprint: new Array(16).fill(0),
        label: "default",
        payload: Array.from(payload),
      }),
    ],
    ["random", crypto.getRandomValues(new Uint8Array(64))],
  ];
  for (const [what, bytes] of variants) {
    await backend.set(key, bytes, 60);
    const before: number = n;
    const v = await mk()(1);
    assert.equal(n, before + 1, `${what}: recomputed`);
    assert.deepEqual(v, { id: 1, n: before + 1 }, what);
    assert.equal((await backend.get(key))![0], 0x94, `${what}: overwritten with a good entry`);
  }
  // The control: a framed good entry with the same payload is a hit (not a miss).
  await backend.set(key, framed({ flags: 0x01, payload: Array.from(encodeEnvelope(payload)) }), 60);
  assert.deepEqual(await mk()(1), { id: 1, n: 99 });
});

test("engine, envelope wire: undefined results and other serializers are framed", async () => {
  const { backend, keys } = recording(new MemoryBackend());
  let calls = 0;
  const f = () =>
    cache(async (_x: number) => {
      calls++;
      return undefined;
    }, { name: "wire.undef", ttl: 60, backend, l1: false, ...bare });
  assert.equal(await f()(1), undefined);
  const stored = (await backend.get(keys[0]))!;
  assert.equal(stored[0], 0xc1);
  assert.equal(stored[4], 0x09, "flags: envelope + undefined");
  assert.equal(await f()(1), undefined);
  assert.equal(calls, 1);
  const j = recording(new MemoryBackend());
  const g = () =>
    cache(async (x: number) => ({ x, calls: ++calls }), {
      name: "wire.json",
      ttl: 60,
      backend: j.backend,
      serializer: "json",
      l1: false,
      ...bare,
    });
  const v = await g()(2);
  const d = decodeWire((await j.backend.get(j.keys[0]))!);
  assert.equal(d.serializer, "json");
  assert.equal(d.format, "json");
  assert.deepEqual(await g()(2), v);
});

test("engine, envelope wire: fail-safe keeps fresh_until in the header; stale is a fallback only", async () => {
  const { backend, keys } = recording(new MemoryBackend());
  let fail = false;
  let n = 0;
  const mk = () =>
    cache(async (id: number) => {
      if (fail) throw new Error("down");
      return { id, n: ++n };
    }, { name: "wire.failsafe", ttl: 60, staleTtl: 600, backend, l1: false, ...bare });
  const t0 = Date.now();
  await mk()(1);
  const stored = (await backend.get(keys[0]))!;
  assert.equal(stored[0], 0xc1);
  assert.equal(stored[4] & 0x05, 0x05, "flags: envelope + fresh_until");
  const fresh = decodeWire(stored).freshUntil!;
  assert.ok(fresh >= t0 + 60_000 && fresh <= Date.now() + 60_000, `fresh_until ${fresh - t0}`);
  // Rewrite the entry as already stale (same payload, fresh_until in the past).
  const doc = decodeWire(stored);
  await backend.set(
    keys[0],
    encodeWire({ ...doc, freshUntil: Date.now() - 1000 }, "envelope"),
    600,
  );
  fail = true;
  assert.deepEqual(await mk()(1), { id: 1, n: 1 }, "stale value served while the function fails");
  fail = false;
  assert.deepEqual(await mk()(1), { id: 1, n: 2 }, "stale is a miss when the function works");
});

test("engine, envelope wire: secure entries are framed, bound to key and tenant, and rotate", async () => {
  const K1 = hexKey();
  const K2 = hexKey();
  const { backend, keys } = recording(new MemoryBackend());
  let n = 0;
  const work = async (id: number) => ({ id, secret: "plaintext-marker", n: ++n });
  const mk = (masterKey: string, previousKeys: string[] = []) =>
    cache.secure(work, {
      name: "wire.secure",
      ttl: 60,
      backend,
      l1: false,
      encryption: { masterKey, previousKeys, singleTenant: false },
    });
  await withTenant("acme", () => mk(K1)(1));
  await withTenant("globex", () => mk(K1)(1));
  assert.equal(n, 2);
  const [acmeKey, globexKey] = keys;
  const acme = (await backend.get(acmeKey))!;
  assert.equal(acme[0], 0xc1);
  assert.equal(acme[4], 0x03, "flags: envelope + encrypted");
  assert.ok(!new TextDecoder().decode(acme).includes("plaintext-marker"));
  const d = decodeWire(acme);
  assert.equal(d.encryption!.tenantId, acmeKey.split(":")[1], "label = the key's tenant segment");
  assert.match(d.encryption!.keyFingerprint, /^[0-9a-f]{32}$/);
  assert.deepEqual(await withTenant("acme", () => mk(K1)(1)), {
    id: 1,
    secret: "plaintext-marker",
    n: 1,
  });
  assert.equal(n, 2, "a fresh instance decrypts the framed entry");
  // Tampering: header fields feed the AAD; moved ciphertext fails authentication.
  const globex = decodeWire((await backend.get(globexKey))!);
  const tampered: [string, Uint8Array][] = [
    ["compressed flag cleared", encodeWire({ ...d, compressed: false }, "envelope")],
    ["format changed", encodeWire({ ...d, format: "json" }, "envelope")],
    ["relabelled as globex", encodeWire({ ...d, encryption: globex.encryption }, "envelope")],
    [
      "globex ciphertext moved to acme",
      encodeWire({ ...globex, encryption: d.encryption }, "envelope"),
    ],
    [
      "ciphertext bit flipped",
      encodeWire({ ...d, data: d.data.map((x, i) => i === 20 ? x ^ 1 : x) }, "envelope"),
    ],
  ];
  for (const [what, bytes] of tampered) {
    await backend.set(acmeKey, bytes, 60);
    const before: number = n;
    assert.deepEqual(
      await withTenant("acme", () => mk(K1)(1)),
      { id: 1, secret: "plaintext-marker", n: before + 1 },
      what,
    );
    assert.equal(n, before + 1, `${what}: a miss`);
  }
  // Rotation: K2 with K1 previous reads the K1 entry, rewrites it in the envelope wire under K2.
  const oldFp = decodeWire((await backend.get(globexKey))!).encryption!.keyFingerprint;
  const before: number = n;
  await withTenant("globex", () => mk(K2, [K1])(1));
  assert.equal(n, before, "read with the previous key");
  const deadline = Date.now() + 10_000;
  let moved: Uint8Array | null = null;
  while (Date.now() < deadline && moved === null) {
    if ((await backend.get(globexKey)) === null) { // the old copy is deleted after the rewrite
      for (const k of new Set(keys)) {
        if (k === acmeKey || k === globexKey) continue;
        moved = await backend.get(k);
      }
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.ok(moved !== null && moved[0] === 0xc1, "rewritten in the envelope wire");
  assert.notEqual(decodeWire(moved).encryption!.keyFingerprint, oldFp, "under the current key");
  assert.equal(await withTenant("globex", () => mk(K2)(1)).then((v) => v.n), 2);
  assert.equal(n, before, "the rewritten entry reads under K2 alone");
});
