/**
 * A call whose arguments cannot form a key: under `safeMode` a {@linkcode CacheKeyError} calls the
 * function uncached (logged with the call's correlation id, noted in an observed call's record);
 * anything else is thrown, or rejected by an asynchronous call. Apart from the call flow
 * (`_call.ts`), whose entry points all end here when the key fails.
 *
 * @module
 */
import { CacheKeyError } from "../errors.ts";
import { type CallRecord, recordUncached } from "./_call_record.ts";
import { callLogger } from "./_call_log.ts";
import type { Engine } from "./_engine.ts";
import { errMessage } from "./_status.ts";

/**
 * The keys of a call failed (`e`): under `safeMode`, a CacheKeyError (the arguments cannot form
 * a key) calls the function uncached; anything else is thrown.
 */
export function keyFailed(
  eng: Engine,
  self: unknown,
  args: unknown[],
  e: unknown,
  rec: CallRecord | null,
): unknown {
  if (!eng.config.safeMode || !(e instanceof CacheKeyError)) throw e;
  return uncached(eng, self, args, e, rec);
}

/** {@linkcode keyFailed} for an asynchronous call: rejects instead of throwing. */
export function keyFailedAsync(
  eng: Engine,
  self: unknown,
  args: unknown[],
  e: unknown,
  rec: CallRecord | null,
): Promise<unknown> {
  if (!eng.config.safeMode || !(e instanceof CacheKeyError)) return Promise.reject(e);
  return Promise.resolve(uncached(eng, self, args, e, rec));
}

/** `safeMode`: the arguments cannot form a key (`e`): call the function uncached. */
function uncached(
  eng: Engine,
  self: unknown,
  args: unknown[],
  e: CacheKeyError,
  rec: CallRecord | null,
): unknown {
  if (rec !== null) recordUncached(rec, "key");
  callLogger(eng, null, "source").warn("{identity}: no cache key ({error}); calling uncached", {
    identity: eng.identity,
    error: errMessage(e),
  });
  return eng.fn.apply(self, args);
}
