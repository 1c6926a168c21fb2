/**
 * The CPU of deriving a call's keys, paired (`_paired.ts`: every variant in one process,
 * interleaved rounds, median of per-round ratios), CPU time per operation (`process.cpuUsage`):
 *
 * - Blake2b-256 hex of a key-sized message: `hash-wasm` (`init`, `update`, `digest("hex")`, the
 *   path every key took before) against `blake2b256Hex` (the one-block WebAssembly function of
 *   `protocol/_blake2b_block.ts` up to 128 bytes);
 * - `keyContext` of a new key (a miss: the arguments encoded and hashed, the keys built and
 *   remembered) and of a remembered one (an L2 hit with L1 off), against the steps the engine
 *   took before, replayed here with `hash-wasm`: the canonical encoder under `withEncoder`, the
 *   `ns:…:args:{hash}:1s` string, `finalizeKey`, the protocol-key memo, and the backend-key memo.
 *
 * With `--base=DIR`, where `DIR` holds the sources of an earlier commit under this checkout
 * (`mkdir -p bench/_base && git archive <commit> | tar -x -C bench/_base && rm bench/_base/deno.*`),
 * the `keyContext` tables pair that commit's `keyContext` instead of the replay (remove the copy
 * before `deno task check`, which would lint and type-check it).
 *
 * Run: `deno run -A --lock=deno.dev.lock bench/keys_paired_bench.ts [rounds] [--base=DIR]`
 *
 * @module
 */
import process from "node:process";
import { createBLAKE2b } from "hash-wasm";
import { formatSpread, pairedRounds, roundRatios, spread, type Variant } from "./_paired.ts";
import { blake2b256Hex, finalizeKey } from "../protocol/keys.ts";
import { encodeValue, STD, withEncoder, written } from "../protocol/_canonical.ts";
import { quoteTenant } from "../tenant.ts";
import { Engine } from "../engine/_engine.ts";
import { fastKey, keyContext } from "../engine/_keys.ts";
import { resolveConfig } from "../config/resolve.ts";
import { MemoryBackend } from "../backends/memory.ts";

const positional = Deno.args.filter((a) => !a.startsWith("--"));
const baseDir = Deno.args.find((a) => a.startsWith("--base="))?.slice("--base=".length);
const rounds = Number(positional[0] ?? 40);
const cpuMs = () => {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
};
const wasm = await createBLAKE2b(256);
const oldHex = (b: Uint8Array): string => {
  wasm.init();
  wasm.update(b);
  return wasm.digest("hex");
};
let sink: unknown;

/** Print each variant's CPU µs per op and its ratio to the first variant. */
async function table(title: string, variants: Variant[], opsPerRun: number): Promise<void> {
  const t = await pairedRounds(variants, { rounds, warmup: 5, now: cpuMs });
  console.log(`\n${title}`);
  for (let v = 0; v < variants.length; v++) {
    const us = spread(t[v]).median * 1000 / opsPerRun;
    const ratio = formatSpread(spread(roundRatios(t[v], t[0])));
    console.log(`  ${variants[v].name.padEnd(44)} ${us.toFixed(3)} µs CPU/op  ${ratio}`);
  }
}

// -- Blake2b-256 hex -------------------------------------------------------------------------------

const H = 20_000;
for (const len of [4, 40, 128]) {
  const msg = new Uint8Array(len).map((_, i) => (i * 37 + 11) & 0xff);
  await table(`Blake2b-256 hex, ${len}-byte message`, [
    { name: "before: hash-wasm init/update/digest(hex)", run: () => loop(H, () => oldHex(msg)) },
    { name: "after: blake2b256Hex (one-block wasm)", run: () => loop(H, () => blake2b256Hex(msg)) },
  ], H);
}

function loop(n: number, f: () => unknown): void {
  for (let i = 0; i < n; i++) sink = f();
}

// -- keyContext ------------------------------------------------------------------------------------

/** A function like the miss bench's (`keys_miss_paired_bench.ts`): an L2, one number argument. */
function engine(name: string, l1: boolean): Engine {
  const config = resolveConfig({
    name,
    namespace: "bench",
    backend: new MemoryBackend(),
    ...(l1 ? {} : { l1: false as const }),
    ttl: 60,
  });
  return new Engine({ fn: (i: number) => i, config, identity: name });
}

const SEGMENT = quoteTenant("default");

/** The steps `keyContext` took before, for a tenant-less standard key (memos as the engine's). */
function oldKeyContext(eng: Engine, args: unknown[], fast: number): unknown {
  let protoKey = oldProtoKeys.get(fast);
  if (protoKey === undefined) {
    const hash = withEncoder(() => {
      encodeValue([args, {}], STD);
      return oldHex(written());
    });
    const raw = "ns:" + "bench" + ":func:" + eng.identity + ":args:" + hash + ":" + "1" + "s";
    protoKey = finalizeKey(raw);
    if (oldProtoKeys.size >= 1024) oldProtoKeys.clear();
    oldProtoKeys.set(fast, protoKey);
  }
  let backendKey = oldBackendKeys.get(protoKey);
  if (backendKey === undefined) {
    backendKey = `t:${SEGMENT}:${protoKey}`;
    if (oldBackendKeys.size >= 1024) oldBackendKeys.clear();
    oldBackendKeys.set(protoKey, backendKey);
  }
  return { l1Key: fast, protoKey, backendKey, tenant: null, tags: null };
}
const oldProtoKeys = new Map<number, string>();
const oldBackendKeys = new Map<string, string>();

type KeyContextFn = typeof keyContext;
type FastKeyFn = typeof fastKey;
let before: { name: string; keyContext: KeyContextFn; fastKey: FastKeyFn };
if (baseDir !== undefined) {
  const url = new URL(`${baseDir.replace(/\/$/, "")}/engine/_keys.ts`, `file://${Deno.cwd()}/`);
  const mod = await import(url.href);
  before = { name: `before: keyContext of ${baseDir}`, ...mod };
} else {
  before = {
    name: "before: replayed steps (encoder, hash-wasm, memos)",
    keyContext: (eng, _self, args, fast) => oldKeyContext(eng, args, fast as number) as never,
    fastKey,
  };
}
const variant = (
  name: string,
  kc: KeyContextFn,
  fk: FastKeyFn,
  eng: Engine,
  arg: () => number,
): Variant => ({
  name,
  run: () =>
    loop(K, () => {
      const args = [arg()];
      return kc(eng, undefined, args, fk(eng, undefined, args), null);
    }),
});

const K = 5_000;
let nextOld = 0;
let nextNew = 0;
await table("keyContext of a new key (a miss), one number argument, L1 on", [
  variant(
    before.name,
    before.keyContext,
    before.fastKey,
    engine("bench.keys.a", true),
    () => nextOld++,
  ),
  variant("after: keyContext", keyContext, fastKey, engine("bench.keys.b", true), () => nextNew++),
], K);

const N = 100;
await table("keyContext of a remembered key (L2 hit, L1 off), 100 keys in turn", [
  variant(
    before.name,
    before.keyContext,
    before.fastKey,
    engine("bench.keys.c", false),
    () => nextOld++ % N,
  ),
  variant(
    "after: keyContext",
    keyContext,
    fastKey,
    engine("bench.keys.d", false),
    () => nextNew++ % N,
  ),
], K);
globalThis.addEventListener("unload", () => void sink);
