// deno-lint-ignore-file require-await -- async methods without await are what the tests cache
// The typed `@cached` decorator: annotated option callbacks (`key`, `tags`, `ttl`, `cacheIf`,
// `resultTags`, `instanceKey`) must agree with the method's parameters, result and class: each
// `@ts-expect-error` below is a compile error `deno check` (run by `deno test` and `deno task
// check`) requires, and fails on if the error disappears. Then the controls of a decorated method
// through `cachedControls(target, name)`: typed from the method, acting for the instance.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import {
  cache,
  CacheConfigError,
  cacheContext,
  type CacheControls,
  cached,
  cachedControls,
  MemoryBackend,
} from "../../mod.ts";

type User = { id: number; name: string };
const backend = new MemoryBackend();

class Users {
  calls = 0;
  constructor(readonly tenant: string) {}

  // Every callback annotated, and agreeing with the method.
  @cached({
    backend,
    name: "typed.users.find",
    key: (id: number) => String(id), // with instanceKey: keyed on both
    tags: (id: number) => [`user:${id}`],
    ttl: (user: User | null, id: number) => (user === null ? 5 : 60 + id),
    cacheIf: (user: User | null) => user !== null,
    resultTags: (user: User | null) => (user ? [`name:${user.name}`] : []),
    instanceKey: (self: Users) => self.tenant,
  })
  async find(id: number): Promise<User | null> {
    this.calls++;
    return id > 0 ? { id, name: `${this.tenant}-${id}` } : null;
  }

  // Explicit type arguments instead of annotations.
  @cached<Users, [id: number], User>({ backend, name: "typed.users.get", key: (id) => `${id}` })
  async get(id: number): Promise<User> {
    this.calls++;
    return { id, name: this.tenant };
  }

  // Nothing annotated: any method fits (callbacks see `any`).
  @cached({ backend: null, name: "typed.users.count", ttl: (n) => (n > 1 ? 60 : 1) })
  count(a: number, b: number): number {
    this.calls++;
    return a + b;
  }

  @cached({ backend: null, name: "typed.users.version" })
  static version(major: number): string {
    return `v${major}.${Math.random()}`;
  }
}

// Compile errors: each line after a `@ts-expect-error` must fail to type-check.
export class Mismatches {
  // @ts-expect-error -- key takes a number, the method a string
  @cached({ backend: null, key: (id: number) => String(id) })
  byName(name: string): string {
    return name;
  }

  // @ts-expect-error -- instanceKey is for another class
  @cached({ backend: null, instanceKey: (self: Users) => self.tenant })
  wrongClass(id: number): number {
    return id;
  }

  // @ts-expect-error -- cacheIf sees a string, the method returns a number
  @cached({ backend: null, cacheIf: (v: string) => v !== "" })
  wrongResult(id: number): number {
    return id;
  }

  // @ts-expect-error -- ttl sees the awaited result: a User, not a string
  @cached({ backend, ttl: (v: string) => v.length })
  async wrongTtl(id: number): Promise<User> {
    return { id, name: "" };
  }

  // @ts-expect-error -- with an L2 the method must return a Promise
  @cached({ backend })
  sync(id: number): number {
    return id;
  }

  // @ts-expect-error -- explicit type arguments disagree with the method's parameters
  @cached<Mismatches, [id: string], string>({ backend: null })
  explicit(id: number): string {
    return String(id);
  }
}

/** Type-level checks of `cachedControls` (never called: only compiled). */
function controlTypes(users: Users): void {
  const c: CacheControls<[id: number], Promise<User | null>> = cachedControls(users, "find");
  // @ts-expect-error -- refresh takes find's parameters
  void c.refresh("1");
  const r: Promise<User | null> = cachedControls(users, "find").refresh(1);
  void r;
  const n: number = cachedControls(users, "count").uncached(1, 2);
  void n;
  // @ts-expect-error -- not a method
  cachedControls(users, "tenant");
  // @ts-expect-error -- no such method
  cachedControls(users, "nope");
}
void controlTypes;

/** `cache()`'s result callbacks see the function's awaited result and arguments (only compiled). */
function cacheOptionTypes(): void {
  const f = cache(async (id: number) => ({ id, name: "x" }), {
    backend: null,
    ttl: (user, id) => user.name.length + id, // inferred: { id, name }, number
    cacheIf: (user) => user.id > 0,
    resultTags: (user) => [user.name],
  });
  const r: Promise<{ id: number; name: string }> = f.refresh(1);
  void r;
  // @ts-expect-error -- the result is an object, not a string
  cache(async (id: number) => ({ id }), { cacheIf: (v: string) => v !== "" });
  // @ts-expect-error -- the second argument is a number
  cache((id: number) => id, { backend: null, ttl: (_v: number, id: string) => id.length });
  // @ts-expect-error -- uncached takes the function's parameters
  void f.uncached("1");
}
void cacheOptionTypes;

test("typed decorator: annotated callbacks run with the method's arguments and result", async () => {
  const a = new Users("a");
  assert.deepEqual(await a.find(1), { id: 1, name: "a-1" });
  assert.deepEqual(await a.find(1), { id: 1, name: "a-1" });
  assert.equal(a.calls, 1);
  assert.equal(await a.find(0), null);
  assert.equal(await a.find(0), null);
  assert.equal(a.calls, 3, "cacheIf: null is not cached");
  assert.equal(a.count(1, 2), 3);
  assert.equal(a.count(1, 2), 3);
  assert.equal(a.calls, 4);
  assert.deepEqual(await a.get(2), { id: 2, name: "a" });
});

test("cachedControls: a decorated method's controls act for the instance (instanceKey) and share its cache", async () => {
  const a = new Users("acme");
  const b = new Users("bolt");
  const ca = cachedControls(a, "find");
  const cb = cachedControls(b, "find");
  await a.find(1);
  await b.find(1);
  assert.equal(a.calls + b.calls, 2);
  // refresh recomputes on the instance, despite the fresh entry.
  const before = a.calls;
  assert.deepEqual(await ca.refresh(1), { id: 1, name: "acme-1" });
  assert.equal(a.calls, before + 1);
  // uncached runs the method on the instance, nothing counted.
  const info = ca.cacheInfo();
  assert.deepEqual(await cb.uncached(7), { id: 7, name: "bolt-7" });
  assert.equal(b.calls, 2);
  assert.deepEqual(ca.cacheInfo(), info, "one cache per method, statistics unchanged");
  // invalidate removes the instance's entry only (its instanceKey).
  await ca.invalidate(1);
  await a.find(1);
  await b.find(1);
  assert.equal(a.calls, before + 2, "a recomputed");
  assert.equal(b.calls, 2, "b still cached");
  assert.equal(cb.identity, "typed.users.find");
  // Controls work before the method's first call, and on a static method.
  class Never {
    @cached({ backend: null, name: "typed.never" })
    called(x: number): number {
      return x;
    }
  }
  const never = cachedControls(new Never(), "called");
  assert.equal(never.cacheInfo().misses, 0);
  assert.equal(never.refresh(4), 4);
  assert.equal(never.cacheInfo().size, 1);
  const v = Users.version(1);
  assert.equal(Users.version(1), v);
  assert.notEqual(cachedControls(Users, "version").refresh(1), v);
  assert.throws(
    () => cachedControls(a as unknown as { toString(): string }, "toString"),
    (e) => e instanceof CacheConfigError && e.option === "cachedControls",
  );
});

test("a decorated method reaches its factory context", async () => {
  class Feed {
    calls = 0;
    @cached({ backend: null, name: "typed.feed" })
    async items(page: number): Promise<number[]> {
      this.calls++;
      if (page > 3) cacheContext().skip();
      return [page];
    }
  }
  const f = new Feed();
  await f.items(1);
  await f.items(1);
  await f.items(9);
  await f.items(9);
  assert.equal(f.calls, 3);
});
