/**
 * AAD v0x03, the additional authenticated data that binds a ciphertext to its tenant, cache key,
 * format, compressed flag and original type. Apart because it runs on every encrypted read and
 * write and is encoded by hand (see below); it needs no key.
 *
 * @module
 */
import { CacheConfigError, CacheKeyError } from "../errors.ts";

/** Version byte that starts an AAD built by {@linkcode buildAad}. */
export const AAD_VERSION = 0x03;

/**
 * Build AAD v0x03: byte `0x03`, then for each of tenant id, cache key, format, `"True"`/`"False"`
 * (compressed) and, when non-empty, the original type: a 4-byte big-endian length and the UTF-8
 * bytes. (An empty `originalType` is left out, as cachekit-py does.)
 *
 * @param tenantId Tenant id.
 * @param cacheKey Full cache key the value is stored under.
 * @param format Serialization format name, default `"msgpack"`.
 * @param compressed Whether the plaintext is compressed (the metadata's `compressed`), default false.
 * @param originalType Optional original-type string (cachekit-py metadata `original_type`).
 * @returns The AAD bytes.
 * @throws {CacheConfigError} For a tenant id or format that is not a well-formed string.
 * @throws {CacheKeyError} For a cache key that is not a well-formed string.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildAad } from "@cachekit/core/protocol";
 *
 * const aad = buildAad("t", "k");
 * assert.equal(aad[0], 3);
 * assert.equal(aad.length, 31);
 * ```
 */
export function buildAad(
  tenantId: string,
  cacheKey: string,
  format: string = "msgpack",
  compressed: boolean = false,
  originalType?: string,
): Uint8Array {
  const tLen = typeof tenantId === "string" ? utf8Length(tenantId) : -1;
  if (tLen < 0) {
    throw new CacheConfigError("tenantId", typeof tenantId, "a well-formed Unicode string");
  }
  const kLen = typeof cacheKey === "string" ? utf8Length(cacheKey) : -1;
  if (kLen < 0) throw new CacheKeyError("cacheKey", "it must be a well-formed Unicode string");
  const fLen = typeof format === "string" ? utf8Length(format) : -1;
  if (fLen < 0) throw new CacheConfigError("format", format, "a well-formed Unicode string");
  const withType = originalType !== undefined && originalType !== null && originalType !== "";
  const oLen = withType ? (typeof originalType === "string" ? utf8Length(originalType) : -1) : 0;
  if (oLen < 0) {
    throw new CacheConfigError("originalType", originalType, "a well-formed Unicode string");
  }
  const flag = compressed ? "True" : "False";
  const out = new Uint8Array(
    1 + 16 + tLen + kLen + fLen + flag.length + (withType ? 4 + oLen : 0),
  );
  out[0] = AAD_VERSION;
  let o = writeField(out, 1, tenantId, tLen);
  o = writeField(out, o, cacheKey, kLen);
  o = writeField(out, o, format, fLen);
  o = writeField(out, o, flag, flag.length);
  if (withType) writeField(out, o, originalType!, oLen);
  return out;
}

// AAD fields are encoded by hand (length pass, then one exact allocation) because this runs on
// every encrypted read and write and TextEncoder's per-call allocations cost more than the rest.

/** UTF-8 length of `s`, or -1 when it holds a lone surrogate. */
function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1); // NaN past the end
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return -1;
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/** Write `u32be(len) || utf8(s)` at `o` (s well-formed, len its UTF-8 length); next offset. */
function writeField(out: Uint8Array, o: number, s: string, len: number): number {
  out[o] = len >>> 24;
  out[o + 1] = (len >>> 16) & 0xff;
  out[o + 2] = (len >>> 8) & 0xff;
  out[o + 3] = len & 0xff;
  o += 4;
  for (let i = 0; i < s.length; i++) {
    let c = s.charCodeAt(i);
    if (c < 0x80) {
      out[o++] = c;
    } else if (c < 0x800) {
      out[o++] = 0xc0 | (c >> 6);
      out[o++] = 0x80 | (c & 0x3f);
    } else if (c >= 0xd800 && c <= 0xdbff) {
      c = 0x10000 + ((c - 0xd800) << 10) + (s.charCodeAt(++i) - 0xdc00);
      out[o++] = 0xf0 | (c >> 18);
      out[o++] = 0x80 | ((c >> 12) & 0x3f);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    } else {
      out[o++] = 0xe0 | (c >> 12);
      out[o++] = 0x80 | ((c >> 6) & 0x3f);
      out[o++] = 0x80 | (c & 0x3f);
    }
  }
  return o;
}
