/**
 * Environment configuration (`CACHEKIT_` prefix, the names of cachekit-py 0.3.0, the Python SDK),
 * read once, validated, and overridable in code: explicit options always win over the environment.
 *
 * Works on Deno (`Deno.env`; without `--allow-env` the variables count as unset), Bun and Node
 * (`process.env`). An invalid variable throws {@linkcode CacheConfigError} naming the variable, the
 * value (never for `CACHEKIT_MASTER_KEY`) and what is allowed.
 *
 * Secrets are not on the returned object in any form an inspection can reach — not as hidden or
 * non-enumerable properties either (`Deno.inspect`/`util.inspect` with `showHidden`,
 * `Object.getOwnPropertyDescriptors` and `structuredClone` show those): the master key is a
 * {@linkcode SecretKey}, and `redisUrl` is the URL with its password redacted, the real one being
 * kept in this module for {@linkcode redisUrlFromEnv}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnvConfig } from "./env.ts";
 *
 * const env = readEnvConfig({ CACHEKIT_DEFAULT_TTL: "120", REDIS_URL: "redis://127.0.0.1:6379" });
 * assert.equal(env.defaultTtl, 120);
 * assert.equal(env.redisUrl, "redis://127.0.0.1:6379");
 * ```
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import { parseRedisUrl, redactRedisUrl } from "../backends/redis_url.ts";
import { fromHex } from "../protocol/internal.ts";
import { SecretKey } from "./secret_key.ts";
import { envReaders, type EnvSource } from "./_env_read.ts";

/** The library-wide settings taken from the environment. Field comments give the variable and default. */
export interface EnvConfig {
  /**
   * `CACHEKIT_REDIS_URL`, falling back to `REDIS_URL`, with its password replaced by `<redacted>`;
   * `null` when neither is set. {@linkcode redisUrlFromEnv} gives the real URL.
   */
  redisUrl: string | null;
  /** `CACHEKIT_DEFAULT_TTL` (seconds), default 3600; must lie within `ttlMin..ttlMax`. */
  defaultTtl: number;
  /** `CACHEKIT_TTL_MIN` (seconds), default 60. */
  ttlMin: number;
  /** `CACHEKIT_TTL_MAX` (seconds), default 86400. */
  ttlMax: number;
  /** `CACHEKIT_MAX_KEY_SIZE` (bytes), default 1024. Read and validated; the engine does not apply it. */
  maxKeySize: number;
  /**
   * `CACHEKIT_MAX_VALUE_SIZE` (bytes), default 100 MiB: the default of the `maxValueSize` option
   * (largest serialized value cached, and largest declared size read back).
   */
  maxValueSize: number;
  /** `CACHEKIT_MAX_CHUNK_SIZE_MB` (MiB), default 50: Redis chunk size for large values. */
  maxChunkSizeMb: number;
  /** `CACHEKIT_ENABLE_COMPRESSION`, default true. */
  enableCompression: boolean;
  /** `CACHEKIT_COMPRESSION_LEVEL` (1..12), default 6. */
  compressionLevel: number;
  /** `CACHEKIT_RETRY_ON_TIMEOUT`, default true. */
  retryOnTimeout: boolean;
  /** `CACHEKIT_MAX_RETRIES`, default 3. */
  maxRetries: number;
  /** `CACHEKIT_RETRY_DELAY_MS`, default 100. */
  retryDelayMs: number;
  /** `CACHEKIT_EARLY_REFRESH_RATIO` (0..1), default 0.9. */
  earlyRefreshRatio: number;
  /** `CACHEKIT_ENABLE_CORRUPTION_DETECTION`, default true: the default of `integrityChecking`. */
  enableCorruptionDetection: boolean;
  /** `CACHEKIT_ENABLE_PROMETHEUS_METRICS`, default true: the default of `monitoring.prometheus`. */
  enablePrometheusMetrics: boolean;
  /** `CACHEKIT_DEPLOYMENT_UUID`, default none. */
  deploymentUuid: string | null;
  /** `CACHEKIT_DEV_MODE`, default false. */
  devMode: boolean;
  /**
   * `CACHEKIT_CONSOLE_NOTICES`, default true: while the application has configured no LogTape
   * logging, the first L2 failure of each kind (wrong password, unreachable server, unwritable cache
   * directory…) is printed once to the console. `false` silences it.
   */
  consoleNotices: boolean;
  /**
   * `CACHEKIT_MASTER_KEY` (hex; secret, never logged), default none: its bytes held by a
   * {@linkcode SecretKey}, which no inspection, JSON or clone shows.
   */
  masterKey: SecretKey | null;
  /** `CACHEKIT_FILE_CACHE_DIR`, default: the OS cache directory + `/cachekit`. */
  fileCacheDir: string | null;
  /** `CACHEKIT_FILE_MAX_SIZE_MB`, default 1024. */
  fileMaxSizeMb: number;
  /** `CACHEKIT_FILE_MAX_VALUE_MB`, default 100. */
  fileMaxValueMb: number;
  /** `CACHEKIT_FILE_MAX_ENTRY_COUNT`, default 10000. */
  fileMaxEntryCount: number;
  /** `CACHEKIT_FILE_LOCK_TIMEOUT_SECONDS`, default 5. */
  fileLockTimeoutSeconds: number;
  /** `CACHEKIT_FILE_PERMISSIONS` (octal), default 0o600. */
  filePermissions: number;
  /** `CACHEKIT_FILE_DIR_PERMISSIONS` (octal), default 0o700. */
  fileDirPermissions: number;
}

/** A source of variables: an object, or a lookup function. */
export type { EnvSource } from "./_env_read.ts";

/**
 * Parse and validate the `CACHEKIT_*` variables from `source` (default: the runtime's environment).
 *
 * @param source Variables to read instead of the process environment (tests, embedding).
 * @returns The validated settings, with defaults for unset variables.
 * @throws {CacheConfigError} A variable that is set but invalid.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnvConfig } from "./env.ts";
 * assert.equal(readEnvConfig({}).defaultTtl, 3600);
 * ```
 */
export function readEnvConfig(source?: EnvSource): EnvConfig {
  const { raw, num, int, bool, octal } = envReaders(source);
  const url = (name: string) => {
    const v = raw(name);
    if (v !== undefined) parseRedisUrl(v, name); // CacheConfigError naming the variable, password redacted
    return v;
  };
  const ttlMin = num("CACHEKIT_TTL_MIN", 60, (n) => n > 0, "a number of seconds > 0");
  const ttlMax = num(
    "CACHEKIT_TTL_MAX",
    86400,
    (n) => n >= ttlMin,
    `a number of seconds >= TTL_MIN (${ttlMin})`,
  );
  const defaultTtl = num(
    "CACHEKIT_DEFAULT_TTL",
    3600,
    (n) => n >= ttlMin && n <= ttlMax,
    `a number of seconds within CACHEKIT_TTL_MIN..CACHEKIT_TTL_MAX (${ttlMin}..${ttlMax})`,
  );
  const masterHex = raw("CACHEKIT_MASTER_KEY") ?? null;
  if (masterHex !== null && !/^(?:[0-9a-fA-F]{2}){32,}$/.test(masterHex)) {
    throw new CacheConfigError(
      "CACHEKIT_MASTER_KEY",
      masterHex,
      "at least 64 hex characters (32 bytes)",
      {
        secret: true,
      },
    );
  }
  const deploymentUuid = raw("CACHEKIT_DEPLOYMENT_UUID") ?? null;
  if (deploymentUuid !== null && !/^[0-9a-fA-F-]{8,64}$/.test(deploymentUuid)) {
    throw new CacheConfigError("CACHEKIT_DEPLOYMENT_UUID", deploymentUuid, "a UUID");
  }
  let masterKey: SecretKey | null = null;
  if (masterHex !== null) {
    const bytes = fromHex(masterHex)!;
    masterKey = new SecretKey(bytes);
    bytes.fill(0);
  }
  const redisUrl = url("CACHEKIT_REDIS_URL") ?? url("REDIS_URL") ?? null;
  const config: EnvConfig = {
    redisUrl: redisUrl === null ? null : redactRedisUrl(redisUrl),
    defaultTtl,
    ttlMin,
    ttlMax,
    maxKeySize: int("CACHEKIT_MAX_KEY_SIZE", 1024, 1),
    maxValueSize: int("CACHEKIT_MAX_VALUE_SIZE", 100 * 1024 * 1024, 1),
    maxChunkSizeMb: num(
      "CACHEKIT_MAX_CHUNK_SIZE_MB",
      50,
      (n) => n > 0 && n <= 512,
      "a size in MiB within (0, 512]",
    ),
    enableCompression: bool("CACHEKIT_ENABLE_COMPRESSION", true),
    compressionLevel: num(
      "CACHEKIT_COMPRESSION_LEVEL",
      6,
      (n) => Number.isInteger(n) && n >= 1 && n <= 12,
      "an integer 1..12",
    ),
    retryOnTimeout: bool("CACHEKIT_RETRY_ON_TIMEOUT", true),
    maxRetries: int("CACHEKIT_MAX_RETRIES", 3, 0),
    retryDelayMs: int("CACHEKIT_RETRY_DELAY_MS", 100, 0),
    earlyRefreshRatio: num(
      "CACHEKIT_EARLY_REFRESH_RATIO",
      0.9,
      (n) => n > 0 && n <= 1,
      "a fraction within (0, 1]",
    ),
    enableCorruptionDetection: bool("CACHEKIT_ENABLE_CORRUPTION_DETECTION", true),
    enablePrometheusMetrics: bool("CACHEKIT_ENABLE_PROMETHEUS_METRICS", true),
    deploymentUuid,
    devMode: bool("CACHEKIT_DEV_MODE", false),
    consoleNotices: bool("CACHEKIT_CONSOLE_NOTICES", true),
    masterKey,
    fileCacheDir: raw("CACHEKIT_FILE_CACHE_DIR") ?? null,
    fileMaxSizeMb: num("CACHEKIT_FILE_MAX_SIZE_MB", 1024, (n) => n > 0, "a size in MiB > 0"),
    fileMaxValueMb: num("CACHEKIT_FILE_MAX_VALUE_MB", 100, (n) => n > 0, "a size in MiB > 0"),
    fileMaxEntryCount: int("CACHEKIT_FILE_MAX_ENTRY_COUNT", 10000, 1),
    fileLockTimeoutSeconds: num(
      "CACHEKIT_FILE_LOCK_TIMEOUT_SECONDS",
      5,
      (n) => n > 0,
      "a number of seconds > 0",
    ),
    filePermissions: octal("CACHEKIT_FILE_PERMISSIONS", 0o600),
    fileDirPermissions: octal("CACHEKIT_FILE_DIR_PERMISSIONS", 0o700),
  };
  if (redisUrl !== null && config.redisUrl !== null) {
    realRedisUrls.set(config, redisUrl);
    realByRedacted.set(config.redisUrl, redisUrl);
  }
  return config;
}

/** The real Redis URL of each config {@linkcode readEnvConfig} returned (not on the object). */
const realRedisUrls = new WeakMap<EnvConfig, string>();
/** The same by redacted form, for copies of those configs (`{ ...envConfig(), defaultTtl: 5 }`). */
const realByRedacted = new Map<string, string>();

let cached: EnvConfig | undefined;

/**
 * The process environment's settings, read and validated once on first use and then reused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { envConfig } from "./env.ts";
 * assert.equal(typeof envConfig().defaultTtl, "number");
 * ```
 */
export function envConfig(): EnvConfig {
  return cached ??= readEnvConfig();
}

/**
 * Forget the settings read by {@linkcode envConfig} (or install `config`), so the next call reads
 * the environment again. For tests and for applications that set variables at start-up.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnvConfig, resetEnvConfig, envConfig } from "./env.ts";
 * resetEnvConfig(readEnvConfig({ CACHEKIT_DEFAULT_TTL: "90" }));
 * assert.equal(envConfig().defaultTtl, 90);
 * resetEnvConfig();
 * ```
 */
export function resetEnvConfig(config?: EnvConfig): void {
  cached = config;
}

/** File backend options derived from the environment (names follow `FileBackendOptions`). */
export interface FileBackendEnvOptions {
  /** Cache directory, when `CACHEKIT_FILE_CACHE_DIR` is set. */
  directory?: string;
  /** Total size limit in bytes. */
  maxSizeBytes: number;
  /** Largest value in bytes. */
  maxValueBytes: number;
  /** Entry count limit. */
  maxEntries: number;
  /** Lock wait limit, milliseconds. */
  lockTimeoutMs: number;
  /** Mode of entry files. */
  fileMode: number;
  /** Mode of the directory. */
  dirMode: number;
}

/**
 * The `FileBackend` options the `CACHEKIT_FILE_*` variables ask for.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { fileBackendOptionsFromEnv, readEnvConfig } from "./env.ts";
 * const o = fileBackendOptionsFromEnv(readEnvConfig({ CACHEKIT_FILE_MAX_ENTRY_COUNT: "50" }));
 * assert.equal(o.maxEntries, 50);
 * ```
 */
export function fileBackendOptionsFromEnv(env: EnvConfig = envConfig()): FileBackendEnvOptions {
  const mib = 1024 * 1024;
  return {
    ...(env.fileCacheDir ? { directory: env.fileCacheDir } : {}),
    maxSizeBytes: Math.floor(env.fileMaxSizeMb * mib),
    maxValueBytes: Math.floor(env.fileMaxValueMb * mib),
    maxEntries: env.fileMaxEntryCount,
    lockTimeoutMs: Math.round(env.fileLockTimeoutSeconds * 1000),
    fileMode: env.filePermissions,
    dirMode: env.fileDirPermissions,
  };
}

/**
 * The Redis URL the environment configures (`CACHEKIT_REDIS_URL`, then `REDIS_URL`), or `null`:
 * the real URL, password included, where `env.redisUrl` shows it redacted.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnvConfig, redisUrlFromEnv } from "./env.ts";
 * assert.equal(redisUrlFromEnv(readEnvConfig({ REDIS_URL: "redis://localhost:6379/2" })), "redis://localhost:6379/2");
 * ```
 */
export function redisUrlFromEnv(env: EnvConfig = envConfig()): string | null {
  if (env.redisUrl === null) return null;
  return realRedisUrls.get(env) ?? realByRedacted.get(env.redisUrl) ?? env.redisUrl;
}
