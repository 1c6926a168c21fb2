// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// cache.secure end to end: hashed tenant segments (no tenant id in keys or values), tenant context
// and extractor, missing tenant, moved or foreign ciphertext as a miss, key rotation with rewrite,
// what L1 holds, master-key handling (never shown), and no plaintext in Redis or on disk.
// Independent cross-checks with Python live in engine_secure_python_test.ts.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import {
  type Backend,
  cache,
  CacheConfigError,
  clearNamespace,
  FileBackend,
  invalidateTags,
  MemoryBackend,
  RedisBackend,
  TenantRequiredError,
  WireFormatError,
  withTenant,
} from "../../mod.ts";
import { decodeWire, encodeWire, wireOriginalType } from "../../protocol/stored_value.ts";
import { buildAad, deriveTenantKeys } from "../../protocol/mod.ts";
import { Engine } from "../../engine/_engine.ts";
import { lookupAsync } from "../../engine/_call.ts";
import { fastKey } from "../../engine/_keys.ts";
import { L1_SEALED, type SealedValue } from "../../engine/l1.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { readEnvConfig } from "../../config/env.ts";

const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const randKey = () => hex(crypto.getRandomValues(new Uint8Array(32)));
const K1 = randKey();
const K2 = randKey();
const K3 = randKey();
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const text = (b: Uint8Array) => new TextDecoder().decode(b);

const fromHexKey = (h: string) => Uint8Array.from(h.match(/../g)!, (x) => parseInt(x, 16));

const docOf = async (b: Backend, k: string) => JSON.parse(text((await b.get(k))!));

async function until(cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return true;
    await sleep(2);
  }
  return await cond();
}

test(
  "secure: backend keys carry a keyed hash of the tenant; no tenant id in keys or values",
  async () => {
    const s = recording();
    let n = 0;
    const opts = {
      name: "secure.hashed",
      wire: "document" as const, // this test reads the cachekit-py 0.3.0 JSON document
      namespace: "sec",
      ttl: 60,
      backend: s.backend,
      encryption: { masterKey: K1, singleTenant: false },
    };
    const work = async (id: number) => ({ id, owner: "value-marker", n: ++n });
    const f = cache.secure(work, opts);
    assert.equal((await withTenant("acme-corp", () => f(1))).n, 1);
    assert.equal((await withTenant("globex-inc", () => f(1))).n, 2);
    const keys = await s.live();
    assert.equal(keys.length, 2);
    for (const k of keys) {
      assert.match(k, /^t:@[0-9a-f]{32}:ns:sec:func:secure\.hashed:args:[0-9a-f]{64}:1s$/);
      assert.ok(!k.includes("acme") && !k.includes("globex"));
      const raw = text((await s.inner.get(k))!);
      for (const secret of ["acme", "globex", "value-marker"]) assert.ok(!raw.includes(secret));
      const doc = JSON.parse(raw);
      assert.equal(doc.metadata.encrypted, true);
      assert.equal(doc.metadata.tenant_id, k.split(":")[1], "metadata label = key segment");
      assert.ok(!atob(doc.data).includes("value-marker"));
    }
    assert.notEqual(keys[0].split(":")[1], keys[1].split(":")[1], "tenants get different segments");
    // Same master key, fresh instance: same segment, entry served without calling the function.
    const g = cache.secure(work, opts);
    assert.equal((await withTenant("acme-corp", () => g(1))).n, 1);
    assert.equal(n, 2);
    // Another master key: another segment for the same tenant (the hash is keyed).
    const s2 = recording();
    const h = cache.secure(work, {
      ...opts,
      backend: s2.backend,
      encryption: { masterKey: K2, singleTenant: false },
    });
    await withTenant("acme-corp", () => h(1));
    const acme1 = keys.find((k) => k === s.keys[0])!.split(":")[1];
    assert.notEqual(s2.keys[0].split(":")[1], acme1);
  },
  { sanitize: false },
);

test(
  "secure: a call without a tenant under a multi-tenant config is a TenantRequiredError",
  async () => {
    const s = recording();
    let n = 0;
    const f = cache.secure(async (id: number) => ({ id, n: ++n }), {
      name: "secure.notenant",
      ttl: 60,
      backend: s.backend,
      encryption: { masterKey: K1, singleTenant: false },
    });
    await assert.rejects(f(1), (e: unknown) => {
      assert.ok(e instanceof TenantRequiredError);
      assert.equal(e.code, "CACHE_TENANT");
      assert.match(e.message, /secure\.notenant: no tenant for this call.*withTenant/);
      return true;
    });
    // An extractor that finds no tenant (undefined) and no context: the same error.
    const g = cache.secure(async (_o: { tenant?: string }) => ({ n: ++n }), {
      name: "secure.extractor.none",
      ttl: 60,
      backend: s.backend,
      encryption: { masterKey: K1, tenant: (o) => o.tenant as string },
    });
    await assert.rejects(g({}), TenantRequiredError);
    assert.equal(n, 0, "the function never ran");
    assert.equal(s.keys.length, 0, "nothing was written");
    // Single-tenant (the default without an extractor): the "default" tenant.
    const d = cache.secure(async (id: number) => ({ id, n: ++n }), {
      name: "secure.single",
      ttl: 60,
      backend: s.backend,
      encryption: { masterKey: K1 },
    });
    assert.equal((await d(1)).n, 1);
  },
  { sanitize: false },
);

test("secure: tenant extractor and withTenant across awaits keep tenants apart", async () => {
  const s = recording();
  let n = 0;
  const f = cache.secure(async (org: string, id: number) => ({ org, id, n: ++n }), {
    name: "secure.extractor",
    ttl: 60,
    backend: s.backend,
    encryption: { masterKey: K1, tenant: (org) => org },
  });
  assert.equal((await f("a", 1)).n, 1);
  assert.equal((await f("b", 1)).n, 2);
  assert.equal((await f("a", 1)).n, 1);
  // withTenant: interleaved async work keeps each context's tenant.
  const w = cache.secure(async (id: number) => {
    await sleep(1);
    return { id, n: ++n };
  }, {
    name: "secure.ctx",
    ttl: 60,
    backend: s.backend,
    l1: false,
    encryption: { masterKey: K1, singleTenant: false },
  });
  const run = (t: string) =>
    withTenant(t, async () => {
      await sleep(Math.random() * 3);
      return (await w(7)).n;
    });
  const first = await Promise.all(["x", "y", "z", "x", "y", "z"].map(run));
  assert.equal(new Set(first).size, 3, "one computation per tenant");
  assert.deepEqual(first.slice(0, 3), first.slice(3));
  const again = await Promise.all(["z", "y", "x"].map(run));
  assert.deepEqual(again, [first[2], first[1], first[0]]);
}, { sanitize: false });

test(
  "secure: ciphertext moved to another key, tenant or master key is a miss (no crash)",
  async () => {
    const s = recording();
    let n = 0;
    const work = async (id: number) => ({ id, n: ++n });
    const mk = (masterKey: string, mode: "hashed" | "plain" = "hashed") =>
      cache.secure(work, {
        name: "secure.moved",
        wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
        ttl: 60,
        backend: s.backend,
        l1: false,
        encryption: { masterKey, singleTenant: false, tenantKeys: mode },
      });
    const f = mk(K1);
    await withTenant("acme", () => f(1)); // n=1
    await withTenant("acme", () => f(2)); // n=2
    await withTenant("globex", () => f(1)); // n=3
    const [a1, a2, g1] = s.keys;
    const a1doc = await docOf(s.inner, a1);
    // Same tenant, another cache key: AAD binds the key.
    await s.inner.set(a2, new TextEncoder().encode(JSON.stringify(a1doc)), 60);
    assert.deepEqual(await withTenant("acme", () => f(2)), { id: 2, n: 4 });
    // Another tenant, relabelled to pass the label check: AAD binds the tenant.
    const g1doc = await docOf(s.inner, g1);
    await s.inner.set(
      g1,
      new TextEncoder().encode(JSON.stringify({
        ...a1doc,
        metadata: { ...a1doc.metadata, tenant_id: g1doc.metadata.tenant_id },
      })),
      60,
    );
    assert.deepEqual(await withTenant("globex", () => f(1)), { id: 1, n: 5 });
    // Flipped ciphertext bit: a miss.
    const bytes = Uint8Array.from(atob(a1doc.data), (c) => c.charCodeAt(0));
    bytes[20] ^= 1;
    await s.inner.set(
      a1,
      new TextEncoder().encode(
        JSON.stringify({ ...a1doc, data: btoa(String.fromCharCode(...bytes)) }),
      ),
      60,
    );
    assert.deepEqual(await withTenant("acme", () => f(1)), { id: 1, n: 6 });
    // Another master key (plain segments, so it even looks under the same key): a miss.
    const p1 = mk(K1, "plain");
    await withTenant("acme", () => p1(9)); // n=7
    const p2 = mk(K2, "plain");
    assert.deepEqual(await withTenant("acme", () => p2(9)), { id: 9, n: 8 });
    // A plaintext entry under a secure function's key is refused too.
    const plainKey = s.keys.at(-1)!;
    const plainDoc = {
      data: btoa(String.fromCharCode(0x81, 0xa1, 0x6e, 0x63)),
      metadata: {
        format: "msgpack",
        encoding: "utf-8",
        compressed: false,
        original_type: "msgpack",
      },
      serializer: "default",
      version: "2.0",
    };
    await s.inner.set(plainKey, new TextEncoder().encode(JSON.stringify(plainDoc)), 60);
    assert.deepEqual(await withTenant("acme", () => p2(9)), { id: 9, n: 9 });
  },
  { sanitize: false },
);

for (const mode of ["hashed", "plain"] as const) {
  test(
    `secure (${mode}): rotation reads old entries by fingerprint and rewrites them`,
    async () => {
      const s = recording();
      let n = 0;
      const work = async (id: number) => ({ id, n: ++n });
      const mk = (masterKey: string, previousKeys: string[] = []) =>
        cache.secure(work, {
          name: `secure.rotate.${mode}`,
          wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
          ttl: 60,
          backend: s.backend,
          l1: false,
          encryption: { masterKey, previousKeys, singleTenant: false, tenantKeys: mode },
        });
      await withTenant("acme", () => mk(K1)(1));
      assert.equal(n, 1);
      const oldKey = s.keys[0];
      const oldFp = (await docOf(s.inner, oldKey)).metadata.key_fingerprint;
      // Rotated: K2 current, K1 previous. Served without calling the function …
      const rotated = mk(K2, [K1]);
      assert.deepEqual(await withTenant("acme", () => rotated(1)), { id: 1, n: 1 });
      assert.equal(n, 1);
      // … and rewritten under the new key (and, hashed, under the new segment; the old copy gone).
      let newKey = oldKey;
      assert.ok(
        await until(async () => {
          const live = await s.live();
          newKey = mode === "hashed" ? live.find((k) => k !== oldKey) ?? oldKey : oldKey;
          const doc = await s.inner.get(newKey);
          return doc !== null && JSON.parse(text(doc)).metadata.key_fingerprint !== oldFp &&
            (mode === "plain" || !(await s.inner.exists(oldKey)));
        }),
        "rewritten under the current key",
      );
      if (mode === "hashed") {
        assert.notEqual(newKey.split(":")[1], oldKey.split(":")[1]);
        assert.equal(newKey.split(":").slice(2).join(":"), oldKey.split(":").slice(2).join(":"));
      }
      // New writes use the new key; K2 alone (K1 retired) reads the rewritten entry.
      const only2 = mk(K2);
      assert.deepEqual(await withTenant("acme", () => only2(1)), { id: 1, n: 1 });
      assert.deepEqual(await withTenant("acme", () => only2(2)), { id: 2, n: 2 });
      // Without the key an entry was written with, it is a miss.
      assert.deepEqual(await withTenant("acme", () => mk(K3)(1)), { id: 1, n: 3 });
      // Two previous keys: an entry two rotations old is still found.
      await withTenant("old", () => mk(K1)(5)); // n=4
      assert.deepEqual(await withTenant("old", () => mk(K3, [K2, K1])(5)), { id: 5, n: 4 });
    },
    { sanitize: false },
  );
}

test(
  "secure: the AAD of each wire (document: cachekit-py's original_type, then the extension; framed: none)",
  async () => {
    const key = await deriveTenantKeys(fromHexKey(K1), "acme");
    const aes = await crypto.subtle.importKey("raw", key.encryptionKey.slice(), "AES-GCM", false, [
      "decrypt",
    ]);
    for (const wire of ["document", "envelope"] as const) {
      for (const staleTtl of [undefined, 60]) {
        const what = `${wire}${staleTtl ? ", fresh_until" : ""}`;
        const s = recording();
        let n = 0;
        const f = cache.secure(async (id: number) => ({ id, n: ++n }), {
          name: `secure.aad.${wire}.${staleTtl ?? 0}`,
          wire,
          ttl: 60,
          staleTtl,
          backend: s.backend,
          l1: false,
          ...bare,
          encryption: { masterKey: K1, singleTenant: false, tenantKeys: "plain" },
        });
        await withTenant("acme", () => f(1));
        const [k] = await s.live();
        const stored = (await s.inner.get(k))!;
        const doc = decodeWire(stored);
        assert.equal(doc.aad !== null, wire === "envelope" || staleTtl !== undefined, what);
        // AES-GCM with an AAD built by hand: v0x03 (with the original type the document carries,
        // as cachekit-py 0.3.0 builds it), then the wire's extension.
        const open = (originalType?: string) => {
          const base = buildAad(
            "acme",
            k.split(":").slice(2).join(":"),
            "msgpack",
            true,
            originalType,
          );
          const ext = doc.aad ?? new Uint8Array(0);
          const aad = new Uint8Array(base.length + ext.length);
          aad.set(base);
          aad.set(ext, base.length);
          return crypto.subtle.decrypt(
            { name: "AES-GCM", iv: doc.data.slice(0, 12), additionalData: aad },
            aes,
            doc.data.slice(12),
          );
        };
        const [withType, without] = wire === "document"
          ? ["msgpack", undefined]
          : [undefined, "msgpack"];
        await open(withType);
        await assert.rejects(open(without), `${what}: sealed with original type ${withType}`);
        if (wire === "envelope") continue;
        const json = JSON.parse(text(stored));
        assert.equal(json.metadata.original_type, "msgpack", what);
        // The original type is authenticated: edited or removed, the entry is a miss.
        for (const ot of ["json", null, ""]) {
          const edited = { ...json, metadata: { ...json.metadata, original_type: ot } };
          await s.inner.set(k, new TextEncoder().encode(JSON.stringify(edited)), 60);
          const before: number = n;
          assert.deepEqual(
            await withTenant("acme", () => f(1)),
            { id: 1, n: before + 1 },
            `${what}: ${ot}`,
          );
        }
      }
    }
  },
  { sanitize: false },
);

test("wire: decodeWire exposes a document's original_type, the AAD's fifth field", () => {
  const encryption = { tenantId: "acme", keyFingerprint: "0123456789abcdef0123456789abcdef" };
  const base = { data: new Uint8Array([1]), compressed: true, serializer: "default", encryption };
  const json = (b: Uint8Array) => JSON.parse(text(b));
  assert.equal(json(encodeWire(base)).metadata.original_type, "msgpack");
  assert.equal(decodeWire(encodeWire(base)).originalType, "msgpack");
  assert.equal(wireOriginalType(base, "document"), "msgpack");
  assert.equal(wireOriginalType({ ...base, format: "json" }, "document"), "json");
  for (const [ot, aadType] of [[null, undefined], ["", undefined], ["numpy", "numpy"]] as const) {
    const bytes = encodeWire({ ...base, originalType: ot });
    assert.equal(json(bytes).metadata.original_type, ot);
    assert.equal(decodeWire(bytes).originalType, ot);
    assert.equal(wireOriginalType({ ...base, originalType: ot }, "document"), aadType);
  }
  // The framed wire stores none and uses none.
  assert.equal(wireOriginalType(base, "envelope"), undefined);
  assert.equal(decodeWire(encodeWire(base, "envelope")).originalType, undefined);
  // Not text: an encrypted document is refused (its AAD cannot be built); a plain one ignores it.
  const doc = json(encodeWire(base));
  const withType = (d: typeof doc, ot: unknown) =>
    new TextEncoder().encode(
      JSON.stringify({ ...d, metadata: { ...d.metadata, original_type: ot } }),
    );
  assert.throws(() => decodeWire(withType(doc, 5)), WireFormatError);
  assert.throws(() => decodeWire(withType(doc, ["msgpack"])), WireFormatError);
  const plain = json(encodeWire({ ...base, encryption: null }));
  assert.equal(decodeWire(withType(plain, 5)).originalType, null);
  // Absent (not null): none.
  delete doc.metadata.original_type;
  assert.equal(decodeWire(new TextEncoder().encode(JSON.stringify(doc))).originalType, null);
});

test(
  "secure: clearing a function or namespace and tag invalidation reach hashed tenants",
  async () => {
    const s = recording();
    let n = 0;
    const f = cache.secure(async (id: number) => ({ id, n: ++n }), {
      name: "secure.clear",
      namespace: "secclear",
      ttl: 60,
      backend: s.backend,
      tags: (id) => [`item:${id}`],
      encryption: { masterKey: K1, singleTenant: false },
    });
    const call = (t: string, id: number) => withTenant(t, () => f(id));
    await call("a", 1);
    await call("b", 1);
    await call("a", 2);
    assert.equal((await s.live()).length, 3);
    await invalidateTags("item:1");
    assert.deepEqual((await s.live()).length, 1, "both tenants' item:1 entries gone");
    assert.equal((await call("a", 1)).n, 4);
    await f.cacheClear();
    assert.equal((await s.live()).length, 0);
    await call("a", 1);
    await call("b", 2);
    await clearNamespace("secclear");
    assert.equal((await s.live()).length, 0);
    assert.equal((await call("b", 2)).n, 7);
  },
  { sanitize: false },
);

for (const copy of ["clone", "freeze", "none"] as const) {
  test(`secure: L1 holds the encrypted document only, decrypted on each hit (copy: ${copy})`, async () => {
    const backend = new MemoryBackend();
    let n = 0;
    const config = resolveConfig({
      name: `secure.l1.${copy}`,
      l1: { copy },
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      ttl: 60,
      backend,
      ...bare,
      encryption: { masterKey: K1, singleTenant: false },
    }, "secure");
    const engine = new Engine({
      fn: async (id: number) => ({ id, note: "l1-plaintext-marker", n: ++n }),
      config,
      identity: `secure.l1.${copy}`,
    });
    const call = () =>
      withTenant(
        "acme",
        () => lookupAsync(engine, undefined, [1], fastKey(engine, undefined, [1])),
      );
    assert.equal(((await call()) as { n: number }).n, 1);
    const check = () => {
      assert.equal(engine.l1!.map.size, 1);
      for (const e of engine.l1!.map.values()) {
        assert.equal(e.kind, L1_SEALED, "kept sealed, not as a value");
        const sealed = e.value as SealedValue;
        assert.ok(sealed.bytes instanceof Uint8Array);
        const raw = text(sealed.bytes);
        assert.ok(!raw.includes("l1-plaintext-marker") && !raw.includes("acme"));
        assert.equal(JSON.parse(raw).metadata.encrypted, true);
        assert.ok(!atob(JSON.parse(raw).data).includes("l1-plaintext-marker"));
      }
    };
    check();
    // A hit from L1 decrypts the sealed bytes.
    assert.deepEqual(await call(), { id: 1, note: "l1-plaintext-marker", n: 1 });
    assert.equal(engine.stats.l1Hits, 1);
    // After an L2 hit (fresh engine, same backend), L1 again holds the sealed L2 bytes.
    engine.l1!.clear();
    assert.deepEqual(await call(), { id: 1, note: "l1-plaintext-marker", n: 1 });
    assert.equal(engine.stats.l2Hits, 1);
    check();
  });
}

test("secure: the master key never shows in config, inspect, JSON or errors", () => {
  const s = new MemoryBackend();
  const f = cache.secure(async (x: number) => x, {
    name: "secure.keyleak",
    backend: s,
    encryption: { masterKey: K1, previousKeys: [K2] },
  });
  const bytesOf = (h: string) => h.match(/../g)!.map((x) => parseInt(x, 16));
  const forbidden = (h: string) => [
    h,
    h.toUpperCase(),
    bytesOf(h).join(","),
    bytesOf(h).join(", "),
    h.match(/../g)!.join(" "),
    btoa(String.fromCharCode(...bytesOf(h))),
    `"0":${bytesOf(h)[0]},"1":${bytesOf(h)[1]},"2":${bytesOf(h)[2]}`,
  ];
  const views = [
    JSON.stringify(f.config),
    inspect(f, { depth: Infinity, showHidden: true }),
    inspect(f.config, { depth: Infinity, showHidden: true }),
    String(f.config.encryption.masterKey),
    `${f.config.encryption.previousKeys}`,
    JSON.stringify(structuredClone(f.config.encryption.masterKey)),
    Object.keys(f.config.encryption.masterKey!).join(","),
  ];
  for (const v of views) {
    for (const k of [K1, K2]) for (const s of forbidden(k)) assert.ok(!v.includes(s), v);
  }
  assert.equal(f.config.encryption.masterKey!.byteLength, 32);
  assert.match(JSON.stringify(f.config.encryption), /"masterKey":"\[redacted\]"/);
  assert.equal((f.config.encryption.masterKey as unknown as Uint8Array)[0], undefined);

  // Weak or malformed keys: CacheConfigError, key never echoed.
  const bad = [
    "ab".repeat(31), // 31 bytes
    K1.slice(0, 63), // odd length
    "zz" + K1.slice(2), // not hex
    "00".repeat(32), // all zero
    "0123456789abcdef".repeat(4), // repeating pattern
    hex(Uint8Array.from({ length: 32 }, (_, i) => i * 3)), // arithmetic sequence
  ];
  for (const key of bad) {
    for (
      const make of [
        () => cache.secure(async (x: number) => x, { backend: s, encryption: { masterKey: key } }),
        () =>
          cache(async (x: number) => x, {
            backend: s,
            encryption: { masterKey: K1, previousKeys: [key] },
          }),
        () => resolveConfig({ name: "env" }, "secure", readEnvConfig({ CACHEKIT_MASTER_KEY: key })),
      ]
    ) {
      let err: unknown;
      try {
        make();
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof CacheConfigError, `refused: ${key.length} chars`);
      for (const v of [err.message, String(err.value), inspect(err), JSON.stringify(err)]) {
        assert.ok(!v.includes(key) && !v.includes(key.slice(0, 16)), v);
      }
    }
  }
  // Secure without any key: a CacheConfigError naming the option and the variable.
  assert.throws(
    () => cache.secure(async (x: number) => x, { backend: s }),
    (e: unknown) => e instanceof CacheConfigError && /CACHEKIT_MASTER_KEY/.test(e.message),
  );
  // Hashed tenant segments need encryption's key.
  assert.throws(
    () => cache(async (x: number) => x, { backend: s, encryption: { tenantKeys: "hashed" } }),
    CacheConfigError,
  );
});

test("secure on a FileBackend: no tenant id, value or argument on disk", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-secure-"));
  try {
    const backend = new FileBackend({ directory: dir });
    let n = 0;
    const work = async (who: string) => ({ who, card: "4111-file-marker", n: ++n });
    const f = cache.secure(work, {
      name: "secure.file",
      ttl: 60,
      backend,
      ...bare,
      encryption: { masterKey: K1, singleTenant: false },
    });
    await withTenant("tenant-on-disk", () => f("arg-on-disk"));
    const files: string[] = [];
    const walk = (d: string) => {
      for (const e of readdirSync(d)) {
        const p = join(d, e);
        if (statSync(p).isDirectory()) walk(p);
        else files.push(p);
      }
    };
    walk(dir);
    assert.ok(files.length >= 1);
    for (const p of files) {
      const raw = new TextDecoder("latin1").decode(readFileSync(p));
      for (const s of ["tenant-on-disk", "arg-on-disk", "4111-file-marker"]) {
        assert.ok(!raw.includes(s) && !p.includes(s), `${s} not in ${p}`);
      }
    }
    const g = cache.secure(work, {
      name: "secure.file",
      ttl: 60,
      backend,
      ...bare,
      encryption: { masterKey: K1, singleTenant: false },
    });
    assert.equal((await withTenant("tenant-on-disk", () => g("arg-on-disk"))).n, 1);
    await backend.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, { sanitize: false });

/** SCAN a key prefix in Redis with Python's client: keys and values (hex). */
const PY_SCAN = String.raw`
import sys, json, redis
req = json.load(sys.stdin)
r = redis.Redis(host="127.0.0.1", port=6379)
out = []
for k in r.scan_iter(match=req["prefix"] + "*", count=1000):
    t = r.type(k).decode()
    v = r.get(k) if t == "string" else b""
    out.append({"key": k.hex(), "type": t, "value": (v or b"").hex()})
print(json.dumps(out))
`;

test("secure on Redis: SCAN finds no tenant id, plaintext value or argument", async () => {
  const id = crypto.randomUUID().slice(0, 8);
  const prefix = `cktest:secure:${id}:`;
  const backend = new RedisBackend({ url: "redis://127.0.0.1:6379", keyPrefix: prefix });
  const secrets = ["tenant-in-redis", "arg-in-redis", "ssn-123-45-6789", "Ada Lovelace"];
  try {
    let n = 0;
    const work = async (who: string, big: boolean) => ({
      who,
      name: "Ada Lovelace",
      ssn: "ssn-123-45-6789",
      blob: big ? "ssn-123-45-6789 ".repeat(4096) : "",
      n: ++n,
    });
    const f = cache.secure(
      work,
      {
        name: "secure.redis",
        namespace: `ns${id}`,
        ttl: 60,
        backend,
        tags: () => ["secure-tag"],
        encryption: { masterKey: K1, singleTenant: false },
      },
    );
    await withTenant("tenant-in-redis", () => f("arg-in-redis", false));
    await withTenant("tenant-in-redis", () => f("arg-in-redis", true));
    await withTenant("tenant-other", () => f("arg-in-redis", false));
    assert.equal(n, 3);
    const g = cache.secure(work, {
      name: "secure.redis",
      namespace: `ns${id}`,
      ttl: 60,
      backend,
      l1: false,
      encryption: { masterKey: K1, singleTenant: false },
    });
    assert.equal((await withTenant("tenant-in-redis", () => g("arg-in-redis", true))).n, 2);
    if (pythonTestOptions.ignore) return;
    const found = runPythonJson<{ key: string; type: string; value: string }[]>(
      PY_SCAN,
      JSON.stringify({ prefix }),
    );
    const valueKeys = found.filter((e) => e.type === "string");
    assert.ok(valueKeys.length >= 3, `entries found: ${found.length}`);
    const latin1 = (h: string) =>
      new TextDecoder("latin1").decode(
        Uint8Array.from(h.match(/../g) ?? [], (x) => parseInt(x, 16)),
      );
    for (const e of found) {
      const key = latin1(e.key);
      const value = latin1(e.value);
      for (const s of secrets) {
        assert.ok(!key.includes(s), `${s} in key ${key}`);
        assert.ok(!value.includes(s), `${s} in the value of ${key}`);
      }
    }
    const entryKeys = valueKeys.map((e) => latin1(e.key)).filter((k) => k.includes(":args:"));
    for (const k of entryKeys) assert.match(k.slice(prefix.length), /^t:@[0-9a-f]{32}:ns:/);
  } finally {
    await backend.capabilities.prefix?.deleteByPrefix("");
    await backend.close();
  }
}, { sanitize: false });

test("secure: a failing cipher (WebCrypto error) never fails the call; nothing is stored", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const f = cache.secure(async (id: number) => ({ id, n: ++n }), {
    name: "secure.cipherfail",
    ttl: 60,
    backend,
    encryption: { masterKey: K1 },
    ...bare,
  });
  // Fault injection at the platform boundary: WebCrypto's encrypt rejects as a broken provider would.
  const subtle = crypto.subtle;
  const original = subtle.encrypt;
  subtle.encrypt = () => Promise.reject(new DOMException("provider failure", "OperationError"));
  try {
    assert.deepEqual(await f(1), { id: 1, n: 1 }, "the function's answer comes through");
    assert.deepEqual(await f(1), { id: 1, n: 2 }, "nothing was cached (no plaintext fallback)");
    assert.equal(backend.size, 0, "no entry written to L2");
  } finally {
    subtle.encrypt = original;
    await backend.close();
  }
  assert.deepEqual(await f(1), { id: 1, n: 3 });
  assert.deepEqual(await f(1), { id: 1, n: 3 }, "cached again once encryption works");
});
