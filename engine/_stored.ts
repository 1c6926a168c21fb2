/**
 * The stored form of a value: what L2 holds (wire document or frame around the envelope, sealed
 * when encryption is on, and what an encrypted L1 keeps), encoded and decoded for one engine.
 *
 * Separate from the call flow so that the layers of a stored value are read in one place; the
 * checks themselves (format, serializer, size, checksum) live in `_stored_read.ts`.
 *
 * @module
 */
import { decodeInteropValue, encodeInteropValue } from "../protocol/keys.ts";
import {
  checkValueSize,
  decodeStoredValue,
  encodeStoredNow,
  type StoredPair,
} from "../protocol/stored_value.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";

/**
 * Encode a value for L2 (and the plain payload for L1): `protocol/_stored_codec.ts`. Synchronous
 * (throwing synchronously) unless the function encrypts: then a promise.
 */
export function encodeStored(
  eng: Engine,
  value: unknown,
  ctx: KeyCtx,
): StoredPair | Promise<StoredPair> {
  const c = eng.config;
  if (c.interop) {
    const payload = encodeInteropValue(value === undefined ? null : value);
    checkValueSize(payload, c.maxValueSize);
    return { payload, stored: payload };
  }
  return encodeStoredNow(eng.codec, value, {
    tenant: ctx.tenant ?? "default",
    protoKey: ctx.protoKey,
    freshUntil: freshUntil(eng, ctx),
  });
}

/**
 * The logical expiry written with an entry (ms): with the fail-safe (its stale window starts
 * there), and for an entry with its own TTL (a reader's L1 keeps it no longer); else none.
 */
function freshUntil(eng: Engine, ctx: KeyCtx): number | null {
  const ttl = ctx.ttl === undefined ? eng.config.ttl : ctx.ttl;
  if (ttl === null || (eng.failsafe === null && ctx.ttl === undefined)) return null;
  return Date.now() + ttl * 1000;
}

/** Decode bytes read from L2. Throws on anything unreadable (the caller treats it as a miss). */
export function decodeStored(
  eng: Engine,
  bytes: Uint8Array,
  protoKey: string,
  tenant: string,
  meta?: { freshUntil: number | null },
): unknown {
  if (eng.config.interop) {
    return decodeInteropValue(checkValueSize(bytes, eng.config.maxValueSize));
  }
  return decodeStoredValue(eng.codec, bytes, tenant, protoKey, meta);
}

/** Whether `v` is a primitive (L1 keeps it as is: nothing to copy). */
export function isPrimitive(v: unknown): boolean {
  return v === null || (typeof v !== "object" && typeof v !== "function");
}
