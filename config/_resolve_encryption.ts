/**
 * `integrityChecking` and the `encryption` group turned into keys: which presets force them, where
 * the master key comes from (option or `CACHEKIT_MASTER_KEY`), the tenant settings, and the one
 * validation of key material. Separate because it is the only resolver that handles secrets: every
 * error here is built so that it never echoes a key.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import { parseMasterKey } from "../protocol/encryption.ts";
import { toHex } from "../protocol/internal.ts";
import { revealSecretKey, SecretKey } from "./secret_key.ts";
import type { EnvConfig } from "./env.ts";
import type { CacheOptions, PresetName, ResolvedConfig } from "./options.ts";

/**
 * Resolve `integrityChecking`: options ← preset ← environment; `cache.secure` forces it on.
 *
 * @param o The options.
 * @param p The preset's options.
 * @param preset The preset name.
 * @param env The environment.
 */
export function resolveIntegrity(
  o: CacheOptions<unknown[]>,
  p: CacheOptions<unknown[]>,
  preset: PresetName | undefined,
  env: EnvConfig,
): boolean {
  const integrityChecking = o.integrityChecking ?? p.integrityChecking ??
    env.enableCorruptionDetection;
  if (preset === "secure") {
    if (o.integrityChecking === false) {
      throw new CacheConfigError(
        "integrityChecking",
        false,
        "true: cache.secure cannot turn integrity checking off",
      );
    }
    return true;
  }
  return integrityChecking;
}

/**
 * Resolve the merged `encryption` group into keys and tenant settings.
 *
 * @param o The options (an explicit `masterKey` turns encryption on).
 * @param enc The merged, field-checked `encryption` group (`enabled` may be set here).
 * @param preset The preset name (`secure` always encrypts).
 * @param env The environment (`CACHEKIT_MASTER_KEY`, deployment id).
 * @param interop The resolved interop segments (incompatible with encryption and tenants).
 */
export function resolveEncryption(
  o: CacheOptions<unknown[]>,
  enc: Record<string, unknown>,
  preset: PresetName | undefined,
  env: EnvConfig,
  interop: ResolvedConfig["interop"],
): ResolvedConfig["encryption"] {
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
  // Interop keys (`{namespace}:{operation}:{hash}`) carry no tenant segment: every cachekit SDK
  // computes them alike, so tenants would share one entry (a call under `withTenant` is refused
  // at the call: `tenantOf` in `engine/_keys.ts`).
  if (interop && tenant !== null) {
    throw new CacheConfigError(
      "encryption.tenant",
      typeof tenant === "function" ? "a function" : tenant,
      "unset in interop mode (interop keys carry no tenant: tenants would share entries)",
    );
  }
  if (interop && !singleTenant) {
    throw new CacheConfigError(
      "encryption.singleTenant",
      false,
      "unset in interop mode (interop keys carry no tenant)",
    );
  }
  const tenantKeys = (enc.tenantKeys as "hashed" | "plain" | undefined) ??
    (enc.enabled ? "hashed" : "plain");
  if (tenantKeys === "hashed" && !enc.enabled) {
    throw new CacheConfigError(
      "encryption.tenantKeys",
      "hashed",
      '"plain" without encryption (hashed tenant segments are keyed by the master key)',
    );
  }
  return {
    enabled: enc.enabled === true,
    masterKey,
    previousKeys,
    tenant,
    singleTenant,
    deploymentUuid: (enc.deploymentUuid as string | undefined) ?? env.deploymentUuid,
    tenantKeys,
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
