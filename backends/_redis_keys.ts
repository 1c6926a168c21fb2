/**
 * The key-space capabilities of {@linkcode RedisBackend}: TTL inspection and refresh
 * (`capabilities.ttl`) and prefix deletion (`capabilities.prefix`, SCAN on every master). Both
 * act on existing keys by name rather than on values, and share the glob escaping.
 *
 * @module
 */
import type { OperationOptions, PrefixCapability, TtlCapability } from "./types.ts";
import { toBackendError } from "./_redis_errors.ts";
import {
  DEL_SCRIPT,
  EXPIRE_SCRIPT,
  isChunkKey,
  isLeaseMarker,
  LEASE_PREFIX,
  MAGIC_STR,
} from "./_redis_chunks.ts";
import { checkKey, type RedisCore, ttlToMs } from "./_redis_core.ts";
import { underAnyTenant } from "./types.ts";

const SCAN_COUNT = 1000;

function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, "\\$&");
}

/** `PTTL` and `PEXPIRE` (a chunked value's chunks follow its manifest's TTL). */
export class RedisTtl implements TtlCapability {
  readonly #core: RedisCore;

  /** The capability over `core`'s connection. */
  constructor(core: RedisCore) {
    this.#core = core;
  }

  /**
   * Remaining TTL in seconds: `null` when absent (or holding a lease marker, `_redis_lease.ts`: a
   * value being computed is absent), `Infinity` when it never expires. `PTTL` and the key's first
   * bytes, in one round trip.
   */
  ttl(key: string, opts?: OperationOptions): Promise<number | null> {
    checkKey(key, "ttl");
    const full = this.#core.full(key);
    const driver = this.#core.driver;
    return this.#core.run("ttl", opts, async () => {
      const [pttl, head] = await Promise.all([
        driver.send(full, true, ["PTTL", full]),
        driver.send(full, true, ["GETRANGE", full, "0", String(LEASE_PREFIX.length - 1)], true)
          .catch(() => null), // another type: not a marker
      ]);
      const ms = Number(pttl);
      if (ms === -2 || (head instanceof Uint8Array && isLeaseMarker(head))) return null;
      if (ms === -1) return Infinity;
      return ms / 1000;
    });
  }

  /** Set a new TTL (0 = no expiry) on `key` and, for a chunked value, on its chunks. */
  expire(key: string, ttlSeconds: number, opts?: OperationOptions): Promise<boolean> {
    try {
      checkKey(key, "expire");
      const ttlMs = ttlToMs(ttlSeconds, "expire");
      const full = this.#core.full(key);
      return this.#core.run("expire", opts, async () => {
        return Number(
          await this.#core.driver.eval(EXPIRE_SCRIPT, [full], [
            MAGIC_STR,
            String(ttlMs),
            LEASE_PREFIX,
          ]),
        ) ===
          1;
      });
    } catch (e) {
      return Promise.reject(toBackendError(e, "expire"));
    }
  }
}

/** Delete by key prefix, or by prefix under every tenant segment. */
export class RedisPrefix implements PrefixCapability {
  readonly #core: RedisCore;

  /** The capability over `core`'s connection. */
  constructor(core: RedisCore) {
    this.#core = core;
  }

  /**
   * Delete every key under `keyPrefix + prefix` (`""` = everything this backend owns), scanning
   * every master of a cluster. Resolves the number of values deleted. `timeoutMs` applies to each
   * round trip.
   */
  deleteByPrefix(prefix: string, opts?: OperationOptions): Promise<number> {
    checkKey(prefix, "deleteByPrefix");
    const pattern = escapeGlob(this.#core.keyPrefix + prefix) + "*";
    return this.#deleteMatching("deleteByPrefix", pattern, null, opts);
  }

  /**
   * Delete every key `keyPrefix + "t:{segment}:" + prefix…`, whatever the tenant segment (SCAN
   * `MATCH` on every master, then an exact check that the segment has no `:`). Resolves the
   * number of values deleted.
   */
  deleteByTenantPrefix(prefix: string, opts?: OperationOptions): Promise<number> {
    checkKey(prefix, "deleteByTenantPrefix");
    const pattern = escapeGlob(this.#core.keyPrefix) + "t:*:" + escapeGlob(prefix) + "*";
    const n = this.#core.keyPrefix.length;
    return this.#deleteMatching(
      "deleteByTenantPrefix",
      pattern,
      (k) => k.startsWith(this.#core.keyPrefix) && underAnyTenant(k.slice(n), prefix),
      opts,
    );
  }

  async #deleteMatching(
    operation: string,
    pattern: string,
    match: ((fullKey: string) => boolean) | null,
    opts: OperationOptions | undefined,
  ): Promise<number> {
    const masters = await this.#core.run(operation, opts, () => this.#core.driver.masters());
    let count = 0;
    for (const send of masters) {
      let cursor = "0";
      do {
        const reply = await this.#core.run(
          operation,
          opts,
          () => send(["SCAN", cursor, "MATCH", pattern, "COUNT", String(SCAN_COUNT)]),
        ) as [string, string[]];
        cursor = String(reply[0]);
        const keys = match === null ? reply[1] ?? [] : (reply[1] ?? []).filter(match);
        const results = await Promise.all(keys.map((k) => {
          if (isChunkKey(k)) {
            return this.#core.run(
              operation,
              opts,
              () => this.#core.driver.send(k, false, ["UNLINK", k]),
            )
              .then(() => 0);
          }
          return this.#core.run(
            operation,
            opts,
            () => this.#core.driver.eval(DEL_SCRIPT, [k], [MAGIC_STR, String(this.#core.graceMs)]),
          ).then(Number);
        }));
        for (const r of results) count += r;
      } while (cursor !== "0");
    }
    return count;
  }
}
