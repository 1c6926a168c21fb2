/**
 * The observed call: what the wrapper runs instead of its inlined L1 hit when the call must be
 * seen — `f.withStatus(...args)`, `monitoring.tracing`, or an event listener (`engine.observed`).
 *
 * It gives the call a {@linkcode CallRecord}, runs the ordinary lookup with it (`_call.ts` fills
 * it at the outcome), then ends the call's span (`_tracing.ts`), emits its `hit` / `miss` /
 * `stale` event (`_events.ts`) and, for `withStatus`, returns the record with the value. One
 * place for all three, so that the call flow only fills a record.
 *
 * @module
 */
import type { ArgKey } from "./_argkey.ts";
import { lookupAsync, lookupSync } from "./_call.ts";
import { CallRecord, type CallResult } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import { emit } from "./_events.ts";
import { callTenant, fastKey, keyContext } from "./_keys.ts";
import { endCallSpan, startCallSpan } from "./_tracing.ts";
import { isThenable } from "./_thenable.ts";

/**
 * Run one call of `eng` observed: with its record, span and event. Returns what the call returns,
 * or, with `withStatus`, a {@linkcode CallResult} (a promise of one when the call is
 * asynchronous).
 */
export function observedCall(
  eng: Engine,
  self: unknown,
  args: unknown[],
  withStatus: boolean,
): unknown {
  // From now on leaders keep a record, so that a call joining them knows where they found it.
  eng.inflight.watched = true;
  const rec = new CallRecord();
  const t0 = eng.listening ? performance.now() : 0;
  if (eng.config.monitoring.tracing) startCallSpan(eng, rec);
  let fast: ArgKey | undefined;
  let out: unknown;
  try {
    fast = fastKey(eng, self, args);
    out = eng.returnsPromise
      ? lookupAsync(eng, self, args, fast, undefined, rec)
      : lookupSync(eng, self, args, fast, rec);
  } catch (e) {
    endCallSpan(rec, e);
    if (eng.returnsPromise) return Promise.reject(e);
    throw e;
  }
  const done = (value: unknown): unknown => {
    rec.settle();
    if (rec.key === null && rec.reason !== "key") rec.key = protoKey(eng, self, args, fast);
    endCallSpan(rec);
    if (eng.listening) {
      const s = rec.status;
      const hit = s === "hit" || (s === "joined" && rec.layer !== "source");
      const type = s === "stale" ? "stale" : hit ? "hit" : "miss";
      emit(eng, type, rec.layer, performance.now() - t0, rec.key, { status: s });
    }
    return withStatus ? rec.result(value) : value;
  };
  if (isThenable(out)) {
    return Promise.resolve(out).then(done, (e) => {
      endCallSpan(rec, e);
      throw e;
    });
  }
  return done(out);
}

/** The protocol key of a call, or `null` when it cannot be formed. */
function protoKey(
  eng: Engine,
  self: unknown,
  args: unknown[],
  fast: ArgKey | undefined,
): string | null {
  try {
    return keyContext(eng, self, args, fast, callTenant(eng, args)).protoKey;
  } catch {
    return null;
  }
}

export type { CallResult };
