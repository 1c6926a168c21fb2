// deno-lint-ignore-file require-await no-unused-vars -- type-level checks: the code is the assertion
// Type-level tests: `deno check` / `deno test` compile this file; every `@ts-expect-error` line must
// be an error (else compilation fails), and the `Equals` checks prove the inferred types.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import {
  type AddListenerOptions,
  cache,
  cached,
  type CachedFunction,
  type EventTargetListener,
  MemoryBackend,
  type RemoveListenerOptions,
} from "../../mod.ts";

type Equals<X, Y> = (<T>() => T extends X ? 1 : 2) extends (<T>() => T extends Y ? 1 : 2) ? true
  : false;
function expectType<T extends true>(): T | undefined {
  return undefined;
}
/** Compile-time only: the body is type-checked, never run. */
function typeOnly(_fn: () => unknown): void {}

interface User {
  id: number;
  name: string;
}
const backend = new MemoryBackend();
const noLayers = { circuitBreaker: false, timeout: false, backpressure: false } as const;

// Async function with an L2: parameters kept, returns Promise<User>.
const getUser = cache(
  async (id: number, full?: boolean): Promise<User> => ({ id, name: `u${id}` }),
  {
    name: "types.getUser",
    ttl: 60,
    backend,
    ...noLayers,
  },
);
expectType<Equals<Parameters<typeof getUser>, [id: number, full?: boolean]>>();
expectType<Equals<ReturnType<typeof getUser>, Promise<User>>>();
typeOnly(() => {
  // @ts-expect-error wrong argument type
  getUser("42");
});
typeOnly(() => {
  // @ts-expect-error missing argument
  getUser();
});
typeOnly(() => {
  // @ts-expect-error too many arguments
  getUser(1, true, "x");
});
typeOnly(() => {
  // @ts-expect-error the result is a User, not a string
  const s1: Promise<string> = getUser(1);
});

// Sync function with an L2: the wrapper returns a Promise, and its type says so.
const double = cache((n: number) => n * 2, { name: "types.double", backend, ...noLayers });
expectType<Equals<ReturnType<typeof double>, Promise<number>>>();
typeOnly(() => {
  // @ts-expect-error a Promise<number> is not a number
  const d1: number = double(2);
});

// Sync function, L1 only: the exact type, synchronous.
const local = cache((a: string, b: number): string => a.repeat(b), {
  name: "types.local",
  backend: null,
});
expectType<Equals<typeof local, CachedFunction<[a: string, b: number], string>>>();
const l1: string = local("x", 2);
typeOnly(() => {
  // @ts-expect-error arguments swapped
  local(2, "x");
});

// Presets have the same shape.
const fast = cache.minimal(async (q: string) => q.length, { name: "types.fast", backend: null });
expectType<Equals<ReturnType<typeof fast>, Promise<number>>>();
const t = cache.test((q: string) => [q], { name: "types.test" });
expectType<Equals<ReturnType<typeof t>, Promise<string[]>>>();

// Options see the typed arguments.
cache(async (id: number, region: string) => id, {
  name: "types.options",
  backend,
  key: (id, region) => `${id}:${region.toUpperCase()}`,
  tags: (id) => [`user:${id.toFixed(0)}`],
  ...noLayers,
});
typeOnly(() =>
  cache(async (id: number) => id, {
    name: "types.options.bad",
    backend,
    // @ts-expect-error `id` is a number: no toUpperCase
    key: (id) => id.toUpperCase(),
    ...noLayers,
  })
);
typeOnly(() =>
  // @ts-expect-error unknown option
  cache(async (id: number) => id, { name: "types.typo", tll: 5 })
);
typeOnly(() => {
  // @ts-expect-error invalidate takes the function's arguments
  getUser.invalidate("1");
});

// Decorator: async methods with an L2; sync methods only with backend: null.
class Repo {
  @cached({ ttl: 60, backend, ...noLayers })
  async load(id: number): Promise<User> {
    return { id, name: "x" };
  }
  @cached({ backend: null })
  size(n: number): number {
    return n;
  }
}
typeOnly(() =>
  class BadRepo {
    // @ts-expect-error a synchronous method cannot be decorated with an async (L2) cache
    @cached({ ttl: 60, backend })
    size(n: number): number {
      return n;
    }
  }
);

// The event target's parameter types are named without the DOM lib (so the npm package's
// declarations need none), yet where the DOM lib is present they are exactly its types.
expectType<Equals<EventTargetListener, EventListenerOrEventListenerObject>>();
expectType<Equals<AddListenerOptions, AddEventListenerOptions>>();
expectType<Equals<RemoveListenerOptions, EventListenerOptions>>();

test("typed wrappers behave as their types say", async () => {
  assert.deepEqual(await getUser(1), { id: 1, name: "u1" });
  assert.equal(await double(21), 42);
  assert.equal(local("ab", 2), "abab");
  assert.equal(await new Repo().load(3).then((u) => u.id), 3);
  assert.equal(new Repo().size(4), 4);
});
