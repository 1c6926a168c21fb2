/**
 * Options of {@linkcode FileBackend}: the public option types, the defaults (cachekit-py's), the
 * default cache directory per OS, and their validation. Separate so that every option error is
 * decided in one place, at construction; the environment mapping (`CACHEKIT_FILE_*`) lives in
 * config.
 *
 * @module
 */
import * as nodeOs from "node:os";
import * as nodePath from "node:path";
import process from "node:process";
import { CacheConfigError } from "../errors.ts";

/** Options of {@linkcode FileBackend}. Environment mapping (`CACHEKIT_FILE_*`) lives in config. */
export interface FileBackendOptions {
  /** Cache directory (created with `dirMode`). Default: {@linkcode defaultCacheDirectory}. */
  directory?: string;
  /** Total size the directory may reach; eviction starts at 90 %, down to 70 %. Default 1024 MiB. */
  maxSizeBytes?: number;
  /** Largest value accepted; larger `set`s reject (`permanent`). Default 100 MiB. */
  maxValueBytes?: number;
  /** Most entries; eviction starts at 90 %, down to 70 %. Default 10 000. */
  maxEntries?: number;
  /**
   * How long an explicit {@linkcode FileBackend.prune} waits for another process's eviction, in ms
   * (background eviction never waits). Default 5000.
   */
  lockTimeoutMs?: number;
  /** Mode of entry and lock files. Default `0o600`. */
  fileMode?: number;
  /** Mode of directories the backend creates. Default `0o700`. */
  dirMode?: number;
  /** fdatasync each value before it is renamed into place (durability over speed). Default false. */
  fsync?: boolean;
  /**
   * How often, in ms, a backend whose invalidation bus has subscribers (functions with an L1)
   * reads the directory's event journal for other processes' writes and invalidations
   * (10–60000). Default 100.
   */
  invalidationPollMs?: number;
}

/** The defaults of {@linkcode FileBackendOptions} (seed values). */
export interface FileBackendDefaults {
  /** 1024 MiB. */
  readonly maxSizeBytes: number;
  /** 100 MiB. */
  readonly maxValueBytes: number;
  /** 10 000. */
  readonly maxEntries: number;
  /** 5000 ms. */
  readonly lockTimeoutMs: number;
  /** `0o600`. */
  readonly fileMode: number;
  /** `0o700`. */
  readonly dirMode: number;
  /** `false`. */
  readonly fsync: boolean;
  /** 100 ms. */
  readonly invalidationPollMs: number;
}

/**
 * Defaults of the file backend's options, from cachekit-py (`CACHEKIT_FILE_MAX_SIZE_MB` 1024,
 * `MAX_VALUE_MB` 100, `MAX_ENTRY_COUNT` 10000, `LOCK_TIMEOUT_SECONDS` 5, `PERMISSIONS` 0600,
 * `DIR_PERMISSIONS` 0700).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_FILE_BACKEND_OPTIONS } from "@cachekit/core/backends";
 * assert.equal(DEFAULT_FILE_BACKEND_OPTIONS.maxEntries, 10000);
 * ```
 */
export const DEFAULT_FILE_BACKEND_OPTIONS: FileBackendDefaults = Object.freeze({
  maxSizeBytes: 1024 * 1024 * 1024,
  maxValueBytes: 100 * 1024 * 1024,
  maxEntries: 10_000,
  lockTimeoutMs: 5000,
  fileMode: 0o600,
  dirMode: 0o700,
  fsync: false,
  invalidationPollMs: 100,
});

/** Inputs of {@linkcode defaultCacheDirectory} (all read from the process when omitted). */
export interface CacheDirectoryEnvironment {
  /** `process.platform` value: `linux`, `darwin`, `win32`, … */
  platform?: string;
  /** Environment variables (`XDG_CACHE_HOME`, `LOCALAPPDATA`, `HOME`). */
  env?: Record<string, string | undefined>;
  /** Home directory. */
  home?: string;
}

function safeEnv(): Record<string, string | undefined> {
  try {
    return { ...process.env };
  } catch {
    return {}; // no env permission
  }
}

function safeHome(): string | undefined {
  try {
    return nodeOs.homedir() || undefined;
  } catch {
    return undefined;
  }
}

function safeTmp(): string {
  try {
    return nodeOs.tmpdir();
  } catch {
    return "/tmp";
  }
}

/**
 * The OS cache directory + `/cachekit`: `$XDG_CACHE_HOME` or `~/.cache` on Linux and other Unixes,
 * `~/Library/Caches` on macOS, `%LOCALAPPDATA%` on Windows; the temp directory when none is known.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultCacheDirectory } from "@cachekit/core/backends";
 * const dir = defaultCacheDirectory({ platform: "linux", env: { XDG_CACHE_HOME: "/c" } });
 * assert.equal(dir, "/c/cachekit");
 * ```
 */
export function defaultCacheDirectory(from: CacheDirectoryEnvironment = {}): string {
  const platform = from.platform ?? process.platform;
  const env = from.env ?? safeEnv();
  const home = from.home ?? env.HOME ?? safeHome();
  const join = platform === "win32" ? nodePath.win32.join : nodePath.posix.join;
  let base: string | undefined;
  if (platform === "win32") {
    base = env.LOCALAPPDATA || (home ? join(home, "AppData", "Local") : undefined);
  } else if (platform === "darwin") {
    base = home ? join(home, "Library", "Caches") : undefined;
  } else {
    const xdg = env.XDG_CACHE_HOME;
    base = xdg && nodePath.posix.isAbsolute(xdg) ? xdg : home ? join(home, ".cache") : undefined;
  }
  return join(base ?? safeTmp(), "cachekit");
}

function configError(option: string, value: unknown, expected: string): CacheConfigError {
  return new CacheConfigError(`FileBackend.${option}`, value, expected);
}

function positiveInt(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v <= 0) {
    throw configError(name, v, "an integer > 0");
  }
  return v;
}

function modeOption(name: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0o777) {
    throw configError(name, v, "a permission mode between 0o000 and 0o777");
  }
  return v;
}

/** Validated options of a {@linkcode FileBackend}. */
export interface FileSettings {
  /** The cache directory (absolute). */
  directory: string;
  maxSize: number;
  maxValue: number;
  maxEntries: number;
  lockTimeoutMs: number;
  fileMode: number;
  dirMode: number;
  fsync: boolean;
  invalidationPollMs: number;
}

/** Validate `options` (`CacheConfigError` naming the option) and fill in the defaults. */
export function resolveFileOptions(options: FileBackendOptions): FileSettings {
  const d = DEFAULT_FILE_BACKEND_OPTIONS;
  if (options.directory !== undefined) {
    if (typeof options.directory !== "string" || options.directory === "") {
      throw configError("directory", options.directory, "a non-empty path");
    }
    if (options.directory.includes("\0")) {
      throw configError("directory", options.directory, "a path without NUL characters");
    }
  }
  const directory = nodePath.resolve(options.directory ?? defaultCacheDirectory());
  const maxSize = positiveInt("maxSizeBytes", options.maxSizeBytes, d.maxSizeBytes);
  const maxValue = positiveInt("maxValueBytes", options.maxValueBytes, d.maxValueBytes);
  const maxEntries = positiveInt("maxEntries", options.maxEntries, d.maxEntries);
  const lockTimeoutMs = positiveInt("lockTimeoutMs", options.lockTimeoutMs, d.lockTimeoutMs);
  const fileMode = modeOption("fileMode", options.fileMode, d.fileMode);
  const dirMode = modeOption("dirMode", options.dirMode, d.dirMode);
  if (options.fsync !== undefined && typeof options.fsync !== "boolean") {
    throw configError("fsync", options.fsync, "true or false");
  }
  const fsync = options.fsync ?? d.fsync;
  const invalidationPollMs = positiveInt(
    "invalidationPollMs",
    options.invalidationPollMs,
    d.invalidationPollMs,
  );
  if (invalidationPollMs < 10 || invalidationPollMs > 60_000) {
    throw configError("invalidationPollMs", invalidationPollMs, "a number of ms from 10 to 60000");
  }
  return {
    directory,
    maxSize,
    maxValue,
    maxEntries,
    lockTimeoutMs,
    fileMode,
    dirMode,
    fsync,
    invalidationPollMs,
  };
}
