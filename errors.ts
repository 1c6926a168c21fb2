/**
 * Typed errors raised by `@cachekit/core`.
 *
 * Every error extends {@linkcode CacheKitError}, carries a stable `code`, and its message says what
 * went wrong and what to do about it. Secrets (master keys, tenant keys) never appear in messages.
 *
 * @example Telling a configuration mistake from a backend failure
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendError, CacheConfigError } from "@cachekit/core";
 *
 * const err: unknown = new CacheConfigError("ttl", -1, "a number of seconds >= 0");
 * assert.ok(err instanceof CacheConfigError);
 * assert.equal(err.option, "ttl");
 * assert.equal(err instanceof BackendError, false);
 * ```
 *
 * @module
 */

/**
 * Base class of every error this library throws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheKitError, CacheKeyError } from "@cachekit/core";
 * assert.ok(new CacheKeyError("args[0]", "a Set is not a cache key") instanceof CacheKitError);
 * ```
 */
export class CacheKitError extends Error {
  /** A stable, machine-readable identifier of the error class (e.g. `"CACHE_CONFIG"`). */
  readonly code: string;

  /**
   * Create an error with a message and a stable code.
   *
   * @param message What went wrong and what to do.
   * @param code Stable identifier of the error class.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, code = "CACHEKIT", options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * An invalid option or environment variable. Thrown when a function is wrapped (decoration time),
 * never on its first call. Names the option, the value (masked for secrets) and what is allowed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheConfigError } from "@cachekit/core";
 * const e = new CacheConfigError("l1.maxBytes", 0, "an integer > 0");
 * assert.equal(e.message, "Invalid l1.maxBytes: 0. Expected an integer > 0.");
 * ```
 */
export class CacheConfigError extends CacheKitError {
  /** The option (dotted path) or environment variable name at fault. */
  readonly option: string;
  /** The value that was refused (replaced by `"<redacted>"` for secrets). */
  readonly value: unknown;
  /** What would have been accepted. */
  readonly expected: string;

  /**
   * Create a configuration error for `option`.
   *
   * @param option Option path (`"circuitBreaker.failureThreshold"`) or variable (`"CACHEKIT_DEFAULT_TTL"`).
   * @param value The refused value; pass `{ secret: true }` to keep it out of the message.
   * @param expected What is allowed, phrased to complete "Expected …".
   * @param options `secret`: redact the value; `cause`: the underlying error.
   */
  constructor(
    option: string,
    value: unknown,
    expected: string,
    options?: { secret?: boolean; cause?: unknown },
  ) {
    const shown = options?.secret ? "<redacted>" : describeValue(value);
    super(`Invalid ${option}: ${shown}. Expected ${expected}.`, "CACHE_CONFIG", {
      cause: options?.cause,
    });
    this.option = option;
    this.value = options?.secret ? "<redacted>" : value;
    this.expected = expected;
  }
}

/**
 * An argument that cannot be turned into a cache key (a `Set`, a class instance, a function, an
 * invalid `Date`, a bigint beyond 64 bits, …). `path` names the argument, e.g. `args[1].user.tags`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheKeyError } from "@cachekit/core";
 * const e = new CacheKeyError("args[1].tags", "a Set has no defined order; pass a sorted array");
 * assert.equal(e.path, "args[1].tags");
 * ```
 */
export class CacheKeyError extends CacheKitError {
  /** Where in the arguments the refused value sits (`args[0]`, `kwargs.user.tags`, …). */
  readonly path: string;

  /**
   * Create a key error for the argument at `path`.
   *
   * @param path Argument path of the refused value.
   * @param reason Why it was refused and what to pass instead.
   */
  constructor(path: string, reason: string) {
    super(`Cannot build a cache key from ${path}: ${reason}`, "CACHE_KEY");
    this.path = path;
  }
}

/**
 * Stored bytes failed an integrity check (ByteStorage envelope: checksum, size, format or bounds).
 * The cache treats such an entry as a miss and removes it; it is never returned.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { IntegrityError } from "@cachekit/core";
 * assert.equal(new IntegrityError("checksum mismatch").code, "CACHE_INTEGRITY");
 * ```
 */
export class IntegrityError extends CacheKitError {
  /**
   * Create an integrity error.
   *
   * @param message What check failed.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, "CACHE_INTEGRITY", options);
  }
}

/**
 * Ciphertext could not be authenticated or decrypted (wrong key, wrong tenant, moved to another
 * cache key, tampered, truncated). Treated as a miss by the cache.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DecryptionError } from "@cachekit/core";
 * assert.equal(new DecryptionError("authentication failed").code, "CACHE_DECRYPTION");
 * ```
 */
export class DecryptionError extends CacheKitError {
  /**
   * Create a decryption error.
   *
   * @param message What failed; never includes key material.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, "CACHE_DECRYPTION", options);
  }
}

/**
 * A value could not be serialized or deserialized by the configured serializer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SerializationError } from "@cachekit/core";
 * assert.equal(new SerializationError("functions cannot be cached").code, "CACHE_SERIALIZATION");
 * ```
 */
export class SerializationError extends CacheKitError {
  /**
   * Create a serialization error.
   *
   * @param message What could not be (de)serialized and why.
   * @param options Standard error options (`cause`).
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, "CACHE_SERIALIZATION", options);
  }
}

/**
 * How a backend failure should be handled.
 * - `transient`: may succeed if retried (connection reset, server loading, busy).
 * - `permanent`: will not succeed on retry (out of memory with `noeviction`, value too large, bad command).
 * - `timeout`: the operation did not finish within its deadline.
 * - `authentication`: credentials refused; loud, fix the configuration.
 * - `closed`: the backend was closed (`close()`) before the operation: nothing is wrong with it, it
 *   takes no more operations. Work that lands after the application closed it on purpose (a
 *   background write or refresh at shutdown) fails this way, quietly; otherwise close a backend
 *   only once the functions that use it are done, or give them an open one.
 * - `unknown`: anything not classified.
 */
export type BackendErrorKind =
  | "transient"
  | "permanent"
  | "timeout"
  | "authentication"
  | "closed"
  | "unknown";

/**
 * A failure of an L2 backend (Redis, file, memory). `kind` drives retry, circuit-breaker trips and
 * fail-fast decisions; `backend` names the backend type and `operation` the call that failed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { BackendError } from "@cachekit/core";
 * const e = new BackendError("connection refused", { kind: "transient", backend: "redis", operation: "get" });
 * assert.equal(e.kind, "transient");
 * assert.ok(e.retryable);
 * ```
 */
export class BackendError extends CacheKitError {
  /** Classification of the failure. */
  readonly kind: BackendErrorKind;
  /** Backend type, e.g. `"redis"`, `"file"`, `"memory"`. */
  readonly backend: string;
  /** The operation that failed, e.g. `"get"`, `"set"`, `"lock"`. */
  readonly operation: string;

  /**
   * Create a backend error of the given kind.
   *
   * @param message What failed and what to do.
   * @param options Kind, backend, operation and cause.
   */
  constructor(
    message: string,
    options: { kind: BackendErrorKind; backend: string; operation: string; cause?: unknown },
  ) {
    super(message, `BACKEND_${options.kind.toUpperCase()}`, { cause: options.cause });
    this.kind = options.kind;
    this.backend = options.backend;
    this.operation = options.operation;
  }

  /** Whether retrying the same operation may succeed (`transient` and `timeout`). */
  get retryable(): boolean {
    return this.kind === "transient" || this.kind === "timeout";
  }
}

/**
 * The function (or a `getOrSet` factory) did not answer within its `hardTimeout` and no stale value
 * exists to answer instead. The computation was not stopped: it goes on in the background and its
 * result is cached when it arrives, so a later call may hit. Raise `hardTimeout`, give the cache a
 * `staleTtl` (a stale value then answers instead of this error), or retry later.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheKitError, FactoryTimeoutError } from "@cachekit/core";
 * const e = new FactoryTimeoutError("users.get", 2);
 * assert.ok(e instanceof CacheKitError);
 * assert.equal(e.code, "FACTORY_TIMEOUT");
 * assert.equal(e.timeoutSeconds, 2);
 * ```
 */
export class FactoryTimeoutError extends CacheKitError {
  /** The function identity (or `getOrSet` key) that timed out. */
  readonly identity: string;
  /** The hard timeout that passed, seconds. */
  readonly timeoutSeconds: number;

  /**
   * Create the error for a computation of `identity` that passed its hard timeout.
   *
   * @param identity The function identity or key.
   * @param timeoutSeconds The hard timeout, seconds.
   */
  constructor(identity: string, timeoutSeconds: number) {
    super(
      `${identity}: no answer within hardTimeout (${timeoutSeconds} s) and no stale value to ` +
        `serve. The computation goes on in the background and its result will be cached; raise ` +
        `hardTimeout, set staleTtl so that a stale value answers instead, or retry later.`,
      "FACTORY_TIMEOUT",
    );
    this.identity = identity;
    this.timeoutSeconds = timeoutSeconds;
  }
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (value === undefined) return "undefined";
  try {
    const s = JSON.stringify(value);
    return s === undefined ? String(value) : s.length > 200 ? s.slice(0, 200) + "…" : s;
  } catch {
    return Object.prototype.toString.call(value);
  }
}
