// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Group invalidation (`invalidateTags`, `clearNamespace`, `clearFunction`, `cacheClear`) on the
// memory and file backends: every tenant's entries go, including tenants this process never saw
// (entries another process wrote); a process that wraps nothing reaches a backend given to it and
// its invalidation bus; a value is never stored without its tag index.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import {
  type Backend,
  type BackendCapabilities,
  cache,
  clearFunction,
  clearNamespace,
  FileBackend,
  invalidateTags,
  type InvalidationEvent,
  MemoryBackend,
  withTenant,
} from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const uid = () => crypto.randomUUID().slice(0, 8);

/** A backend passing every call to `inner`, with its own type and capabilities. */
function passThrough(
  inner: Backend,
  type: string,
  capabilities: BackendCapabilities,
  set: Backend["set"] = (k, v, t, o) => inner.set(k, v, t, o),
): Backend {
  return {
    type,
    capabilities,
    get: (k, o) => inner.get(k, o),
    set,
    delete: (k, o) => inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
  };
}

/** `inner` plus an in-memory invalidation bus that records what is published. */
function withBus(inner: Backend): { backend: Backend; published: InvalidationEvent[] } {
  const published: InvalidationEvent[] = [];
  const backend = passThrough(inner, inner.type, {
    ...inner.capabilities,
    invalidation: {
      instanceId: "test-bus",
      publish: (e) => {
        published.push({ ...e, sender: "test-bus" });
        return Promise.resolve();
      },
      subscribe: () => Promise.resolve(() => Promise.resolve()),
    },
  });
  return { backend, published };
}

for (const kind of ["memory", "file"] as const) {
  test(`${kind}: clearNamespace and cacheClear reach tenants this process never saw`, async () => {
    const dir = kind === "file" ? await mkdtemp(join(tmpdir(), "ck-group-")) : "";
    const backend: Backend = kind === "file"
      ? new FileBackend({ directory: dir })
      : new MemoryBackend();
    try {
      const ns = `grp${uid()}`;
      let n = 0;
      const f = cache(async (id: number) => ({ id, n: ++n }), {
        name: "group.tenants",
        namespace: ns,
        ttl: 60,
        backend,
        ...bare,
      });
      await withTenant("x", () => f(1));
      await withTenant("y", () => f(1));
      // Another process's entries, under tenants this process has never seen.
      const foreign = [`t:unseen-${uid()}:ns:${ns}:func:group.tenants:args:abc`];
      foreign.push(`t:@${uid()}:ns:${ns}:func:group.other:args:abc`);
      for (const k of foreign) await backend.set(k, new Uint8Array([1]), 60);
      await f.cacheClear();
      assert.equal(await backend.exists(foreign[0]), false, "the function's unseen tenant");
      assert.equal(await backend.exists(foreign[1]), true, "another function kept");
      assert.equal((await withTenant("x", () => f(1))).n, 3, "x recomputed");
      await clearNamespace(ns);
      assert.equal(await backend.exists(foreign[1]), false, "the namespace's unseen tenant");
      assert.equal((await withTenant("x", () => f(1))).n, 4, "x recomputed");
      assert.equal((await withTenant("y", () => f(1))).n, 5, "y recomputed");
    } finally {
      await backend.close?.();
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  });
}

test("with nothing wrapped, group invalidations reach the backend given and its bus", async () => {
  const inner = new MemoryBackend();
  const { backend, published } = withBus(inner);
  const ns = `grp${uid()}`;
  const tag = `user:${uid()}`;
  const key = (tenant: string, fn: string, arg: string) =>
    `t:${tenant}:ns:${ns}:func:${fn}:args:${arg}`;
  // What another process stored (nothing here wraps these functions).
  const tagged = [key("x", "users.get", "1"), key("y", "users.get", "1")];
  for (const k of tagged) {
    await inner.capabilities.tags.setWithTags(k, new Uint8Array([1]), 60, [tag]);
  }
  const other = [
    key("x", "users.get", "2"),
    key("y", "users.list", "1"),
    key("z", "users.list", "2"),
  ];
  for (const k of other) await inner.set(k, new Uint8Array([2]), 60);

  await invalidateTags(tag, { backend });
  for (const k of tagged) assert.equal(await inner.exists(k), false, k);
  assert.equal(inner.size, 3);
  assert.deepEqual(published.at(-2), { level: "tags", targets: [tag], sender: "test-bus" });
  // The entries it deleted, by key: an L1 copy read from L2 elsewhere does not know their tags.
  const deleted = published.at(-1);
  assert.equal(deleted?.level, "key");
  assert.equal(deleted?.reason, "delete");
  assert.deepEqual([...deleted!.targets].sort(), [...tagged].sort());

  await clearFunction("users.list", { namespace: ns, backend });
  assert.equal(inner.size, 1, "users.list gone for tenants y and z");
  assert.equal(await inner.exists(other[0]), true);
  assert.deepEqual(published.at(-1)?.targets, [`t:*:ns:${ns}:func:users.list:args:`]);

  await clearNamespace(ns, { backend });
  assert.equal(inner.size, 0);
  assert.deepEqual(published.at(-1), {
    level: "prefix",
    // Functions of the namespace, and key-based caches (`createCache`) of it.
    targets: [`t:*:ns:${ns}:func:`, `t:*:obj:ns:${ns}:key:`],
    sender: "test-bus",
  });

  await assert.rejects(clearFunction("", { backend }), /name/);
  await assert.rejects(
    invalidateTags([tag] as unknown as string, { backend }),
    /separate string arguments/,
  );
  await assert.rejects(clearNamespace(ns, { backend: 1 as unknown as Backend }), /backend/);
});

test("a value is never stored without its tags (tag index written first, or together)", async () => {
  // A backend without setWithTags whose tag index fails: the value must not be stored untagged.
  const inner = new MemoryBackend();
  let addTagsCalls = 0;
  const failingTags = passThrough(inner, "failing-tags", {
    tags: {
      addTags: () => {
        addTagsCalls++;
        return Promise.reject(new Error("tag index unavailable"));
      },
      invalidateTags: (t) => inner.capabilities.tags.invalidateTags(t),
    },
  });
  let n = 0;
  const f = cache(async (id: number) => ({ id, n: ++n }), {
    name: "group.tagfail",
    ttl: 60,
    tags: (id) => [`tagfail:${id}`],
    backend: failingTags,
    ...bare,
  });
  assert.equal((await f(1)).n, 1, "the call still answers");
  assert.equal(addTagsCalls, 1);
  assert.equal(inner.size, 0, "no value stored without its tags");

  // A backend with setWithTags gets value and tags in one call.
  const mem = new MemoryBackend();
  const calls: string[] = [];
  const counting = passThrough(mem, "counting", {
    tags: {
      addTags: (k, t, ttl) => {
        calls.push("addTags");
        return mem.capabilities.tags.addTags(k, t, ttl);
      },
      invalidateTags: (t) => mem.capabilities.tags.invalidateTags(t),
      setWithTags: (k, v, ttl, t, o) => {
        calls.push("setWithTags");
        return mem.capabilities.tags.setWithTags(k, v, ttl, t, o);
      },
    },
  }, (k, v, t, o) => {
    calls.push("set");
    return mem.set(k, v, t, o);
  });
  const g = cache(async (id: number) => ({ id }), {
    name: "group.settags",
    ttl: 60,
    tags: (id) => (id === 0 ? [] : [`settags:${id}`]),
    backend: counting,
    ...bare,
  });
  await g(1);
  await g(0);
  assert.deepEqual(calls, ["setWithTags", "set"]);
  await invalidateTags("settags:1");
  assert.equal(mem.size, 1, "the tagged value found through its tags");
});
