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
import { checkValueSize, decodeStoredValue, encodeStoredValue } from "../protocol/stored_value.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { ttlOf } from "./_call_options.ts";

/** Encode a value for L2 (and the plain payload for L1): `protocol/_stored_codec.ts`. */
export function encodeStored(
  eng: Engine,
  value: unknown,
  ctx: KeyCtx,
): Promise<{ payload: Uint8Array; stored: Uint8Array }> {
  const c = eng.config;
  const ttl = ctx.call === undefined ? c.ttl : ttlOf(eng, ctx.call);
  if (c.interop) {
    const payload = encodeInteropValue(value === undefined ? null : value);
    checkValueSize(payload, c.maxValueSize);
    return Promise.resolve({ payload, stored: payload });
  }
  return encodeStoredValue(eng.codec, value, {
    tenant: ctx.tenant ?? "default",
    protoKey: ctx.protoKey,
    freshUntil: eng.failsafe !== null && ttl !== null ? Date.now() + ttl * 1000 : null,
  });
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
