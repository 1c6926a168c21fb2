// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Sharing cachekit-py 0.3.0's `serializer="orjson"` entries and keyword-argument keys through a
// real Redis, both ways, against the independent Python side in `_python_orjson.ts` (Debian's
// python3-msgpack, -xxhash and -redis; orjson's output played by `json.dumps`, see that module
// for where the two differ and why no test here looks there). Python writes under the key it
// computes and `cache(fn, { serializer: "orjson" })` answers from it without calling fn; the
// engine's entries are found by Python under its own key and decoded and verified there, integrity
// checking on and off. Each run uses its own namespace and deletes its keys.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_KEYS, PY_ORJSON_REDIS_READ, PY_ORJSON_REDIS_WRITE } from "../_python_orjson.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions } from "../_redis_server.ts";
import { recording } from "../_recording_backend.ts";
import { cache, pythonKwargs, RedisBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const options = sharedRedisTestOptions.ignore ? sharedRedisTestOptions : pythonTestOptions;
const testOptions = { ...options, sanitize: false };

/** Values whose orjson bytes `json.dumps` reproduces exactly (see `_python_orjson.ts`). */
const VALUE = {
  id: 42,
  name: "Ada Lovelace",
  tags: ["math", "poetry"],
  score: 1.5,
  ok: true,
  none: null,
  nested: { list: [1, 2, 3], text: "ünïcödé ✓ 😀", "\uff00": "fullwidth", "😀": "astral" },
  big: 9007199254740991,
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
    `orjson + Python: an entry cachekit-py wrote (integrity ${integrity}, kwargs) is a hit here`,
    async () => {
      const { ns, backend } = run("oj_pyw");
      try {
        const { key } = runPythonJson<{ key: string }>(
          PY_ORJSON_REDIS_WRITE,
          JSON.stringify({
            url: SHARED_REDIS_URL,
            ns,
            func: "app.users.get_user",
            args: [42],
            kwargs: { include_deleted: true },
            value: VALUE,
            integrity,
          }),
        );
        assert.match(
          key,
          new RegExp(
            `^t:default:ns:${ns}:func:app\\.users\\.get_user:args:[0-9a-f]{64}:${
              integrity ? 1 : 0
            }s$`,
          ),
        );
        let calls = 0;
        const getUser = cache(async (id: number, includeDeleted?: boolean) => {
          calls++;
          return { id, includeDeleted: includeDeleted ?? null };
        }, {
          name: "app.users.get_user",
          namespace: ns,
          ttl: 60,
          backend,
          serializer: "orjson",
          integrityChecking: integrity,
          pythonArgs: pythonKwargs(1, ["include_deleted"]),
          ...bare,
        });
        assert.deepEqual(await getUser(42, true), VALUE);
        assert.equal(calls, 0, "answered from Python's entry");
        // `get_user(42)` and `get_user(42, True)` are other keys in 0.3.0: misses here too.
        assert.deepEqual(await getUser(42), { id: 42, includeDeleted: null });
        assert.equal(calls, 1);
      } finally {
        await backend.deleteByPrefix(`t:default:ns:${ns}:`);
        await backend.close();
      }
    },
    testOptions,
  );

  for (const wire of ["document", "envelope"] as const) {
    test(
      `orjson + Python: cachekit-py reads the engine's entry (integrity ${integrity}, wire ${wire})`,
      async () => {
        const { ns, backend } = run("oj_pyr");
        try {
          const f = cache(async (id: number, kind?: string) => ({ ...VALUE, id, kind }), {
            name: "app.users.get_user_ts",
            wire,
            namespace: ns,
            ttl: 60,
            backend,
            serializer: "orjson",
            integrityChecking: integrity,
            pythonArgs: pythonKwargs(1, ["kind"]),
            ...bare,
          });
          await f(7, "admin");
          const out = runPythonJson<{
            key: string;
            found: boolean;
            metadata?: Record<string, unknown>;
            serializer?: string;
            json?: string;
            value?: unknown;
            error?: string;
            frame?: Record<string, unknown>;
          }>(
            PY_ORJSON_REDIS_READ,
            JSON.stringify({
              url: SHARED_REDIS_URL,
              ns,
              func: "app.users.get_user_ts",
              args: [7],
              kwargs: { kind: "admin" },
              integrity,
            }),
          );
          assert.equal(out.found, true, `no value under Python's key ${out.key}`);
          assert.equal(out.error, undefined, out.error);
          assert.deepEqual(out.value, { ...VALUE, id: 7, kind: "admin" });
          // Byte for byte what the Python side writes (orjson's bytes: compact, sorted, raw UTF-8).
          assert.equal(
            out.json,
            '{"big":9007199254740991,"id":7,"kind":"admin","name":"Ada Lovelace",' +
              '"nested":{"list":[1,2,3],"text":"ünïcödé ✓ 😀","＀":"fullwidth","😀":"astral"},' +
              '"none":null,"ok":true,"score":1.5,"tags":["math","poetry"]}',
          );
          if (wire === "envelope") {
            // The framed form (this library's own; cachekit-py reads documents only): flag 0x10
            // (digest layout) with integrity on, the names, and the digest checked in Python.
            assert.deepEqual(out.frame, {
              flags: integrity ? 0x10 : 0,
              serializer: "orjson",
              format: "orjson",
            });
            return;
          }
          assert.equal(out.serializer, "orjson");
          const { ck_check, ...python } = out.metadata!;
          assert.deepEqual(python, {
            format: "orjson",
            encoding: "utf-8",
            compressed: false,
            original_type: "orjson",
          });
          if (integrity) assert.match(ck_check as string, /^[0-9a-f]{16}$/);
          else assert.equal(ck_check, undefined);
        } finally {
          await backend.deleteByPrefix(`t:default:ns:${ns}:`);
          await backend.close();
        }
      },
      testOptions,
    );
  }
}

test(
  "orjson + Python: an entry of the std serializer, or with a flipped byte, is a miss",
  async () => {
    const { ns, backend } = run("oj_strict");
    try {
      const req = {
        url: SHARED_REDIS_URL,
        ns,
        func: "app.strict",
        args: [1],
        value: { a: 1 },
        integrity: true,
      };
      const { key } = runPythonJson<{ key: string }>(PY_ORJSON_REDIS_WRITE, JSON.stringify(req));
      // Flip one byte of the JSON inside the base64 `data`: the digest no longer matches.
      const raw = new TextDecoder().decode((await backend.get(key))!);
      const doc = JSON.parse(raw);
      const data = Uint8Array.from(atob(doc.data), (c) => c.charCodeAt(0));
      data[data.length - 2] ^= 0x01; // `{"a":1}` → `{"a":0}`
      doc.data = btoa(String.fromCharCode(...data));
      await backend.set(key, new TextEncoder().encode(JSON.stringify(doc)), 60);
      let calls = 0;
      const fn = async (_n: number): Promise<unknown> => {
        calls++;
        return { a: 2 };
      };
      const f = cache(fn, {
        name: "app.strict",
        namespace: ns,
        ttl: 60,
        backend,
        serializer: "orjson",
        ...bare,
      });
      assert.deepEqual(await f(1), { a: 2 }, "a checksum mismatch is a miss, never {a: 0}");
      assert.equal(calls, 1);
      // A std function under the same key (0.3.0 keys end in `s` whatever the serializer) does not
      // read the orjson entry as its own.
      const g = cache(fn, {
        name: "app.strict",
        namespace: ns,
        ttl: 60,
        backend,
        wire: "document",
        l1: { enabled: false },
        ...bare,
      });
      assert.deepEqual(await g(1), { a: 2 });
      assert.equal(calls, 2);
    } finally {
      await backend.deleteByPrefix(`t:default:ns:${ns}:`);
      await backend.close();
    }
  },
  testOptions,
);

test(
  "pythonArgs: keys match cachekit-py 0.3.0's for positional and keyword spellings",
  async () => {
    const calls = [
      { js: [42], py: { args: [42], kwargs: {} } },
      { js: [42, true], py: { args: [42], kwargs: { include_deleted: true } } },
      {
        js: [42, false, "eu"],
        py: { args: [42], kwargs: { include_deleted: false, region: "eu" } },
      },
      { js: [42, undefined, "eu"], py: { args: [42], kwargs: { region: "eu" } } },
      {
        js: ["ü", null, { b: [1.5], a: "x" }],
        py: { args: ["ü"], kwargs: { include_deleted: null, region: { a: "x", b: [1.5] } } },
      },
    ];
    for (const integrity of [true, false]) {
      const { keys } = runPythonJson<{ keys: string[] }>(
        PY_KEYS,
        JSON.stringify({
          ns: "kw",
          func: "app.users.get_user",
          integrity,
          calls: calls.map((c) => c.py),
        }),
      );
      const rec = recording();
      const f = cache(async (..._a: unknown[]) => 1, {
        name: "app.users.get_user",
        namespace: "kw",
        backend: rec.backend,
        integrityChecking: integrity,
        pythonArgs: pythonKwargs(1, ["include_deleted", "region"]),
        ...bare,
      });
      for (const c of calls) await f(...c.js);
      assert.deepEqual(rec.keys, keys);
      // The positional spelling `get_user(42, True)` is another key in 0.3.0, and so it is here
      // without `pythonArgs`.
      const { keys: [positional] } = runPythonJson<{ keys: string[] }>(
        PY_KEYS,
        JSON.stringify({
          ns: "kw",
          func: "app.users.get_user",
          integrity,
          calls: [{ args: [42, true] }],
        }),
      );
      const rec2 = recording();
      const g = cache(async (..._a: unknown[]) => 1, {
        name: "app.users.get_user",
        namespace: "kw",
        backend: rec2.backend,
        integrityChecking: integrity,
        ...bare,
      });
      await g(42, true);
      assert.deepEqual(rec2.keys, [positional]);
      assert.notEqual(positional, keys[1]);
      // An explicit function: the same keys.
      const rec3 = recording();
      const h = cache(async (..._a: unknown[]) => 1, {
        name: "app.users.get_user",
        namespace: "kw",
        backend: rec3.backend,
        integrityChecking: integrity,
        pythonArgs: (id, del) => ({ args: [id], kwargs: { include_deleted: del } }),
        ...bare,
      });
      await h(42, true);
      assert.deepEqual(rec3.keys, [keys[1]]);
    }
  },
  pythonTestOptions,
);
