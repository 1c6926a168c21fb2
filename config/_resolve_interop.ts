/**
 * The `interop` option: the namespace and operation segments shared with cachekit-py 0.3.0 (the
 * Python SDK), and the options interop mode rules out. Separate because its checks read other
 * options (`namespace`, `name`, `key`, `wire`) and its segments follow the Python key grammar.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";
import type { CacheOptions, ResolvedConfig } from "./options.ts";
import { isPlainObject } from "./_resolve_checks.ts";

const SEGMENT = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * Resolve `interop` (`null` when off).
 *
 * @param o The options.
 */
export function resolveInterop(o: CacheOptions<unknown[]>): ResolvedConfig["interop"] {
  if (o.interop === undefined || o.interop === false) return null;
  const io = o.interop === true ? {} : o.interop;
  if (!isPlainObject(io)) {
    throw new CacheConfigError("interop", o.interop, "true, false or { namespace, operation }");
  }
  for (const k of Object.keys(io)) {
    if (k !== "namespace" && k !== "operation") {
      throw new CacheConfigError(
        `interop.${k}`,
        (io as Record<string, unknown>)[k],
        "namespace or operation",
      );
    }
  }
  const ns = io.namespace ?? o.namespace;
  const op = io.operation ?? o.name;
  if (typeof ns !== "string" || !SEGMENT.test(ns)) {
    throw new CacheConfigError(
      "interop.namespace",
      ns,
      "a namespace matching ^[a-z0-9][a-z0-9._-]{0,63}$ (interop requires one)",
    );
  }
  if (typeof op !== "string" || !SEGMENT.test(op)) {
    throw new CacheConfigError(
      "interop.operation",
      op,
      "an operation name (or `name`) matching ^[a-z0-9][a-z0-9._-]{0,63}$",
    );
  }
  if (o.key !== undefined) {
    throw new CacheConfigError("key", "a function", "no custom key function in interop mode");
  }
  if (o.wire !== undefined) {
    throw new CacheConfigError(
      "wire",
      o.wire,
      "unset in interop mode (interop values are plain MessagePack)",
    );
  }
  return { namespace: ns, operation: op };
}
