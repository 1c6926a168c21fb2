// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Sharing a Redis with cachekit-py 0.3.0 through the engine: Python (Debian's python3-redis +
// msgpack + lz4 + xxhash, the independent side in _python_cachekit.ts) writes an entry straight
// into the shared Redis under cachekit-py's exact key, and `cache(fn, { backend: RedisBackend })`
// answers from it without calling fn; the engine's entries are found by Python under the key
// Python computes, and decoded and verified there. Also the interop mode, both ways. The backend
// has no key prefix (the keys are exactly Python's); each run uses its own namespace and
// invalidation channel and deletes its keys. In CI a missing Redis or Python is a failure.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_REDIS_READ, PY_REDIS_WRITE } from "../_python_cachekit.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import { cache, RedisBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const options = sharedRedisTestOptions.ignore ? sharedRedisTestOptions : pythonTestOptions;
const testOptions = { ...options, sanitize: false };

const VALUE = {
  id: 42,
  name: "Ada Lovelace",
  tags: ["math", "poetry"],
  score: 1.5,
  ok: true,
  none: null,
  nested: { list: [1, 2, 3], text: "ünïcödé ✓" },
};

function run(label: string) {
  const id = `${label}_${crypto.randomUUID().slice(0, 8)}`;
  const backend = new RedisBackend({
    url: SHARED_REDIS_URL,
    invalidationChannel: `test:${id}:inv`,
  });
  return { ns: `cktest_${id}`, backend };
}

for (const integrity of [true, false]) {
  test(
    `redis + Python: an entry cachekit-py wrote (integrity ${integrity}) is answered without calling fn`,
    async () => {
      const { ns, backend } = run("pyw");
      let key = "";
      try {
        ({ key } = runPythonJson<{ key: string }>(
          PY_REDIS_WRITE,
          JSON.stringify({
            url: SHARED_REDIS_URL,
            ns,
            func: "app.users.get_user",
            args: [42],
            value: VALUE,
            integrity,
            ttl: 60,
          }),
        ));
        assert.ok(key.startsWith(`t:default:ns:${ns}:func:app.users.get_user:args:`), key);
        let calls = 0;
        const getUser = cache(async (id: number) => {
          calls++;
          return { id, name: "computed here" };
        }, {
          name: "app.users.get_user",
          namespace: ns,
          ttl: 60,
          backend,
          integrityChecking: integrity,
          envelopeProtocol: "1.0",
          ...bare,
        });
        assert.deepEqual(await getUser(42), VALUE);
        assert.equal(calls, 0, "answered from Python's entry in Redis");
        assert.equal(getUser.cacheInfo().l2Hits, 1);
        assert.deepEqual((await getUser(43)).name, "computed here", "other arguments miss");
        assert.equal(calls, 1);
      } finally {
        await backend.deleteByPrefix(`t:default:ns:${ns}:`);
        await backend.close();
      }
    },
    testOptions,
  );

  test(
    `redis + Python: cachekit-py finds and decodes the engine's entry (integrity ${integrity})`,
    async () => {
      const { ns, backend } = run("pyr");
      try {
        const f = cache(async (id: number, kind: string) => ({ ...VALUE, id, kind }), {
          name: "app.users.get_user_ts",
          wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
          namespace: ns,
          ttl: 60,
          backend,
          integrityChecking: integrity,
          envelopeProtocol: "1.0",
          ...bare,
        });
        await f(7, "admin");
        const out = runPythonJson<{
          key: string;
          found: boolean;
          ttl: number;
          metadata: Record<string, unknown>;
          value: unknown;
        }>(
          PY_REDIS_READ,
          JSON.stringify({
            url: SHARED_REDIS_URL,
            ns,
            func: "app.users.get_user_ts",
            args: [7, "admin"],
            integrity,
          }),
        );
        assert.equal(out.found, true, `no value under Python's key ${out.key}`);
        assert.deepEqual(out.value, { ...VALUE, id: 7, kind: "admin" });
        // Python's fields exactly, plus (integrity on) our ck_check, which cachekit-py ignores.
        const { ck_check, ...python } = out.metadata;
        assert.deepEqual(python, {
          format: "msgpack",
          encoding: "utf-8",
          compressed: integrity,
          original_type: "msgpack",
        });
        if (integrity) assert.match(ck_check as string, /^[0-9a-f]{16}$/);
        else assert.equal(ck_check, undefined);
        assert.ok(out.ttl > 50 && out.ttl <= 60, `TTL set in Redis: ${out.ttl}`);
      } finally {
        await backend.deleteByPrefix(`t:default:ns:${ns}:`);
        await backend.close();
      }
    },
    testOptions,
  );
}

test("redis + Python: interop mode (plain msgpack under {ns}:{op}:{hash}) both ways", async () => {
  const { ns, backend } = run("pyi");
  try {
    const { key } = runPythonJson<{ key: string }>(
      PY_REDIS_WRITE,
      JSON.stringify({
        url: SHARED_REDIS_URL,
        interop: true,
        ns,
        func: "price",
        args: ["sku-1", 3],
        value: VALUE,
        ttl: 60,
      }),
    );
    assert.ok(key.startsWith(`${ns}:price:`), key);
    let calls = 0;
    const price = cache(async (sku: string, qty: number) => {
      calls++;
      return { sku, qty };
    }, { interop: { namespace: ns, operation: "price" }, ttl: 60, backend, ...bare });
    assert.deepEqual(await price("sku-1", 3), VALUE);
    assert.equal(calls, 0, "answered from Python's plain-msgpack entry");
    await price("sku-2", 1);
    assert.equal(calls, 1);
    const out = runPythonJson<{ found: boolean; value: unknown; ttl: number }>(
      PY_REDIS_READ,
      JSON.stringify({
        url: SHARED_REDIS_URL,
        interop: true,
        ns,
        func: "price",
        args: ["sku-2", 1],
      }),
    );
    assert.equal(out.found, true);
    assert.deepEqual(out.value, { sku: "sku-2", qty: 1 });
    assert.ok(out.ttl > 50 && out.ttl <= 60, `TTL ${out.ttl}`);
  } finally {
    await backend.deleteByPrefix(`${ns}:`);
    await backend.close();
  }
}, testOptions);
