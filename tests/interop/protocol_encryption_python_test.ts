/**
 * Cross-checks of the encryption layer against an independent implementation: Debian's
 * python3-cryptography (HKDF, AESGCM) plus hashlib, with the salt, AAD and fingerprint built in
 * Python from the protocol text. Python derives the same keys, decrypts what we encrypt, and
 * encrypts what we decrypt (including an entry under a previous master key, found by fingerprint).
 */
import { test } from "../_harness.ts";
import assert from "node:assert/strict";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_CRYPTO } from "../_python_cachekit.ts";
import {
  buildAad,
  decrypt,
  deriveTenantKeys,
  encrypt,
  keyFingerprint,
  TenantCipher,
} from "../../protocol/encryption.ts";
import { DecryptionError } from "../../errors.ts";

const hex = (b: Uint8Array): string =>
  Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string): Uint8Array =>
  new Uint8Array(s.match(/../g)?.map((h) => parseInt(h, 16)) ?? []);
const rand = (n: number): Uint8Array => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i += 65536) crypto.getRandomValues(out.subarray(i, i + 65536));
  return out;
};

/** The protocol in Python, from the spec text; reads one JSON job on stdin, prints JSON. */
const PY = PY_CRYPTO + String.raw`
import sys, json, os
from cryptography.exceptions import InvalidTag

job = json.loads(sys.stdin.read())
out = {}
if "derive" in job:
    res = []
    for c in job["derive"]:
        m = bytes.fromhex(c["master"])
        keys = {dom: derive(m, dom, c["tenant"]) for dom in ("encryption", "authentication", "cache_keys")}
        res.append({
            "encryption": keys["encryption"].hex(),
            "authentication": keys["authentication"].hex(),
            "cache_keys": keys["cache_keys"].hex(),
            "fingerprint": fingerprint(keys["encryption"]).hex(),
            "aad": aad(c["tenant"], c["cache_key"], c["format"], c["compressed"], c.get("original_type")).hex(),
        })
    out["derive"] = res
if "decrypt" in job:
    res = []
    for c in job["decrypt"]:
        key = derive(bytes.fromhex(c["master"]), "encryption", c["tenant"])
        blob = bytes.fromhex(c["ciphertext"])
        a = aad(c["tenant"], c["cache_key"], c["format"], c["compressed"], c.get("original_type"))
        try:
            pt = AESGCM(key).decrypt(blob[:12], blob[12:], a)
            res.append({"ok": True, "sha256": hashlib.sha256(pt).hexdigest(), "len": len(pt),
                        "fp_matches": fingerprint(key).hex() == c.get("fingerprint")})
        except InvalidTag:
            res.append({"ok": False})
    out["decrypt"] = res
if "encrypt" in job:
    res = []
    for c in job["encrypt"]:
        key = derive(bytes.fromhex(c["master"]), "encryption", c["tenant"])
        nonce = os.urandom(12)
        pt = bytes.fromhex(c["plaintext"])
        a = aad(c["tenant"], c["cache_key"], c["format"], c["compressed"], c.get("original_type"))
        res.append({"ciphertext": (nonce + AESGCM(key).encrypt(nonce, pt, a)).hex(),
                    "fingerprint": fingerprint(key).hex()})
    out["encrypt"] = res
print(json.dumps(out))
`;

interface Case {
  master: string;
  tenant: string;
  cache_key: string;
  format: string;
  compressed: boolean;
  original_type?: string;
}

const CASES: Case[] = [
  {
    master: hex(new TextEncoder().encode("test_master_key_32_bytes_long!!!")),
    tenant: "test_tenant_123",
    cache_key: "ns:users:func:app.get_user:args:" + "ab".repeat(32) + ":1s",
    format: "msgpack",
    compressed: true,
  },
  { master: hex(rand(32)), tenant: "acme", cache_key: "k", format: "msgpack", compressed: false },
  {
    master: hex(rand(64)),
    tenant: "tenant-ü-東京-🙂",
    cache_key: "ключ:😀",
    format: "orjson",
    compressed: false,
    original_type: "dict",
  },
  {
    master: hex(rand(16)),
    tenant: "t".repeat(1024),
    cache_key: "x",
    format: "msgpack",
    compressed: false,
  },
  {
    master: hex(rand(32)),
    tenant: "default",
    cache_key: "k".repeat(300),
    format: "arrow",
    compressed: true,
  },
];

test("python: HKDF tenant keys, fingerprints and AAD bytes match cryptography's", async () => {
  const py = runPythonJson<{ derive: Record<string, string>[] }>(
    PY,
    JSON.stringify({ derive: CASES }),
  );
  assert.equal(py.derive.length, CASES.length);
  for (const [i, c] of CASES.entries()) {
    const keys = await deriveTenantKeys(unhex(c.master), c.tenant);
    const want = py.derive[i];
    assert.equal(hex(keys.encryptionKey), want.encryption, `case ${i} encryption`);
    assert.equal(hex(keys.authenticationKey), want.authentication, `case ${i} authentication`);
    assert.equal(hex(keys.cacheKeySalt), want.cache_keys, `case ${i} cache_keys`);
    assert.equal(hex(await keyFingerprint(keys.encryptionKey)), want.fingerprint, `case ${i} fp`);
    assert.equal(
      hex(buildAad(c.tenant, c.cache_key, c.format, c.compressed, c.original_type)),
      want.aad,
      `case ${i} aad`,
    );
    if (unhex(c.master).length >= 32) {
      const cipher = new TenantCipher({ masterKey: unhex(c.master) });
      assert.equal(await cipher.fingerprintFor(c.tenant), want.fingerprint);
    }
  }
}, pythonTestOptions);

test(
  "python: decrypts our ciphertexts (and refuses them under another cache key or tenant)",
  async () => {
    const sha = async (b: Uint8Array) =>
      hex(new Uint8Array(await crypto.subtle.digest("SHA-256", b as BufferSource)));
    const jobs: (Case & { ciphertext: string; fingerprint?: string })[] = [];
    const expected: { ok: boolean; sha256?: string; len?: number }[] = [];
    for (const [i, c] of CASES.entries()) {
      const pt = rand([0, 1, 1024, 100_000, 17][i]);
      const master = unhex(c.master);
      let ciphertext: Uint8Array, fingerprint: string | undefined;
      if (master.length >= 32) {
        ({ ciphertext, fingerprint } = await new TenantCipher({ masterKey: master }).encryptFor(
          c.tenant,
          c.cache_key,
          pt,
          c.format,
          c.compressed,
          c.original_type,
        ));
      } else {
        const { encryptionKey } = await deriveTenantKeys(master, c.tenant);
        ciphertext = await encrypt(
          encryptionKey,
          pt,
          buildAad(c.tenant, c.cache_key, c.format, c.compressed, c.original_type),
        );
      }
      jobs.push({ ...c, ciphertext: hex(ciphertext), fingerprint });
      expected.push({ ok: true, sha256: await sha(pt), len: pt.length });
      // Moved to another cache key, another tenant, flipped compressed flag: Python refuses too.
      jobs.push({ ...c, cache_key: c.cache_key + "2", ciphertext: hex(ciphertext) });
      jobs.push({ ...c, tenant: c.tenant.slice(0, 100) + "2", ciphertext: hex(ciphertext) });
      jobs.push({ ...c, compressed: !c.compressed, ciphertext: hex(ciphertext) });
      expected.push({ ok: false }, { ok: false }, { ok: false });
    }
    const py = runPythonJson<
      { decrypt: { ok: boolean; sha256?: string; len?: number; fp_matches?: boolean }[] }
    >(
      PY,
      JSON.stringify({ decrypt: jobs }),
    );
    for (const [i, want] of expected.entries()) {
      const got = py.decrypt[i];
      assert.equal(got.ok, want.ok, `job ${i}`);
      if (want.ok) {
        assert.equal(got.sha256, want.sha256, `job ${i}`);
        assert.equal(got.len, want.len);
        if (jobs[i].fingerprint) assert.equal(got.fp_matches, true, `job ${i} fingerprint`);
      }
    }
  },
  pythonTestOptions,
);

test(
  "python: we decrypt Python's ciphertexts; rotation picks the old key by its fingerprint",
  async () => {
    const oldMaster = rand(32);
    const newMaster = rand(32);
    const entries = CASES.filter((c) => unhex(c.master).length >= 32).map((c, i) => ({
      ...c,
      master: hex(i % 2 === 0 ? oldMaster : newMaster),
      plaintext: hex(rand(i * 500)),
    }));
    const py = runPythonJson<{ encrypt: { ciphertext: string; fingerprint: string }[] }>(
      PY,
      JSON.stringify({ encrypt: entries }),
    );
    const reader = new TenantCipher({ masterKey: newMaster, previousKeys: [oldMaster] });
    for (const [i, e] of entries.entries()) {
      const { ciphertext, fingerprint } = py.encrypt[i];
      const ct = unhex(ciphertext);
      const args = [e.format, e.compressed, fingerprint, e.original_type] as const;
      // Picked by Python's fingerprint, current or previous key.
      assert.equal(hex(await reader.decryptFor(e.tenant, e.cache_key, ct, ...args)), e.plaintext);
      // Without a fingerprint too.
      assert.equal(
        hex(
          await reader.decryptFor(
            e.tenant,
            e.cache_key,
            ct,
            e.format,
            e.compressed,
            undefined,
            e.original_type,
          ),
        ),
        e.plaintext,
      );
      // Low-level path with our derived key.
      const { encryptionKey } = await deriveTenantKeys(unhex(e.master), e.tenant);
      assert.equal(
        hex(
          await decrypt(
            encryptionKey,
            ct,
            buildAad(e.tenant, e.cache_key, e.format, e.compressed, e.original_type),
          ),
        ),
        e.plaintext,
      );
      // Moved to another cache key or tenant: a DecryptionError (a miss for the cache).
      await assert.rejects(
        reader.decryptFor(e.tenant, e.cache_key + "x", ct, ...args),
        DecryptionError,
      );
      await assert.rejects(
        reader.decryptFor(e.tenant + "x", e.cache_key, ct, ...args),
        DecryptionError,
      );
      await assert.rejects(
        reader.decryptFor(e.tenant + "x", e.cache_key, ct, e.format, e.compressed),
        DecryptionError,
      );
      // A reader without the old key refuses old entries.
      if (e.master === hex(oldMaster)) {
        const fresh = new TenantCipher({ masterKey: newMaster });
        await assert.rejects(fresh.decryptFor(e.tenant, e.cache_key, ct, ...args), DecryptionError);
      }
    }
  },
  pythonTestOptions,
);
