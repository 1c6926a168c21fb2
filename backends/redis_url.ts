/**
 * Redis URL parsing and redaction, and the Redis URL of the environment: shared by
 * {@linkcode RedisBackend} and the configuration layer (`config/env.ts`). A module of its own,
 * not a private part of `redis.ts`, so that config can validate `CACHEKIT_REDIS_URL` without
 * importing the backend, and the backend can read it without importing config (the two folders
 * would otherwise import each other). `parseRedisUrl` is also re-exported from `redis.ts`.
 *
 * Hand-written on top of WHATWG `URL` (rather than letting node-redis parse the URL) so that a bad
 * URL is a {@linkcode CacheConfigError} naming the option, and a password never appears in any
 * message, value or `toString()`.
 *
 * @module
 */
import process from "node:process";
import { CacheConfigError } from "../errors.ts";

/** A Redis endpoint and its credentials, as parsed from a `redis://` or `rediss://` URL. */
export interface RedisConnectionInfo {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port (default 6379). */
  port: number;
  /** Whether to connect with TLS (`rediss://`). */
  tls: boolean;
  /** ACL user name, when given. */
  username?: string;
  /** Password (of `username`, or of the `default` user), when given. Never logged. */
  password?: string;
  /** Database index (`/3` or `?db=3`; default 0). */
  db: number;
}

const EXPECTED = "a URL like redis://[user[:password]@]host[:port][/db] or rediss://… for TLS";

/**
 * Replace the password of a Redis URL (if any) with `<redacted>`, for messages and health details.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redactRedisUrl } from "./redis_url.ts";
 * assert.equal(redactRedisUrl("redis://app:s3cret@cache:6379/1"), "redis://app:<redacted>@cache:6379/1");
 * ```
 */
export function redactRedisUrl(url: string): string {
  // user:password@ or :password@ right after the scheme; also a lone password with no user.
  return url.replace(
    /^([a-z][a-z0-9+.-]*:\/\/)([^@/?#]*)@/i,
    (_m, scheme: string, auth: string) => {
      const colon = auth.indexOf(":");
      if (colon < 0) return `${scheme}${auth}@`; // user only, no secret
      return `${scheme}${auth.slice(0, colon)}:<redacted>@`;
    },
  );
}

/**
 * Parse a Redis URL into its parts. Accepts `redis://` and `rediss://` (TLS), an optional ACL user
 * and password (percent-encoded), a port (default 6379), and a database index as the path (`/2`) or
 * as `?db=2`. Anything else is a {@linkcode CacheConfigError} whose message shows the URL with the
 * password replaced by `<redacted>`.
 *
 * @param url The URL to parse.
 * @param option Name of the option or environment variable the URL came from (for the error).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRedisUrl } from "@cachekit/core/backends";
 * const info = parseRedisUrl("rediss://app:p%40ss@cache.internal:6380/2");
 * assert.deepEqual(
 *   [info.host, info.port, info.tls, info.username, info.password, info.db],
 *   ["cache.internal", 6380, true, "app", "p@ss", 2],
 * );
 * ```
 */
export function parseRedisUrl(url: string, option = "url"): RedisConnectionInfo {
  if (typeof url !== "string" || url.trim() === "") {
    throw new CacheConfigError(option, url, EXPECTED);
  }
  const shown = redactRedisUrl(url);
  const fail = (why: string): never => {
    throw new CacheConfigError(option, shown, `${EXPECTED} (${why})`);
  };
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return fail("not a valid URL");
  }
  let tls: boolean;
  if (u.protocol === "redis:") tls = false;
  else if (u.protocol === "rediss:") tls = true;
  else return fail(`unsupported scheme ${JSON.stringify(u.protocol)}`);
  const host = u.hostname.replace(/^\[(.*)\]$/, "$1");
  if (host === "") fail("missing host");
  let port = 6379;
  if (u.port !== "") {
    port = Number(u.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) fail("port out of range");
  }
  let db = 0;
  const path = u.pathname;
  const dbText = path === "" || path === "/" ? null : path.slice(1);
  const parseDb = (text: string): number => {
    if (!/^\d{1,5}$/.test(text)) return fail(`database index must be an integer >= 0, got a path`);
    return Number(text);
  };
  if (dbText !== null) db = parseDb(dbText);
  for (const [name, value] of u.searchParams) {
    if (name === "db") {
      if (dbText !== null) fail("database given both as path and as ?db=");
      db = parseDb(value);
    } else {
      fail(`unsupported query parameter ${JSON.stringify(name)}; only db is understood`);
    }
  }
  if (u.hash !== "") fail("a fragment (#…) is not allowed");
  let username: string | undefined;
  let password: string | undefined;
  try {
    if (u.username !== "") username = decodeURIComponent(u.username);
    if (u.password !== "") password = decodeURIComponent(u.password);
  } catch {
    fail("bad percent-encoding in the credentials");
  }
  const info: RedisConnectionInfo = { host, port, tls, db };
  if (username !== undefined) info.username = username;
  if (password !== undefined) info.password = password;
  return info;
}

/**
 * Describe an endpoint for logs and health details: `redis://user@host:port/db` (never the password).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeEndpoint } from "./redis_url.ts";
 * const info = { host: "h", port: 6379, tls: true, db: 1, password: "x" };
 * assert.equal(describeEndpoint(info), "rediss://h:6379/1");
 * ```
 */
export function describeEndpoint(info: RedisConnectionInfo): string {
  const user = info.username ? `${encodeURIComponent(info.username)}@` : "";
  const host = info.host.includes(":") ? `[${info.host}]` : info.host;
  return `${info.tls ? "rediss" : "redis"}://${user}${host}:${info.port}/${info.db}`;
}

/** A variable of the process environment; unset without env access (Deno without `--allow-env`). */
function runtimeEnv(name: string): string | undefined {
  try {
    return process.env[name];
  } catch {
    return undefined;
  }
}

/**
 * The Redis URL of the environment: `CACHEKIT_REDIS_URL`, else `REDIS_URL` (trimmed; blank counts
 * as unset), or `null`. Invalid is a {@linkcode CacheConfigError} naming the variable, with the
 * password redacted. Here rather than in `config/env.ts` so that `RedisBackend.fromEnv` does not
 * make the backends import the configuration layer, which imports the backends.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { redisUrlFromEnvironment } from "./redis_url.ts";
 * const env = (name: string) => name === "REDIS_URL" ? "redis://h:6379/2" : undefined;
 * assert.equal(redisUrlFromEnvironment(env), "redis://h:6379/2");
 * ```
 */
export function redisUrlFromEnvironment(
  get: (name: string) => string | undefined = runtimeEnv,
): string | null {
  for (const name of ["CACHEKIT_REDIS_URL", "REDIS_URL"]) {
    const v = get(name)?.trim();
    if (v === undefined || v === "") continue;
    parseRedisUrl(v, name); // CacheConfigError naming the variable, password redacted
    return v;
  }
  return null;
}
