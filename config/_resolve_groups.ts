/**
 * The nested option groups of `cache()` (`l1`, `circuitBreaker`, `timeout`, `backpressure`,
 * `monitoring`, `stampede`, `encryption`): the field table each is checked against, and the merge
 * defaults ← preset ← options with the checks that span two fields or two groups. Separate from
 * the scalar options because every group follows the same table-driven rule.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type { Backend } from "../backends/types.ts";
import type { EnvConfig } from "./env.ts";
import type { CacheOptions, ResolvedConfig } from "./options.ts";
import { DEFAULTS } from "./_defaults.ts";
import { isWellFormed } from "../protocol/internal.ts";
import {
  type Check,
  isBool,
  isFn,
  isFraction,
  isNonNegInt,
  isNonNegNum,
  isPlainObject,
  isPosInt,
  isPosNum,
  mayBeKey,
} from "./_resolve_checks.ts";

interface FieldSpec {
  check: Check;
  expected: string;
}
const f = (check: Check, expected: string): FieldSpec => ({ check, expected });

const GROUP_FIELDS: Record<string, Record<string, FieldSpec>> = {
  l1: {
    enabled: f(isBool, "a boolean"),
    maxBytes: f(isPosInt, "an integer number of bytes > 0"),
    maxEntries: f(isPosInt, "an integer > 0"),
    copy: f((v) => v === "clone" || v === "freeze" || v === "none", '"clone", "freeze" or "none"'),
    storeReferences: f(isBool, 'a boolean (deprecated: use copy: "none")'),
    swrEnabled: f(isBool, "a boolean"),
    swrThreshold: f(
      (v) => isFraction(v) && (v as number) > 0 && (v as number) < 1,
      "a fraction within (0, 1)",
    ),
    swrJitter: f((v) => isFraction(v) && (v as number) < 1, "a fraction within [0, 1)"),
    invalidation: f(isBool, "a boolean"),
    expiryBuffer: f(isNonNegNum, "a number of seconds >= 0"),
    defaultTtl: f(isPosNum, "a number of seconds > 0"),
  },
  circuitBreaker: {
    enabled: f(isBool, "a boolean"),
    failureThreshold: f(isPosInt, "an integer > 0"),
    successThreshold: f(isPosInt, "an integer > 0"),
    recoveryTimeout: f(isPosNum, "a number of seconds > 0"),
    halfOpenRequests: f(isPosInt, "an integer > 0"),
    excludedErrors: f(isFn, "a function (error) => boolean"),
  },
  timeout: {
    enabled: f(isBool, "a boolean"),
    initial: f(isPosNum, "a number of seconds > 0"),
    min: f(isPosNum, "a number of seconds > 0"),
    max: f(isPosNum, "a number of seconds > 0"),
    window: f(isPosInt, "an integer > 0"),
    percentile: f(
      (v) => typeof v === "number" && v > 0 && v <= 100,
      "a percentile within (0, 100]",
    ),
  },
  backpressure: {
    enabled: f(isBool, "a boolean"),
    maxConcurrent: f(isPosInt, "an integer > 0"),
    queueSize: f(isNonNegInt, "an integer >= 0"),
    waitTimeout: f(isNonNegNum, "a number of seconds >= 0"),
  },
  monitoring: {
    collectStats: f(isBool, "a boolean"),
    structuredLogging: f(isBool, "a boolean"),
    prometheus: f(isBool, "a boolean"),
    tracing: f(isBool, "a boolean"),
  },
  stampede: {
    enabled: f(isBool, "a boolean"),
    lease: f(isPosNum, "a number of seconds > 0"),
    wait: f(isNonNegNum, "a number of seconds >= 0"),
  },
  encryption: {
    enabled: f(isBool, "a boolean"),
    masterKey: f(
      (v) => typeof v === "string" || v instanceof Uint8Array,
      "a hex string or Uint8Array of at least 32 bytes",
    ),
    previousKeys: f(
      (v) => Array.isArray(v) && v.every((k) => typeof k === "string" || k instanceof Uint8Array),
      "an array of hex strings or Uint8Arrays",
    ),
    tenant: f(
      (v) => (typeof v === "string" && v.length > 0 && isWellFormed(v)) || isFn(v),
      "a non-empty, well-formed string or a function of the arguments",
    ),
    singleTenant: f(isBool, "a boolean"),
    deploymentUuid: f((v) => typeof v === "string" && v.length > 0, "a non-empty string"),
    tenantKeys: f((v) => v === "hashed" || v === "plain", '"hashed" or "plain"'),
  },
};

/** Validate one nested group given by the user or a preset; returns it (a `false` group → `{enabled:false}`). */
function checkGroup(group: string, value: unknown): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (value === false) return { enabled: false };
  if (value === true && group !== "monitoring") return { enabled: true };
  if (!isPlainObject(value)) {
    throw new CacheConfigError(
      group,
      value,
      `an options object${group === "monitoring" ? "" : " or false"}`,
      { secret: group === "encryption" && mayBeKey(value) },
    );
  }
  const fields = GROUP_FIELDS[group];
  for (const [k, v] of Object.entries(value)) {
    const spec = fields[k];
    if (!spec) {
      // A misspelt key option (`master_key`, `masterkey`) holds a key: never echo it.
      throw new CacheConfigError(
        `${group}.${k}`,
        v,
        `one of the known options of ${group}: ${Object.keys(fields).join(", ")}`,
        { secret: group === "encryption" },
      );
    }
    if (v !== undefined && !spec.check(v)) {
      throw new CacheConfigError(`${group}.${k}`, v, spec.expected, {
        secret: k === "masterKey" || k === "previousKeys",
      });
    }
  }
  return value;
}

/** The merged groups, before the encryption group is turned into keys. */
export type ResolvedGroups =
  & Pick<
    ResolvedConfig,
    "l1" | "circuitBreaker" | "timeout" | "backpressure" | "monitoring" | "stampede"
  >
  & {
    /** The `encryption` group as merged (checked field by field, keys not parsed yet). */
    encryption: Record<string, unknown>;
  };

/**
 * Merge every group defaults ← `preset` ← `options`, then check what spans fields or groups.
 *
 * @param o The options.
 * @param p The preset's options (`{}` without a preset).
 * @param env The environment (`monitoring.prometheus` default).
 * @param backend The resolved backend (`l1` checks depend on it).
 */
export function resolveGroups(
  o: CacheOptions<unknown[]>,
  p: CacheOptions<unknown[]>,
  env: EnvConfig,
  backend: Backend | null | "default",
): ResolvedGroups {
  // Field types were checked by checkGroup, so the merged object has T's shape.
  const merge = <T extends object>(group: string, dflt: T): T =>
    ({
      ...dflt,
      ...checkGroup(group, (p as Record<string, unknown>)[group]),
      ...checkGroup(group, (o as Record<string, unknown>)[group]),
    }) as T;
  const l1 = l1Group(merge("l1", { ...DEFAULTS.l1, storeReferences: false }), o, p);
  const cbMerged = merge("circuitBreaker", { ...DEFAULTS.circuitBreaker, excludedErrors: null });
  const timeout = merge("timeout", DEFAULTS.timeout);
  const backpressure = merge("backpressure", DEFAULTS.backpressure);
  const monitoring = merge("monitoring", {
    ...DEFAULTS.monitoring,
    prometheus: env.enablePrometheusMetrics,
  });
  const stampede = merge("stampede", DEFAULTS.stampede);
  const encryption = merge<Record<string, unknown>>("encryption", { enabled: false });

  if (timeout.min > timeout.max) {
    throw new CacheConfigError(
      "timeout.min",
      timeout.min,
      `a value <= timeout.max (${timeout.max})`,
    );
  }
  if (timeout.initial < timeout.min || timeout.initial > timeout.max) {
    throw new CacheConfigError(
      "timeout.initial",
      timeout.initial,
      `a value within timeout.min..timeout.max (${timeout.min}..${timeout.max})`,
    );
  }
  if (backend === null && !l1.enabled) {
    throw new CacheConfigError(
      "l1.enabled",
      false,
      "true when backend is null (nothing would be cached)",
    );
  }
  const { excludedErrors, ...cbRest } = cbMerged as typeof cbMerged & { excludedErrors: unknown };
  return {
    l1,
    circuitBreaker: {
      ...cbRest,
      excludedErrors: (excludedErrors as ResolvedConfig["circuitBreaker"]["excludedErrors"]) ??
        null,
    },
    timeout,
    backpressure,
    monitoring,
    stampede,
    encryption,
  };
}

/**
 * The `l1` group without the deprecated `storeReferences`, which means `copy: "none"` (refused
 * beside another `copy` given in the same options).
 */
function l1Group(
  merged: ResolvedConfig["l1"] & { storeReferences?: boolean },
  o: CacheOptions<unknown[]>,
  p: CacheOptions<unknown[]>,
): ResolvedConfig["l1"] {
  const { storeReferences, ...l1 } = merged;
  if (!storeReferences) return l1;
  for (const given of [o.l1, p.l1]) {
    if (typeof given !== "object" || given === null || given.storeReferences !== true) continue;
    if (given.copy !== undefined && given.copy !== "none") {
      throw new CacheConfigError(
        "l1.storeReferences",
        true,
        `no storeReferences beside copy: "${given.copy}" (storeReferences is deprecated: it means ` +
          'copy: "none"; give only copy)',
      );
    }
  }
  return { ...l1, copy: "none" };
}
