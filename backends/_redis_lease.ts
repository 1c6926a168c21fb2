/**
 * The stampede lock of a miss with the lease in the key itself (`fetchLock.inKey`, for keys only
 * this library reads: not interop ones, which cachekit-py locks at `<key>:lock`). While a value is
 * computed, its key holds a lease marker: the manifest magic of `_redis_chunks.ts`, `lease:`, and
 * the owner token. Taking it is one plain command, `SET key <marker> NX PX <lease> GET` (Redis
 * 7.0 accepts `NX` with `GET`): nil, the lease is ours; a marker, another process computes; a
 * value, a hit. The computed value overwrites the marker with a plain write (`SET … PX … GET`,
 * the backend's ordinary `set`), so a lock-on miss costs the server two plain commands where the
 * `<key>:lock` scripts cost it three times as much CPU (`bench/MEASUREMENTS.md`). A failed or
 * skipped computation deletes the marker if it is still its own (compare-and-delete by token); a
 * process that dies leaves it to the lease.
 *
 * Every reader of the backend sees a marker as absent: it starts with the manifest magic, so the
 * read paths hand it to the chunked-value reader, whose manifest decoding refuses it (a miss,
 * neither logged nor deleted; earlier versions of the library read it the same way), and
 * {@linkcode isLeaseMarker} lets `exists` and the retirement of a replaced value skip it. No value
 * decoder accepts it either (a test proves it for each serializer, envelope and cipher form).
 *
 * The lock taken over a value already stored (a stale one being replaced: `lockOnly`), a server
 * that refuses `SET … NX … GET` (before 7.0; detected from its error reply, then for good on this
 * connection) and the tokens that took their lock that way go through the `<key>:lock` scripts of
 * `_redis_fetch_lock.ts`.
 *
 * @module
 */
import type { FetchLockCapability, FetchLockOptions, OperationOptions } from "./types.ts";
import { hasMagic, isLeaseMarker, leaseMarker, UNLOCK_SCRIPT } from "./_redis_chunks.ts";
import { fromBuffer, toBuffer } from "./_redis_driver.ts";
import { checkKey, type RedisCore } from "./_redis_core.ts";
import type { DeadlineQueue } from "./_redis_deadlines.ts";
import { RunOp } from "./_redis_run_op.ts";
import type { RedisTags } from "./_redis_tags.ts";
import { type SettleHook, settleHookOf } from "./_settle_hook.ts";

export { isLeaseMarker, LEASE_PREFIX, leaseMarker } from "./_redis_chunks.ts";

/** Whether an error reply says the server does not take `NX` with `GET` (Redis before 7.0). */
function refusesNxGet(e: unknown): boolean {
  const m = e instanceof Error ? e.message : String(e);
  return /syntax error|not compatible|wrong number of arguments/i.test(m);
}

/** The lease-in-the-key lock over `core`'s connection, with `keyLock` for what it does not do. */
export class RedisKeyLease implements FetchLockCapability {
  readonly #core: RedisCore;
  readonly #tags: RedisTags;
  readonly #keyLock: FetchLockCapability;
  /** Tokens whose lock is `<key>:lock` (taken through {@linkcode RedisKeyLease.#keyLock}). */
  readonly #viaKeyLock = new Set<string>();
  /** Set once the server refused `SET … NX … GET`. */
  #refused = false;

  /**
   * The capability over `core`'s connection; `tags` stores tagged values; `keyLock` is the
   * `<key>:lock` capability of the same backend.
   */
  constructor(core: RedisCore, tags: RedisTags, keyLock: FetchLockCapability) {
    this.#core = core;
    this.#tags = tags;
    this.#keyLock = keyLock;
  }

  /** Whether the server refused `SET … NX … GET` (this capability then uses `<key>:lock`). */
  get refused(): boolean {
    return this.#refused;
  }

  /** One `SET key <marker> NX PX <lease> GET`: the value, else whether the lease was taken. */
  fetchOrLock(
    key: string,
    token: string,
    leaseMs: number,
    opts?: FetchLockOptions,
  ): Promise<Uint8Array | boolean> {
    if (this.#refused || opts?.lockOnly === true) return this.#viaLock(key, token, leaseMs, opts);
    checkKey(key, "lock");
    const core = this.#core;
    const full = core.full(key);
    const args = [
      "SET",
      full,
      leaseMarker(token),
      "NX",
      "PX",
      String(Math.max(1, Math.ceil(leaseMs))),
      "GET",
    ];
    const queue = core.opQueue(opts);
    if (queue !== undefined) {
      // The common case: one op is the deadline, the settlement and the reply's handling; it
      // takes the guard's settle hook (`_settle_hook.ts`): its promise is the attempt's outcome.
      const hook = settleHookOf(opts);
      const op = new LeaseOp(this, core, queue, hook?.hooked === false ? hook : undefined, full);
      op.start(opts?.startedAt);
      op.attempt(args, key, token, leaseMs, opts);
      return op.promise as Promise<Uint8Array | boolean>;
    }
    return core.run(
      "lock",
      opts,
      () =>
        core.driver.send(full, false, args, true).then(
          (v) => v === null || v === undefined ? true : found(core, full, v as Uint8Array, args),
          (e) => this.attemptFailed(e, full, key, token, leaseMs, opts),
        ),
    );
  }

  /**
   * The lease's `SET … NX … GET` failed with `e` (internal: the attempt's own continuation). A
   * full server (`maxmemory`, noeviction) refuses the marker, a write: a value is still read (as
   * the `<key>:lock` script's read did), an absent one fails the attempt. A server that refuses
   * `NX` with `GET` is remembered, and the attempt goes through `<key>:lock`. Else `e` is thrown.
   */
  attemptFailed(
    e: unknown,
    full: string,
    key: string,
    token: string,
    leaseMs: number,
    opts: FetchLockOptions | undefined,
  ): Promise<Uint8Array | boolean> {
    if (e instanceof Error && e.message.startsWith("OOM")) {
      const core = this.#core;
      return core.driver.send(full, true, ["GET", full], true).then((v) => {
        if (v === null || v === undefined) throw e;
        return found(core, full, v as Uint8Array);
      });
    }
    if (!refusesNxGet(e)) throw e;
    this.#refused = true;
    return this.#viaLock(key, token, leaseMs, opts);
  }

  /** The attempt through `<key>:lock`; a token that takes the lock is remembered. */
  async #viaLock(
    key: string,
    token: string,
    leaseMs: number,
    opts?: FetchLockOptions,
  ): Promise<Uint8Array | boolean> {
    const r = await this.#keyLock.fetchOrLock(key, token, leaseMs, opts);
    if (r === true) this.#viaKeyLock.add(token);
    return r;
  }

  /**
   * The value written over the marker: the backend's plain write (`SET … PX … GET`, chunked above
   * the chunk size), or the tagged write's script; nothing to release. The plain write checks what
   * it replaced (`leasedReply` in `_redis_set_op.ts`), with `leaseUntil` for a marker gone.
   */
  setAndUnlock(
    key: string,
    value: Uint8Array,
    ttlSeconds: number | null | undefined,
    tags: readonly string[] | null,
    token: string,
    opts?: OperationOptions,
    leaseUntil?: number,
  ): Promise<void> {
    // `size` first: most calls took no `<key>:lock`, and need not look their token up.
    if (this.#viaKeyLock.size > 0 && this.#viaKeyLock.delete(token)) {
      return this.#keyLock.setAndUnlock(key, value, ttlSeconds, tags, token, opts);
    }
    if (tags === null || tags.length === 0) {
      // The plain write releases the marker itself when it fails (and takes the guard's hook).
      const hook = settleHookOf(opts);
      return this.#core.set(key, value, ttlSeconds, opts, hook, this, token, leaseUntil ?? 0);
    }
    // Not an async function: the write's own promise and one `then`, no frame of its own.
    let write: Promise<void>;
    try {
      write = this.#tags.setWithTags(key, value, ttlSeconds, tags, opts);
    } catch (e) {
      write = Promise.reject(e);
    }
    // The marker goes before the failure is known (a waiter must not wait out the lease).
    return write.then(undefined, (e) =>
      this.unlock(key, token).then(() => {
        throw e;
      }, () => {
        throw e;
      }));
  }

  /** Compare-and-delete the marker of `token` (or release its `<key>:lock`). */
  async unlock(key: string, token: string, opts?: OperationOptions): Promise<boolean> {
    if (this.#viaKeyLock.size > 0 && this.#viaKeyLock.delete(token)) {
      return await this.#keyLock.unlock(key, token, opts);
    }
    checkKey(key, "unlock");
    const core = this.#core;
    const full = core.full(key);
    const n = await core.run(
      "unlock",
      opts,
      () => core.driver.eval(UNLOCK_SCRIPT, [full], [leaseMarker(token)]),
    );
    return Number(n) === 1;
  }
}

/**
 * What the key held: a value (a chunked one read whole), or `false` for a marker. With `args`
 * (the `SET … NX … GET` that read it), a manifest that reads as nothing is handled by
 * {@linkcode dead}.
 */
function found(
  core: RedisCore,
  full: string,
  v: Uint8Array,
  args?: string[],
): Uint8Array | boolean | Promise<Uint8Array | boolean> {
  const bytes = fromBuffer(v);
  if (!hasMagic(bytes)) return bytes;
  if (isLeaseMarker(bytes)) return false;
  return core.readChunked(full, bytes, 1).then((whole) =>
    whole ?? (args === undefined ? false : dead(core, full, bytes, args))
  );
}

/**
 * A manifest that reads as nothing (its chunks gone, or malformed): if the key still holds
 * exactly it, it is a dead entry, no lock, and is deleted (compare-and-delete); then the lease
 * is tried once more (`args`). A manifest replaced meanwhile is left alone; what the key holds
 * then answers (a marker: another process computes).
 */
function dead(
  core: RedisCore,
  full: string,
  manifest: Uint8Array,
  args: string[],
): Promise<Uint8Array | boolean> {
  const driver = core.driver;
  // Its exact bytes: as text, bytes that are not UTF-8 would become U+FFFD and never match.
  return driver.eval(UNLOCK_SCRIPT, [full], [toBuffer(manifest)])
    .then(() => driver.send(full, false, args, true))
    .then((v) => v === null || v === undefined ? true : found(core, full, v as Uint8Array));
}

/**
 * The lease's `SET … NX … GET` under its deadline as one op (`_redis_run_op.ts`): the attempt
 * without the wrapper of `RedisCore.run` (one per locked miss).
 */
class LeaseOp extends RunOp {
  readonly #lease: RedisKeyLease;
  readonly #core: RedisCore;
  readonly #full: string;
  #args: string[] = [];
  #key = "";
  #token = "";
  #leaseMs = 0;
  #opts: FetchLockOptions | undefined = undefined;

  constructor(
    lease: RedisKeyLease,
    core: RedisCore,
    queue: DeadlineQueue,
    hook: SettleHook | undefined,
    full: string,
  ) {
    super(core, "lock", queue, hook);
    this.#lease = lease;
    this.#core = core;
    this.#full = full;
  }

  /** Send the attempt (after {@linkcode RunOp.start}); the rest is kept for a failure. */
  attempt(
    args: string[],
    key: string,
    token: string,
    leaseMs: number,
    opts: FetchLockOptions | undefined,
  ): void {
    this.#args = args;
    this.#key = key;
    this.#token = token;
    this.#leaseMs = leaseMs;
    this.#opts = opts;
    try {
      this.send(this.#core.driver.send(this.#full, false, args, true));
    } catch (e) {
      this.reject(e);
    }
  }

  /** Nil: the lease is ours; else what the key held. */
  protected override reply(v: unknown): void {
    if (v === null || v === undefined) return this.resolve(true);
    try {
      this.continueWith(found(this.#core, this.#full, v as Uint8Array, this.#args));
    } catch (e) {
      this.reject(e);
    }
  }

  /** See {@linkcode RedisKeyLease.attemptFailed}. */
  protected override failed(error: unknown): void {
    try {
      this.follow(
        this.#lease.attemptFailed(
          error,
          this.#full,
          this.#key,
          this.#token,
          this.#leaseMs,
          this.#opts,
        ),
      );
    } catch (e) {
      this.reject(e);
    }
  }
}
