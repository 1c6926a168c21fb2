/**
 * Blake2b-256 (`blake2b256Hex`: the one-block WebAssembly function up to 128 bytes, `hash-wasm`
 * beyond) against Debian's Python `hashlib.blake2b(digest_size=32)` on random messages of every
 * length from 0 to 300 bytes.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { blake2b256Hex } from "../../protocol/keys.ts";
import { toHex } from "../../protocol/internal.ts";

test("blake2b256Hex: random messages of 0..300 bytes match hashlib.blake2b", () => {
  const messages: string[] = [];
  for (let n = 0; n <= 300; n++) {
    for (let k = 0; k < 3; k++) messages.push(toHex(crypto.getRandomValues(new Uint8Array(n))));
  }
  const digests = runPythonJson<string[]>(
    `import sys, json, hashlib
ms = json.load(sys.stdin)
print(json.dumps([hashlib.blake2b(bytes.fromhex(m), digest_size=32).hexdigest() for m in ms]))`,
    JSON.stringify(messages),
  );
  assert.equal(digests.length, messages.length);
  for (let i = 0; i < messages.length; i++) {
    const m = Uint8Array.from(messages[i].match(/../g) ?? [], (x) => parseInt(x, 16));
    assert.equal(blake2b256Hex(m), digests[i], `message ${messages[i] || "(empty)"}`);
  }
}, pythonTestOptions);
