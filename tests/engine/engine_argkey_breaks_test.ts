// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Calls that must never share an L1 entry, found by attacking the cheap L1 key
 * (`engine/_argkey.ts`) and the keys built around it (`engine/_keys.ts`): each pair below had one
 * L1 key and two protocol keys (or one protocol key refused), so L1 answered one call with the
 * other's value, or with a value where the protocol key refuses the call.
 *
 * - A call outside any tenant whose string argument spells a tenant's L1 prefix
 *   (`f("x\0sfoo")` against tenant `sx`'s `f("foo")`): another tenant's value.
 * - `pythonArgs`: the cheap key was built from the arguments, not from the call it maps them to,
 *   so a mapping that reads what the cheap key leaves out (key order, `-0`, a property holding
 *   `undefined`, the argument count) was answered another call's value.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, createCache, pythonKwargs, withTenant } from "../../mod.ts";
import { CacheKeyError } from "../../errors.ts";
import { MemoryBackend } from "../../backends/mod.ts";

test("a call without a tenant never gets a tenant's L1 entry (a string spelling its prefix)", async () => {
  for (const backend of [null, new MemoryBackend()]) {
    const f = cache(async (s: string) => ({ s }), {
      name: `argkey.breaks.tenant.${backend === null ? "l1" : "l2"}`,
      backend,
      ttl: 60,
    });
    assert.deepEqual(await withTenant("sx", () => f("foo")), { s: "foo" });
    assert.deepEqual(await f("x\u0000sfoo"), { s: "x\u0000sfoo" }, "not tenant sx's f('foo')");
    // Two arguments: the cheap key starts with "a".
    const g = cache(async (a: number, b: number) => a + b, {
      name: `argkey.breaks.tenant2.${backend === null ? "l1" : "l2"}`,
      backend,
      ttl: 60,
    });
    assert.equal(await withTenant("a", () => g(1, 2)), 3);
    // g's key of (1, 2) is "an1;n2;"; tenant "a" prefixes it as "a\0an1;n2;". No argument list
    // spells that (no part starts with "\0"), but a single-argument function can:
    const h = cache(async (s: string) => s.length, {
      name: `argkey.breaks.tenant3.${backend === null ? "l1" : "l2"}`,
      backend,
      ttl: 60,
    });
    assert.equal(await withTenant("s", () => h("abc")), 3);
    assert.equal(await h("\u0000sabc"), 5, "not tenant s's h('abc')");
  }
});

test("a key-based cache: a key outside any tenant never gets a tenant's L1 entry", async () => {
  for (const backend of [null, new MemoryBackend()]) {
    const c = createCache({ namespace: "argkey-breaks-obj", ttl: 60, backend });
    assert.equal(
      await withTenant("t1", () => c.getOrSet("k", async () => "tenant t1")),
      "tenant t1",
    );
    assert.equal(
      await c.getOrSet("t1\u0000k", async () => "no tenant"),
      "no tenant",
      "not tenant t1's entry of k",
    );
  }
});

test("pythonArgs: a mapping that reads key order gets its own entry per order", async () => {
  let calls = 0;
  const f = cache(async (filters: Record<string, number>) => ({ n: ++calls, filters }), {
    name: "argkey.breaks.python_args.order",
    backend: new MemoryBackend(),
    ttl: 60,
    // The Python function takes the filters as JSON text.
    pythonArgs: (filters: Record<string, number>) => ({ args: [JSON.stringify(filters)] }),
  });
  assert.equal((await f({ a: 1, b: 2 })).n, 1);
  assert.equal((await f({ b: 2, a: 1 })).n, 2, `'{"b":2,"a":1}' is another Python call`);
  assert.equal((await f({ a: 1, b: 2 })).n, 1);
});

test("pythonArgs: -0 and 0, a property holding undefined, kept apart where the mapping does", async () => {
  let calls = 0;
  const f = cache(async (_x: number) => ({ n: ++calls }), {
    name: "argkey.breaks.python_args.zero",
    backend: new MemoryBackend(),
    ttl: 60,
    pythonArgs: (x: number) => ({ args: [Object.is(x, -0) ? "-0" : x] }),
  });
  assert.equal((await f(0)).n, 1);
  assert.equal((await f(-0)).n, 2, "f(-0) is the Python call f('-0')");
  const g = cache(async (_o: { a?: number }) => ({ n: ++calls }), {
    name: "argkey.breaks.python_args.present",
    backend: new MemoryBackend(),
    ttl: 60,
    pythonArgs: (o: { a?: number }) => ({ args: [], kwargs: { has_a: "a" in o } }),
  });
  const n = (await g({})).n;
  assert.equal((await g({ a: undefined })).n, n + 1, "g({ a: undefined }) maps to has_a=True");
});

test("pythonKwargs: a call it refuses is refused, whether or not an accepted call is in L1", async () => {
  const f = cache(async (id: number, deleted?: boolean) => ({ id, deleted }), {
    name: "argkey.breaks.python_kwargs.extra",
    backend: new MemoryBackend(),
    ttl: 60,
    pythonArgs: pythonKwargs(1, ["include_deleted"]),
  });
  const extra = f as unknown as (...a: unknown[]) => Promise<unknown>;
  // Refused on an empty L1 …
  const first = await extra(42, true, undefined).then(() => null, (e) => e);
  await f(42, true);
  // … and so on a full one: same call, same outcome.
  const second = await extra(42, true, undefined).then(() => null, (e) => e);
  assert.equal(
    second?.constructor,
    first?.constructor,
    `first: ${first}, then: ${second}`,
  );
  if (first !== null) assert.ok(first instanceof CacheKeyError);
});

test("pythonArgs: calls it maps to one Python call share one L1 entry (an invalidation reaches both)", async () => {
  let calls = 0;
  const f = cache(async (_id: number | bigint) => ({ n: ++calls }), {
    name: "argkey.breaks.python_args.shared",
    backend: new MemoryBackend(),
    ttl: 60,
    pythonArgs: (id: number | bigint) => ({ args: [Number(id)] }),
  });
  assert.equal((await f(1)).n, 1);
  assert.equal((await f(1n)).n, 1, "one Python call f(1): one L2 entry");
  await f.invalidate(1);
  assert.equal((await f(1n)).n, 2, "f(1n)'s L1 copy went with f(1)'s: it was invalidated");
});

test("pythonKwargs: trailing undefined arguments are the call without them; its calls alias as the hash does", async () => {
  let calls = 0;
  const f = cache(async (_id: number | bigint, _deleted?: boolean) => ({ n: ++calls }), {
    name: "argkey.breaks.python_kwargs.alias",
    backend: new MemoryBackend(),
    ttl: 60,
    pythonArgs: pythonKwargs(1, ["include_deleted"]),
  });
  const extra = f as unknown as (...a: unknown[]) => Promise<{ n: number }>;
  assert.equal((await extra(42, true, undefined)).n, 1, "get_user(42, include_deleted=True)");
  assert.equal((await f(42n, true)).n, 1, "42n is hashed as 42");
  assert.equal((await f(42)).n, 2, "get_user(42)");
  assert.equal((await f(42, undefined)).n, 2);
  await f.invalidate(42n, true);
  assert.equal((await f(42, true)).n, 3, "the invalidation reached f(42, true)'s L1 copy");
  await assert.rejects(extra(42, true, 1), CacheKeyError);
});

test("the tenant 'default' shares the L1 entry of no tenant, as it shares the L2 entry", async () => {
  let calls = 0;
  const f = cache(async (x: number) => ({ x, n: ++calls }), {
    name: "argkey.breaks.tenant_default",
    backend: new MemoryBackend(),
    ttl: 60,
  });
  assert.equal((await f(1)).n, 1);
  assert.equal((await withTenant("default", () => f(1))).n, 1, "one L2 entry");
  await f.invalidate(1);
  assert.equal((await withTenant("default", () => f(1))).n, 2, "its L1 copy went too");
  await withTenant("default", () => f.invalidate(1));
  assert.equal((await f(1)).n, 3);
});
