/**
 * Mapping of node-redis and socket failures to {@linkcode BackendError} kinds. Internal.
 *
 * @module
 */
import { BackendError, type BackendErrorKind } from "../errors.ts";

const TRANSIENT_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "EHOSTDOWN",
  "ENOTFOUND",
  "EAI_AGAIN",
  "ENOTCONN",
  "ESHUTDOWN",
]);

const TRANSIENT_NAMES = new Set([
  "ClientOfflineError",
  "SocketClosedUnexpectedlyError",
  "ReconnectStrategyError",
  "RootNodesUnavailableError",
  "MaxCommandRedirectionsError",
]);

/**
 * node-redis's errors of an operation on (or queued in) a client that was closed or destroyed: by
 * the backend's `close()`, or by node-redis itself (a cluster drops the client of a node that no
 * longer serves slots). See {@linkcode isClientClosed}.
 */
const CLIENT_CLOSED_NAMES = new Set(["ClientClosedError", "DisconnectsClientError"]);

/** Whether `err` is node-redis saying that the client was closed (see `CLIENT_CLOSED_NAMES`). */
export function isClientClosed(err: unknown): boolean {
  return typeof err === "object" && err !== null && CLIENT_CLOSED_NAMES.has(errorName(err));
}

/** The class name of an error (node-redis's error classes), else its `name`, else `""`. */
function errorName(err: object): string {
  const e = err as { name?: unknown; constructor?: { name?: unknown } };
  const ctor = e.constructor?.name;
  return typeof ctor === "string" ? ctor : typeof e.name === "string" ? e.name : "";
}

const TIMEOUT_NAMES = new Set([
  "ConnectionTimeoutError",
  "SocketTimeoutError",
  "TimeoutError",
  "CommandTimeoutDuringMaintenanceError",
  "SocketTimeoutDuringMaintenanceError",
  "AbortError",
]);

/** Redis error-reply prefixes (the first word of the reply) and their kinds. */
const REPLY_PREFIX: Record<string, BackendErrorKind> = {
  WRONGPASS: "authentication",
  NOAUTH: "authentication",
  NOPERM: "authentication",
  LOADING: "transient",
  BUSY: "transient",
  TRYAGAIN: "transient",
  CLUSTERDOWN: "transient",
  MASTERDOWN: "transient",
  READONLY: "transient",
  MOVED: "transient",
  ASK: "transient",
  OOM: "permanent",
  WRONGTYPE: "permanent",
  EXECABORT: "permanent",
  NOSCRIPT: "permanent",
  CROSSSLOT: "permanent",
  ERR: "permanent",
};

/**
 * Whether `err` is a `TypeError` thrown inside node-redis's cluster slot routing
 * (`RedisClusterSlots`): while it rebuilds its slot map after a topology change (a slot moved, a
 * node gone), a command routed meanwhile can find a slot without its node (seen: "Cannot read
 * properties of undefined (reading 'replicas')" in `getSlotRandomNode`). The map is whole again
 * once the rediscovery ends: the operation can be retried.
 */
function inClusterRouting(err: unknown): boolean {
  if (!(err instanceof TypeError)) return false;
  const stack = err.stack ?? "";
  return /RedisClusterSlots|[\\/]cluster[\\/]cluster-slots\./.test(stack);
}

/**
 * Classify any thrown value from the Redis client. `undefined` when it is not recognisable.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyRedisError } from "./_redis_errors.ts";
 * assert.equal(classifyRedisError(Object.assign(new Error("x"), { code: "ECONNREFUSED" })), "transient");
 * ```
 */
export function classifyRedisError(err: unknown): BackendErrorKind {
  if (err instanceof BackendError) return err.kind;
  if (typeof err !== "object" || err === null) return "unknown";
  const e = err as { code?: unknown; message?: unknown };
  const code = typeof e.code === "string" ? e.code : "";
  const name = errorName(err);
  const message = typeof e.message === "string" ? e.message : "";
  if (code === "ETIMEDOUT") return "timeout";
  if (TRANSIENT_CODES.has(code)) return "transient";
  if (TIMEOUT_NAMES.has(name)) return "timeout";
  if (TRANSIENT_NAMES.has(name)) return "transient";
  // node-redis closes clients by itself too (a cluster node's client when the topology changes):
  // an operation that met one can be retried. After the backend's `close()`, `RedisCore.error`
  // makes it `closed`.
  if (CLIENT_CLOSED_NAMES.has(name)) return "transient";
  if (inClusterRouting(err)) return "transient";
  // Redis error replies: "WRONGPASS invalid username-password pair", "OOM command not allowed…".
  const word = /^([A-Z]+)\b/.exec(message)?.[1];
  if (word && word in REPLY_PREFIX) {
    // "ERR AUTH <password> called without any password configured" and friends.
    if (word === "ERR" && /\b(AUTH|password|NOAUTH)\b/.test(message)) return "authentication";
    return REPLY_PREFIX[word];
  }
  if (/ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|Socket closed/i.test(message)) {
    return "transient";
  }
  if (/timed? ?out/i.test(message)) return "timeout";
  if (/certificate|self[- ]signed|SSL|TLS/i.test(message) && !/reset/i.test(message)) {
    return "permanent";
  }
  return "unknown";
}

/** Appended to connection failures over TLS that look like a server not speaking TLS. */
export const TLS_HINT: string =
  " If the server does not speak TLS on this port, use redis:// instead of rediss:// (or drop " +
  "the tls option); rediss:// needs a TLS port.";

/** Appended to a reply node-redis cannot parse: another service listens at that address. */
export const NOT_REDIS_HINT: string =
  " The server at this address does not speak the Redis protocol (an HTTP server or another " +
  "service answered): check the host and port of the URL (CACHEKIT_REDIS_URL or the backend's " +
  "`url` option).";

/** Whether `err` is node-redis's parser refusing what the server sent (not RESP). */
function looksLikeNotRedis(err: unknown): boolean {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === "string" && /Unknown RESP type|Protocol error/i.test(message);
}

/**
 * Whether `err` looks like a failed TLS handshake: a connect timeout (a plain Redis port waits for
 * the rest of a "command" that is the TLS ClientHello, so the handshake never ends) or a TLS
 * protocol error (a plain reply where a TLS record was expected).
 */
function looksLikeTlsMismatch(err: unknown): boolean {
  if (typeof err !== "object" || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; constructor?: { name?: unknown } };
  const name = typeof e.constructor?.name === "string" ? e.constructor.name : "";
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.message === "string" ? e.message : "";
  return name === "ConnectionTimeoutError" || code === "EPROTO" || code.startsWith("ERR_SSL") ||
    /wrong version number|packet length too long|unknown protocol|handshake|ssl|tls/i.test(message);
}

/**
 * Wrap any failure from the Redis client as a {@linkcode BackendError} of the right kind. With
 * `tls` (the connection is `rediss://`), a failure that looks like a plain port answering a TLS
 * handshake carries {@linkcode TLS_HINT}; a reply that is not RESP (another service at that port)
 * carries {@linkcode NOT_REDIS_HINT}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { toBackendError } from "./_redis_errors.ts";
 * const e = toBackendError(new Error("WRONGPASS invalid username-password pair"), "get");
 * assert.equal(e.kind, "authentication");
 * ```
 */
export function toBackendError(
  err: unknown,
  operation: string,
  backend = "redis",
  tls = false,
): BackendError {
  if (err instanceof BackendError) return err;
  const kind = classifyRedisError(err);
  const detail = err instanceof Error ? err.message : String(err);
  const hint = tls && looksLikeTlsMismatch(err)
    ? TLS_HINT
    : looksLikeNotRedis(err)
    ? NOT_REDIS_HINT
    : kind === "authentication"
    ? " Check the Redis user name and password (URL or options) and the user's ACL permissions."
    : kind === "transient"
    ? " The server may be down or restarting; the operation can be retried."
    : "";
  return new BackendError(`Redis ${operation} failed (${kind}): ${detail}.${hint}`, {
    kind,
    backend,
    operation,
    cause: err,
  });
}
