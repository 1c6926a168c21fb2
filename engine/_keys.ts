/**
 * The keys of a call: its tenant, the cheap L1 key (`_argkey.ts`), and the full key context (the
 * protocol key, the backend key with its tenant segment, the L1 key, the tags).
 *
 * Separate from the call flow because keys are a pure function of the configuration and the
 * arguments (plus two memos): the call flow asks for them and never looks inside. The protocol
 * key is remembered per cheap key, and the backend key per protocol key, so that a repeated call
 * neither hashes its arguments again nor builds a new string.
 *
 * @module
 */
import { CacheConfigError, CacheKeyError } from "../errors.ts";
import { argsHash, cacheKey, interopKey, serializerCode } from "../protocol/keys.ts";
import { isWellFormed } from "../protocol/internal.ts";
import { currentTenant, quoteTenant, tenantContextUsed, TenantRequiredError } from "../tenant.ts";
import {
  APART,
  type ArgKey,
  argKey,
  ARGS_FORM,
  callKey,
  customKey,
  type KeyForm,
  STD_FORM,
} from "./_argkey.ts";
import type { CallOptions } from "./_call_options.ts";
import type { Engine } from "./_engine.ts";
import { sawTenant } from "./_registry.ts";
import { BY_POSITION } from "../config/python_kwargs.ts";

/**
 * Protocol keys remembered per engine (by L1 key); the memo starts over when full. With an L1
 * the memo only serves misses (a live entry answers by the cheap key), and each remembered key
 * costs a few hundred bytes beside the entry, so it is kept to the hottest few; with an L1 and no
 * backend there is none (a miss calls the function, next to which hashing the key is nothing, and
 * ~260 KB of memo would cost an L1 of 10,000 entries 27 bytes each).
 */
const MAX_KEY_MEMO = 10_000;
const MAX_KEY_MEMO_WITH_L1 = 1024;

/** How many keys each memo keeps (see above). */
export function memoMax(eng: Engine): number {
  if (eng.l1 === null) return MAX_KEY_MEMO;
  return eng.config.backend === null ? 0 : MAX_KEY_MEMO_WITH_L1;
}
const DEFAULT_SEGMENT = quoteTenant("default");

/** The keys of one call. */
export interface KeyCtx {
  /** L1 (and in-flight) key: the cheap key or `p` + the protocol key, tenant-prefixed. */
  l1Key: ArgKey;
  /** The protocol key (`ns:…:func:…:args:…`, or the interop key). */
  protoKey: string;
  /** The L2 key: the protocol key under its tenant segment. */
  backendKey: string;
  /** The call's tenant, or `null` (the default tenant). */
  tenant: string | null;
  /** The call's tags (`tags` option; plus the result's, once computed), or `null`. */
  tags: readonly string[] | null;
  /** The call's correlation id, set when the call first logs (`_call_log.ts`). */
  correlationId?: string;
  /**
   * The entry's own TTL, seconds (`null`: no expiry), when it is not the configured one: a TTL
   * chosen for the result (adaptive caching), or what an L2 hit has left. Unset: the `ttl` option.
   */
  ttl?: number | null;
  /** Per-call options (`_call_options.ts`): absent for a plain call. */
  call?: CallOptions;
  /**
   * Set for a write on purpose (a cache object's `set`, a forced refresh `"refresh"`): its
   * announcement on the bus says `set`, so that other instances' work in flight on the key does not
   * store its older result over it (`onRemoteEvent` in `_invalidation.ts`). Unset: a computed value
   * (`write`). A refresh computes too: its write is remembered as a miss's (`_late_writes.ts`).
   */
  supersedes?: "set" | "refresh";
}

/**
 * The L1 key of a call: the argument key (or a key-based cache's key), prefixed by the tenant
 * when there is one. One L1 holds the calls of every tenant and those without one, so the two
 * kinds never meet: a tenant's key starts with `\0` (`\0{quoted tenant}\0{key}`; the quoted
 * tenant holds no `\0`), a key without a tenant never does (an argument key starts with a letter;
 * a key-based cache's key starting with `\0` or `\u0001` gets a `\u0001` in front). Else
 * `f("x\0sfoo")` outside any tenant was answered tenant `sx`'s `f("foo")`. The tenant `default`
 * has the key of no tenant, as it has its L2 key (else an invalidation outside any tenant left
 * its L1 copy answering the old value).
 */
export function tenantL1Key(key: ArgKey, tenant: string | null): ArgKey {
  // The tenant "default" is no tenant: one L2 entry (`t:default:…`), one L1 entry.
  if (tenant !== null && tenant !== "default") {
    return "\u0000" + quoteTenant(tenant) + "\u0000" + key;
  }
  return typeof key === "string" && key.charCodeAt(0) <= 1 ? "\u0001" + key : key;
}

/** The tenant of a call: option (fixed or function), `withTenant` context, or `null` (= default). */
export function tenantOf(eng: Engine, args: unknown[]): string | null {
  const t = eng.config.encryption.tenant;
  if (typeof t === "string") return t;
  if (typeof t === "function") {
    const v = (t as (...a: unknown[]) => unknown)(...args);
    // A lone surrogate has no UTF-8 form (see `validateTenant`): refused, not a `URIError`.
    if (typeof v === "string" && v !== "" && isWellFormed(v)) return v;
    if (v !== undefined && v !== null && v !== "") {
      throw new CacheConfigError(
        "encryption.tenant",
        typeof v === "string" ? "a tenant id with a lone surrogate" : typeof v,
        "a function returning a non-empty, well-formed tenant id (or undefined: none for this call)",
      );
    }
  }
  const ctx = tenantContextUsed() ? currentTenant() : undefined;
  if (ctx !== undefined) {
    // An interop key has no tenant segment (other SDKs compute it alike): under a tenant, its
    // one entry would answer every tenant. The tenant "default" is no tenant (`tenantL1Key`).
    if (eng.config.interop !== null && ctx !== "default") {
      throw new CacheKeyError(
        "the tenant",
        "an interop key carries no tenant (tenants would share its entry); call interop " +
          'functions outside withTenant, or inside withTenant("default", …)',
      );
    }
    return ctx;
  }
  if (
    !eng.config.encryption.singleTenant &&
    (eng.config.encryption.enabled || typeof t === "function")
  ) {
    throw new TenantRequiredError(eng.identity);
  }
  return null;
}

/** The tenant of a call when tenants can apply to it (else `null`, without any lookup). */
export function callTenant(eng: Engine, args: unknown[]): string | null {
  return eng.tenantAware || tenantContextUsed() ? tenantOf(eng, args) : null;
}

/** The cheap L1 key (without tenant), or `undefined` when the protocol key is needed. */
export function fastKey(eng: Engine, self: unknown, args: unknown[]): ArgKey | undefined {
  const kf = eng.config.key;
  if (kf !== null) {
    return "k" + keyOfInstance(eng, self) + (kf as (...a: unknown[]) => string)(...args);
  }
  const c = eng.config;
  if (pythonKeyed(c)) return pythonArgKey(eng, self, args);
  const canonical = canonicalArgKeys(c);
  if (eng.instanceKey !== null) return argKey([eng.instanceKey(self), ...args], canonical);
  return argKey(args, canonical);
}

/**
 * Whether a function's L1 key is the key of the Python call its `pythonArgs` maps the arguments
 * to ({@linkcode pythonArgKey}): with an L2, unless the mapping is one `pythonKwargs` made (its
 * arguments' own key is that of the Python call: `config/python_kwargs.ts`).
 */
export function pythonKeyed(c: Engine["config"]): boolean {
  return c.pythonArgs !== null && c.backend !== null && !BY_POSITION.has(c.pythonArgs);
}

/**
 * The cheap key of a call of a function with `pythonArgs` and an L2: the key of the Python call
 * it maps the arguments to (what the protocol key hashes: `[args, kwargs]`, the instance key
 * first), not of the arguments. The mapping is any function: it may read what the arguments' key
 * leaves out (key order, `-0`, a property holding `undefined`, the argument count), so a key of
 * the arguments could join calls it maps to two Python calls (one L1 entry answering both); and
 * calls it maps to one Python call share one L1 entry, as they share one L2 entry.
 */
function pythonArgKey(eng: Engine, self: unknown, args: unknown[]): ArgKey | undefined {
  const call = pythonCall(eng.config.pythonArgs!, args);
  const pos = eng.instanceKey !== null ? [eng.instanceKey(self), ...call.args] : call.args;
  return callKey(pos, call.kwargs);
}

/**
 * Which arguments the protocol key hashes alike share one L1 key (`argKey`'s `form`): with an L2
 * (one entry per protocol key, which every L1 copy must share), those its key hash writes alike:
 * the interop hash's or the standard one's. Without an L2 they stay apart. (A function with
 * `pythonArgs` and an L2 keys the Python call instead: {@linkcode fastKey}.)
 */
export function canonicalArgKeys(config: Engine["config"]): KeyForm {
  if (config.backend === null) return APART;
  return config.interop ? ARGS_FORM : STD_FORM;
}

/**
 * The instance's part of a custom key (a decorated method with both `key` and `instanceKey`):
 * the instance key, length-prefixed so that the pair stays injective; `""` without `instanceKey`.
 */
function keyOfInstance(eng: Engine, self: unknown): string {
  if (eng.instanceKey === null) return "";
  const ik = String(eng.instanceKey(self));
  return `${ik.length}:${ik}:`;
}

/** The keys a call's arguments give (remembered per cheap key in {@linkcode CallKeys}). */
interface KeyPair {
  /** The protocol key. */
  readonly protoKey: string;
  /** The default tenant's backend key (no tenant, no encryption), once built; else `null`. */
  backendKey: string | null;
}

/**
 * An engine's state for its call keys, built on its first keyed call (`Engine.callKeys`): the
 * keys remembered per cheap key, and the parts every standard key of the function shares, so
 * that a new key is `keyPrefix + hash + suffix` (and its backend key `defaultPrefix + hash +
 * suffix`) without assembling, scanning or hashing strings (the memo is keyed by the cheap key:
 * a `Map` lookup by a fresh string key hashes the whole string first).
 */
export interface CallKeys {
  /** The keys by cheap L1 key (see {@linkcode memoMax}; the memo starts over when full). */
  readonly memo: Map<ArgKey, KeyPair>;
  /** `:{ic}{code}`: the integrity flag and serializer code ending every standard key. */
  readonly suffix: string;
  /**
   * Whether `keyPrefix + hash + suffix` is the final key as it stands: `finalizeKey` would
   * neither replace a character of it nor shorten it, and `cacheKey` would not refuse its parts.
   * Else every key goes through `cacheKey` (which throws where it did).
   */
  readonly direct: boolean;
  /** `t:{default tenant segment}:` + the key prefix. */
  readonly defaultPrefix: string;
}

/** Longest standard key: its prefix, 64 hex digits and the suffix must fit (see `finalizeKey`). */
const MAX_KEY = 250;
const REPLACED = /[ \n\r]/;

function callKeysOf(eng: Engine): CallKeys {
  const c = eng.config;
  let suffix = "";
  let direct = false;
  if (!c.interop && !eng.objectCache) {
    try {
      suffix = ":" + (c.integrityChecking === false ? "0" : "1") +
        serializerCode(eng.serializerName);
      const prefix = eng.keyPrefix;
      direct = prefix.length + 64 + suffix.length <= MAX_KEY && !REPLACED.test(prefix) &&
        isWellFormed(prefix);
    } catch {
      direct = false; // an unknown serializer: `cacheKey` throws it on every call, as before
    }
  }
  return {
    memo: new Map(),
    suffix,
    direct,
    defaultPrefix: `t:${DEFAULT_SEGMENT}:${eng.keyPrefix}`,
  };
}

/** Full key context of a call. */
export function keyContext(
  eng: Engine,
  self: unknown,
  args: unknown[],
  fast: ArgKey | undefined,
  tenant: string | null,
): KeyCtx {
  const c = eng.config;
  let protoKey: string;
  let backendKey: string | null = null;
  if (c.key !== null) {
    const custom = (c.key as (...a: unknown[]) => string)(...args);
    if (typeof custom !== "string") {
      throw new CacheKeyError(
        "key()",
        `the key function returned ${typeof custom}, not a string`,
      );
    }
    protoKey = customKey(eng.keyPrefix, keyOfInstance(eng, self) + custom);
  } else {
    // The protocol key of the same L1 key is the same (see `_argkey.ts`): remembered, so a
    // repeated call does not hash its arguments again (L1 off, or a miss after eviction).
    const ck = eng.callKeys ??= callKeysOf(eng);
    let pair = fast !== undefined ? ck.memo.get(fast) : undefined;
    if (pair === undefined) {
      pair = derive(eng, ck, self, args);
      const max = memoMax(eng);
      if (fast !== undefined && max > 0) {
        if (ck.memo.size >= max) ck.memo.clear();
        ck.memo.set(fast, pair);
      }
    }
    protoKey = pair.protoKey;
    if (tenant === null && eng.secure === null) {
      backendKey = pair.backendKey ??= `t:${DEFAULT_SEGMENT}:${protoKey}`;
    }
  }
  backendKey ??= backendKeyOf(eng, protoKey, tenant);
  const l1Key = tenantL1Key(fast ?? "p" + protoKey, tenant);
  const tags = c.tags ? (c.tags as (...a: unknown[]) => readonly string[])(...args) : null;
  return { l1Key, protoKey, backendKey, tenant, tags };
}

/** The keys of a call without a `key` option: interop, or standard (`direct` or `cacheKey`). */
function derive(eng: Engine, ck: CallKeys, self: unknown, args: unknown[]): KeyPair {
  const c = eng.config;
  if (c.interop) {
    const keyArgs = eng.instanceKey !== null ? [eng.instanceKey(self), ...args] : args;
    const key = interopKey(c.interop.namespace, c.interop.operation, keyArgs);
    return { protoKey: key, backendKey: key }; // interop keys are stored bare
  }
  let posArgs = args;
  let kwargs: Record<string, unknown> = {};
  if (c.pythonArgs !== null) ({ args: posArgs, kwargs } = pythonCall(c.pythonArgs, args));
  const keyArgs = eng.instanceKey !== null ? [eng.instanceKey(self), ...posArgs] : posArgs;
  if (ck.direct) {
    const hash = argsHash(keyArgs, kwargs);
    return {
      protoKey: eng.keyPrefix + hash + ck.suffix,
      backendKey: eng.secure === null ? ck.defaultPrefix + hash + ck.suffix : null,
    };
  }
  const protoKey = cacheKey({
    namespace: c.namespace,
    func: eng.identity,
    args: keyArgs,
    kwargs,
    integrityChecking: c.integrityChecking,
    serializer: eng.serializerName,
  });
  return { protoKey, backendKey: null };
}

/** The L2 key of protocol key `protoKey` for `tenant`: `t:{tenant segment}:` + it (interop: bare). */
export function backendKeyOf(eng: Engine, protoKey: string, tenant: string | null): string {
  const c = eng.config;
  const max = memoMax(eng);
  const sec = eng.secure;
  if (tenant !== null && (sec === null || sec.mode === "plain")) sawTenant(tenant);
  let backendKey: string;
  if (c.interop) backendKey = protoKey;
  else if (tenant === null && sec === null) {
    // The common case, remembered per protocol key: a key built anew on every call is a rope
    // (ConsString) that each Map lookup or socket write has to flatten first.
    const known = eng.defaultBackendKeys.get(protoKey);
    if (known !== undefined) backendKey = known;
    else {
      backendKey = `t:${DEFAULT_SEGMENT}:${protoKey}`;
      if (max > 0) {
        if (eng.defaultBackendKeys.size >= max) eng.defaultBackendKeys.clear();
        eng.defaultBackendKeys.set(protoKey, backendKey);
      }
    }
  } else {
    backendKey = `t:${
      sec !== null ? sec.segment(tenant ?? "default") : quoteTenant(tenant!)
    }:${protoKey}`;
  }
  return backendKey;
}

/** The `pythonArgs` option's `{ args, kwargs }` for a call, checked. */
function pythonCall(
  f: (...args: never[]) => unknown,
  args: unknown[],
): { args: unknown[]; kwargs: Record<string, unknown> } {
  const call = (f as (...a: unknown[]) => unknown)(...args) as {
    args?: unknown;
    kwargs?: unknown;
  };
  if (typeof call !== "object" || call === null || !Array.isArray(call.args)) {
    throw new CacheKeyError("pythonArgs()", "expected { args: [...], kwargs: {...} }");
  }
  const kwargs = call.kwargs ?? {};
  const proto = typeof kwargs === "object" ? Object.getPrototypeOf(kwargs) : undefined;
  if (proto !== Object.prototype && proto !== null) {
    throw new CacheKeyError("pythonArgs().kwargs", "expected a plain object of keyword arguments");
  }
  if (Object.hasOwn(kwargs, "_bypass_cache")) {
    // cachekit-py 0.3.0's get_cache_key leaves its own `_bypass_cache` flag out of the hash.
    const { _bypass_cache: _, ...rest } = kwargs as Record<string, unknown>;
    return { args: call.args, kwargs: rest };
  }
  return { args: call.args, kwargs: kwargs as Record<string, unknown> };
}
