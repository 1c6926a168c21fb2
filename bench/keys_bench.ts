/**
 * Key generation cost: ns per key for small arguments, and the choice of Blake2b library
 * (`hash-wasm` vs `@noble/hashes`), each against a raw baseline in the same run.
 *
 * Run: `deno bench -A bench/keys_bench.ts`
 */
import { blake2b as nobleBlake2b } from "@noble/hashes/blake2.js";
import { createBLAKE2b } from "hash-wasm";
import { encode as msgpackEncode } from "@msgpack/msgpack";
import { argsHash, cacheKey, interopKey } from "../protocol/keys.ts";
import { encodeValue, STD, withEncoder, written } from "../protocol/_canonical.ts";

const wasm = await createBLAKE2b(256);
const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const toHex = (b: Uint8Array): string => {
  let s = "";
  for (let i = 0; i < b.length; i++) s += HEX[b[i]];
  return s;
};

// A typical small call: get_user(42, "alice", {include_profile: true}, limit=10).
const ARGS: unknown[] = [42, "alice", { include_profile: true }];
const KWARGS: Record<string, unknown> = { limit: 10 };
const ENCODED = msgpackEncode([ARGS, KWARGS]);
let sink: unknown;

// -- Blake2b on key-sized input -------------------------------------------------------------------

Deno.bench({
  name: "hash-wasm blake2b-256 (hex digest)",
  group: "blake2b-256, 33-byte input",
  baseline: true,
  fn: () => {
    wasm.init();
    wasm.update(ENCODED);
    sink = wasm.digest("hex");
  },
});

Deno.bench({
  name: "hash-wasm blake2b-256 (binary digest + hex table)",
  group: "blake2b-256, 33-byte input",
  fn: () => {
    wasm.init();
    wasm.update(ENCODED);
    sink = toHex(wasm.digest("binary"));
  },
});

Deno.bench({
  name: "@noble/hashes blake2b (dkLen 32) + hex table",
  group: "blake2b-256, 33-byte input",
  fn: () => {
    sink = toHex(nobleBlake2b(ENCODED, { dkLen: 32 }));
  },
});

// -- Encoding only ---------------------------------------------------------------------------------

Deno.bench({
  name: "raw @msgpack/msgpack encode([args, kwargs])",
  group: "msgpack of small args",
  baseline: true,
  fn: () => {
    sink = msgpackEncode([ARGS, KWARGS]);
  },
});

Deno.bench({
  name: "canonical encoder (sorted keys, path-aware, reused buffer)",
  group: "msgpack of small args",
  fn: () => {
    sink = withEncoder(() => {
      encodeValue([ARGS, KWARGS], STD);
      return written().length;
    });
  },
});

// -- Whole argument hash ---------------------------------------------------------------------------

Deno.bench({
  name: "raw: @msgpack/msgpack encode + hash-wasm (no normalization)",
  group: "args hash, small args",
  baseline: true,
  fn: () => {
    wasm.init();
    wasm.update(msgpackEncode([ARGS, KWARGS]));
    sink = wasm.digest("hex");
  },
});

Deno.bench({
  name: "argsHash (canonical encoder + hash-wasm)",
  group: "args hash, small args",
  fn: () => {
    sink = argsHash(ARGS, KWARGS);
  },
});

Deno.bench({
  name: "canonical encoder + @noble/hashes",
  group: "args hash, small args",
  fn: () => {
    sink = withEncoder(() => {
      encodeValue([ARGS, KWARGS], STD);
      return toHex(nobleBlake2b(written(), { dkLen: 32 }));
    });
  },
});

// -- Whole keys -----------------------------------------------------------------------------------

Deno.bench({
  name: "raw: template string over raw msgpack + hash-wasm",
  group: "full key, small args",
  baseline: true,
  fn: () => {
    wasm.init();
    wasm.update(msgpackEncode([ARGS, KWARGS]));
    sink = `ns:users:func:app.get_user:args:${wasm.digest("hex")}:1s`;
  },
});

Deno.bench({
  name: "cacheKey (standard key)",
  group: "full key, small args",
  fn: () => {
    sink = cacheKey({ namespace: "users", func: "app.get_user", args: ARGS, kwargs: KWARGS });
  },
});

Deno.bench({
  name: "cacheKey, one int argument",
  group: "full key, small args",
  fn: () => {
    sink = cacheKey({ namespace: "users", func: "app.get_user", args: [42] });
  },
});

Deno.bench({
  name: "interopKey",
  group: "full key, small args",
  fn: () => {
    sink = interopKey("users", "get_user", [42, "alice", { include_profile: true }, 10]);
  },
});

globalThis.addEventListener("unload", () => void sink);
