/**
 * `@cached(options)`: a standard (TC39, TypeScript 5+ without `experimentalDecorators`) method
 * decorator. Entries are keyed on the method's arguments, plus `instanceKey(this)` when given (use
 * it when the result depends on the instance). One cache per decorated method, shared by all
 * instances.
 *
 * Identity: `name` if given, else `{module}.{Class}.{method}` (the class that owns the method),
 * fixed on the first call. Options are validated when the class is defined.
 *
 * Types: with an L2 (the default) only methods returning a `Promise` can be decorated (the
 * decorator cannot change a method's declared type); with `backend: null` any method can, and a
 * synchronous method stays synchronous.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cached, MemoryBackend } from "@cachekit/core";
 *
 * const backend = new MemoryBackend();
 * class Users {
 *   calls = 0;
 *   @cached({ ttl: 60, backend })
 *   async get(id: number): Promise<{ id: number }> {
 *     this.calls++;
 *     return { id };
 *   }
 * }
 * const users = new Users();
 * await users.get(1);
 * await users.get(1);
 * assert.equal(users.calls, 1);
 * ```
 *
 * @module
 */
import type { CacheOptions, PresetName } from "./config/options.ts";
import { resolveConfig } from "./config/resolve.ts";
import { CacheConfigError } from "./errors.ts";
import { callerModule, deriveIdentity } from "./engine/identity.ts";
import { type CachedFunction, wrap } from "./cache.ts";

/** Options of {@linkcode cached}: the `cache()` options plus the instance key and a preset. */
export interface CachedMethodOptions extends CacheOptions<unknown[]> {
  /** Key part taken from the instance (e.g. `(self) => self.tenantId`). */
  instanceKey?: (self: never) => string;
  /** Preset whose settings apply under these options. */
  preset?: PresetName;
}

/** A decorator for methods of any arguments returning `R`-shaped results. */
export type MethodDecorator<Ret> = <This, A extends unknown[], R extends Ret>(
  value: (this: This, ...args: A) => R,
  context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
) => (this: This, ...args: A) => R;

/**
 * The method decorator. See the module documentation.
 *
 * @param options Cache options (`backend: null` for L1 only), `instanceKey`, `preset`.
 * @returns The decorator.
 * @throws {CacheConfigError} Invalid options (when the class is defined).
 *
 * @example L1 only, synchronous method
 * ```ts
 * import assert from "node:assert/strict";
 * import { cached } from "@cachekit/core";
 *
 * class Pricing {
 *   @cached({ backend: null, instanceKey: (self: Pricing) => self.region })
 *   price(sku: string): number {
 *     return sku.length * (this.region === "eu" ? 2 : 1);
 *   }
 *   constructor(readonly region: string) {}
 * }
 * assert.equal(new Pricing("eu").price("abc"), 6);
 * assert.equal(new Pricing("us").price("abc"), 3);
 * ```
 */
export function cached(options: CachedMethodOptions & { backend: null }): MethodDecorator<unknown>;
/**
 * The method decorator with an L2: methods must return a `Promise`.
 *
 * @param options Cache options, `instanceKey`, `preset`.
 * @returns The decorator.
 */
export function cached(options?: CachedMethodOptions): MethodDecorator<Promise<unknown>>;
export function cached(options: CachedMethodOptions = {}): MethodDecorator<unknown> {
  const { instanceKey, preset, ...cacheOptions } = options;
  if (instanceKey !== undefined && typeof instanceKey !== "function") {
    throw new CacheConfigError(
      "instanceKey",
      instanceKey,
      "a function of the instance returning a string",
    );
  }
  const config = resolveConfig(cacheOptions, preset);
  const module = callerModule();
  return <This, A extends unknown[], R>(
    value: (this: This, ...args: A) => R,
    context: ClassMethodDecoratorContext<This, (this: This, ...args: A) => R>,
  ): (this: This, ...args: A) => R => {
    if (context.kind !== "method") {
      throw new CacheConfigError("@cached", context.kind, "a method");
    }
    const method = String(context.name);
    let wrapper: CachedFunction<A, R> | null = null;
    const create = (self: unknown): CachedFunction<A, R> => {
      let identity = config.name ?? undefined;
      if (identity === undefined) {
        const owner = ownerOf(self, replacement, context.static);
        identity = deriveIdentity(value as (...args: never[]) => unknown, {
          module,
          qualifier: owner,
          namespace: config.namespace,
        });
      }
      return wrap(value as (...args: A) => R, undefined, undefined, {
        config,
        identity,
        instanceKey: (instanceKey as ((self: unknown) => string) | undefined) ?? null,
      });
    };
    const replacement = function (this: This, ...args: A): R {
      wrapper ??= create(this);
      return (wrapper as unknown as (this: This, ...a: A) => R).apply(this, args);
    };
    Object.defineProperty(replacement, "name", { value: method, configurable: true });
    return replacement;
  };
}

/** Name of the class that owns `method` (walking the prototype chain of `self`). */
function ownerOf(self: unknown, method: unknown, isStatic: boolean): string {
  let o: unknown = isStatic ? self : Object.getPrototypeOf(self);
  while (o !== null && o !== undefined) {
    for (const k of Object.getOwnPropertyNames(o)) {
      const d = Object.getOwnPropertyDescriptor(o, k);
      if (d?.value === method) {
        const ctor = isStatic ? o : (o as { constructor?: { name?: string } }).constructor;
        return (ctor as { name?: string })?.name || "<anonymous class>";
      }
    }
    o = Object.getPrototypeOf(o);
  }
  return "<unknown class>";
}
