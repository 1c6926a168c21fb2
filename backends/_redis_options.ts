/**
 * Options of {@linkcode RedisBackend}: the public option type, its defaults, and their validation
 * into the driver's configuration. Separate from the backend so that every option error
 * (`CacheConfigError` naming the option) is decided in one place, at construction, and the
 * capability files never see raw options.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type { DriverConfig, RedisTlsSettings } from "./_redis_driver.ts";
import { describeEndpoint, parseRedisUrl, type RedisConnectionInfo } from "./redis_url.ts";

/**
 * Default chunk size: cachekit-py's `MAX_CHUNK_SIZE_MB` (50 MiB).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_CHUNK_SIZE_BYTES } from "@cachekit/core/backends";
 * assert.equal(DEFAULT_CHUNK_SIZE_BYTES / 1024 / 1024, 50);
 * ```
 */
export const DEFAULT_CHUNK_SIZE_BYTES: number = 50 * 1024 * 1024;
/**
 * Default invalidation channel (cachekit-py's).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_INVALIDATION_CHANNEL } from "@cachekit/core/backends";
 * assert.equal(DEFAULT_INVALIDATION_CHANNEL, "cachekit:invalidation");
 * ```
 */
export const DEFAULT_INVALIDATION_CHANNEL: string = "cachekit:invalidation";

/**
 * Options of {@linkcode RedisBackend}. Explicit fields override the matching parts of `url`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { type RedisBackendOptions, RedisBackend } from "@cachekit/core/backends";
 * const options: RedisBackendOptions = {
 *   url: "rediss://app:secret@cache.internal:6380/0",
 *   keyPrefix: "myapp:",
 *   operationTimeoutMs: 250,
 *   chunkSizeBytes: 8 * 1024 * 1024,
 * };
 * const backend = new RedisBackend(options); // construction never connects
 * assert.equal(backend.type, "redis");
 * await backend.close();
 * ```
 */
export interface RedisBackendOptions {
  /**
   * `redis://[user[:password]@]host[:port][/db]`, or `rediss://…` for TLS. Default: the host/port
   * fields, else `redis://127.0.0.1:6379`.
   */
  url?: string;
  /** Host (default `127.0.0.1`). */
  host?: string;
  /** Port (default 6379). */
  port?: number;
  /** ACL user name. */
  username?: string;
  /** Password (of `username`, or of the `default` user). */
  password?: string;
  /** Database index (default 0; not available on a cluster). */
  db?: number;
  /** TLS: `true`, or settings (CA, client certificate, …). `rediss://` URLs imply `true`. */
  tls?: boolean | RedisTlsSettings;
  /** Prepended to every key this backend touches (default `""`). */
  keyPrefix?: string;
  /** Deadline of each operation in ms when the call gives none (default 5000; 0 = none). */
  operationTimeoutMs?: number;
  /**
   * Bound of the first connection in ms (loading the driver, TCP/TLS, handshake; default 5000).
   * The first operation's deadline (`operationTimeoutMs`, or a guard's adaptive timeout) starts
   * once connected, so a slow first connect does not fail it.
   */
  connectTimeoutMs?: number;
  /**
   * Connect to a Redis Cluster through these nodes (`"host:port"` or `redis://host:port`);
   * credentials and TLS come from the other options.
   */
  cluster?: { rootNodes: string[] };
  /** Values larger than this are stored in chunks of this size (default 50 MiB). */
  chunkSizeBytes?: number;
  /** How long a replaced or deleted chunked value stays readable for in-flight readers (default 10 s). */
  chunkGraceMs?: number;
  /** Pub/sub channel of the invalidation bus (default `"cachekit:invalidation"`). */
  invalidationChannel?: string;
  /**
   * Connection name (`CLIENT SETNAME`), so operators can tell this backend's connections apart in
   * `CLIENT LIST`; the subscriber connection is named `<clientName>:sub`. Default: none.
   */
  clientName?: string;
}

function checkInt(option: string, v: unknown, min: number, max: number, expected: string): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new CacheConfigError(option, v, expected);
  }
  return v;
}

function parseNode(spec: string, index: number): { host: string; port: number } {
  const option = `cluster.rootNodes[${index}]`;
  if (typeof spec !== "string") {
    throw new CacheConfigError(option, spec, `"host:port" or a redis:// URL`);
  }
  if (spec.includes("://")) {
    const info = parseRedisUrl(spec, option);
    return { host: info.host, port: info.port };
  }
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(spec.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new CacheConfigError(option, spec, `"host:port" or a redis:// URL`);
  }
  return { host: m[1], port };
}

/** Validated options: what the backend and its driver are built from. */
export interface Resolved {
  driver: DriverConfig;
  endpoint: string;
  keyPrefix: string;
  opTimeoutMs: number;
  chunkSize: number;
  graceMs: number;
  channel: string;
}

/** Validate `o` (throws `CacheConfigError` naming the option) and derive the driver config. */
export function resolveOptions(o: RedisBackendOptions): Resolved {
  if (typeof o !== "object" || o === null) {
    throw new CacheConfigError("options", o, "an object of RedisBackend options");
  }
  const base: RedisConnectionInfo = o.url !== undefined
    ? parseRedisUrl(o.url, "url")
    : { host: "127.0.0.1", port: 6379, tls: false, db: 0 };
  if (o.host !== undefined) {
    if (typeof o.host !== "string" || o.host === "") {
      throw new CacheConfigError("host", o.host, "a non-empty host name or IP address");
    }
    base.host = o.host;
  }
  if (o.port !== undefined) base.port = checkInt("port", o.port, 1, 65535, "an integer 1..65535");
  if (o.db !== undefined) base.db = checkInt("db", o.db, 0, 65535, "an integer >= 0");
  if (o.username !== undefined) {
    if (typeof o.username !== "string") {
      throw new CacheConfigError("username", o.username, "a string");
    }
    base.username = o.username;
  }
  if (o.password !== undefined) {
    if (typeof o.password !== "string") {
      throw new CacheConfigError("password", o.password, "a string", { secret: true });
    }
    base.password = o.password;
  }
  let tls: false | RedisTlsSettings = base.tls ? {} : false;
  if (o.tls !== undefined) {
    if (o.tls === false && base.tls) {
      throw new CacheConfigError("tls", false, "true or settings: the URL is rediss:// (TLS)");
    }
    if (typeof o.tls === "object" && o.tls !== null) tls = { ...o.tls };
    else if (o.tls === true) tls = {};
    else if (o.tls !== false) {
      throw new CacheConfigError("tls", o.tls, "a boolean or TLS settings { ca, cert, key, … }");
    }
  }
  base.tls = tls !== false;
  const keyPrefix = o.keyPrefix ?? "";
  if (typeof keyPrefix !== "string") {
    throw new CacheConfigError("keyPrefix", keyPrefix, "a string");
  }
  const opTimeoutMs = o.operationTimeoutMs === undefined ? 5000 : checkInt(
    "operationTimeoutMs",
    o.operationTimeoutMs,
    0,
    2_147_483_647,
    "an integer number of milliseconds >= 0 (0 = no deadline)",
  );
  const connectTimeoutMs = o.connectTimeoutMs === undefined ? 5000 : checkInt(
    "connectTimeoutMs",
    o.connectTimeoutMs,
    1,
    2_147_483_647,
    "an integer number of milliseconds > 0",
  );
  const chunkSize = o.chunkSizeBytes === undefined ? DEFAULT_CHUNK_SIZE_BYTES : checkInt(
    "chunkSizeBytes",
    o.chunkSizeBytes,
    1024,
    512 * 1024 * 1024 - 1,
    "an integer number of bytes from 1024 to 512 MiB - 1 (Redis's largest string)",
  );
  const graceMs = o.chunkGraceMs === undefined ? 10_000 : checkInt(
    "chunkGraceMs",
    o.chunkGraceMs,
    0,
    86_400_000,
    "an integer number of milliseconds from 0 to one day",
  );
  const channel = o.invalidationChannel ?? DEFAULT_INVALIDATION_CHANNEL;
  if (typeof channel !== "string" || channel === "") {
    throw new CacheConfigError("invalidationChannel", channel, "a non-empty channel name");
  }
  if (
    o.clientName !== undefined &&
    (typeof o.clientName !== "string" || !/^[\x21-\x7e]{1,100}$/.test(o.clientName))
  ) {
    throw new CacheConfigError(
      "clientName",
      o.clientName,
      "1 to 100 printable ASCII characters without spaces (a Redis client name)",
    );
  }
  let clusterNodes: { host: string; port: number }[] | undefined;
  if (o.cluster !== undefined) {
    const roots = o.cluster?.rootNodes;
    if (!Array.isArray(roots) || roots.length === 0) {
      throw new CacheConfigError(
        "cluster.rootNodes",
        roots,
        `a non-empty array of "host:port" or redis:// URLs`,
      );
    }
    if (base.db !== 0) {
      throw new CacheConfigError("db", base.db, "0: Redis Cluster has only database 0");
    }
    clusterNodes = roots.map(parseNode);
  }
  const driver: DriverConfig = {
    host: base.host,
    port: base.port,
    tls,
    db: base.db,
    connectTimeoutMs,
  };
  if (base.username !== undefined) driver.username = base.username;
  if (base.password !== undefined) driver.password = base.password;
  if (o.clientName !== undefined) driver.clientName = o.clientName;
  if (clusterNodes) driver.clusterNodes = clusterNodes;
  const endpoint = clusterNodes
    ? `cluster(${clusterNodes.map((n) => `${n.host}:${n.port}`).join(",")})`
    : describeEndpoint(base);
  return { driver, endpoint, keyPrefix, opTimeoutMs, chunkSize, graceMs, channel };
}

/** Whether `host` names this machine over loopback (no network between client and server). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  return h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" ||
    /^127(\.\d{1,3}){3}$/.test(h) ||
    /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}
