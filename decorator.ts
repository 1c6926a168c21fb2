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
 * synchronous method stays synchronous. TypeScript does not pass the method's type to the
 * decorator's arguments, so {@linkcode cached} is generic over the class, the parameters and the
 * result, taken from the callbacks you annotate (or from type arguments): a method that disagrees
 * with them is a compile error.
 *
 * Controls: `cachedControls(instance, "method")` gives a decorated method's `invalidate`,
 * `uncached`, `refresh`, `cacheInfo`, … typed from the method and acting for that instance.
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
import { type CacheControls, type CachedFunction, controlsFor, wrap } from "./cache.ts";

// `any` (below) is what lets a method of any signature through when the options do not name its
// types (`unknown` would refuse every method with parameters: parameters are contravariant).

/**
 * Options of {@linkcode cached}: the `cache()` options plus the instance key and a preset. `This`
 * is the class, `A` the method's parameters and `R` its result (awaited): inferred from the
 * callbacks' annotations, or given as type arguments (see {@linkcode cached}).
 */
// deno-lint-ignore no-explicit-any
export interface CachedMethodOptions<This = any, A extends unknown[] = any[], R = any>
  extends CacheOptions<A, R> {
  /** Key part taken from the instance (e.g. `(self: Users) => self.tenantId`). */
  instanceKey?: (self: This) => string;
  /** Preset whose settings apply under these options. */
  preset?: PresetName;
}

/**
 * What {@linkcode cached} returns: a decorator for methods of class `This` taking `A` and returning
 * `Ret` (`Promise<R>` with an L2, `R | Promise<R>` L1 only). A method that does not fit is a
 * compile error at the decorator.
 */
export type CachedMethodDecorator<This, A extends unknown[], Ret> = <
  T extends This,
  M extends (this: T, ...args: A) => Ret,
>(
  value: M,
  context: ClassMethodDecoratorContext<T, M>,
) => M;

/** The decorator of earlier versions' typings: methods of any arguments returning `Ret`. */
// deno-lint-ignore no-explicit-any
export type MethodDecorator<Ret> = CachedMethodDecorator<unknown, any[], Ret>;

/** The controls of a decorated method `F` (see {@linkcode cachedControls}). */
export type MethodControls<F> = F extends (...args: infer A) => infer R ? CacheControls<A, R>
  : never;

/** The keys of `T` whose values are methods. */
export type MethodKeys<T> = {
  // deno-lint-ignore no-explicit-any
  [K in keyof T]: T[K] extends (...args: any[]) => unknown ? K : never;
}[keyof T];

/** Decorated methods → their cached function, created on first use for a given `this`. */
const decorated = new WeakMap<object, (self: unknown) => CachedFunction<unknown[], unknown>>();

/**
 * The method decorator. See the module documentation.
 *
 * Typing: TypeScript does not pass the decorated method's type to the decorator's arguments, so
 * `cached` takes it from the option callbacks you annotate (`key: (id: number) => ...`,
 * `instanceKey: (self: Users) => ...`, `ttl: (user: User | null) => ...`) or from explicit type
 * arguments (`@cached<Users, [id: number], User | null>({ ... })`), and the method must then
 * agree: a method whose parameters, result or class differ is a compile error. Unannotated
 * callbacks see `any`.
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
 *
 * @example Typed callbacks: the method must agree with them
 * ```ts
 * import assert from "node:assert/strict";
 * import { cached, MemoryBackend } from "@cachekit/core";
 *
 * type User = { id: number; name: string };
 * class Users {
 *   @cached({
 *     backend: new MemoryBackend(),
 *     key: (id: number) => String(id),
 *     cacheIf: (user: User | null) => user !== null,
 *     ttl: (user: User | null) => (user?.name === "admin" ? 5 : 60),
 *   })
 *   async find(id: number): Promise<User | null> {
 *     return id > 0 ? { id, name: "ann" } : null;
 *   }
 * }
 * assert.deepEqual(await new Users().find(1), { id: 1, name: "ann" });
 * ```
 */
// deno-lint-ignore no-explicit-any
export function cached<This = any, A extends unknown[] = any[], R = any>(
  options: CachedMethodOptions<This, A, R> & { backend: null },
): CachedMethodDecorator<This, A, R | Promise<R>>;
/**
 * The method decorator with an L2: methods must return a `Promise`.
 *
 * @param options Cache options, `instanceKey`, `preset`.
 * @returns The decorator.
 */
// deno-lint-ignore no-explicit-any
export function cached<This = any, A extends unknown[] = any[], R = any>(
  options?: CachedMethodOptions<This, A, R>,
): CachedMethodDecorator<This, A, Promise<R>>;
// deno-lint-ignore no-explicit-any
export function cached(options: CachedMethodOptions = {}): CachedMethodDecorator<any, any[], any> {
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
  // deno-lint-ignore no-explicit-any
  return <T, M extends (this: T, ...args: any[]) => any>(
    value: M,
    context: ClassMethodDecoratorContext<T, M>,
  ): M => {
    if (context.kind !== "method") {
      throw new CacheConfigError("@cached", context.kind, "a method");
    }
    const method = String(context.name);
    let wrapper: CachedFunction<unknown[], unknown> | null = null;
    const create = (self: unknown): CachedFunction<unknown[], unknown> => {
      let identity = config.name ?? undefined;
      if (identity === undefined) {
        const owner = ownerOf(self, replacement, context.static);
        identity = deriveIdentity(value as (...args: never[]) => unknown, {
          module,
          qualifier: owner,
          namespace: config.namespace,
        });
      }
      return wrap(value as (...args: unknown[]) => unknown, undefined, undefined, {
        config,
        identity,
        instanceKey: (instanceKey as ((self: unknown) => string) | undefined) ?? null,
      });
    };
    const replacement = function (this: T, ...args: unknown[]): unknown {
      wrapper ??= create(this);
      return (wrapper as unknown as (this: T, ...a: unknown[]) => unknown).apply(this, args);
    };
    Object.defineProperty(replacement, "name", { value: method, configurable: true });
    decorated.set(replacement, (self) => wrapper ??= create(self));
    return replacement as unknown as M;
  };
}

/**
 * The controls of a method decorated with {@linkcode cached}, acting for `target` (the instance,
 * or the class for a static method): `invalidate`, `uncached` and `refresh` take the method's
 * arguments and key and call on `target` (its `instanceKey`); `cacheInfo`, `cacheClear` and the
 * rest concern the method's one cache, shared by all instances. Typed from the method:
 * `cachedControls(users, "find").refresh(1)` takes `find`'s parameters and returns its result.
 *
 * @param target The instance (or class, for a static method).
 * @param method The decorated method's name.
 * @returns The controls.
 * @throws {CacheConfigError} `target[method]` is not a method decorated with `@cached`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cached, cachedControls } from "@cachekit/core";
 *
 * class Clock {
 *   ticks = 0;
 *   @cached({ backend: null })
 *   now(zone: string): number {
 *     return ++this.ticks;
 *   }
 * }
 * const clock = new Clock();
 * clock.now("utc");
 * const controls = cachedControls(clock, "now");
 * assert.equal(controls.refresh("utc"), 2); // recomputed and stored
 * assert.equal(clock.now("utc"), 2);
 * assert.equal(controls.uncached("utc"), 3); // the method itself, nothing stored
 * assert.equal(clock.now("utc"), 2);
 * await controls.invalidate("utc");
 * assert.equal(clock.now("utc"), 4);
 * assert.equal(controls.cacheInfo().hits, 2);
 * ```
 */
export function cachedControls<T extends object, K extends MethodKeys<T>>(
  target: T,
  method: K,
): MethodControls<T[K]> {
  const fn = (target as Record<PropertyKey, unknown>)[method as PropertyKey];
  const get = typeof fn === "function" ? decorated.get(fn) : undefined;
  if (get === undefined) {
    throw new CacheConfigError("cachedControls", String(method), "a method decorated with @cached");
  }
  return controlsFor(get(target), target) as MethodControls<T[K]>;
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
