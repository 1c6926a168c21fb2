/**
 * Turning options, a preset and the environment into the validated {@linkcode ResolvedConfig} the
 * engine runs on. Precedence: built-in defaults ← environment (`CACHEKIT_*`) ← preset ← explicit
 * options. Every mistake is a {@linkcode CacheConfigError} raised here, when a function is wrapped,
 * never on its first call: unknown option names (typos) included.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveConfig } from "./resolve.ts";
 *
 * const config = resolveConfig({ name: "users.get", ttl: 60, backend: null }, "minimal");
 * assert.equal(config.ttl, 60);
 * assert.equal(config.integrityChecking, false);
 * assert.equal(config.circuitBreaker.enabled, false);
 * ```
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import { PRESETS } from "./presets.ts";
import { type EnvConfig, envConfig } from "./env.ts";
import type { CacheOptions, PresetName, ResolvedConfig } from "./options.ts";
import { checkOptionNames, resolveCore } from "./_resolve_core.ts";
import { resolveInterop } from "./_resolve_interop.ts";
import { resolveGroups } from "./_resolve_groups.ts";
import { resolveEncryption, resolveIntegrity } from "./_resolve_encryption.ts";

export { DEFAULTS } from "./_defaults.ts";

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
 * import assert from "node:assert/strict";
 * import { CacheConfigError } from "@cachekit/core";
 * import { resolveConfig } from "./resolve.ts";
 *
 * assert.throws(
 *   () => resolveConfig({ name: "f", ttlRefreshThreshold: 1.5 }),
 *   (e) => e instanceof CacheConfigError && e.option === "ttlRefreshThreshold",
 * );
 * ```
 */
export function resolveConfig<A extends unknown[], R = unknown>(
  options: CacheOptions<A, R> = {},
  preset?: PresetName,
  env: EnvConfig = envConfig(),
): ResolvedConfig {
  // One resolver per option group, each in a private file (_resolve_core: the top-level options;
  // _resolve_interop; _resolve_groups: the nested groups from one field table; _resolve_encryption:
  // integrity and keys), so a rule and its message are found by the option's name. They run in the
  // order their errors have always been reported.
  const o = checkOptionNames(options, preset) as CacheOptions<unknown[]>;
  const p: CacheOptions<unknown[]> = preset ? PRESETS[preset] : {};
  const core = resolveCore(o, env);
  const interop = resolveInterop(o);
  const groups = resolveGroups(o, p, env, core.backend);
  const integrityChecking = resolveIntegrity(o, p, preset, env);
  const encryption = resolveEncryption(o, groups.encryption, preset, env, interop);
  if (core.eagerRefresh > 0 && !groups.l1.enabled) {
    throw new CacheConfigError(
      "eagerRefresh",
      o.eagerRefresh,
      "unset with l1.enabled false (the refresh point is kept on the L1 entry)",
    );
  }
  return {
    preset: preset ?? "default",
    name: core.name,
    ttl: core.ttl,
    ttlFn: core.ttlFn,
    cacheIf: core.cacheIf,
    resultTags: core.resultTags,
    namespace: core.namespace,
    serializer: core.serializer,
    safeMode: core.safeMode,
    integrityChecking,
    key: core.key,
    pythonArgs: core.pythonArgs,
    interop,
    refreshTtlOnGet: core.refreshTtlOnGet,
    ttlRefreshThreshold: core.ttlRefreshThreshold,
    backend: core.backend,
    tags: core.tags,
    staleTtl: core.staleTtl,
    softTimeout: core.softTimeout,
    eagerRefresh: core.eagerRefresh,
    hardTimeout: core.hardTimeout,
    envelopeProtocol: core.envelopeProtocol,
    wire: core.wire,
    maxValueSize: core.maxValueSize,
    failSafeThrottle: core.failSafeThrottle,
    l1: groups.l1,
    circuitBreaker: groups.circuitBreaker,
    timeout: groups.timeout,
    backpressure: groups.backpressure,
    monitoring: groups.monitoring,
    encryption,
    stampede: groups.stampede,
  };
}
