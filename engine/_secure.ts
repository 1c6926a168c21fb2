/**
 * The engine's secure mode (`encryption` on, `cache.secure`): the key ring and how a tenant appears
 * in backend keys and entry metadata.
 *
 * **Values.** Every value written to L2 is the protocol's encrypted envelope: the serializer's bytes
 * (in the ByteStorage envelope: integrity checking cannot be turned off with `cache.secure`),
 * AES-256-GCM under the tenant's HKDF key, AAD v0x03 binding tenant id, cache key (the protocol key,
 * without the `t:…:` segment, as cachekit-py binds it), format and compressed flag
 * ({@linkcode TenantCipher}), extended with the wire's own fields where cachekit-py has none (the
 * envelope wire's framed header; a document's `js_undefined` / `fresh_until`, see `protocol/stored_value.ts`). The
 * wire document's metadata carries `encrypted`, `tenant_id`, `encryption_algorithm` and
 * `key_fingerprint`; the envelope wire's framed header carries the same fields in binary.
 *
 * **Tenant segments** (`encryption.tenantKeys`):
 * - `"hashed"` (default when encrypting): the backend key is `t:@{h}:{cache key}` with
 *   `h = hex(HMAC-SHA256(K, utf8(tenant)))[0..32]` (128 bits) and
 *   `K = HKDF-SHA256(master key, info "tenant_segment", salt "cachekit_v1_" || u8(14) ||
 *   "tenant_segment" || u16be(8) || "cachekit")`, i.e. the protocol's domain-key derivation with
 *   domain `tenant_segment` and tenant salt `cachekit`. The metadata `tenant_id` holds the same
 *   `@{h}` label, so neither keys nor values show a tenant id. A keyed hash (not a plain hash) so
 *   that short or guessable tenant ids cannot be recovered by hashing candidates without the
 *   master key. `@` never appears in a percent-encoded tenant, so hashed and plain segments never
 *   collide. One `K` per master key (not per tenant): the segment is computed synchronously on the
 *   call path (HMAC with `@noble/hashes`, cached per tenant), without keeping the master key bytes.
 * - `"plain"`: `t:{percent-encoded tenant}:` and `tenant_id` = the tenant, byte for byte what
 *   cachekit-py 0.3.0 writes, so Python and TypeScript share encrypted entries. Choose it only when
 *   that sharing matters more than hiding tenant ids from whoever can read the backend.
 *
 * **Rotation.** Writes use the current master key; a read picks the master key whose per-tenant key
 * fingerprint matches the entry's `key_fingerprint` ({@linkcode TenantCipher}). In hashed mode the
 * segment also depends on the master key, so on a miss under the current segment the engine looks
 * under each previous key's segment ({@linkcode SecureKeys.previousSegments}, only while previous
 * keys are configured), and an entry found there, or any entry still encrypted under a previous key,
 * is rewritten under the current key and segment (and the old copy deleted), unless the key changed
 * since the read. Deleting one entry deletes its copies under the previous segments
 * ({@linkcode SecureKeys.previousKeys}); clearing a function or namespace deletes the segments of
 * every configured key.
 *
 * **L1** holds, for an entry of a secure function, the encrypted wire document exactly as stored in
 * L2 (decrypted again on each L1 hit), never the plaintext value or its serialized bytes. The one
 * exception is an L1-only (`backend: null`) *synchronous* function: WebCrypto is asynchronous, so
 * its L1 keeps values as plain mode does (nothing leaves the process). Set `l1: false` to keep
 * nothing in process memory between calls.
 *
 * @module
 */
import { hkdf } from "@noble/hashes/hkdf.js";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import type { ResolvedConfig } from "../config/options.ts";
import { revealSecretKey } from "../config/secret_key.ts";
import { CacheConfigError } from "../errors.ts";
import { TenantCipher } from "../protocol/encryption.ts";
import { compareBytes, hkdfSalt, toHex } from "../protocol/internal.ts";
import { quoteTenant } from "../tenant.ts";
import {
  decodeWire,
  encodeWire,
  parseEnvelope,
  wireAadExtension,
  type WireDocument,
  type WireForm,
  wireOriginalType,
} from "../protocol/stored_value.ts";
import type { Backend } from "../backends/types.ts";
import { setTagged } from "./_backend.ts";
import { getCacheLogger } from "../health/logging.ts";

const log = getCacheLogger("engine");

const enc = new TextEncoder();
const SEGMENT_DOMAIN = enc.encode("tenant_segment");
const SEGMENT_SALT_TENANT = enc.encode("cachekit");
const MAX_CACHED_TENANTS = 4096;

/** Hashed segments of every secure function of this process (for namespace clearing). */
const hashedSegments = new Set<string>();

/** Every hashed tenant segment this process has used (current and previous keys). */
export function knownHashedSegments(): Iterable<string> {
  return hashedSegments;
}

/**
 * The segment key `K` of one master key (see the module doc).
 *
 * @param master Master key bytes.
 * @returns 32 bytes.
 */
export function segmentKey(master: Uint8Array): Uint8Array {
  return hkdf(sha256, master, hkdfSalt(SEGMENT_DOMAIN, SEGMENT_SALT_TENANT), SEGMENT_DOMAIN, 32);
}

/** The key ring and tenant labelling of one secure function. */
export class SecureKeys {
  /** The protocol cipher (current + previous master keys). */
  readonly cipher: TenantCipher;
  /** How tenants appear in backend keys and metadata. */
  readonly mode: "hashed" | "plain";
  /** Whether previous master keys are configured (rotation in progress). */
  readonly rotating: boolean;
  readonly #segKeys: Uint8Array[];
  readonly #segments = new Map<string, string[]>();

  constructor(enc: ResolvedConfig["encryption"]) {
    if (enc.masterKey === null) {
      throw new CacheConfigError(
        "encryption.masterKey",
        undefined,
        "a master key (hex, >= 32 bytes) in the options or CACHEKIT_MASTER_KEY",
      );
    }
    const masters = [enc.masterKey, ...enc.previousKeys].map(revealSecretKey);
    try {
      this.mode = enc.tenantKeys;
      this.rotating = masters.length > 1;
      this.#segKeys = this.mode === "hashed" ? masters.map(segmentKey) : [];
      // TenantCipher copies what it needs into non-extractable WebCrypto keys.
      this.cipher = new TenantCipher({ masterKey: masters[0], previousKeys: masters.slice(1) });
    } finally {
      for (const m of masters) m.fill(0);
    }
  }

  /** Segments of `tenant`, current key first (plain mode: the one percent-encoded id). */
  segments(tenant: string): string[] {
    let s = this.#segments.get(tenant);
    if (s !== undefined) return s;
    if (this.mode === "plain") s = [quoteTenant(tenant)];
    else {
      const msg = enc.encode(tenant);
      s = this.#segKeys.map((k) => "@" + toHex(hmac(sha256, k, msg), 0, 16));
      for (const seg of s) if (hashedSegments.size < 100_000) hashedSegments.add(seg);
    }
    if (this.#segments.size >= MAX_CACHED_TENANTS) {
      this.#segments.delete(this.#segments.keys().next().value!);
    }
    this.#segments.set(tenant, s);
    return s;
  }

  /** The segment new entries of `tenant` are written under. */
  segment(tenant: string): string {
    return this.segments(tenant)[0];
  }

  /** Segments of previous master keys (hashed mode with rotation), else none. */
  previousSegments(tenant: string): string[] {
    return this.mode === "hashed" && this.rotating ? this.segments(tenant).slice(1) : [];
  }

  /** The metadata `tenant_id` written for `tenant`. */
  label(tenant: string): string {
    return this.mode === "plain" ? tenant : this.segment(tenant);
  }

  /** Whether an entry labelled `label` may belong to `tenant` (the AAD decides for sure). */
  accepts(tenant: string, label: string): boolean {
    return this.mode === "plain" ? label === tenant : this.segments(tenant).includes(label);
  }

  /**
   * Rotation, hashed segments: `backendKey` (under `tenant`'s current segment) under each previous
   * master key's segment, where {@linkcode findPrevious} looks on a miss; none otherwise. A
   * deletion of the entry deletes these too, else a read would find its old copy there.
   */
  previousKeys(backendKey: string, tenant: string): string[] {
    const prev = this.previousSegments(tenant);
    if (prev.length === 0) return prev;
    const current = `t:${this.segment(tenant)}:`;
    if (!backendKey.startsWith(current)) return [];
    const rest = backendKey.slice(current.length);
    return prev.map((seg) => `t:${seg}:${rest}`);
  }

  /**
   * Rotation, hashed segments: the entry of `backendKey` (current segment) under a previous master
   * key's segment. Never throws (a failing backend: not found).
   *
   * @returns The bytes and the key they were found under, or nulls.
   */
  async findPrevious(
    b: Backend,
    backendKey: string,
    tenant: string,
  ): Promise<{ bytes: Uint8Array | null; from: string | null }> {
    for (const from of this.previousKeys(backendKey, tenant)) {
      try {
        const bytes = await b.get(from);
        if (bytes !== null) return { bytes, from };
      } catch {
        return { bytes: null, from: null };
      }
    }
    return { bytes: null, from: null };
  }

  /**
   * Rotation: rewrite an entry that was just read (and decrypted) under the current master key and
   * segment, when it was found under a previous segment (`from`) or encrypted under a previous key.
   * The document is re-sealed as is (same metadata, e.g. the fail-safe's `fresh_until`), with the
   * entry's remaining TTL when the backend can tell it; the old copy is deleted. Runs in the
   * background and never rejects.
   *
   * Never over a newer state of the key: the rewrite is made only if, just before it, `to` still
   * holds the bytes read (found under a previous segment: `to` is still empty) and
   * `entry.unchanged()` says nothing here wrote, deleted or invalidated it since the read (checked
   * last, in the turn that issues the write). Else a `set` made right after the read, or another
   * instance's write, was undone by the old value when the rewrite landed.
   *
   * @param b Backend.
   * @param stored The wire bytes read.
   * @param from The key they were read from when not `to` (previous segment), else `null`.
   * @param to The current backend key.
   * @param entry Tenant, protocol key (AAD), tags, the configured TTL of the entry, the wire to
   *   rewrite it in (default `"document"`), and whether the key is unchanged here since the read.
   * @returns When the rewrite is done, or skipped.
   */
  migrate(
    b: Backend,
    stored: Uint8Array,
    from: string | null,
    to: string,
    entry: {
      tenant: string;
      protoKey: string;
      tags: readonly string[] | null;
      ttl: number | null;
      wire?: WireForm;
      unchanged: () => boolean;
    },
  ): Promise<void> {
    if (!this.rotating) return Promise.resolve();
    return (async () => {
      const doc = decodeWire(stored);
      const enc = doc.encryption;
      if (!enc) return;
      const current = await this.cipher.fingerprintFor(entry.tenant);
      if (from === null && enc.keyFingerprint === current) return; // already under the current key
      const plain = await this.cipher.decryptFor(
        entry.tenant,
        entry.protoKey,
        doc.data,
        doc.format,
        doc.compressed,
        enc.keyFingerprint,
        doc.originalType || undefined,
        doc.aad ?? undefined,
      );
      const wire = entry.wire ?? "document";
      // The new label and fingerprint are part of the AAD extension (framed header). A document's
      // original type is kept; none (a framed entry, or a document's null) becomes the default,
      // written and sealed as a fresh write would.
      const next: WireDocument = {
        ...doc,
        originalType: doc.originalType ?? undefined,
        encryption: { tenantId: this.label(entry.tenant), keyFingerprint: current },
        check: undefined,
        aad: undefined,
        envelopeChecksum: wire === "document" && doc.compressed
          ? parseEnvelope(plain).checksumHex
          : undefined,
      };
      const sealed = await this.cipher.encryptFor(
        entry.tenant,
        entry.protoKey,
        plain,
        doc.format,
        doc.compressed,
        wireOriginalType(next, wire),
        wireAadExtension(next, wire) ?? undefined,
      );
      plain.fill(0);
      let ttl = entry.ttl;
      const probe = b.capabilities.ttl;
      if (probe) {
        const left = await probe.ttl(from ?? to);
        if (left === null) return; // gone meanwhile (invalidated): do not resurrect
        ttl = left === Infinity ? null : Math.max(1, Math.ceil(left));
      }
      // Not over a newer write (see above).
      const now = await b.get(to);
      if (from === null ? now === null || compareBytes(now, stored) !== 0 : now !== null) {
        if (from !== null && now !== null) await b.delete(from); // `to` supersedes the old copy
        return;
      }
      if (!entry.unchanged()) return;
      await setTagged(
        b,
        to,
        encodeWire({ ...next, data: sealed.ciphertext }, wire),
        ttl,
        entry.tags ?? null,
      );
      if (from !== null) await b.delete(from);
    })().catch((e) =>
      log.warn("rotation: rewriting {key} under the current key failed: {error}", {
        key: to,
        error: e instanceof Error ? e.message : String(e),
      })
    );
  }
}
