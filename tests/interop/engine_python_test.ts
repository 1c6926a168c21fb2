// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// Sharing a cache with cachekit-py 0.3.0: entries built by an independent implementation (Debian's
// python3-msgpack + lz4 + xxhash + hashlib.blake2b, following cachekit-py's protocol description;
// the Python side is in _python_cachekit.ts) are read by the engine, and the engine's entries are
// decoded by Python.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_READ, PY_WRITE } from "../_python_cachekit.ts";
import { cache, FileBackend, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

const VALUE = {
  id: 42,
  name: "Ada Lovelace",
  tags: ["math", "poetry"],
  score: 1.5,
  ok: true,
  none: null,
};

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
function unb64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

for (const integrity of [true, false]) {
  test(`an entry written by Python (integrity ${integrity}) in a FileBackend is read`, async () => {
    const dir = mkdtempSync(join(tmpdir(), "ck-py-"));
    const backend = new FileBackend({ directory: dir });
    try {
      const { key, stored } = runPythonJson<{ key: string; stored: string }>(
        PY_WRITE,
        JSON.stringify({ ns: "users", func: "app.get_user", args: [42], value: VALUE, integrity }),
      );
      await backend.set(key, unb64(stored), 60);
      let calls = 0;
      const getUser = cache(async (id: number) => {
        calls++;
        return { id, name: "computed here" };
      }, {
        name: "app.get_user",
        namespace: "users",
        ttl: 60,
        backend,
        integrityChecking: integrity,
        envelopeProtocol: "1.0",
        ...bare,
      });
      assert.deepEqual(await getUser(42), VALUE);
      assert.equal(calls, 0, "answered from the Python entry");
      assert.equal(getUser.cacheInfo().l2Hits, 1);
    } finally {
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, pythonTestOptions);

  test(`our entry (integrity ${integrity}, envelope 1.0) is decoded by Python`, async () => {
    const { backend, keys } = recording(new MemoryBackend());
    const f = cache(async (id: number) => ({ ...VALUE, id }), {
      name: "app.get_user_ts",
      wire: "document", // this test reads the cachekit-py 0.3.0 JSON document
      namespace: "users",
      ttl: 60,
      backend,
      integrityChecking: integrity,
      envelopeProtocol: "1.0",
      ...bare,
    });
    await f(7);
    assert.equal(keys.length, 1);
    const stored = (await backend.get(keys[0]))!;
    const out = runPythonJson<
      { key_ok: boolean; metadata: Record<string, unknown>; value: unknown }
    >(
      PY_READ,
      JSON.stringify({
        key: keys[0],
        stored: b64(stored),
        ns: "users",
        func: "app.get_user_ts",
        args: [7],
      }),
    );
    assert.equal(out.key_ok, true, `key ${keys[0]} is the one Python computes`);
    assert.deepEqual(out.value, { ...VALUE, id: 7 });
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
  }, pythonTestOptions);
}

test("interop mode: Python's plain-msgpack entry is read, and ours is read by Python", async () => {
  const { backend, keys } = recording(new MemoryBackend());
  const { key, stored } = runPythonJson<{ key: string; stored: string }>(
    PY_WRITE,
    JSON.stringify({ interop: true, ns: "shop", func: "price", args: ["sku-1", 3], value: VALUE }),
  );
  await backend.set(key, unb64(stored), 60);
  let calls = 0;
  const price = cache(async (sku: string, qty: number) => {
    calls++;
    return { sku, qty };
  }, { interop: { namespace: "shop", operation: "price" }, ttl: 60, backend, ...bare });
  assert.deepEqual(await price("sku-1", 3), VALUE);
  assert.equal(calls, 0);
  await price("sku-2", 1);
  const ours = keys[keys.length - 1];
  const out = runPythonJson<{ key_ok: boolean; value: unknown }>(
    PY_READ,
    JSON.stringify({
      interop: true,
      key: ours,
      stored: b64((await backend.get(ours))!),
      ns: "shop",
      func: "price",
      args: ["sku-2", 1],
    }),
  );
  assert.equal(out.key_ok, true);
  assert.deepEqual(out.value, { sku: "sku-2", qty: 1 });
}, pythonTestOptions);
