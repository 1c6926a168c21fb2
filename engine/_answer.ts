/**
 * What a computed value becomes on its way into the cache: the answer every later hit returns
 * (`answerOf`), the serialized form L1 keeps (`l1Payload`, with the `maxValueSize` check), and the
 * once-per-function warning for a value too large to cache. Beside the call flow (`_call.ts`),
 * which stores and answers.
 *
 * @module
 */
import { decodeInteropValue, encodeInteropValue } from "../protocol/keys.ts";
import { interopReshapes } from "../protocol/internal.ts";
import { checkValueSize, type ValueTooLargeError } from "../protocol/stored_value.ts";
import { callLogger } from "./_call_log.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { reshapes } from "./_serializer.ts";

/**
 * What a miss answers for `value`, serialized as `payload`: what every later hit returns. That
 * is `value` itself when the serializer vouches that it comes back unchanged (the usual case: no
 * decoding); otherwise (a `Map` read back as an object, `undefined` in an array read back as
 * `null`, any value of a custom serializer) the payload decoded. Top-level `undefined` is kept
 * apart from the payload (L2 flags it) and stays `undefined`, except in interop mode, whose
 * entries hold `null`.
 */
export function answerOf(eng: Engine, value: unknown, payload: Uint8Array): unknown {
  if (eng.config.interop) return interopReshapes(value) ? decodeInteropValue(payload) : value;
  // A serializer with its own stored layout (`auto`) stores `undefined` as nil, as cachekit-py
  // 0.3.0 does: every hit answers `null`, so the miss does too (as in interop mode).
  if (value === undefined) return eng.codec.policy.framing ? null : value;
  if (!reshapes(eng.serializer, payload)) return value;
  return eng.serializer.deserialize(payload);
}

/** The serialized form L1 keeps of `value`; throws ValueTooLargeError over `maxValueSize`. */
export function l1Payload(eng: Engine, value: unknown): Uint8Array {
  const c = eng.config;
  const payload = c.interop ? encodeInteropValue(value) : eng.serializer.serialize(value);
  return checkValueSize(payload, c.maxValueSize);
}

/** A value over `maxValueSize` is answered uncached: say so once per function. */
export function warnTooLarge(eng: Engine, e: ValueTooLargeError, ctx: KeyCtx): void {
  if (eng.warnedTooLarge) return;
  eng.warnedTooLarge = true;
  callLogger(eng, ctx, "source").warn(
    "{identity}: value not cached: {error} (reported once per function)",
    { identity: eng.identity, error: e.message },
  );
}
