/**
 * The store step of a computed value: encoded once (the stored form, and the payload the answer
 * and L1 are made from), kept in L1, written to L2 (releasing a held stampede lock) and announced.
 * Skipped after an invalidation (the value must not come back). Used by a miss (`_call.ts`
 * `compute`), a background refresh and a cache object's `set` and `expire`.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { CacheKitError, SerializationError } from "../errors.ts";
import { ValueTooLargeError } from "../protocol/stored_value.ts";
import type { Engine } from "./_engine.ts";
import type { KeyCtx } from "./_keys.ts";
import { writeL2 } from "./_l2.ts";
import type { LockAttempt } from "./_l2_lock.ts";
import { storeL1 } from "./_l1_store.ts";
import { errMessage } from "./_status.ts";
import { encodeStored } from "./_stored.ts";
import * as record from "./_call_record.ts";
import type { CallRecord } from "./_call_record.ts";
import { emit } from "./_events.ts";
import { callLogger } from "./_call_log.ts";
import { answerOf, l1Payload, warnTooLarge } from "./_answer.ts";

/** Store a computed `value` in L1 and L2; returns what the caller gets (see answerOf). */
export async function store(
  eng: Engine,
  ctx: KeyCtx,
  value: unknown,
  b: Backend | null,
  epoch: number,
  awaitWrite = true,
  lk: LockAttempt | null = null,
  rec: CallRecord | null = null,
): Promise<unknown> {
  if (eng.epoch !== epoch) return value; // invalidated meanwhile: do not resurrect
  let enc: { payload: Uint8Array; stored: Uint8Array } | null = null;
  let answer = value;
  try {
    if (b !== null || eng.cipher !== null) {
      const e = encodeStored(eng, value, ctx); // a promise only when encrypting
      enc = e instanceof Promise ? await e : e;
    } else if (eng.config.l1.copy !== "none" && value !== undefined) {
      const payload = l1Payload(eng, value);
      enc = { payload, stored: payload };
    }
    if (enc !== null) answer = answerOf(eng, value, enc.payload);
  } catch (e) {
    record.uncachedBy(rec, e);
    if (e instanceof ValueTooLargeError) {
      warnTooLarge(eng, e, ctx);
      return value;
    }
    if (!eng.config.safeMode && e instanceof SerializationError) throw e;
    if (!eng.config.safeMode && !(e instanceof CacheKitError)) {
      throw new SerializationError(
        `${eng.identity}: cannot serialize the result: ${errMessage(e)}`,
        { cause: e },
      );
    }
    callLogger(eng, ctx, "source").warn("{identity}: value not cacheable: {error}", {
      identity: eng.identity,
      error: errMessage(e),
    });
    return value;
  }
  if (eng.epoch !== epoch) return answer;
  const call = ctx.call;
  const out = call?.skipL1Write === true
    ? answer
    : storeL1(eng, ctx, answer, enc?.payload ?? null, enc?.stored ?? null);
  if (b === null && eng.listening) emit(eng, "set", "l1", null, ctx.protoKey);
  if (b !== null && enc !== null && call?.skipL2Write !== true) {
    const write = writeL2(eng, b, ctx, enc.stored, lk); // never rejects; releases a held lock
    if (awaitWrite) await write;
  }
  return out;
}
