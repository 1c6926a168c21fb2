/**
 * Encryption layer (protocol layer 4): HKDF salt and AAD layouts checked byte by byte against
 * bytes built here from the protocol text, AES-256-GCM round trips and every decryption failure,
 * counter nonces, master-key parsing and key rotation.
 */
import { test } from "../_harness.ts";
import assert from "node:assert/strict";
import {
  buildAad,
  decrypt,
  deriveDomainKey,
  deriveTenantKeys,
  encrypt,
  keyFingerprint,
  NonceGenerator,
  parseMasterKey,
  TenantCipher,
} from "../../protocol/encryption.ts";
import { hkdfSalt } from "../../protocol/_crypto.ts";
import { CacheConfigError, CacheKeyError, CacheKitError, DecryptionError } from "../../errors.ts";

const enc = new TextEncoder();
const subtle = globalThis.crypto.subtle;
const u8 = (...parts: (number[] | Uint8Array | string)[]): Uint8Array => {
  const bytes: number[] = [];
  for (const p of parts) {
    if (typeof p === "string") bytes.push(...enc.encode(p));
    else bytes.push(...p);
  }
  return new Uint8Array(bytes);
};
const be32 = (n: number): number[] => [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
const be16 = (n: number): number[] => [n >>> 8, n & 0xff];
const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const rand = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};
const MASTER = u8("test_master_key_32_bytes_long!!!"); // cachekit-core's test key, 32 bytes

/** HKDF-SHA256 straight from WebCrypto with a salt built by the caller (the spec side). */
async function specHkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
  const k = await subtle.importKey("raw", ikm as BufferSource, "HKDF", false, ["deriveBits"]);
  return new Uint8Array(
    await subtle.deriveBits(
      { name: "HKDF", hash: "SHA-256", salt: salt as BufferSource, info: info as BufferSource },
      k,
      256,
    ),
  );
}

/** AES-256-GCM straight from WebCrypto: nonce || ct || tag. */
async function specSeal(
  key: Uint8Array,
  nonce: Uint8Array,
  pt: Uint8Array,
  aad: Uint8Array,
): Promise<Uint8Array> {
  const k = await subtle.importKey("raw", key as BufferSource, "AES-GCM", false, ["encrypt"]);
  const ct = new Uint8Array(
    await subtle.encrypt(
      { name: "AES-GCM", iv: nonce as BufferSource, additionalData: aad as BufferSource },
      k,
      pt as BufferSource,
    ),
  );
  return u8(nonce, ct);
}

async function rejectsWith(p: Promise<unknown>, cls: new (...a: never[]) => Error) {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${e}`);
    return true;
  });
}

// --- HKDF -------------------------------------------------------------------------------------

test("HKDF salt layout: prefix, u8 domain length, domain, u16be tenant length, tenant", () => {
  // cachekit-core's byte vector: domain "cache", tenant salt "tenant-123" → 30 bytes.
  const expected = u8("cachekit_v1_", [5], "cache", [0x00, 0x0a], "tenant-123");
  assert.equal(expected.length, 30);
  assert.deepEqual(hkdfSalt(enc.encode("cache"), enc.encode("tenant-123")), expected);
  // A 300-byte tenant uses the high byte of the u16; a multi-byte UTF-8 tenant counts bytes.
  const long = "t".repeat(300);
  assert.deepEqual(
    hkdfSalt(enc.encode("encryption"), enc.encode(long)),
    u8("cachekit_v1_", [10], "encryption", [0x01, 0x2c], long),
  );
  assert.deepEqual(
    hkdfSalt(enc.encode("cache_keys"), enc.encode("ü東")),
    u8("cachekit_v1_", [10], "cache_keys", [0, 5], [0xc3, 0xbc, 0xe6, 0x9d, 0xb1]),
  );
});

test("deriveDomainKey = HKDF-SHA256(ikm=master, salt=spec layout, info=domain, 32 bytes)", async () => {
  for (
    const [domain, tenant] of [
      ["encryption", "tenant123"],
      ["cache", "tenant-123"],
      ["foo", "bar"],
      ["foob", "ar"],
      ["d".repeat(255), "ü-東京-🙂"],
    ]
  ) {
    const d = enc.encode(domain), t = enc.encode(tenant);
    const salt = u8("cachekit_v1_", [d.length], d, be16(t.length), t);
    const want = await specHkdf(MASTER, salt, d);
    const got = await deriveDomainKey(MASTER, domain, tenant);
    assert.equal(got.length, 32);
    assert.deepEqual(got, want, `${domain.slice(0, 10)}/${tenant}`);
  }
  // Length prefixes keep (foo, bar) and (foob, ar) apart.
  assert.notDeepEqual(
    await deriveDomainKey(MASTER, "foo", "bar"),
    await deriveDomainKey(MASTER, "foob", "ar"),
  );
});

test("deriveTenantKeys: encryption / authentication / cache_keys domains, tenant id as salt", async () => {
  const keys = await deriveTenantKeys(MASTER, "test_tenant_123");
  assert.deepEqual(
    keys.encryptionKey,
    await deriveDomainKey(MASTER, "encryption", "test_tenant_123"),
  );
  assert.deepEqual(
    keys.authenticationKey,
    await deriveDomainKey(MASTER, "authentication", "test_tenant_123"),
  );
  assert.deepEqual(
    keys.cacheKeySalt,
    await deriveDomainKey(MASTER, "cache_keys", "test_tenant_123"),
  );
  const all = new Set([keys.encryptionKey, keys.authenticationKey, keys.cacheKeySalt].map(hex));
  assert.equal(all.size, 3);
  const other = await deriveTenantKeys(MASTER, "test_tenant_124");
  assert.notDeepEqual(other.encryptionKey, keys.encryptionKey);
  const otherMaster = await deriveTenantKeys(
    u8("different_master_key_32_bytes!!!"),
    "test_tenant_123",
  );
  assert.notDeepEqual(otherMaster.encryptionKey, keys.encryptionKey);
});

test("deriveDomainKey bounds: master >= 16 bytes, domain 1..255, tenant salt 1..1024 bytes", async () => {
  const secret = u8("0123456789abcde"); // 15 bytes
  await assert.rejects(deriveDomainKey(secret, "encryption", "t"), (e: unknown) => {
    assert.ok(e instanceof CacheConfigError);
    assert.ok(!e.message.includes("0123456789abcde") && !e.message.includes(hex(secret)));
    assert.equal(e.value, "<redacted>");
    return true;
  });
  assert.equal((await deriveDomainKey(rand(16), "encryption", "t")).length, 32);
  await rejectsWith(deriveDomainKey(MASTER, "", "t"), CacheConfigError);
  await rejectsWith(deriveDomainKey(MASTER, "d".repeat(256), "t"), CacheConfigError);
  await rejectsWith(deriveDomainKey(MASTER, "é".repeat(128), "t"), CacheConfigError); // 256 bytes
  await rejectsWith(deriveDomainKey(MASTER, "encryption", ""), CacheConfigError);
  await rejectsWith(deriveDomainKey(MASTER, "encryption", "t".repeat(1025)), CacheConfigError);
  await rejectsWith(deriveDomainKey(MASTER, "encryption", "\ud800x"), CacheConfigError);
  await rejectsWith(deriveTenantKeys(MASTER, ""), CacheConfigError);
  assert.equal((await deriveDomainKey(MASTER, "encryption", "t".repeat(1024))).length, 32);
});

test("keyFingerprint = first 16 bytes of SHA-256('key_fingerprint_v1' || key)", async () => {
  for (const key of [new Uint8Array(0), MASTER, rand(32)]) {
    const d = new Uint8Array(
      await subtle.digest("SHA-256", u8("key_fingerprint_v1", key) as BufferSource),
    );
    assert.deepEqual(await keyFingerprint(key), d.slice(0, 16));
  }
  assert.notDeepEqual(
    await keyFingerprint(u8("test_key_1_with_32_bytes_exactly!")),
    await keyFingerprint(u8("test_key_2_with_32_bytes_exactly!")),
  );
});

// --- AAD --------------------------------------------------------------------------------------

test("AAD v0x03 layout byte by byte", () => {
  const field = (s: string) => {
    const b = enc.encode(s);
    return u8(be32(b.length), b);
  };
  assert.deepEqual(
    buildAad("acme", "users:123:profile"),
    u8([3], field("acme"), field("users:123:profile"), field("msgpack"), field("False")),
  );
  // Hand-written bytes for a small case, no helper involved.
  assert.deepEqual(
    buildAad("t", "k", "msgpack", true),
    new Uint8Array([
      0x03,
      0,
      0,
      0,
      1,
      0x74,
      0,
      0,
      0,
      1,
      0x6b,
      0,
      0,
      0,
      7,
      0x6d,
      0x73,
      0x67,
      0x70,
      0x61,
      0x63,
      0x6b,
      0,
      0,
      0,
      4,
      0x54,
      0x72,
      0x75,
      0x65,
    ]),
  );
  assert.deepEqual(
    buildAad("tenant-ü", "ns:x:func:f:args:00:1s", "orjson", false, "dict"),
    u8(
      [3],
      field("tenant-ü"),
      field("ns:x:func:f:args:00:1s"),
      field("orjson"),
      field("False"),
      field("dict"),
    ),
  );
  // An empty original type is left out (as cachekit-py does).
  assert.deepEqual(buildAad("t", "k", "msgpack", false, ""), buildAad("t", "k"));
  // A 300-byte cache key: length field 00 00 01 2c.
  const long = "k".repeat(300);
  assert.deepEqual(buildAad("t", long).subarray(6, 10), new Uint8Array([0, 0, 1, 0x2c]));
  assert.throws(() => buildAad("t", "\udc00"), CacheKeyError);
  assert.throws(() => buildAad("\ud800", "k"), CacheConfigError);
});

test("AAD: UTF-8 of every code point class matches TextEncoder; lone surrogates refused", () => {
  const field = (s: string) => {
    const b = enc.encode(s);
    return u8(be32(b.length), b);
  };
  const edge = "\u0000\u007f\u0080\u07ff\u0800\ud7ff\ue000\uffff\u{10000}\u{1f642}\u{10ffff}";
  const samples = [edge, "", "plain", "ü東京🙂", edge.split("").reverse().join("").normalize()];
  for (let i = 0; i < 200; i++) {
    let s = "";
    for (let j = 0; j < 20; j++) {
      const cp = [0x41, 0xe9, 0x6771, 0x1f600, 0x10fff0][j % 5] + Math.floor(Math.random() * 15);
      s += String.fromCodePoint(cp);
    }
    samples.push(s);
  }
  for (const s of samples.filter((x) => x.isWellFormed())) {
    assert.deepEqual(
      buildAad(s, s + "k", s + "f", false, s || undefined),
      u8([3], field(s), field(s + "k"), field(s + "f"), field("False"), s ? field(s) : []),
    );
  }
  for (const bad of ["\ud800", "a\ud800", "\ud800a", "\udc00", "a\udfff\ud800", "\ud83d\ud83d"]) {
    assert.throws(() => buildAad("t", bad), CacheKeyError);
    assert.throws(() => buildAad(bad, "k"), CacheConfigError);
    assert.throws(() => buildAad("t", "k", bad), CacheConfigError);
    assert.throws(() => buildAad("t", "k", "msgpack", false, bad), CacheConfigError);
  }
});

// --- AES-256-GCM ------------------------------------------------------------------------------

test("encrypt/decrypt round trips; stored form is nonce || ciphertext || tag", async () => {
  const key = rand(32);
  const aad = buildAad("t", "k");
  for (const n of [0, 1, 15, 16, 17, 1000, 100_000]) {
    const pt = rand(n);
    const ct = await encrypt(key, pt, aad);
    assert.equal(ct.length, 12 + n + 16);
    assert.deepEqual(await decrypt(key, ct, aad), pt);
  }
  // With an explicit nonce the bytes equal raw WebCrypto AES-GCM output prefixed by the nonce.
  const nonce = rand(12);
  const pt = enc.encode("hello cachekit");
  assert.deepEqual(await encrypt(key, pt, aad, nonce), await specSeal(key, nonce, pt, aad));
  // And a value sealed by raw WebCrypto decrypts.
  assert.deepEqual(await decrypt(key, await specSeal(key, nonce, pt, aad), aad), pt);
});

test("encrypt/decrypt refuse bad key and nonce sizes without echoing the key", async () => {
  const key = rand(16);
  await assert.rejects(encrypt(key, u8("x"), u8("a")), (e: unknown) => {
    assert.ok(e instanceof CacheConfigError);
    assert.ok(!e.message.includes(hex(key)));
    return true;
  });
  await rejectsWith(decrypt(rand(31), rand(40), u8("a")), CacheConfigError);
  await rejectsWith(encrypt(rand(32), u8("x"), u8("a"), rand(16)), CacheConfigError);
});

test("decryption fails with DecryptionError: wrong key, tenant, cache key, format, flag", async () => {
  const master = rand(32);
  const a = await deriveTenantKeys(master, "tenant-a");
  const b = await deriveTenantKeys(master, "tenant-b");
  const pt = enc.encode("payload");
  const aad = buildAad("tenant-a", "users:1");
  const ct = await encrypt(a.encryptionKey, pt, aad);
  assert.deepEqual(await decrypt(a.encryptionKey, ct, aad), pt);
  // wrong key
  await rejectsWith(decrypt(rand(32), ct, aad), DecryptionError);
  // wrong tenant: its key and its AAD, and each alone
  await rejectsWith(decrypt(b.encryptionKey, ct, buildAad("tenant-b", "users:1")), DecryptionError);
  await rejectsWith(decrypt(b.encryptionKey, ct, aad), DecryptionError);
  await rejectsWith(decrypt(a.encryptionKey, ct, buildAad("tenant-b", "users:1")), DecryptionError);
  // moved to another cache key
  await rejectsWith(decrypt(a.encryptionKey, ct, buildAad("tenant-a", "users:2")), DecryptionError);
  // other format / compressed flag / original type
  await rejectsWith(
    decrypt(a.encryptionKey, ct, buildAad("tenant-a", "users:1", "orjson")),
    DecryptionError,
  );
  await rejectsWith(
    decrypt(a.encryptionKey, ct, buildAad("tenant-a", "users:1", "msgpack", true)),
    DecryptionError,
  );
  await rejectsWith(
    decrypt(a.encryptionKey, ct, buildAad("tenant-a", "users:1", "msgpack", false, "dict")),
    DecryptionError,
  );
});

test("decryption fails for a flipped bit in nonce, body and tag, and for truncation", async () => {
  const key = rand(32);
  const aad = buildAad("t", "k");
  const ct = await encrypt(key, rand(64), aad); // nonce 0..11, body 12..75, tag 76..91
  for (const i of [0, 5, 11, 12, 40, 75, 76, 85, 91]) {
    for (const bit of [0x01, 0x80]) {
      const bad = ct.slice();
      bad[i] ^= bit;
      await rejectsWith(decrypt(key, bad, aad), DecryptionError);
    }
  }
  for (const n of [0, 1, 12, 27]) {
    await assert.rejects(decrypt(key, ct.subarray(0, n), aad), (e: unknown) => {
      assert.ok(e instanceof DecryptionError);
      assert.match(e.message, /too short/);
      return true;
    });
  }
  // 28 bytes or more but cut: authentication fails.
  await rejectsWith(decrypt(key, ct.subarray(0, ct.length - 1), aad), DecryptionError);
  await rejectsWith(decrypt(key, ct.subarray(0, 28), aad), DecryptionError);
  // Appended byte.
  await rejectsWith(decrypt(key, u8(ct, [0]), aad), DecryptionError);
  // The message never carries the key.
  await assert.rejects(decrypt(key, ct, buildAad("t", "other")), (e: unknown) => {
    assert.ok(e instanceof DecryptionError && !e.message.includes(hex(key)));
    return true;
  });
});

// --- Nonces -----------------------------------------------------------------------------------

test("NonceGenerator: instance id (8) + big-endian counter (4), unique", () => {
  const g = new NonceGenerator();
  const id = g.instanceId;
  assert.equal(id.length, 8);
  const seen = new Set<string>();
  for (let i = 0; i < 5000; i++) {
    const n = g.next();
    assert.equal(n.length, 12);
    assert.deepEqual(n.subarray(0, 8), id);
    assert.deepEqual(n.subarray(8), new Uint8Array(be32(i)));
    seen.add(hex(n));
  }
  assert.equal(seen.size, 5000);
  assert.equal(g.counter, 5000);
  // Generators never share an instance id.
  const ids = new Set(Array.from({ length: 1000 }, () => hex(new NonceGenerator().instanceId)));
  assert.equal(ids.size, 1000);
  // A counter crossing a byte boundary is big-endian.
  const h = new NonceGenerator({ startCounter: 0x01020304 });
  assert.deepEqual(h.next().subarray(8), new Uint8Array([1, 2, 3, 4]));
  assert.deepEqual(h.next().subarray(8), new Uint8Array([1, 2, 3, 5]));
});

test("NonceGenerator: exhaustion throws and never wraps", () => {
  const g = new NonceGenerator({ startCounter: 0xfffffffe });
  assert.equal(g.remaining, 2);
  assert.deepEqual(g.next().subarray(8), new Uint8Array([0xff, 0xff, 0xff, 0xfe]));
  assert.deepEqual(g.next().subarray(8), new Uint8Array([0xff, 0xff, 0xff, 0xff]));
  assert.equal(g.remaining, 0);
  for (let i = 0; i < 3; i++) {
    assert.throws(() => g.next(), (e: unknown) => {
      assert.ok(e instanceof CacheKitError);
      assert.equal(e.code, "CACHE_NONCE_EXHAUSTED");
      return true;
    });
  }
  assert.equal(g.counter, 2 ** 32);
  assert.throws(() => new NonceGenerator({ startCounter: 2 ** 32 }).next(), CacheKitError);
  assert.throws(() => new NonceGenerator({ startCounter: -1 }), CacheConfigError);
  assert.throws(() => new NonceGenerator({ startCounter: 1.5 }), CacheConfigError);
});

test("encrypt without a nonce uses the module generator: same instance, counter + 1", async () => {
  const key = rand(32);
  const a = await encrypt(key, u8("x"), u8("a"));
  const b = await encrypt(key, u8("x"), u8("a"));
  assert.deepEqual(a.subarray(0, 8), b.subarray(0, 8));
  const ca = new DataView(a.buffer, a.byteOffset).getUint32(8);
  const cb = new DataView(b.buffer, b.byteOffset).getUint32(8);
  assert.equal(cb, ca + 1);
  assert.notDeepEqual(a, b);
});

// --- Master keys ------------------------------------------------------------------------------

test("parseMasterKey accepts >= 32 random bytes of hex, any case, trimmed", () => {
  const key = rand(32);
  assert.deepEqual(parseMasterKey(hex(key)), key);
  assert.deepEqual(parseMasterKey(` ${hex(key).toUpperCase()}\n`), key);
  const long = rand(64);
  assert.deepEqual(parseMasterKey(hex(long)), long);
});

test("parseMasterKey refuses malformed, short and weak keys, never echoing them", () => {
  const sample = hex(rand(32));
  const bad: [string, RegExp][] = [
    ["", /hex/],
    [sample.slice(1), /hex/], // odd length
    ["zz" + sample.slice(2), /hex/],
    ["0x" + sample, /hex/],
    [sample.slice(0, 62), /at least 32 bytes/],
    ["aa".repeat(32), /weak/],
    ["00".repeat(48), /weak/],
    [sample.slice(0, 32).repeat(2), /weak/], // a 16-byte block twice
    [hex(new Uint8Array(Array.from({ length: 32 }, (_, i) => i))), /weak/], // 00 01 .. 1f
    [hex(new Uint8Array(Array.from({ length: 32 }, (_, i) => (i * 7) % 11))), /weak/],
  ];
  for (const [input, why] of bad) {
    assert.throws(() => parseMasterKey(input, "CACHEKIT_MASTER_KEY"), (e: unknown) => {
      assert.ok(e instanceof CacheConfigError, `${input}: ${e}`);
      assert.equal(e.option, "CACHEKIT_MASTER_KEY");
      assert.equal(e.value, "<redacted>");
      assert.match(e.message, why);
      if (input.length >= 8) assert.ok(!e.message.includes(input.slice(2, 10)), e.message);
      return true;
    });
  }
  assert.throws(() => parseMasterKey("aa".repeat(32), "masterKey"), /Invalid masterKey/);
});

// --- TenantCipher -----------------------------------------------------------------------------

test("TenantCipher round trip; fingerprint is of the tenant's derived encryption key", async () => {
  const master = rand(32);
  const cipher = new TenantCipher({ masterKey: master });
  const pt = rand(2000);
  const { ciphertext, fingerprint } = await cipher.encryptFor(
    "acme",
    "ns:a:k",
    pt,
    "msgpack",
    true,
  );
  const keys = await deriveTenantKeys(master, "acme");
  assert.equal(fingerprint, hex(await keyFingerprint(keys.encryptionKey)));
  assert.match(fingerprint, /^[0-9a-f]{32}$/);
  assert.equal(await cipher.fingerprintFor("acme"), fingerprint);
  // The same bytes open with the low-level API and the spec AAD.
  assert.deepEqual(
    await decrypt(keys.encryptionKey, ciphertext, buildAad("acme", "ns:a:k", "msgpack", true)),
    pt,
  );
  assert.deepEqual(
    await cipher.decryptFor("acme", "ns:a:k", ciphertext, "msgpack", true, fingerprint),
    pt,
  );
  assert.deepEqual(await cipher.decryptFor("acme", "ns:a:k", ciphertext, "msgpack", true), pt);
  // Fingerprint as bytes works too.
  assert.deepEqual(
    await cipher.decryptFor(
      "acme",
      "ns:a:k",
      ciphertext,
      "msgpack",
      true,
      await keyFingerprint(keys.encryptionKey),
    ),
    pt,
  );
  // Other tenants get other fingerprints.
  assert.notEqual(await cipher.fingerprintFor("other"), fingerprint);
  // A hex master key gives the same keys.
  const fromHex = new TenantCipher({ masterKey: hex(master) });
  assert.deepEqual(await fromHex.decryptFor("acme", "ns:a:k", ciphertext, "msgpack", true), pt);
});

test("TenantCipher: wrong tenant, moved key, tamper and truncation are DecryptionErrors", async () => {
  const cipher = new TenantCipher({ masterKey: rand(32) });
  const { ciphertext, fingerprint } = await cipher.encryptFor("a", "k1", u8("v"));
  await rejectsWith(cipher.decryptFor("b", "k1", ciphertext), DecryptionError);
  await rejectsWith(
    cipher.decryptFor("b", "k1", ciphertext, "msgpack", false, fingerprint),
    DecryptionError,
  );
  await rejectsWith(
    cipher.decryptFor("a", "k2", ciphertext, "msgpack", false, fingerprint),
    DecryptionError,
  );
  await rejectsWith(
    cipher.decryptFor("a", "k1", ciphertext, "orjson", false, fingerprint),
    DecryptionError,
  );
  const bad = ciphertext.slice();
  bad[bad.length - 1] ^= 1;
  await rejectsWith(
    cipher.decryptFor("a", "k1", bad, "msgpack", false, fingerprint),
    DecryptionError,
  );
  await rejectsWith(cipher.decryptFor("a", "k1", ciphertext.subarray(0, 27)), DecryptionError);
  await rejectsWith(
    cipher.decryptFor("a", "k1", ciphertext, "msgpack", false, "zz".repeat(16)),
    DecryptionError,
  );
  await rejectsWith(
    cipher.decryptFor("a", "k1", ciphertext, "msgpack", false, "abcd"),
    DecryptionError,
  );
  await rejectsWith(cipher.encryptFor("a", "", u8("v")), CacheKeyError);
  await rejectsWith(cipher.decryptFor("a", "", ciphertext), CacheKeyError);
  await rejectsWith(cipher.encryptFor("", "k", u8("v")), CacheConfigError);
  // A different master key cannot read it.
  const stranger = new TenantCipher({ masterKey: rand(32) });
  await rejectsWith(stranger.decryptFor("a", "k1", ciphertext), DecryptionError);
  await rejectsWith(
    stranger.decryptFor("a", "k1", ciphertext, "msgpack", false, fingerprint),
    DecryptionError,
  );
});

test("rotation: old entries readable with previousKeys, chosen by fingerprint", async () => {
  const k1 = rand(32), k2 = rand(32), k3 = rand(32);
  const v1 = await new TenantCipher({ masterKey: k1 }).encryptFor("t", "key", u8("one"));
  const v2 = await new TenantCipher({ masterKey: k2 }).encryptFor("t", "key", u8("two"));
  const rotated = new TenantCipher({ masterKey: k3, previousKeys: [k2, k1] });
  assert.equal(rotated.keyCount, 3);
  assert.deepEqual(
    await rotated.decryptFor("t", "key", v1.ciphertext, "msgpack", false, v1.fingerprint),
    u8("one"),
  );
  assert.deepEqual(
    await rotated.decryptFor("t", "key", v2.ciphertext, "msgpack", false, v2.fingerprint),
    u8("two"),
  );
  // Without a fingerprint every key is tried.
  assert.deepEqual(await rotated.decryptFor("t", "key", v1.ciphertext), u8("one"));
  // A fingerprint match is binding: v1's bytes under v2's fingerprint are refused.
  await rejectsWith(
    rotated.decryptFor("t", "key", v1.ciphertext, "msgpack", false, v2.fingerprint),
    DecryptionError,
  );
  // New writes use the current key, which the old configuration cannot read.
  const v3 = await rotated.encryptFor("t", "key", u8("three"));
  assert.equal(
    v3.fingerprint,
    hex(await keyFingerprint((await deriveTenantKeys(k3, "t")).encryptionKey)),
  );
  assert.notEqual(v3.fingerprint, v1.fingerprint);
  const old = new TenantCipher({ masterKey: k1 });
  await rejectsWith(
    old.decryptFor("t", "key", v3.ciphertext, "msgpack", false, v3.fingerprint),
    DecryptionError,
  );
  await rejectsWith(old.decryptFor("t", "key", v3.ciphertext), DecryptionError);
  // Once a key is dropped, its entries are unreadable (an unknown fingerprint, no attempt).
  const dropped = new TenantCipher({ masterKey: k3, previousKeys: [k2] });
  await rejectsWith(
    dropped.decryptFor("t", "key", v1.ciphertext, "msgpack", false, v1.fingerprint),
    DecryptionError,
  );
});

test("TenantCipher configuration errors redact keys", () => {
  const k = rand(32);
  const check = (fn: () => unknown, option: string) =>
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof CacheConfigError, String(e));
      assert.equal(e.option, option);
      assert.ok(!e.message.includes(hex(k)) && !e.message.includes(hex(k).slice(0, 16)));
      return true;
    });
  check(() => new TenantCipher({ masterKey: rand(31) }), "masterKey");
  check(() => new TenantCipher({ masterKey: "aa".repeat(32) }), "masterKey");
  check(() => new TenantCipher({ masterKey: k, previousKeys: [k.slice()] }), "previousKeys[0]");
  check(() => new TenantCipher({ masterKey: k, previousKeys: [hex(k)] }), "previousKeys[0]");
  const p = rand(32);
  check(() => new TenantCipher({ masterKey: k, previousKeys: [p, p.slice()] }), "previousKeys[1]");
  check(
    () =>
      new TenantCipher({ masterKey: k, previousKeys: [rand(32), rand(32), rand(32), rand(32)] }),
    "previousKeys",
  );
  check(() => new TenantCipher({ masterKey: k, previousKeys: [rand(20)] }), "previousKeys[0]");
  check(() => new TenantCipher({ masterKey: k, maxCachedTenants: 0 }), "maxCachedTenants");
});

test("TenantCipher key cache: bounded, concurrent first use, survives eviction", async () => {
  const cipher = new TenantCipher({ masterKey: rand(32), maxCachedTenants: 2 });
  // Concurrent first use of one tenant: all results agree.
  const fps = await Promise.all(Array.from({ length: 20 }, () => cipher.fingerprintFor("x")));
  assert.equal(new Set(fps).size, 1);
  const entries = [];
  for (const t of ["a", "b", "c", "d"]) {
    entries.push([t, await cipher.encryptFor(t, "k", u8(t))] as const);
  }
  // "a" and "b" were evicted; their keys are derived again and still read the entries.
  for (const [t, v] of entries) {
    assert.deepEqual(
      await cipher.decryptFor(t, "k", v.ciphertext, "msgpack", false, v.fingerprint),
      u8(t),
    );
  }
  cipher.clearCache();
  const [t, v] = entries[0];
  assert.deepEqual(
    await cipher.decryptFor(t, "k", v.ciphertext, "msgpack", false, v.fingerprint),
    u8(t),
  );
  // A failed derivation is not cached as a failure.
  await rejectsWith(cipher.encryptFor("x".repeat(1025), "k", u8("v")), CacheConfigError);
});

test("TenantCipher reuses AADs per exact tuple: warm reads bind tenant, key, format, flag", async () => {
  const master = rand(32);
  const cipher = new TenantCipher({ masterKey: master });
  const keys = await deriveTenantKeys(master, "ab");
  // Warm the cipher with one tuple, then use tuples whose fields concatenate to the same text
  // (in field order, NUL-separated, or format first): each must behave as on a cold cipher.
  const K = "Fc\u0000k";
  const v = await cipher.encryptFor("ab", K, u8("v"), "msgpack", true);
  assert.deepEqual(
    await cipher.decryptFor("ab", K, v.ciphertext, "msgpack", true, v.fingerprint),
    u8("v"),
  );
  for (
    const [k, f, c] of [
      [K + "msg", "pack", true],
      ["Fc", "k\u0000msgpack", true],
      ["c\u0000k", "msgpackT", false],
      [K, "msgpack", false],
    ] as const
  ) {
    // Same tenant, so the same derived key: only the AAD can refuse these.
    await rejectsWith(
      cipher.decryptFor("ab", k, v.ciphertext, f, c, v.fingerprint),
      DecryptionError,
    );
    // And a write under such a tuple carries that tuple's spec AAD.
    const w = await cipher.encryptFor("ab", k, u8("w"), f, c);
    assert.deepEqual(
      await decrypt(keys.encryptionKey, w.ciphertext, buildAad("ab", k, f, c)),
      u8("w"),
    );
  }
  // A tenant / cache key split: the write carries its own tuple's AAD.
  const split = await cipher.encryptFor("a", "b" + K, u8("s"), "msgpack", true);
  assert.deepEqual(
    await decrypt(
      (await deriveTenantKeys(master, "a")).encryptionKey,
      split.ciphertext,
      buildAad("a", "b" + K, "msgpack", true),
    ),
    u8("s"),
  );
  // A second write with a warm AAD still carries the spec AAD.
  const again = await cipher.encryptFor("ab", K, u8("x"), "msgpack", true);
  assert.deepEqual(
    await decrypt(keys.encryptionKey, again.ciphertext, buildAad("ab", K, "msgpack", true)),
    u8("x"),
  );
  // The fingerprint in any accepted form (stored lowercase hex, uppercase hex, bytes) selects it.
  const fpBytes = await keyFingerprint(keys.encryptionKey);
  for (const fp of [v.fingerprint, v.fingerprint.toUpperCase(), fpBytes]) {
    assert.deepEqual(await cipher.decryptFor("ab", K, v.ciphertext, "msgpack", true, fp), u8("v"));
  }
});

test("TenantCipher reuses AADs per exact tuple: the original type is part of it", async () => {
  const master = rand(32);
  const cipher = new TenantCipher({ masterKey: master });
  const keys = await deriveTenantKeys(master, "ab");
  const v = await cipher.encryptFor("ab", "k", u8("v"), "msgpack", true, "msgpack");
  assert.deepEqual(
    await decrypt(
      keys.encryptionKey,
      v.ciphertext,
      buildAad("ab", "k", "msgpack", true, "msgpack"),
    ),
    u8("v"),
  );
  // Warm, then tuples that differ only in the original type (or move text across fields).
  for (let i = 0; i < 2; i++) {
    assert.deepEqual(
      await cipher.decryptFor("ab", "k", v.ciphertext, "msgpack", true, v.fingerprint, "msgpack"),
      u8("v"),
    );
    for (
      const [f, t] of [
        ["msgpack", undefined],
        ["msgpack", ""],
        ["msgpack", "json"],
        ["msgpack7:msgpack", undefined],
        ["msgpac", "kmsgpack"],
      ] as const
    ) {
      await rejectsWith(
        cipher.decryptFor("ab", "k", v.ciphertext, f, true, v.fingerprint, t),
        DecryptionError,
      );
      const w = await cipher.encryptFor("ab", "k", u8("w"), f, true, t);
      assert.deepEqual(
        await decrypt(keys.encryptionKey, w.ciphertext, buildAad("ab", "k", f, true, t)),
        u8("w"),
      );
    }
  }
});

test("TenantCipher nonces are counter based and unique per instance", async () => {
  const cipher = new TenantCipher({ masterKey: rand(32) });
  const seen = new Set<string>();
  let prev: Uint8Array | undefined;
  for (let i = 0; i < 200; i++) {
    const { ciphertext } = await cipher.encryptFor("t", "k", u8("same"));
    const nonce = ciphertext.subarray(0, 12);
    if (prev) {
      assert.deepEqual(nonce.subarray(0, 8), prev.subarray(0, 8));
      const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset).getUint32(8);
      assert.equal(dv(nonce), dv(prev) + 1);
    }
    prev = nonce.slice();
    seen.add(hex(ciphertext));
  }
  assert.equal(seen.size, 200);
});
