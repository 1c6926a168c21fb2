// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// The `pythonArgs` option and `pythonKwargs`: what they refuse at wrap time and per call, and that
// a call keeps its L1 key (the mapping only changes the protocol key).
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { cache, CacheConfigError, CacheKeyError, pythonKwargs } from "../../mod.ts";
import { cacheKey } from "../../protocol/keys.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

test("pythonArgs: refused with key, with interop, and when not a function", () => {
  const fn = async (n: number) => n;
  assert.throws(
    () => cache(fn, { name: "pa.a", pythonArgs: pythonKwargs(0, ["n"]), key: (n) => String(n) }),
    (e) => e instanceof CacheConfigError && /custom key function/.test(e.message),
  );
  assert.throws(
    () =>
      cache(fn, {
        name: "pa.b",
        pythonArgs: pythonKwargs(0, ["n"]),
        interop: { namespace: "x", operation: "y" },
      }),
    (e) => e instanceof CacheConfigError && /interop/.test(e.message),
  );
  assert.throws(
    // deno-lint-ignore no-explicit-any -- a wrong type, as JavaScript callers can pass
    () => cache(fn, { name: "pa.c", pythonArgs: ["n"] as any }),
    (e) => e instanceof CacheConfigError && /pythonArgs/.test(e.message),
  );
  assert.throws(() => pythonKwargs(-1, []), RangeError);
  assert.throws(() => pythonKwargs(0, ["a", "a"]), RangeError);
});

test("pythonArgs: the protocol key hashes (args, kwargs); a bad mapping rejects the call", async () => {
  const rec = recording();
  let calls = 0;
  const f = cache(async (id: number, del?: boolean) => {
    calls++;
    return [id, del];
  }, {
    name: "app.pa.get",
    namespace: "pa",
    backend: rec.backend,
    pythonArgs: pythonKwargs(1, ["include_deleted"]),
    ...bare,
  });
  await f(42, true);
  await f(42, true); // an L1 hit
  assert.equal(calls, 1);
  const expected = cacheKey({
    namespace: "pa",
    func: "app.pa.get",
    args: [42],
    kwargs: { include_deleted: true },
  });
  assert.deepEqual(rec.keys, [`t:default:${expected}`]);
  // `_bypass_cache` is left out of the key, as 0.3.0's get_cache_key does.
  const b = cache(async (id: number, bypass?: boolean) => [id, bypass], {
    name: "app.pa.bypass",
    namespace: "pa",
    backend: rec.backend,
    l1: false,
    pythonArgs: (id, bypass) => ({
      args: [id],
      kwargs: { include_deleted: true, _bypass_cache: bypass },
    }),
    ...bare,
  });
  await b(42, true);
  assert.equal(
    rec.keys.at(-1),
    `t:default:${
      cacheKey({
        namespace: "pa",
        func: "app.pa.bypass",
        args: [42],
        kwargs: { include_deleted: true },
      })
    }`,
  );
  // More arguments than declared.
  const g = cache(async (..._a: unknown[]) => 1, {
    name: "app.pa.g",
    backend: rec.backend,
    pythonArgs: pythonKwargs(1, ["x"]),
    ...bare,
  });
  await assert.rejects(
    g(1, 2, 3),
    (e) => e instanceof CacheKeyError && /3 arguments/.test(e.message),
  );
  // A mapping returning something else than { args, kwargs }.
  const h = cache(async (_n: number) => 1, {
    name: "app.pa.h",
    backend: rec.backend,
    // deno-lint-ignore no-explicit-any -- a wrong shape, as JavaScript callers can return
    pythonArgs: ((n: number) => ({ args: n })) as any,
    ...bare,
  });
  await assert.rejects(h(1), CacheKeyError);
});
