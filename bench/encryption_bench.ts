/**
 * Encryption layer cost: our encrypt/decrypt (1 KB, 100 KB) against raw WebCrypto AES-GCM with a
 * pre-imported key in the same run, and the cached-key path of TenantCipher against deriving the
 * tenant keys on every call.
 *
 * Run: `deno bench -A bench/encryption_bench.ts`
 */
import {
  buildAad,
  decrypt,
  deriveTenantKeys,
  encrypt,
  NonceGenerator,
  TenantCipher,
} from "../protocol/encryption.ts";

const subtle = globalThis.crypto.subtle;
const rand = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};

const master = rand(32);
const tenant = "acme";
const cacheKey = "ns:users:func:app.get_user:args:" + "ab".repeat(32) + ":1s";
const aad = buildAad(tenant, cacheKey, "msgpack", true);
const { encryptionKey } = await deriveTenantKeys(master, tenant);
const rawKey = await subtle.importKey("raw", encryptionKey as BufferSource, "AES-GCM", false, [
  "encrypt",
  "decrypt",
]);
const cipher = new TenantCipher({ masterKey: master });
await cipher.fingerprintFor(tenant); // warm the key cache
const nonces = new NonceGenerator();

for (const [label, size] of [["1 KB", 1024], ["100 KB", 100 * 1024]] as const) {
  const pt = rand(size);
  const sealed = await encrypt(encryptionKey, pt, aad);
  const { ciphertext, fingerprint } = await cipher.encryptFor(
    tenant,
    cacheKey,
    pt,
    "msgpack",
    true,
  );

  Deno.bench({
    name: `raw WebCrypto AES-GCM encrypt ${label} (key pre-imported)`,
    group: `encrypt ${label}`,
    baseline: true,
    async fn() {
      const iv = nonces.next();
      await subtle.encrypt(
        { name: "AES-GCM", iv: iv as BufferSource, additionalData: aad as BufferSource },
        rawKey,
        pt as BufferSource,
      );
    },
  });
  Deno.bench({
    name: `TenantCipher.encryptFor ${label} (cached key, AAD built per call)`,
    group: `encrypt ${label}`,
    async fn() {
      await cipher.encryptFor(tenant, cacheKey, pt, "msgpack", true);
    },
  });
  Deno.bench({
    name: `encrypt(rawKeyBytes) ${label} (imports the key per call)`,
    group: `encrypt ${label}`,
    async fn() {
      await encrypt(encryptionKey, pt, aad);
    },
  });

  Deno.bench({
    name: `raw WebCrypto AES-GCM decrypt ${label} (key pre-imported)`,
    group: `decrypt ${label}`,
    baseline: true,
    async fn() {
      await subtle.decrypt(
        {
          name: "AES-GCM",
          iv: sealed.subarray(0, 12) as BufferSource,
          additionalData: aad as BufferSource,
        },
        rawKey,
        sealed.subarray(12) as BufferSource,
      );
    },
  });
  Deno.bench({
    name: `TenantCipher.decryptFor ${label} (cached key, by fingerprint)`,
    group: `decrypt ${label}`,
    async fn() {
      await cipher.decryptFor(tenant, cacheKey, ciphertext, "msgpack", true, fingerprint);
    },
  });
  Deno.bench({
    name: `decrypt(rawKeyBytes) ${label} (imports the key per call)`,
    group: `decrypt ${label}`,
    async fn() {
      await decrypt(encryptionKey, sealed, aad);
    },
  });
}

const small = rand(1024);
Deno.bench({
  name: "cached key: TenantCipher.encryptFor 1 KB",
  group: "key path (1 KB encrypt)",
  baseline: true,
  async fn() {
    await cipher.encryptFor(tenant, cacheKey, small, "msgpack", true);
  },
});
Deno.bench({
  name: "derive per call: deriveTenantKeys + encrypt 1 KB",
  group: "key path (1 KB encrypt)",
  async fn() {
    const keys = await deriveTenantKeys(master, tenant);
    await encrypt(keys.encryptionKey, small, aad);
  },
});
Deno.bench({
  name: "derive per call: new TenantCipher + encryptFor 1 KB",
  group: "key path (1 KB encrypt)",
  async fn() {
    await new TenantCipher({ masterKey: master }).encryptFor(
      tenant,
      cacheKey,
      small,
      "msgpack",
      true,
    );
  },
});
Deno.bench({
  name: "buildAad (typical cache key)",
  group: "pieces",
  fn() {
    buildAad(tenant, cacheKey, "msgpack", true);
  },
});
Deno.bench({
  name: "NonceGenerator.next",
  group: "pieces",
  fn() {
    nonces.next();
  },
});
