/**
 * On-disk entry format of the file backend (internal).
 *
 * An entry file is named by the lowercase hex SHA-256 of the key's UTF-8 bytes (64 characters) and
 * holds:
 *
 * | offset | size | field                                                                  |
 * | ------ | ---- | ---------------------------------------------------------------------- |
 * | 0      | 2    | magic `CK` (`0x43 0x4B`)                                               |
 * | 2      | 1    | version, `1`                                                           |
 * | 3      | 1    | reserved, `0`                                                          |
 * | 4      | 2    | flags, big-endian (below)                                              |
 * | 6      | 8    | expiry timestamp, big-endian unsigned; `0` = never expires             |
 * | 14     | 4    | key length `n`, big-endian (present when flag `KEY` is set)            |
 * | 18     | n    | the key, UTF-8 (present when flag `KEY` is set)                        |
 * | …      | 8    | value length, big-endian (present when flag `VALUE_LENGTH` is set)     |
 * | …      | …    | the value: opaque bytes up to the end of the file                      |
 *
 * Flags: bit 0 (`0x0001`, `KEY`) the key is embedded; bit 1 (`0x0002`, `EXPIRY_MS`) the expiry is in
 * Unix milliseconds (without it: Unix seconds, as cachekit-py writes); bit 2 (`0x0004`,
 * `VALUE_LENGTH`) the value's length follows the key, so a truncated or extended file (a torn write
 * after a crash without fsync, a foreign writer) is detected rather than served. Other bits are
 * reserved; a file that sets them is foreign. The first 14 bytes are exactly cachekit-py 0.3.0's
 * header. Bit-level corruption inside a value is not detected here: that is the job of the
 * protocol's integrity envelope (`integrityChecking`).
 *
 * We always write `KEY | EXPIRY_MS | VALUE_LENGTH`. The embedded key makes prefix deletion possible by scanning
 * and turns a foreign file or a hash collision into a miss (the stored key must equal the requested
 * key byte for byte). A file without an embedded key cannot be verified, so it is treated as
 * foreign (a miss, removed) — never served.
 *
 * SHA-256 (from `@noble/hashes`, synchronous) rather than Blake2b: the file names can then be
 * checked independently with any standard tool (`printf %s key | sha256sum`).
 *
 * @module
 */

import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** Size of the fixed header. */
export const HEADER_BYTES = 14;
/** Magic bytes `CK`. */
export const MAGIC_0 = 0x43;
/** Second magic byte. */
export const MAGIC_1 = 0x4b;
/** Format version. */
export const VERSION = 1;
/** Flag: the key is embedded after the header (u32 BE length + UTF-8). */
export const FLAG_KEY = 0x0001;
/** Flag: the expiry field is in milliseconds (otherwise seconds). */
export const FLAG_EXPIRY_MS = 0x0002;
/** Flag: the value length (u64 BE) follows the key. */
export const FLAG_VALUE_LENGTH = 0x0004;
/** Flags this version understands. */
export const KNOWN_FLAGS: number = FLAG_KEY | FLAG_EXPIRY_MS | FLAG_VALUE_LENGTH;
/** Flags this implementation writes. */
export const WRITE_FLAGS: number = FLAG_KEY | FLAG_EXPIRY_MS | FLAG_VALUE_LENGTH;
/** Longest key accepted, in UTF-8 bytes (bounds header reads during scans). */
export const MAX_KEY_BYTES = 65536;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Lowercase hex SHA-256 of `s` (UTF-8). */
export function sha256Hex(s: string | Uint8Array): string {
  return bytesToHex(sha256(typeof s === "string" ? encoder.encode(s) : s));
}

/** UTF-8 bytes of a key. */
export function encodeKey(key: string): Uint8Array {
  return encoder.encode(key);
}

/** Entry file name of an encoded key. */
export function entryName(keyBytes: Uint8Array): string {
  return sha256Hex(keyBytes);
}

/** True for names that can be entry files (64 lowercase hex characters). */
export function isEntryName(name: string): boolean {
  return name.length === 64 && /^[0-9a-f]{64}$/.test(name);
}

/** Bytes before the value for a key of `keyLength` bytes, as this implementation writes them. */
export function headLength(keyLength: number): number {
  return HEADER_BYTES + 4 + keyLength + 8;
}

/** Header, key and value length of an entry (the value follows). */
export function encodeHead(
  keyBytes: Uint8Array,
  expiresAtMs: number,
  valueLength: number,
): Uint8Array {
  const head = new Uint8Array(headLength(keyBytes.length));
  const view = new DataView(head.buffer);
  head[0] = MAGIC_0;
  head[1] = MAGIC_1;
  head[2] = VERSION;
  head[3] = 0;
  view.setUint16(4, WRITE_FLAGS);
  view.setBigUint64(6, BigInt(Math.max(0, Math.floor(expiresAtMs))));
  view.setUint32(14, keyBytes.length);
  head.set(keyBytes, 18);
  view.setBigUint64(18 + keyBytes.length, BigInt(valueLength));
  return head;
}

/** The expiry field for a new TTL (0 = never). */
export function expiryFor(ttlSeconds: number | null | undefined, nowMs: number): number {
  if (ttlSeconds === null || ttlSeconds === undefined || ttlSeconds === 0) return 0;
  return Math.max(1, Math.ceil(nowMs + ttlSeconds * 1000));
}

/** A parsed entry head. */
export interface ParsedHead {
  /** Expiry in Unix ms, 0 = never. */
  expiresAtMs: number;
  /** The stored key bytes. */
  keyBytes: Uint8Array;
  /** Offset at which the value starts. */
  valueOffset: number;
  /** The flags as stored. */
  flags: number;
}

/** Why a file is not a valid entry. */
export type ParseFailure =
  | "short"
  | "magic"
  | "version"
  | "flags"
  | "keyless"
  | "key-length"
  | "value-length";

/**
 * Parse the head of an entry. `bytes` may be only the file's beginning; `needMore` is returned when
 * the key extends past it (with the number of bytes required).
 */
export function parseHead(
  bytes: Uint8Array,
  fileSize: number,
): ParsedHead | { fail: ParseFailure } | { needMore: number } {
  if (fileSize < HEADER_BYTES || bytes.length < HEADER_BYTES) return { fail: "short" };
  if (bytes[0] !== MAGIC_0 || bytes[1] !== MAGIC_1) return { fail: "magic" };
  if (bytes[2] !== VERSION) return { fail: "version" };
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const flags = view.getUint16(4);
  if ((flags & ~KNOWN_FLAGS) !== 0) return { fail: "flags" };
  if ((flags & FLAG_KEY) === 0) return { fail: "keyless" };
  const raw = view.getBigUint64(6);
  if (raw > BigInt(Number.MAX_SAFE_INTEGER)) return { fail: "flags" };
  const expiry = Number(raw);
  const expiresAtMs = (flags & FLAG_EXPIRY_MS) !== 0 ? expiry : expiry * 1000;
  if (fileSize < HEADER_BYTES + 4) return { fail: "short" };
  if (bytes.length < HEADER_BYTES + 4) return { needMore: HEADER_BYTES + 4 };
  const keyLength = view.getUint32(14);
  if (keyLength > MAX_KEY_BYTES) return { fail: "key-length" };
  const keyEnd = HEADER_BYTES + 4 + keyLength;
  const hasLength = (flags & FLAG_VALUE_LENGTH) !== 0;
  const valueOffset = keyEnd + (hasLength ? 8 : 0);
  if (fileSize < valueOffset) return { fail: "short" };
  if (bytes.length < valueOffset) return { needMore: valueOffset };
  if (hasLength) {
    const declared = view.getBigUint64(keyEnd);
    if (declared !== BigInt(fileSize - valueOffset)) return { fail: "value-length" };
  }
  return { expiresAtMs, keyBytes: bytes.subarray(18, keyEnd), valueOffset, flags };
}

/** Byte equality. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decode a stored key (null if not valid UTF-8). */
export function decodeKey(bytes: Uint8Array): string | null {
  try {
    return decoder.decode(bytes);
  } catch {
    return null;
  }
}

/**
 * The 10 bytes (flags + expiry) to write at offset 4 when changing an entry's expiry: the stored
 * `flags` with `EXPIRY_MS` set, and the new expiry in ms.
 */
export function encodeExpiryPatch(flags: number, expiresAtMs: number): Uint8Array {
  const b = new Uint8Array(10);
  const view = new DataView(b.buffer);
  view.setUint16(0, flags | FLAG_EXPIRY_MS);
  view.setBigUint64(2, BigInt(Math.max(0, Math.floor(expiresAtMs))));
  return b;
}
