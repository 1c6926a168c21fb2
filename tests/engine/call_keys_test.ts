/**
 * The keys `keyContext` builds (`engine/_keys.ts`): a standard key whose parts need no finishing
 * is assembled from the function's prefix, the argument hash and its suffix, and its backend key
 * from the default tenant's prefix; every other key goes through `cacheKey` as before. Checked
 * against `cacheKey` and `backendKeyOf` (the reference) over namespaces, names, serializers, the
 * integrity flag, `pythonArgs`, tenants, encryption and interop, new keys and remembered ones.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { Engine } from "../../engine/_engine.ts";
import { backendKeyOf, fastKey, keyContext } from "../../engine/_keys.ts";
import { resolveConfig } from "../../config/resolve.ts";
import { MemoryBackend } from "../../backends/memory.ts";
import { cacheKey, interopKey } from "../../protocol/keys.ts";
import { quoteTenant } from "../../tenant.ts";
import { CacheKeyError } from "../../errors.ts";
import type { CacheOptions } from "../../config/options.ts";

const MASTER = Array.from(
  crypto.getRandomValues(new Uint8Array(32)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");

function engine(identity: string, options: CacheOptions<unknown[], unknown>): Engine {
  const config = resolveConfig({ backend: new MemoryBackend(), ttl: 60, ...options });
  return new Engine({ fn: (...a: unknown[]) => a.length, config, identity });
}

const ARGS: unknown[][] = [
  [],
  [42],
  [0],
  ["alice"],
  [1, "two", { b: [1, 2], a: null }],
  ["x".repeat(150)], // a message over one Blake2b block
  [new Date(Date.UTC(2025, 10, 14, 10, 30))],
  [class {}], // no cheap key: the protocol key is the L1 key, nothing remembered
];

const CASES: [string, string, CacheOptions<unknown[], unknown>][] = [
  ["plain", "app.get_user", { namespace: "users" }],
  ["no namespace", "app.get_user", {}],
  ["non-ASCII", "app.grüße", { namespace: "ünï" }],
  ["L1 off", "app.get_user", { namespace: "users", l1: false }],
  ["integrity off", "app.get_user", { namespace: "users", integrityChecking: false }],
  // A name the options refuse (`validateKeyPart`), given to the engine as is: cacheKey replaces the space.
  ["space in the name", "app.get user", { namespace: "users" }],
  ["orjson", "app.get_user", { namespace: "users", serializer: "orjson" }],
  ["auto", "app.get_user", { namespace: "users", serializer: "auto" }],
  ["long name (shortened key)", "m." + "f".repeat(200), { namespace: "users" }],
  // "ns:users:func:" + name + ":args:" + 64 hex digits + ":1s": 250 characters, then 251.
  ["name at the limit", "m." + "f".repeat(250 - 20 - 64 - 3 - 2), { namespace: "users" }],
  ["name one past the limit", "m." + "f".repeat(250 - 20 - 64 - 3 - 1), { namespace: "users" }],
  [
    "pythonArgs",
    "app.get_user",
    {
      namespace: "users",
      pythonArgs: (...a: unknown[]) => ({ args: a.slice(0, 1), kwargs: { rest: a.length } }),
    },
  ],
];

for (const [label, identity, options] of CASES) {
  test(`keyContext: standard keys as cacheKey builds them (${label})`, () => {
    const eng = engine(identity, options);
    const c = eng.config;
    for (const args of ARGS) {
      // The arguments as cacheKey sees them (a class is refused there too: skip it for pythonArgs).
      let posArgs = args;
      let kwargs: Record<string, unknown> = {};
      if (c.pythonArgs !== null) {
        ({ args: posArgs, kwargs } = (c.pythonArgs as (...a: unknown[]) => {
          args: unknown[];
          kwargs: Record<string, unknown>;
        })(...args));
      }
      if (typeof args[0] === "function") {
        assert.throws(() => keyContext(eng, undefined, args, fastKey(eng, undefined, args), null));
        continue;
      }
      const want = cacheKey({
        namespace: c.namespace,
        func: identity,
        args: posArgs,
        kwargs,
        integrityChecking: c.integrityChecking,
        serializer: eng.serializerName,
      });
      for (let round = 0; round < 2; round++) { // new, then remembered
        for (const tenant of [null, "acme", "t:x y"]) {
          const ctx = keyContext(eng, undefined, args, fastKey(eng, undefined, args), tenant);
          assert.equal(ctx.protoKey, want, `${label} ${JSON.stringify(args)} round ${round}`);
          assert.equal(ctx.backendKey, `t:${quoteTenant(tenant ?? "default")}:${want}`);
          assert.equal(ctx.backendKey, backendKeyOf(eng, want, tenant));
        }
      }
    }
  });
}

test("keyContext: a key refused by cacheKey is refused the same way (lone surrogate in the name)", () => {
  const eng = engine("app.bad\uD800", { namespace: "users" });
  for (let round = 0; round < 2; round++) {
    assert.throws(
      () => keyContext(eng, undefined, [1], fastKey(eng, undefined, [1]), null),
      CacheKeyError,
    );
  }
});

test("keyContext: encrypted functions keep their tenant segments", () => {
  const eng = engine("app.secret", {
    namespace: "users",
    encryption: { masterKey: MASTER, singleTenant: false },
  });
  for (const tenant of ["acme", "default", "globex"]) {
    for (let round = 0; round < 2; round++) {
      const ctx = keyContext(eng, undefined, [7], fastKey(eng, undefined, [7]), tenant);
      const want = cacheKey({
        namespace: "users",
        func: "app.secret",
        args: [7],
        integrityChecking: eng.config.integrityChecking,
        serializer: eng.serializerName,
      });
      assert.equal(ctx.protoKey, want);
      assert.equal(ctx.backendKey, backendKeyOf(eng, want, tenant));
      assert.ok(!ctx.backendKey.startsWith(`t:${quoteTenant(tenant)}:`), "an opaque segment");
    }
  }
});

test("keyContext: interop keys are stored bare", () => {
  const eng = engine("app.interop", { interop: { namespace: "users", operation: "get" } });
  for (const tenant of [null, "acme"]) {
    for (let round = 0; round < 2; round++) {
      const ctx = keyContext(eng, undefined, [1, "a"], fastKey(eng, undefined, [1, "a"]), tenant);
      assert.equal(ctx.protoKey, interopKey("users", "get", [1, "a"]));
      assert.equal(ctx.backendKey, ctx.protoKey);
    }
  }
});

test("keyContext: keys are remembered per cheap key, new keys added, repeated ones reused", () => {
  const eng = engine("app.memo", { namespace: "users", l1: false });
  const ctx = (i: number) => keyContext(eng, undefined, [i], fastKey(eng, undefined, [i]), null);
  const first = ctx(1);
  const memo = eng.callKeys!.memo;
  assert.equal(memo.size, 1);
  const pair = memo.get(1);
  assert.equal(ctx(1).protoKey, first.protoKey);
  assert.equal(memo.size, 1, "a repeated key adds nothing");
  assert.equal(memo.get(1), pair, "and reuses the remembered keys (no new hash)");
  ctx(2);
  assert.equal(memo.size, 2, "a new key is remembered");
  assert.notEqual(ctx(2).protoKey, first.protoKey);
});

test("keyContext: with an L1 and no backend nothing is remembered", () => {
  const config = resolveConfig({ namespace: "users", backend: null, ttl: 60 });
  const eng = new Engine({ fn: (i: number) => i, config, identity: "app.l1only" });
  const ctx = keyContext(eng, undefined, [1], fastKey(eng, undefined, [1]), null);
  assert.equal(
    ctx.protoKey,
    cacheKey({ namespace: "users", func: "app.l1only", args: [1], serializer: eng.serializerName }),
  );
  assert.equal(eng.callKeys!.memo.size, 0);
});
