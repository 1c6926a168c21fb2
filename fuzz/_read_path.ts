/**
 * The read-path targets: the full read path of `cache()` in each mode (wires, fail-safe, JSON,
 * secure), over a backend that serves the input under test for every key.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { cache } from "../cache.ts";
import type { Backend, BackendHealth } from "../backends/types.ts";
import {
  BIG,
  JSON_VALUES,
  MISS,
  OK,
  show,
  spliced,
  type Target,
  TEST_MASTER_KEY,
  thrown,
  VALUES,
} from "./_common.ts";

// -------------------------------------------------------------------------------- read path

/**
 * A backend that serves the input under test for every key and drops writes and deletes, so each
 * input is read exactly as given and a miss's rewrite cannot leak into the next input.
 */
class FuzzBackend implements Backend {
  readonly type = "fuzz";
  readonly capabilities = {};
  current: Uint8Array | null = null;
  lastSet: Uint8Array | null = null;
  get(): Promise<Uint8Array | null> {
    return Promise.resolve(this.current);
  }
  set(_key: string, value: Uint8Array): Promise<void> {
    this.lastSet = value;
    return Promise.resolve();
  }
  delete(): Promise<boolean> {
    return Promise.resolve(false);
  }
  exists(): Promise<boolean> {
    return Promise.resolve(this.current !== null);
  }
  healthCheck(): Promise<BackendHealth> {
    return Promise.resolve({ healthy: true, latencyMs: 0, backendType: "fuzz", details: {} });
  }
}

/**
 * TTL of the fail-safe modes: entries are written at {@linkcode PINNED_NOW} and must still be
 * fresh when read, whatever the date (30 years).
 */
const FRESH_FOR = 30 * 365 * 24 * 3600;

interface ReadPathMode {
  name: string;
  description: string;
  secure: boolean;
  values: readonly unknown[];
  options: Record<string, unknown>;
}

export const READ_PATH_MODES: readonly ReadPathMode[] = [
  {
    name: "cache:envelope",
    description: "default envelope wire",
    secure: false,
    values: [...VALUES, BIG, undefined],
    options: {},
  },
  {
    name: "cache:failsafe",
    description: "fail-safe (staleTtl: fresh_until in the framed header)",
    secure: false,
    values: [...VALUES, BIG, undefined],
    options: { staleTtl: 600, ttl: FRESH_FOR },
  },
  {
    name: "cache:document",
    description: 'wire: "document", envelope protocol 1.0 (cachekit-py 0.3.0 compatible)',
    secure: false,
    values: [...VALUES, BIG, undefined],
    options: { wire: "document", envelopeProtocol: "1.0" },
  },
  {
    name: "cache:json",
    description: "JSON serializer, envelope wire",
    secure: false,
    values: JSON_VALUES,
    options: { serializer: "json" },
  },
  {
    name: "cache:orjson",
    description: "orjson serializer (digest layout), envelope wire",
    secure: false,
    values: JSON_VALUES,
    options: { serializer: "orjson" },
  },
  {
    name: "cache:orjson-document",
    description: 'orjson serializer (digest layout), wire: "document", fail-safe',
    secure: false,
    values: JSON_VALUES,
    options: { serializer: "orjson", wire: "document", staleTtl: 600, ttl: FRESH_FOR },
  },
  {
    name: "cache:secure",
    description: "cache.secure, envelope wire",
    secure: true,
    values: [...VALUES.slice(0, 9), undefined],
    options: {},
  },
  {
    name: "cache:secure-document",
    description: 'cache.secure, wire: "document", fail-safe',
    secure: true,
    values: [...VALUES.slice(0, 9), undefined],
    options: { wire: "document", staleTtl: 600, ttl: FRESH_FOR },
  },
];

export async function readPathTarget(mode: ReadPathMode): Promise<Target> {
  const backend = new FuzzBackend();
  let calls = 0;
  const values = mode.values;
  const fn = (i: number): Promise<unknown> => {
    calls++;
    return Promise.resolve(values[i]);
  };
  const options = {
    name: `fuzz.${mode.name.replace(/[^a-z]/g, "_")}`,
    ttl: 3600,
    backend,
    l1: false as const,
    circuitBreaker: false as const,
    timeout: false as const,
    backpressure: false as const,
    stampede: false as const,
    ...mode.options,
    ...(mode.secure ? { encryption: { masterKey: TEST_MASTER_KEY, singleTenant: true } } : {}),
  };
  const f = mode.secure ? cache.secure(fn, options) : cache(fn, options);
  const corpus: Uint8Array[] = [];
  for (let i = 0; i < values.length; i++) {
    backend.current = null;
    backend.lastSet = null;
    await f(i);
    for (let t = 0; backend.lastSet === null && t < 100; t++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    if (backend.lastSet === null) throw new Error(`${mode.name}: value ${i} was not written`);
    corpus.push(backend.lastSet);
    // The unmutated entry must be a hit with the identical value, or the oracle means nothing.
    backend.current = backend.lastSet;
    const before = calls;
    const v = await f(i);
    if (calls !== before || !isDeepStrictEqual(v, values[i])) {
      throw new Error(`${mode.name}: the stored value ${i} does not read back as a hit`);
    }
  }
  return {
    name: mode.name,
    description: `cache() read path, ${mode.description}: a miss or the identical value`,
    corpus,
    share: mode.secure ? 3 : 4,
    async run(bytes, base, donors) {
      backend.current = bytes;
      const before = calls;
      let v: unknown;
      try {
        v = await f(base);
      } catch (e) {
        // Whatever the type, an error escaping the cached function is a failure of the read path.
        const o = thrown(e, []);
        return { verdict: "untyped", detail: `escaped cache(): ${o.detail}` };
      }
      if (isDeepStrictEqual(v, values[base])) return calls === before ? OK : MISS;
      // Without encryption an entry is not bound to its key: a splice that rebuilds a donor's
      // entry, or its payload behind this entry's header, reads legitimately as that value.
      if (!mode.secure && donors.some((d) => spliced(v, values[d]))) return OK;
      return {
        verdict: "wrong",
        detail: `read ${show(v)}, the function returns ${show(values[base])}`,
      };
    },
  };
}
