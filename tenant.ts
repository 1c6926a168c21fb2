/**
 * Tenant context for multi-tenant caching: `withTenant(id, fn)` runs `fn` (and everything it
 * awaits) with `id` as the current tenant, on `AsyncLocalStorage` (Deno, Bun and Node all provide
 * `node:async_hooks`). Cached functions called inside use the tenant in their backend keys
 * (`t:{tenant}:…`, or `t:@{keyed hash}:…` under encryption with hashed tenant keys) and L1 keys, so
 * tenants never share entries, and (with encryption) derive the tenant's keys from it. A
 * multi-tenant function called with no tenant throws {@linkcode TenantRequiredError}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentTenant, withTenant } from "@cachekit/core";
 *
 * const t = await withTenant("acme", async () => currentTenant());
 * assert.equal(t, "acme");
 * assert.equal(currentTenant(), undefined);
 * ```
 *
 * @module
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { CacheConfigError, CacheKitError } from "./errors.ts";
import { isWellFormed } from "./protocol/internal.ts";

/**
 * A call of a multi-tenant cached function (`encryption.singleTenant: false`, or a `tenant`
 * extractor) had no tenant: none from the extractor and none from {@linkcode withTenant}. The call
 * is refused (never served from or stored in a shared entry). Code `CACHE_TENANT`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { TenantRequiredError } from "@cachekit/core";
 * const e = new TenantRequiredError("app.get_user");
 * assert.equal(e.code, "CACHE_TENANT");
 * assert.equal(e.identity, "app.get_user");
 * ```
 */
export class TenantRequiredError extends CacheKitError {
  /** The cached function's identity. */
  readonly identity: string;

  /**
   * Create the error.
   *
   * @param identity The function identity.
   */
  constructor(identity: string) {
    super(
      `${identity}: no tenant for this call; run it inside withTenant(id, fn), set ` +
        "encryption.tenant, or set encryption.singleTenant",
      "CACHE_TENANT",
    );
    this.identity = identity;
  }
}

const storage = new AsyncLocalStorage<string>();
let used = false;

/**
 * Run `fn` with `tenant` as the current tenant.
 *
 * @param tenant Non-empty tenant id (well-formed: no lone surrogate; at most 1024 UTF-8 bytes).
 * @param fn The work to run.
 * @returns What `fn` returns.
 * @throws {CacheConfigError} An empty, malformed (lone surrogate) or too long tenant id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { withTenant } from "@cachekit/core";
 * assert.equal(withTenant("t1", () => 1 + 1), 2);
 * ```
 */
export function withTenant<R>(tenant: string, fn: () => R): R {
  validateTenant(tenant, "withTenant(tenant)");
  used = true;
  return storage.run(tenant, fn);
}

/**
 * The tenant of the current async context, or `undefined`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { currentTenant } from "@cachekit/core";
 * assert.equal(currentTenant(), undefined);
 * ```
 */
export function currentTenant(): string | undefined {
  return used ? storage.getStore() : undefined;
}

/**
 * Whether `withTenant` was ever called in this process (lets the engine skip the context lookup).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tenantContextUsed } from "./tenant.ts";
 * assert.equal(typeof tenantContextUsed(), "boolean");
 * ```
 */
export function tenantContextUsed(): boolean {
  return used;
}

/**
 * Throw a {@linkcode CacheConfigError} unless `tenant` is a usable tenant id.
 *
 * @param tenant Candidate.
 * @param option Option name reported in the error.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { CacheConfigError } from "@cachekit/core";
 * import { validateTenant } from "./tenant.ts";
 * validateTenant("acme", "tenant"); // a usable id: no error
 * assert.throws(() => validateTenant("", "tenant"), CacheConfigError);
 * ```
 */
export function validateTenant(tenant: unknown, option: string): asserts tenant is string {
  // A lone surrogate has no UTF-8 form: the tenant's percent-encoding (`quoteTenant`) and AAD
  // refuse it, and its hashed segment and UTF-8 would be those of U+FFFD.
  if (
    typeof tenant !== "string" || tenant === "" || !isWellFormed(tenant) ||
    new TextEncoder().encode(tenant).length > 1024
  ) {
    throw new CacheConfigError(
      option,
      tenant,
      "a non-empty, well-formed tenant id of at most 1024 UTF-8 bytes",
    );
  }
}

/**
 * Percent-encode a tenant id like Python's `urllib.parse.quote(tenant, safe="")`: everything but
 * `A-Z a-z 0-9 _ . - ~` becomes `%XX` of its UTF-8 bytes.
 *
 * @param tenant Tenant id.
 * @returns The encoded id.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { quoteTenant } from "./tenant.ts";
 * assert.equal(quoteTenant("a b/c:é"), "a%20b%2Fc%3A%C3%A9");
 * ```
 */
export function quoteTenant(tenant: string): string {
  return encodeURIComponent(tenant).replace(
    /[!'()*]/g,
    (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase(),
  );
}
