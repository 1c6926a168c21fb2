// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
/**
 * Keys are injective in (tenant, namespace, name, arguments): no two different functions share a
 * backend key (issue 11.2). Proven exhaustively over namespaces and names built from the key's
 * own separators, through the real key builders (`cacheKey`, `finalizeKey` with its character
 * replacement and 250-character hashing, the tenant segment); the same enumeration without the
 * name rules finds collisions, so the rules are what makes it hold. Then the rules at wrap time.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, CacheConfigError, clearNamespace, MemoryBackend } from "../../mod.ts";
import { quoteTenant } from "../../tenant.ts";
import { cacheKey, finalizeKey } from "../../protocol/keys.ts";
import { validateKeyPart } from "../../engine/identity.ts";
import { customKey } from "../../engine/_argkey.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

const PIECES = [
  ":",
  "func",
  "args",
  ":func:",
  ":func",
  "func:",
  ":args:",
  ":args",
  "ns:",
  "t:",
  "a",
  ".",
  "_",
  " ",
  "\n",
  "L".repeat(130), // long keys go through the 250-character hashing rule
];
/** Every string of one or two pieces (272 strings). */
const PARTS = [...PIECES, ...PIECES.flatMap((a) => PIECES.map((b) => a + b))];
const TENANTS = ["default", "a:b", "a%3Ab"];
/** Custom `key` results (the engine appends them after `:args:`). */
const CUSTOM = [
  "x",
  "args:x",
  "x:args:y",
  ":args:",
  "1s",
  "",
  "a b",
  "a_b",
  "a%20b",
  "a\nb",
  "a%b",
];

function accepted(kind: "namespace" | "name", value: string): boolean {
  try {
    validateKeyPart(kind, value);
    return true;
  } catch (e) {
    assert.ok(e instanceof CacheConfigError);
    assert.equal(e.option, kind);
    return false;
  }
}

/** The engine's backend keys: the standard key, and `finalizeKey(prefix + custom)` with a key option. */
function collisions(filter: boolean): string[] {
  const owners = new Map<string, string>();
  const found: string[] = [];
  const add = (key: string, owner: string) => {
    const prev = owners.get(key);
    if (prev !== undefined && prev !== owner) found.push(`${prev}  ~  ${owner}`);
    else owners.set(key, owner);
  };
  const namespaces = [null, ...PARTS.filter((p) => !filter || accepted("namespace", p))];
  const names = PARTS.filter((p) => !filter || accepted("name", p));
  for (const ns of namespaces) {
    for (const name of names) {
      const std = cacheKey({ namespace: ns, func: name, args: [1] });
      const prefix = (ns ? `ns:${ns}:func:` : "func:") + name + ":args:";
      for (const tenant of TENANTS) {
        const t = `t:${quoteTenant(tenant)}:`;
        const who = JSON.stringify([tenant, ns, name]);
        add(t + std, who + " f(1)");
        if (tenant !== "default") continue; // the tenant segment is checked above
        for (const custom of CUSTOM) {
          const key = filter ? customKey(prefix, custom) : finalizeKey(prefix + custom);
          add(t + key, who + ` key ${JSON.stringify(custom)}`);
        }
      }
    }
  }
  return found;
}

test("keys: no two (tenant, namespace, name, arguments) share a backend key (issue 11.2)", () => {
  assert.deepEqual(collisions(true), []);
});

test("keys: without the name rules the same enumeration collides (the rules are needed)", () => {
  assert.ok(collisions(false).length > 100);
  // One pair per rule: each refused shape really shares keys with an accepted one.
  const std = (namespace: string | null, func: string) => cacheKey({ namespace, func, args: [1] });
  assert.equal(std("p:func:q", "r"), std("p", "q:func:r"), "namespace holding :func:");
  assert.equal(std("p:func", "r"), std("p", "func:r"), "namespace ending in :func");
  assert.equal(std(null, "get user"), std(null, "get_user"), "space in a name");
  assert.equal(std("a\nb", "f"), std("a_b", "f"), "line break in a namespace");
  const custom = (name: string, key: string) => finalizeKey(`func:${name}:args:${key}`);
  assert.equal(custom("f:args:x", "y"), custom("f", "x:args:y"), "name holding :args:");
  assert.equal(custom("f:args", "x"), custom("f", "args:x"), "name ending in :args");
});

test("key option: results differing in a replaced character or naming a shortened key stay apart", async () => {
  const prefix = "ns:kp:func:kp.search:args:";
  // finalizeKey alone merges these; the engine's customKey keeps them apart.
  assert.equal(finalizeKey(prefix + "a b"), finalizeKey(prefix + "a_b"));
  const keys = ["a b", "a_b", "a%20b", "a\nb", "a\rb", "a%0Ab", "a%b", "a%25b"].map((c) =>
    customKey(prefix, c)
  );
  assert.equal(new Set(keys).size, keys.length, keys.join(" | "));
  // Results without those characters keep their keys.
  assert.equal(customKey(prefix, "user_1:x"), finalizeKey(prefix + "user_1:x"));
  // A result spelling another call's shortened key (50 characters, ":", 32 hex digits).
  const long = "q".repeat(300);
  const victim = customKey(prefix, long);
  assert.equal(victim.length, 83);
  const forged = victim.slice(prefix.length);
  assert.equal(finalizeKey(prefix + forged), victim, "finalizeKey alone would answer the victim");
  assert.notEqual(customKey(prefix, forged), victim);
  assert.equal(customKey(prefix, forged).length, 83);

  // Through cache(): "a b" and "a_b" are two L2 entries.
  const backend = new MemoryBackend();
  const search = cache(async (q: string) => `results for ${q}`, {
    name: "kp.search",
    namespace: "kp",
    key: (q) => q,
    backend,
    l1: { enabled: false },
    ...bare,
  });
  assert.equal(await search("a b"), "results for a b");
  assert.equal(await search("a_b"), "results for a_b");
  assert.equal(await search("a b"), "results for a b");
  assert.equal(backend.size, 2);
});

test("keys: the rules refuse exactly the separator shapes, nothing Python derives", () => {
  for (const ns of ["p:func:q", "p:func", ":func", ":func:", "a b", "a\nb", "a\rb"]) {
    assert.equal(accepted("namespace", ns), false, ns);
  }
  for (const name of ["q:args:r", "q:args", ":args", "get user", "a\nb", "a\rb"]) {
    assert.equal(accepted("name", name), false, name);
  }
  // Colons elsewhere stay allowed, and so does every shape of a Python module.qualname.
  for (const ns of ["app:users", "func:x", "p:funcs:q", "a:args:b", "ns:x", "t:x", "users_v2"]) {
    assert.equal(accepted("namespace", ns), true, ns);
  }
  for (
    const name of [
      "q:func:r",
      "app.users.get_user",
      "__main__.process",
      "app.outer.<locals>.inner",
      "app.<lambda>",
      "m.C.f:argsx",
      "tests.key:1",
    ]
  ) {
    assert.equal(accepted("name", name), true, name);
  }
});

test("cache(): the issue 11.2 pair is refused at wrap time with what to change", async () => {
  const backend = new MemoryBackend();
  assert.throws(
    () =>
      cache(async (x: number) => `a${x}`, { name: "r", namespace: "p:func:q", backend, ...bare }),
    (e: unknown) => {
      assert.ok(e instanceof CacheConfigError, String(e));
      assert.equal(e.option, "namespace");
      assert.match(e.message, /:func:/);
      assert.match(e.message, /"\." or "-"/);
      return true;
    },
  );
  const b = cache(async (x: number) => `b${x}`, {
    name: "q:func:r",
    namespace: "p",
    backend,
    ...bare,
  });
  assert.equal(await b(7), "b7");
  assert.throws(
    () => cache(async () => 1, { name: "f:args:x", key: () => "y", backend, ...bare }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "name",
  );
  assert.throws(
    () => cache(async () => 1, { name: "f:args", backend, ...bare }),
    (e: unknown) => e instanceof CacheConfigError && e.option === "name",
  );
  // A derived name holding a space ("get user" and "get_user" would share keys): name it.
  const api = { "get user": async (id: number) => id };
  assert.throws(
    () => cache(api["get user"], { namespace: "kp.derived", backend, ...bare }),
    (e: unknown) =>
      e instanceof CacheConfigError && e.option === "name" && /explicit name/.test(e.message),
  );
  const named = cache(api["get user"], { name: "kp.get_user", backend, ...bare });
  assert.equal(await named(1), 1);
});

test("clearNamespace(a) leaves namespace a:b alone (the prefix ends at :func:)", async () => {
  const backend = new MemoryBackend();
  let n = 0;
  const inA = cache(async (x: number) => ++n + x * 0, {
    name: "kp.clear",
    namespace: "kpA",
    backend,
    ...bare,
  });
  const inAB = cache(async (x: number) => ++n + x * 0, {
    name: "kp.clear",
    namespace: "kpA:b",
    backend,
    ...bare,
  });
  await inA(1);
  await inAB(1);
  assert.equal(backend.size, 2);
  await clearNamespace("kpA");
  assert.equal(backend.size, 1, "only namespace kpA's entry is gone");
  const before = n;
  await inAB(1);
  assert.equal(n, before, "kpA:b still answers from its entries");
  await inA(1);
  assert.equal(n, before + 1);
});
