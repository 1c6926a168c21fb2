/**
 * OpenTelemetry metrics of every cached function, with or without tracing: the observable
 * counters `cachekit.hits` (by `function` and `layer`: `l1`, `l2`), `cachekit.misses` (`layer`
 * `source`: calls that ran the function) and `cachekit.stale` (answers the fail-safe served stale),
 * read from each function's own counts (`monitoring.collectStats`) when the application's
 * meter reader collects. A call does no OpenTelemetry work for them: the hot path (an L1 hit) stays
 * as it is, and a function without tracing is counted all the same.
 *
 * The API's metrics have no proxy: instruments made before an SDK's meter provider is registered
 * stay no-ops. So the provider is looked up again where a call is expensive anyway (a new function,
 * a miss, an L2 read) and the instruments are made again on a new one; the counts they report are
 * the functions' totals since they were made, so nothing counted before is lost. Functions sharing
 * an identity (the same name in two caches) report one sum; a function that is garbage-collected
 * leaves the sum, which an exporter reads as a counter reset.
 *
 * @module
 */
import { type Attributes, type MeterProvider, metrics } from "@opentelemetry/api";
import type { Engine } from "./_engine.ts";
import { liveEngines } from "./_registry.ts";

/** The instrumentation scope of the package's meter and tracer. */
export const OTEL_SCOPE = "@cachekit/core";

/** The provider the instruments were made on (the API's no-op one counts too). */
let watched: MeterProvider | null = null;

/**
 * Make the observable instruments on the global meter provider, unless they were made on it
 * already: one global lookup otherwise. Called at a function's creation, on a miss and an L2 read.
 */
export function watchMeter(): void {
  const provider = metrics.getMeterProvider();
  if (provider === watched) return;
  watched = provider;
  const meter = provider.getMeter(OTEL_SCOPE);
  const hits = meter.createObservableCounter("cachekit.hits", {
    description: "Calls answered from a cache layer",
  });
  const misses = meter.createObservableCounter("cachekit.misses", {
    description: "Calls that ran the function (misses, uncached calls)",
  });
  const stale = meter.createObservableCounter("cachekit.stale", {
    description: "Calls answered with a stale value by the fail-safe",
  });
  meter.addBatchObservableCallback((result) => {
    for (const [identity, s] of totals()) {
      const a = attrs(identity);
      result.observe(hits, s.l1Hits, a.l1);
      result.observe(hits, s.l2Hits, a.l2);
      result.observe(misses, s.misses, a.source);
      result.observe(stale, s.staleHits, a.stale);
    }
  }, [hits, misses, stale]);
}

interface Totals {
  l1Hits: number;
  l2Hits: number;
  misses: number;
  staleHits: number;
}

/** Each identity's counts, summed over its live functions that count (`collectStats`). */
function totals(): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const e of liveEngines()) {
    if (!e.collectStats) continue;
    const s = (e as Engine).stats;
    const t = out.get(e.identity);
    if (t === undefined) {
      out.set(e.identity, {
        l1Hits: s.l1Hits,
        l2Hits: s.l2Hits,
        misses: s.misses,
        staleHits: s.staleHits,
      });
    } else {
      t.l1Hits += s.l1Hits;
      t.l2Hits += s.l2Hits;
      t.misses += s.misses;
      t.staleHits += s.staleHits;
    }
  }
  return out;
}

interface AttrSet {
  l1: Attributes;
  l2: Attributes;
  source: Attributes;
  stale: Attributes;
}

/** Attribute sets by identity (made once per function, not per collection). */
const attrSets = new Map<string, AttrSet>();

function attrs(identity: string): AttrSet {
  let a = attrSets.get(identity);
  if (a === undefined) {
    if (attrSets.size >= MAX_ATTR_SETS) attrSets.clear();
    attrSets.set(
      identity,
      a = {
        l1: { function: identity, layer: "l1" },
        l2: { function: identity, layer: "l2" },
        source: { function: identity, layer: "source" },
        stale: { function: identity },
      },
    );
  }
  return a;
}

/** Bound of the attribute-set memo (a process creating functions without end). */
const MAX_ATTR_SETS = 10_000;
