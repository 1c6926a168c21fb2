/**
 * The observed calls of a cache object (`createCache`'s `getOrSet` and `get`): with
 * `{ withStatus: true }`, an event listener on the cache's `events` (or the global
 * `cacheEvents`), or tracing with an SDK registered. The twin of `_observed.ts` for key-based
 * calls: it gives the call a {@linkcode CallRecord}, runs the ordinary operation with it
 * (`_object_ops.ts` fills it at the outcome), then ends the call's span, emits its `hit` / `miss`
 * / `stale` event and, for `withStatus`, returns the record with the value.
 *
 * @module
 */
import type { CacheEntryOptions } from "../config/options.ts";
import { CallRecord } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import { emit } from "./_events.ts";
import { endCallSpan, startCallSpan, tracingActive } from "./_tracing.ts";

/** Whether a call of `eng` with options `o` must be observed (see the module doc). */
export function mustObserve(eng: Engine, o: CacheEntryOptions | undefined): boolean {
  return o?.withStatus === true || (eng.observed && (eng.listening || tracingActive()));
}

/**
 * Run `op` (the operation, given the call's record) observed. Resolves what `op` resolves, or,
 * with `withStatus`, its `CallResult`.
 */
export function observedObjectCall(
  eng: Engine,
  withStatus: boolean,
  op: (rec: CallRecord) => Promise<unknown>,
): Promise<unknown> {
  eng.inflight.watched = true;
  const rec = new CallRecord();
  const t0 = eng.listening ? performance.now() : 0;
  if (eng.config.monitoring.tracing) startCallSpan(eng, rec);
  return op(rec).then((value) => {
    rec.settle();
    endCallSpan(rec);
    if (eng.listening) {
      const s = rec.status;
      const hit = s === "hit" || (s === "joined" && rec.layer !== "source");
      const type = s === "stale" ? "stale" : hit ? "hit" : "miss";
      emit(eng, type, rec.layer, performance.now() - t0, rec.key, { status: s });
    }
    return withStatus ? rec.result(value) : value;
  }, (e) => {
    endCallSpan(rec, e);
    throw e;
  });
}
