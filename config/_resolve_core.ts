/**
 * The top-level (scalar) options of `cache()`: the list of known option names, and `name`, `ttl`,
 * `namespace`, `serializer`, the flags, `key`, `tags`, the fail-safe windows, eager refresh, the stored-value
 * format choices, `maxValueSize` and `backend`. Separate from the nested groups, which follow a
 * table; these each have their own rule and message.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type { Backend } from "../backends/types.ts";
import { validateKeyPart } from "../protocol/keys.ts";
import type { EnvConfig } from "./env.ts";
import type { CacheOptions, PresetName, ResolvedConfig } from "./options.ts";
import { PRESETS } from "./presets.ts";
import { DEFAULTS } from "./_defaults.ts";
import {
  isBackend,
  isBool,
  isFn,
  isFraction,
  isNonNegNum,
  isPlainObject,
  isPosInt,
  isPosNum,
  isSerializer,
  mayBeKey,
} from "./_resolve_checks.ts";

const TOP_LEVEL_KEYS = new Set<string>([
  "name",
  "ttl",
  "cacheIf",
  "resultTags",
  "namespace",
  "serializer",
  "safeMode",
  "integrityChecking",
  "key",
  "pythonArgs",
  "interop",
  "refreshTtlOnGet",
  "ttlRefreshThreshold",
  "backend",
  "tags",
  "staleTtl",
  "softTimeout",
  "eagerRefresh",
  "hardTimeout",
  "envelopeProtocol",
  "wire",
  "maxValueSize",
  "failSafeThrottle",
  "l1",
  "circuitBreaker",
  "timeout",
  "backpressure",
  "monitoring",
  "encryption",
  "stampede",
]);

/**
 * Check that `options` is an options object naming only known options, and `preset` a preset.
 *
 * @returns `options`, typed.
 */
export function checkOptionNames(options: unknown, preset: PresetName | undefined): CacheOptions {
  if (!isPlainObject(options)) throw new CacheConfigError("options", options, "an options object");
  if (preset !== undefined && !(preset in PRESETS)) {
    throw new CacheConfigError("preset", preset, `one of ${Object.keys(PRESETS).join(", ")}`);
  }
  for (const k of Object.keys(options)) {
    if (!TOP_LEVEL_KEYS.has(k)) {
      const v = options[k];
      // A key given at the top level (`masterKey: "…"`) would be echoed: strings and bytes are not.
      throw new CacheConfigError(k, v, `a known option (${[...TOP_LEVEL_KEYS].join(", ")})`, {
        secret: mayBeKey(v),
      });
    }
  }
  return options as CacheOptions;
}

/** The scalar part of {@linkcode ResolvedConfig}. */
export type ResolvedCore = Pick<
  ResolvedConfig,
  | "name"
  | "ttl"
  | "ttlFn"
  | "cacheIf"
  | "resultTags"
  | "namespace"
  | "serializer"
  | "safeMode"
  | "key"
  | "pythonArgs"
  | "refreshTtlOnGet"
  | "ttlRefreshThreshold"
  | "backend"
  | "tags"
  | "staleTtl"
  | "softTimeout"
  | "eagerRefresh"
  | "hardTimeout"
  | "envelopeProtocol"
  | "wire"
  | "maxValueSize"
  | "failSafeThrottle"
>;

/** `name`, `ttl`, `namespace`, `serializer`, the flags, `key` and `tags`. */
function resolveIdentity(o: CacheOptions<unknown[]>, env: EnvConfig) {
  if (
    o.name !== undefined &&
    (typeof o.name !== "string" || o.name.trim() === "" || /[\s]/.test(o.name))
  ) {
    throw new CacheConfigError("name", o.name, "a non-empty string without white space");
  }
  if (o.name !== undefined) validateKeyPart("name", o.name);
  let ttl: number | null = env.defaultTtl;
  if (o.ttl !== undefined && typeof o.ttl !== "function") {
    if (o.ttl !== null && !isPosNum(o.ttl)) {
      throw new CacheConfigError(
        "ttl",
        o.ttl,
        "a number of seconds > 0, null for no expiry, or a function of the result",
      );
    }
    ttl = o.ttl;
  }
  if (
    o.namespace !== undefined &&
    (typeof o.namespace !== "string" || o.namespace === "" || /[\s]/.test(o.namespace))
  ) {
    throw new CacheConfigError("namespace", o.namespace, "a non-empty string without white space");
  }
  if (o.namespace !== undefined) validateKeyPart("namespace", o.namespace);
  const serializer = o.serializer ?? "std";
  if (
    serializer !== "std" && serializer !== "json" && serializer !== "orjson" &&
    serializer !== "arrow" && serializer !== "auto" && !isSerializer(serializer)
  ) {
    throw new CacheConfigError(
      "serializer",
      serializer,
      '"std", "json", "orjson", "arrow", "auto", or an object with name, serialize(value) and deserialize(bytes)',
    );
  }
  for (const k of ["safeMode", "integrityChecking", "refreshTtlOnGet"] as const) {
    if (o[k] !== undefined && !isBool(o[k])) throw new CacheConfigError(k, o[k], "a boolean");
  }
  if (o.key !== undefined && !isFn(o.key)) {
    throw new CacheConfigError("key", o.key, "a function of the arguments returning a string");
  }
  if (o.pythonArgs !== undefined) {
    if (!isFn(o.pythonArgs)) {
      throw new CacheConfigError(
        "pythonArgs",
        o.pythonArgs,
        "a function of the arguments returning { args, kwargs }",
      );
    }
    if (o.key !== undefined) {
      throw new CacheConfigError("pythonArgs", "a function", "unset with a custom key function");
    }
    if (o.interop !== undefined && o.interop !== false) {
      throw new CacheConfigError(
        "pythonArgs",
        "a function",
        "unset in interop mode (interop keys hash the arguments alone)",
      );
    }
  }
  if (o.tags !== undefined && !isFn(o.tags)) {
    throw new CacheConfigError(
      "tags",
      o.tags,
      "a function of the arguments returning an array of tag strings",
    );
  }
  for (const k of ["cacheIf", "resultTags"] as const) {
    if (o[k] !== undefined && !isFn(o[k])) {
      throw new CacheConfigError(
        k,
        o[k],
        k === "cacheIf"
          ? "a function of the result and the arguments returning a boolean"
          : "a function of the result and the arguments returning an array of tag strings",
      );
    }
  }
  return { ttl, serializer };
}

/** `ttlRefreshThreshold`, `staleTtl`, `softTimeout` and `hardTimeout`. */
function resolveTiming(o: CacheOptions<unknown[]>) {
  const ttlRefreshThreshold = o.ttlRefreshThreshold ?? DEFAULTS.ttlRefreshThreshold;
  if (!isFraction(ttlRefreshThreshold)) {
    throw new CacheConfigError(
      "ttlRefreshThreshold",
      o.ttlRefreshThreshold,
      "a fraction within 0..1",
    );
  }
  const staleTtl = o.staleTtl ?? 0;
  if (!isNonNegNum(staleTtl)) {
    throw new CacheConfigError("staleTtl", o.staleTtl, "a number of seconds >= 0");
  }
  const softTimeout = o.softTimeout ?? 0;
  if (!isNonNegNum(softTimeout)) {
    throw new CacheConfigError("softTimeout", o.softTimeout, "a number of seconds >= 0");
  }
  if (softTimeout > 0 && staleTtl === 0) {
    throw new CacheConfigError(
      "softTimeout",
      o.softTimeout,
      "to be used together with staleTtl > 0",
    );
  }
  const hardTimeout = o.hardTimeout ?? 0;
  if (!isNonNegNum(hardTimeout)) {
    throw new CacheConfigError("hardTimeout", o.hardTimeout, "a number of seconds >= 0");
  }
  if (hardTimeout > 0 && softTimeout >= hardTimeout) {
    throw new CacheConfigError(
      "softTimeout",
      o.softTimeout,
      "a number of seconds below hardTimeout (soft serves stale first, hard stops waiting)",
    );
  }
  return { ttlRefreshThreshold, staleTtl, softTimeout, hardTimeout };
}

/** `eagerRefresh`: a fraction within (0, 1), `true` (the environment's ratio) or off. */
function resolveEagerRefresh(o: CacheOptions<unknown[]>, env: EnvConfig): number {
  const v = o.eagerRefresh;
  if (v === undefined || v === false) return 0;
  if (v === true) return env.earlyRefreshRatio < 1 ? env.earlyRefreshRatio : 0;
  if (typeof v !== "number" || !(v > 0 && v < 1)) {
    throw new CacheConfigError(
      "eagerRefresh",
      v,
      "a fraction of the TTL within (0, 1) (e.g. 0.9), true (CACHEKIT_EARLY_REFRESH_RATIO) or false",
    );
  }
  return v;
}

/** `envelopeProtocol`, `wire`, `maxValueSize` and `backend`. */
function resolveStorage(o: CacheOptions<unknown[]>, env: EnvConfig) {
  const envelopeProtocol = o.envelopeProtocol ?? "1.1";
  if (envelopeProtocol !== "1.0" && envelopeProtocol !== "1.1") {
    throw new CacheConfigError("envelopeProtocol", o.envelopeProtocol, '"1.0" or "1.1"');
  }
  const wire = o.wire === undefined ? "envelope" : o.wire;
  if (wire !== "document" && wire !== "envelope") {
    throw new CacheConfigError("wire", o.wire, '"envelope" or "document"');
  }
  const maxValueSize = o.maxValueSize === undefined ? env.maxValueSize : o.maxValueSize;
  if (!isPosInt(maxValueSize)) {
    throw new CacheConfigError("maxValueSize", o.maxValueSize, "an integer number of bytes > 0");
  }
  let backend: Backend | null | "default" = "default";
  if (o.backend !== undefined) {
    if (o.backend !== null && !isBackend(o.backend)) {
      throw new CacheConfigError(
        "backend",
        o.backend,
        "a Backend (get, set, delete, exists, healthCheck, capabilities), or null for L1 only",
      );
    }
    backend = o.backend;
  }
  return { envelopeProtocol, wire, maxValueSize, backend };
}

/** `failSafeThrottle` (allowed without `staleTtl`: the default applies to every function). */
function resolveThrottle(o: CacheOptions<unknown[]>): number {
  const t = o.failSafeThrottle ?? DEFAULTS.failSafeThrottle;
  if (!isNonNegNum(t)) {
    throw new CacheConfigError("failSafeThrottle", o.failSafeThrottle, "a number of seconds >= 0");
  }
  return t;
}

/**
 * Validate the scalar options (in the order their errors have always been reported).
 *
 * @param o The options.
 * @param env The environment (`ttl` and `maxValueSize` defaults).
 */
export function resolveCore(o: CacheOptions<unknown[]>, env: EnvConfig): ResolvedCore {
  const { ttl, serializer } = resolveIdentity(o, env);
  const timing = resolveTiming(o);
  const storage = resolveStorage(o, env);
  return {
    name: o.name ?? null,
    ttl,
    ttlFn: typeof o.ttl === "function" ? o.ttl as ResolvedConfig["ttlFn"] : null,
    cacheIf: (o.cacheIf as ResolvedConfig["cacheIf"]) ?? null,
    resultTags: (o.resultTags as ResolvedConfig["resultTags"]) ?? null,
    namespace: o.namespace ?? null,
    serializer,
    safeMode: o.safeMode ?? false,
    key: (o.key as ResolvedConfig["key"]) ?? null,
    pythonArgs: (o.pythonArgs as ResolvedConfig["pythonArgs"]) ?? null,
    refreshTtlOnGet: o.refreshTtlOnGet ?? false,
    ttlRefreshThreshold: timing.ttlRefreshThreshold,
    backend: storage.backend,
    tags: (o.tags as ResolvedConfig["tags"]) ?? null,
    staleTtl: timing.staleTtl,
    softTimeout: timing.softTimeout,
    eagerRefresh: resolveEagerRefresh(o, env),
    hardTimeout: timing.hardTimeout,
    envelopeProtocol: storage.envelopeProtocol,
    wire: storage.wire,
    maxValueSize: storage.maxValueSize,
    failSafeThrottle: resolveThrottle(o),
  };
}
