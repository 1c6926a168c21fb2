/**
 * The keys of a key-based cache (`createCache`): a user's key string becomes the protocol key
 * `obj:key:{key}` (with a namespace, `obj:ns:{namespace}:key:{key}`), under the same tenant
 * segment as a function's entry (`t:{tenant}:…`), so that tenants and encryption bind it exactly
 * as they bind function entries (the AAD carries the protocol key and the tenant). In interop mode
 * it is the interop key of the one argument `key` (`{namespace}:{operation}:{hash}`), which every
 * cachekit SDK computes alike.
 *
 * Why these keys stay apart from function keys: a function's protocol key starts with `ns:` or
 * `func:`, never `obj:`, so no key string of a key-based cache can name a function's entry, and
 * the other way round. Within the `obj:` space the layout is injective: a key-based cache's
 * namespace contains no `:key:` and does not end in `:key` (checked when the cache is created),
 * so the first `:key:` ends it; the key string is escaped as a function's custom key is (`%`,
 * spaces and line breaks percent-encoded; a long key shortened with its Blake2b hash:
 * `customKey` in `_argkey.ts`).
 *
 * @module
 */
import { CacheConfigError, CacheKeyError } from "../errors.ts";
import { interopKey } from "../protocol/keys.ts";
import { type ArgKey, customKey } from "./_argkey.ts";
import type { CallOptions } from "./_call_options.ts";
import type { Engine } from "./_engine.ts";
import { backendKeyOf, callTenant, type KeyCtx, memoMax, tenantL1Key } from "./_keys.ts";
import { tenantContextUsed } from "../tenant.ts";

/**
 * The start of the protocol keys of a key-based cache in namespace `ns` (see the module
 * documentation).
 *
 * @throws {CacheConfigError} A namespace that could blur the layout.
 */
export function objectPrefix(ns: string | null): string {
  if (ns === null) return "obj:key:";
  if (ns.includes(":key:") || ns.endsWith(":key")) {
    throw new CacheConfigError(
      "namespace",
      ns,
      'a namespace without ":key:" and not ending in ":key" (a key-based cache separates the ' +
        'namespace from the key with ":key:"); use "." or "-" there instead',
    );
  }
  return `obj:ns:${ns}:key:`;
}

/** The protocol key of `key` (memoized per engine, as function keys are: `memoMax`). */
function protoKeyOf(eng: Engine, key: string): string {
  const memo = eng.protoKeys.get(key);
  if (memo !== undefined) return memo;
  const io = eng.config.interop;
  const protoKey = io !== null
    ? interopKey(io.namespace, io.operation, [key])
    : customKey(eng.keyPrefix, key);
  const max = memoMax(eng); // as for function keys: none for an L1-only cache
  if (max > 0) {
    if (eng.protoKeys.size >= max) eng.protoKeys.clear();
    eng.protoKeys.set(key, protoKey);
  }
  return protoKey;
}

/**
 * The L1 key of `key` alone (what {@linkcode objectKeyCtx} puts in `l1Key`): all an L1 hit needs,
 * without the protocol and backend keys. No argument list is made when no tenant applies.
 */
export function objectL1Key(eng: Engine, key: string): ArgKey {
  return tenantL1Key(key, eng.tenantAware || tenantContextUsed() ? callTenant(eng, [key]) : null);
}

/**
 * The key context of `key` in a key-based cache: its protocol key, backend key (tenant from the
 * `encryption.tenant` option, called with the key, or `withTenant`), L1 key, `tags` and `call`.
 *
 * @throws {CacheKeyError} `key` is not a string.
 */
export function objectKeyCtx(
  eng: Engine,
  key: string,
  tags: readonly string[] | null,
  call: CallOptions | undefined,
): KeyCtx {
  if (typeof key !== "string") {
    throw new CacheKeyError("key", `a key-based cache takes string keys, not ${typeof key}`);
  }
  const tenant = callTenant(eng, [key]);
  const protoKey = protoKeyOf(eng, key);
  return {
    l1Key: tenantL1Key(key, tenant),
    protoKey,
    backendKey: backendKeyOf(eng, protoKey, tenant),
    tenant,
    tags,
    call,
  };
}
