/**
 * Turning options, a preset and the environment into the validated {@linkcode ResolvedConfig} the
 * engine runs on. Precedence: built-in defaults ← environment (`CACHEKIT_*`) ← preset ← explicit
 * options. Every mistake is a {@linkcode CacheConfigError} raised here, when a function is wrapped,
 * never on its first call: unknown option names (typos) included.
 *
 * @example
 * ```ts
 * import { resolveConfig } from "@cachekit/core";
 *
 * const config = resolveConfig({ name: "users.get", ttl: 60, backend: null }, "minimal");
 * console.log(config.ttl, config.integrityChecking, config.circuitBreaker.enabled); // 60 false false
 * ```
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type { Backend } from "../backends/types.ts";
import type { Serializer } from "../serializers/types.ts";
import { parseMasterKey } from "../protocol/encryption.ts";
import { toHex } from "../protocol/_hex.ts";
import { revealSecretKey, SecretKey } from "./secret_key.ts";
import { type EnvConfig, envConfig } from "./env.ts";
import { PRESETS } from "./presets.ts";
import { validateKeyPart } from "../engine/identity.ts";
import type {
  BackpressureOptions,
  CacheOptions,
  CircuitBreakerOptions,
  L1Options,
  MonitoringOptions,
  PresetName,
  Resolved,
  ResolvedConfig,
  StampedeOptions,
  TimeoutOptions,
} from "./options.ts";

/** Built-in defaults of every group (the seed's). */
export const DEFAULTS: {
  readonly l1: Readonly<Resolved<L1Options>>;
  readonly circuitBreaker: Readonly<Resolved<Omit<CircuitBreakerOptions, "excludedErrors">>>;
  readonly timeout: Readonly<Resolved<TimeoutOptions>>;
  readonly backpressure: Readonly<Resolved<BackpressureOptions>>;
  readonly monitoring: Readonly<Resolved<MonitoringOptions>>;
  readonly stampede: Readonly<Resolved<StampedeOptions>>;
  readonly ttlRefreshThreshold: number;
} = Object.freeze({
  l1: Object.freeze({
    enabled: true,
    maxBytes: 100 * 1024 * 1024,
    maxEntries: 10_000,
    storeReferences: false,
    swrEnabled: true,
    swrThreshold: 0.5,
    swrJitter: 0.1,
    invalidation: true,
    expiryBuffer: 1,
    defaultTtl: 300,
  }),
  circuitBreaker: Object.freeze({
    enabled: true,
    failureThreshold: 5,
    successThreshold: 3,
    recoveryTimeout: 30,
    halfOpenRequests: 3,
  }),
  timeout: Object.freeze({
    enabled: true,
    initial: 1.0,
    min: 0.1,
    max: 5.0,
    window: 1000,
    percentile: 95,
  }),
  backpressure: Object.freeze({
    enabled: true,
    maxConcurrent: 100,
    queueSize: 1000,
    waitTimeout: 0.1,
  }),
  monitoring: Object.freeze({
    collectStats: true,
    structuredLogging: true,
    prometheus: true,
  }),
  stampede: Object.freeze({ enabled: true, lease: 30, wait: 5 }),
  ttlRefreshThreshold: 0.5,
});

const TOP_LEVEL_KEYS = new Set<string>([
  "name",
  "ttl",
  "namespace",
  "serializer",
  "safeMode",
  "integrityChecking",
  "key",
  "interop",
  "refreshTtlOnGet",
  "ttlRefreshThreshold",
  "backend",
  "tags",
  "staleTtl",
  "softTimeout",
  "envelopeProtocol",
  "wire",
  "maxValueSize",
  "l1",
  "circuitBreaker",
  "timeout",
  "backpressure",
  "monitoring",
  "encryption",
  "stampede",
]);

const SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;

type Check = (value: unknown) => boolean;
const isBool: Check = (v) => typeof v === "boolean";
const isFn: Check = (v) => typeof v === "function";
const isPosNum: Check = (v) => typeof v === "number" && Number.isFinite(v) && v > 0;
const isNonNegNum: Check = (v) => typeof v === "number" && Number.isFinite(v) && v >= 0;
const isPosInt: Check = (v) => Number.isSafeInteger(v) && (v as number) > 0;
const isNonNegInt: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isFraction: Check = (v) => typeof v === "number" && v >= 0 && v <= 1;

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
    storeReferences: f(isBool, "a boolean"),
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
      (v) => (typeof v === "string" && v.length > 0) || isFn(v),
      "a non-empty string or a function of the arguments",
    ),
    singleTenant: f(isBool, "a boolean"),
    deploymentUuid: f((v) => typeof v === "string" && v.length > 0, "a non-empty string"),
    tenantKeys: f((v) => v === "hashed" || v === "plain", '"hashed" or "plain"'),
  },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

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
    if (!spec && group === "monitoring" && k === "tracing") {
      // Validated but read by nothing until 0.1.x: an option that did nothing is gone until
      // OpenTelemetry spans exist to switch.
      throw new CacheConfigError(
        "monitoring.tracing",
        v,
        "no such option yet: tracing (OpenTelemetry spans) is not implemented in this release, " +
          "remove the option",
      );
    }
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

/** Whether `v` could be key material (a hex string, bytes, or a list of them). */
function mayBeKey(v: unknown): boolean {
  return typeof v === "string" || v instanceof Uint8Array || Array.isArray(v);
}

function isBackend(v: unknown): v is Backend {
  if (typeof v !== "object" || v === null) return false;
  const b = v as Record<string, unknown>;
  return ["get", "set", "delete", "exists", "healthCheck"].every((m) =>
    typeof b[m] === "function"
  ) &&
    typeof b.capabilities === "object" && b.capabilities !== null;
}

function isSerializer(v: unknown): v is Serializer {
  if (typeof v !== "object" || v === null) return false;
  const s = v as Record<string, unknown>;
  return typeof s.serialize === "function" && typeof s.deserialize === "function" &&
    typeof s.name === "string" && s.name.length > 0;
}

/**
 * Validate and merge `options` over the `preset` and the environment.
 *
 * @param options What the user passed to `cache()` (or a preset).
 * @param preset The preset, if a `cache.<preset>` form was used.
 * @param env Environment settings (default: the process environment, read once).
 * @returns The complete configuration.
 * @throws {CacheConfigError} Any invalid, unknown or contradictory option.
 *
 * @example Contradictions are refused when the function is wrapped
 * ```ts
 * import { CacheConfigError, resolveConfig } from "@cachekit/core";
 * try {
 *   resolveConfig({ name: "f", ttlRefreshThreshold: 1.5 });
 * } catch (e) {
 *   console.log(e instanceof CacheConfigError, (e as CacheConfigError).option); // true ttlRefreshThreshold
 * }
 * ```
 */
export function resolveConfig<A extends unknown[]>(
  options: CacheOptions<A> = {},
  preset?: PresetName,
  env: EnvConfig = envConfig(),
): ResolvedConfig {
  if (!isPlainObject(options)) throw new CacheConfigError("options", options, "an options object");
  if (preset !== undefined && !(preset in PRESETS)) {
    throw new CacheConfigError("preset", preset, `one of ${Object.keys(PRESETS).join(", ")}`);
  }
  for (const k of Object.keys(options)) {
    if (!TOP_LEVEL_KEYS.has(k)) {
      const v = (options as Record<string, unknown>)[k];
      // A key given at the top level (`masterKey: "…"`) would be echoed: strings and bytes are not.
      throw new CacheConfigError(k, v, `a known option (${[...TOP_LEVEL_KEYS].join(", ")})`, {
        secret: mayBeKey(v),
      });
    }
  }
  const o = options as CacheOptions<unknown[]>;
  const p: CacheOptions<unknown[]> = preset ? PRESETS[preset] : {};

  // ---- scalars
  if (
    o.name !== undefined &&
    (typeof o.name !== "string" || o.name.trim() === "" || /[\s]/.test(o.name))
  ) {
    throw new CacheConfigError("name", o.name, "a non-empty string without white space");
  }
  if (o.name !== undefined) validateKeyPart("name", o.name);
  let ttl: number | null = env.defaultTtl;
  if (o.ttl !== undefined) {
    if (o.ttl !== null && !isPosNum(o.ttl)) {
      throw new CacheConfigError("ttl", o.ttl, "a number of seconds > 0, or null for no expiry");
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
  if (serializer !== "std" && serializer !== "json" && !isSerializer(serializer)) {
    throw new CacheConfigError(
      "serializer",
      serializer,
      '"std", "json", or an object with name, serialize(value) and deserialize(bytes)',
    );
  }
  for (const k of ["safeMode", "integrityChecking", "refreshTtlOnGet"] as const) {
    if (o[k] !== undefined && !isBool(o[k])) throw new CacheConfigError(k, o[k], "a boolean");
  }
  if (o.key !== undefined && !isFn(o.key)) {
    throw new CacheConfigError("key", o.key, "a function of the arguments returning a string");
  }
  if (o.tags !== undefined && !isFn(o.tags)) {
    throw new CacheConfigError(
      "tags",
      o.tags,
      "a function of the arguments returning an array of tag strings",
    );
  }
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

  // ---- interop
  let interop: ResolvedConfig["interop"] = null;
  if (o.interop !== undefined && o.interop !== false) {
    const io = o.interop === true ? {} : o.interop;
    if (!isPlainObject(io)) {
      throw new CacheConfigError("interop", o.interop, "true, false or { namespace, operation }");
    }
    for (const k of Object.keys(io)) {
      if (k !== "namespace" && k !== "operation") {
        throw new CacheConfigError(
          `interop.${k}`,
          (io as Record<string, unknown>)[k],
          "namespace or operation",
        );
      }
    }
    const ns = io.namespace ?? o.namespace;
    const op = io.operation ?? o.name;
    if (typeof ns !== "string" || !SEGMENT.test(ns)) {
      throw new CacheConfigError(
        "interop.namespace",
        ns,
        "a namespace matching ^[a-z0-9][a-z0-9._-]{0,63}$ (interop requires one)",
      );
    }
    if (typeof op !== "string" || !SEGMENT.test(op)) {
      throw new CacheConfigError(
        "interop.operation",
        op,
        "an operation name (or `name`) matching ^[a-z0-9][a-z0-9._-]{0,63}$",
      );
    }
    if (o.key !== undefined) {
      throw new CacheConfigError("key", "a function", "no custom key function in interop mode");
    }
    if (o.wire !== undefined) {
      throw new CacheConfigError(
        "wire",
        o.wire,
        "unset in interop mode (interop values are plain MessagePack)",
      );
    }
    interop = { namespace: ns, operation: op };
  }

  // ---- groups: defaults ← preset ← options
  // Field types were checked by checkGroup, so the merged object has T's shape.
  const merge = <T extends object>(group: string, dflt: T): T =>
    ({
      ...dflt,
      ...checkGroup(group, (p as Record<string, unknown>)[group]),
      ...checkGroup(group, (o as Record<string, unknown>)[group]),
    }) as T;
  const l1 = merge("l1", DEFAULTS.l1);
  const cbMerged = merge("circuitBreaker", { ...DEFAULTS.circuitBreaker, excludedErrors: null });
  const timeout = merge("timeout", DEFAULTS.timeout);
  const backpressure = merge("backpressure", DEFAULTS.backpressure);
  const monitoring = merge("monitoring", {
    ...DEFAULTS.monitoring,
    prometheus: env.enablePrometheusMetrics,
  });
  const stampede = merge("stampede", DEFAULTS.stampede);
  const enc = merge<Record<string, unknown>>("encryption", { enabled: false });

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
  if (l1.storeReferences && backend !== null) {
    throw new CacheConfigError(
      "l1.storeReferences",
      true,
      "only with backend: null (values stored by reference cannot be shared with an L2)",
    );
  }
  if (backend === null && !l1.enabled) {
    throw new CacheConfigError(
      "l1.enabled",
      false,
      "true when backend is null (nothing would be cached)",
    );
  }

  // ---- integrity
  let integrityChecking = o.integrityChecking ?? p.integrityChecking ??
    env.enableCorruptionDetection;
  if (preset === "secure") {
    if (o.integrityChecking === false) {
      throw new CacheConfigError(
        "integrityChecking",
        false,
        "true: cache.secure cannot turn integrity checking off",
      );
    }
    integrityChecking = true;
  }

  // ---- encryption
  const explicitEnc = (o.encryption ?? {}) as Record<string, unknown>;
  if (explicitEnc.masterKey !== undefined && explicitEnc.enabled === undefined) enc.enabled = true;
  if (preset === "secure" && enc.enabled === false) {
    throw new CacheConfigError("encryption.enabled", false, "true: cache.secure always encrypts");
  }
  let masterKey: SecretKey | null = null;
  const previousKeys: SecretKey[] = [];
  if (enc.enabled) {
    const explicit = enc.masterKey as string | Uint8Array | undefined;
    if (explicit === undefined && env.masterKey === null) {
      throw new CacheConfigError(
        "encryption.masterKey",
        undefined,
        "a master key (hex, >= 32 bytes) in encryption.masterKey or CACHEKIT_MASTER_KEY: encryption needs one",
      );
    }
    masterKey = explicit !== undefined
      ? toKey(explicit, "encryption.masterKey")
      : envKey(env.masterKey!, "encryption.masterKey");
    for (
      const [i, k] of ((enc.previousKeys as (string | Uint8Array)[] | undefined) ?? []).entries()
    ) {
      previousKeys.push(toKey(k, `encryption.previousKeys[${i}]`));
    }
    if (interop) {
      throw new CacheConfigError(
        "interop",
        true,
        "interop off when encrypting (interop values are plain MessagePack)",
      );
    }
  }
  const tenant = (enc.tenant as string | ((...a: never[]) => string) | undefined) ?? null;
  const singleTenant = (enc.singleTenant as boolean | undefined) ?? (typeof tenant !== "function");
  const tenantKeys = (enc.tenantKeys as "hashed" | "plain" | undefined) ??
    (enc.enabled ? "hashed" : "plain");
  if (tenantKeys === "hashed" && !enc.enabled) {
    throw new CacheConfigError(
      "encryption.tenantKeys",
      "hashed",
      '"plain" without encryption (hashed tenant segments are keyed by the master key)',
    );
  }

  const { excludedErrors, ...cbRest } = cbMerged as typeof cbMerged & { excludedErrors: unknown };
  return {
    preset: preset ?? "default",
    name: o.name ?? null,
    ttl,
    namespace: o.namespace ?? null,
    serializer,
    safeMode: o.safeMode ?? false,
    integrityChecking,
    key: (o.key as ResolvedConfig["key"]) ?? null,
    interop,
    refreshTtlOnGet: o.refreshTtlOnGet ?? false,
    ttlRefreshThreshold,
    backend,
    tags: (o.tags as ResolvedConfig["tags"]) ?? null,
    staleTtl,
    softTimeout,
    envelopeProtocol,
    wire,
    maxValueSize,
    l1,
    circuitBreaker: {
      ...cbRest,
      excludedErrors: (excludedErrors as ResolvedConfig["circuitBreaker"]["excludedErrors"]) ??
        null,
    },
    timeout,
    backpressure,
    monitoring,
    encryption: {
      enabled: enc.enabled === true,
      masterKey,
      previousKeys,
      tenant,
      singleTenant,
      deploymentUuid: (enc.deploymentUuid as string | undefined) ?? env.deploymentUuid,
      tenantKeys,
    },
    stampede,
  };
}

/** The `CACHEKIT_MASTER_KEY` holder, through the same validation as an explicit key. */
function envKey(key: SecretKey, option: string): SecretKey {
  const bytes = revealSecretKey(key);
  try {
    return toKey(bytes, option);
  } finally {
    bytes.fill(0);
  }
}

function toKey(raw: string | Uint8Array, option: string): SecretKey {
  // One validation for both forms (length, hex, weak-key checks) lives in parseMasterKey.
  const hex = typeof raw === "string" ? raw : toHex(raw);
  const bytes = parseMasterKey(hex, option);
  const key = new SecretKey(bytes);
  bytes.fill(0);
  return key;
}
