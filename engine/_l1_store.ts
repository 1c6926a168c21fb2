/**
 * What L1 keeps of a call's answer, by `l1.copy` (see `config/options.ts`), and how an entry
 * becomes a hit's answer again:
 *
 * | answer | L1 keeps | a hit returns |
 * |---|---|---|
 * | encrypted L1 (`cache.secure`) | the stored ciphertext ({@linkcode L1_SEALED}) | a decryption |
 * | a primitive, or `"none"` | the answer ({@linkcode L1_SHARED}) | the same value |
 * | `"freeze"`, no `Uint8Array` inside | a deep-frozen copy ({@linkcode L1_SHARED}) | that frozen copy (the miss too) |
 * | `"clone"` (or `"freeze"` of the rest) | a copy ({@linkcode L1_CLONE}) | a fresh copy |
 * | outside the copy space (`_l1_copy.ts`) | the serialized payload ({@linkcode L1_BYTES}) | a decoding |
 *
 * Apart from the call flow (`_call.ts`) because it is the one place that decides an entry's form,
 * for the miss paths and the L2 hit alike.
 *
 * @module
 */
import type { ArgKey } from "./_argkey.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { copyValue, frozenCopy, REFUSED, vet, vetCopy, type Vetted } from "./_l1_copy.ts";
import {
  L1_BYTES,
  L1_CLONE,
  L1_SEALED,
  L1_SHARED,
  type L1Entry,
  type L1Kind,
  type SealedValue,
} from "./l1.ts";
import { decodeStored, isPrimitive } from "./_stored.ts";
import { eagerMs, l1TtlMs, swrMs } from "./_ttl.ts";
import { decodeInteropValue, encodeInteropValue } from "../protocol/keys.ts";

/** Size counted for an object value whose heap size is not known (`"none"`, not vetted). */
const UNKNOWN_OBJECT_BYTES = 64;

const vetted: Vetted = { bytes: 0, unfreezable: false };

/**
 * Put a call's answer into L1 and return what the caller gets: the answer, or under `"freeze"`
 * the frozen copy every hit returns.
 *
 * @param answer What the call answers (see `answerOf` in `_call.ts`).
 * @param payload The answer's serialized payload when the caller has it, else `null` (serialized
 * here only when the answer cannot be copied and L1 must keep bytes).
 * @param stored The stored (L2) form, kept as is by an encrypted L1; `null` without one.
 */
export function storeL1(
  eng: Engine,
  ctx: KeyCtx,
  answer: unknown,
  payload: Uint8Array | null,
  stored: Uint8Array | null,
): unknown {
  const l1 = eng.l1;
  if (l1 === null) return answer;
  let value: unknown = answer;
  let kind: L1Kind = L1_SHARED;
  let size: number;
  let out = answer;
  if (eng.cipher !== null && stored !== null) {
    // Secure: L1 holds the encrypted document, decrypted on every hit.
    value = {
      bytes: stored,
      protoKey: ctx.protoKey,
      tenant: ctx.tenant ?? "default",
    } satisfies SealedValue;
    kind = L1_SEALED;
    size = stored.byteLength;
  } else if (isPrimitive(answer)) {
    size = typeof answer === "string" ? 16 + answer.length : 16;
  } else {
    const mode = eng.config.l1.copy;
    // "clone" checks and copies in one walk; the others only check (and count).
    const c = mode === "clone" ? vetCopy(answer, vetted) : vet(answer, vetted) ? answer : REFUSED;
    if (mode === "none") {
      size = c !== REFUSED ? vetted.bytes : payload?.byteLength ?? UNKNOWN_OBJECT_BYTES;
    } else if (c !== REFUSED) {
      size = vetted.bytes;
      if (mode === "clone") {
        value = c;
        kind = L1_CLONE;
      } else if (!vetted.unfreezable) value = out = frozenCopy(answer);
      else {
        value = copyValue(answer); // a Uint8Array cannot be frozen: copied per hit
        kind = L1_CLONE;
      }
    } else {
      // Outside the copy space (a custom serializer's class instance, …): keep the bytes.
      const bytes = payload ?? serializeForL1(eng, answer);
      if (bytes === null) return answer;
      value = bytes;
      kind = L1_BYTES;
      size = bytes.byteLength;
    }
  }
  // An entry with its own TTL (adaptive caching, or what an L2 hit has left) lives by it.
  const life = ctx.ttl === undefined ? eng.l1TtlMs : l1TtlMs(eng.config, ctx.ttl);
  const entry = l1.entry(value, kind, size, life, swrDelay(eng, life, ctx.ttl));
  entry.tags = ctx.tags;
  // A key-based call's own stale window (`staleTtl`), as its L2 entry has it (`l2TtlOf`).
  const stale = ctx.call?.staleTtl;
  if (stale !== undefined && eng.failsafe !== null) l1.setStaleMs(entry, stale * 1000);
  if (!eng.indexL1) l1.set(ctx.l1Key, entry); // no remote events: no backend key kept
  else {
    entry.backendKey = ctx.backendKey;
    if (l1.set(ctx.l1Key, entry) && eng.indexLive) {
      // The index and the entry share the one backend key string.
      const idle = ++eng.indexIdle;
      const bound = 2 * l1.size + 1024;
      if (idle > bound) dropIndex(eng); // no remote key event for a long while: build on demand
      else {
        eng.byBackendKey.set(ctx.backendKey, ctx.l1Key);
        if (eng.byBackendKey.size > bound) rebuildIndex(eng);
      }
    }
  }
  return out;
}

/** The payload of an answer that came from L2 (it is serializable), or `null` if it fails. */
function serializeForL1(eng: Engine, answer: unknown): Uint8Array | null {
  try {
    return eng.config.interop ? encodeInteropValue(answer) : eng.serializer.serialize(answer);
  } catch {
    return null;
  }
}

/**
 * The entry's refresh point, ms from now: the jittered stale-while-revalidate point or the eager
 * one (`eagerRefresh`), the earlier.
 */
function swrDelay(eng: Engine, life: number, ttl: number | null | undefined): number {
  const eager = ttl === undefined ? eng.eagerMs : eagerMs(eng.config, ttl, life);
  if (eng.swrMs === Infinity) return eager;
  const j = eng.config.l1.swrJitter;
  const swr = (life === eng.l1TtlMs ? eng.swrMs : swrMs(eng.config, life)) *
    (1 + (Math.random() * 2 - 1) * j);
  return swr < eager ? swr : eager;
}

/**
 * The L1 key of each backend key held in L1, for a remote key event (`_invalidation.ts`). Kept by
 * every store only while such events arrive: an L1 that gets none (one instance, or other
 * instances that write nothing) pays no index on its misses (hashing each new backend key into a
 * map of up to twice the L1's size: ~4 % of a Redis miss's profile, `bench/MEASUREMENTS.md`). The
 * first event after a quiet spell builds it from the entries, in one walk of the L1.
 */
export function backendIndex(eng: Engine): Map<string, ArgKey> {
  eng.indexIdle = 0;
  if (!eng.indexLive) {
    eng.indexLive = true;
    rebuildIndex(eng);
  }
  return eng.byBackendKey;
}

/** Stop keeping the index (see {@linkcode backendIndex}). */
export function dropIndex(eng: Engine): void {
  eng.indexLive = false;
  eng.indexIdle = 0;
  eng.byBackendKey.clear();
}

function rebuildIndex(eng: Engine): void {
  eng.byBackendKey.clear();
  if (eng.l1 === null) return;
  for (const [k, e] of eng.l1.map) {
    if (e.backendKey !== null) eng.byBackendKey.set(e.backendKey, k as ArgKey);
  }
}

/**
 * The answer an L1 entry holds, for any kind (a sealed entry: a promise of the decryption).
 * The hit paths handle {@linkcode L1_SHARED} themselves; this serves the other kinds and the
 * fail-safe's stale reads.
 */
export function l1EntryValue(eng: Engine, e: L1Entry): unknown {
  switch (e.kind) {
    case L1_SHARED:
      return e.value;
    case L1_CLONE:
      return copyValue(e.value);
    case L1_BYTES:
      return decodePayload(eng, e.value as Uint8Array);
    default: {
      const s = e.value as SealedValue;
      return decodeStored(eng, s.bytes, s.protoKey, s.tenant);
    }
  }
}

/** Decode a serialized payload (an L1 entry's bytes) with the engine's serializer. */
export function decodePayload(eng: Engine, bytes: Uint8Array): unknown {
  return eng.config.interop ? decodeInteropValue(bytes) : eng.serializer.deserialize(bytes);
}
