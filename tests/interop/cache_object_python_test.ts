// createCache in interop mode: a key-based entry is the interop entry of a one-argument call
// (`{namespace}:{name}:{hash of [key]}`, plain MessagePack), which an independent Python
// implementation (Debian's python3-msgpack + hashlib.blake2b, _python_cachekit.ts) finds under the
// same key string and decodes; and an entry Python wrote is read by key.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { PY_READ, PY_WRITE } from "../_python_cachekit.ts";
import { createCache, MemoryBackend } from "../../mod.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

function b64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}
function unb64(s: string): Uint8Array {
  return Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
}

test(
  "createCache interop: our entry is read by Python under the same key string, and back",
  async () => {
    const { backend, keys } = recording(new MemoryBackend());
    const products = createCache({
      interop: true,
      namespace: "shop",
      name: "product",
      ttl: 60,
      backend,
      ...bare,
    });
    await products.set("sku:42", { sku: "sku:42", price: 9.5, tags: ["a"] });
    const ours = keys[keys.length - 1];
    const out = runPythonJson<{ key_ok: boolean; value: unknown }>(
      PY_READ,
      JSON.stringify({
        interop: true,
        key: ours,
        stored: b64((await backend.get(ours))!),
        ns: "shop",
        func: "product",
        args: ["sku:42"],
      }),
    );
    assert.equal(out.key_ok, true, `Python computes ${ours} from the key string`);
    assert.deepEqual(out.value, { sku: "sku:42", price: 9.5, tags: ["a"] });

    const { key, stored } = runPythonJson<{ key: string; stored: string }>(
      PY_WRITE,
      JSON.stringify({
        interop: true,
        ns: "shop",
        func: "product",
        args: ["sku:7"],
        value: { sku: "sku:7", price: 1 },
      }),
    );
    await backend.set(key, unb64(stored), 60);
    assert.deepEqual(await products.get("sku:7"), { sku: "sku:7", price: 1 });
  },
  pythonTestOptions,
);
