/**
 * Cheap L1 keys of arguments the protocol key hashes alike (`engine/_argkey.ts`, `KeyForm`): with
 * an L2, two such calls must share one L1 key (else an invalidation of one left the other's L1
 * copy answering the old value), and still no two calls hashed apart may share one. Checked on
 * random argument lists for both key hashes (standard `argsHash`, interop `interopArgsHash`), with
 * each argument rewritten into the other types its hash writes alike; and end to end: a cached
 * function invalidated through one form no longer answers the other's copy.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import { prng } from "../_prng.ts";
import { APART, argKey, ARGS_FORM, type KeyForm, STD_FORM } from "../../engine/_argkey.ts";
import { argsHash, float64 } from "../../protocol/keys.ts";
import { interopArgsHash } from "../../protocol/_interop.ts";
import { pythonIsoformat } from "../../protocol/internal.ts";
import { cache } from "../../mod.ts";
import { MemoryBackend } from "../../backends/mod.ts";

const NUMBERS = [
  0,
  -0,
  1,
  -1,
  1.5,
  0.001,
  NaN,
  Infinity,
  2 ** 53,
  2 ** 53 + 2,
  2 ** 60,
  -(2 ** 63),
  2 ** 64,
  1e21,
  1_700_000_000,
  1_700_000_000.5,
];
const BIGINTS = [0n, 1n, -1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 60n, -(2n ** 63n), 2n ** 64n - 1n];
const STRINGS = ["", "a", "1", "n1;", "1970-01-01T00:00:00+00:00", "2023-11-14T22:13:20+00:00"];
const TIMES = [0, 1500, 1_700_000_000_000, 1_700_000_000_500, -1];

function generator(seed: number) {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const value = (depth: number): unknown => {
    switch (Math.floor(r() * (depth >= 2 ? 8 : 11))) {
      case 0:
        return pick(NUMBERS);
      case 1:
        return pick(STRINGS);
      case 2:
        return pick(BIGINTS);
      case 3:
        return new Date(pick(TIMES));
      case 4:
        return float64(pick(NUMBERS));
      case 5:
        return r() < 0.5;
      case 6:
        return null;
      case 7:
        return (r() < 0.5 ? Uint8Array : Buffer).from([1, 58, 255].slice(0, Math.floor(r() * 4)));
      case 8:
        return Array.from({ length: Math.floor(r() * 3) }, () => value(depth + 1));
      case 9:
        return new Set(Array.from({ length: Math.floor(r() * 3) }, () => value(depth + 1)));
      default: {
        const entries: [string, unknown][] = [];
        for (let n = Math.floor(r() * 3); n > 0; n--) {
          entries.push([pick(STRINGS), value(depth + 1)]);
        }
        return r() < 0.5 ? new Map(entries) : Object.fromEntries(entries);
      }
    }
  };
  return (): unknown[] => Array.from({ length: 1 + Math.floor(r() * 2) }, () => value(0));
}

/** `v` rewritten into another value the key hash of `form` writes alike (or `v` itself). */
function rewrite(v: unknown, form: KeyForm, r: () => number): unknown {
  if (typeof v === "number") {
    if (form === STD_FORM && Number.isSafeInteger(v)) return r() < 0.5 ? BigInt(v) : v;
    if (form === STD_FORM) return float64(v);
    if (Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64) return BigInt(v);
    if (Number.isFinite(v) && Math.abs(v) < 1e11) return new Date(v * 1000);
    return float64(v);
  }
  if (typeof v === "bigint") {
    const x = Number(v);
    if (form === STD_FORM) return Number.isSafeInteger(x) ? x : v;
    return BigInt(x) === v && v >= -(2n ** 63n) && v < 2n ** 64n ? x : v;
  }
  if (v instanceof Date) {
    const t = v.getTime();
    return form === STD_FORM ? pythonIsoformat(v) : t / 1000;
  }
  if (v instanceof Uint8Array) return r() < 0.5 ? Buffer.from(v) : Uint8Array.from(v);
  if (Array.isArray(v)) return v.map((x) => rewrite(x, form, r));
  if (v instanceof Set) return new Set([...v].map((x) => rewrite(x, form, r)).reverse());
  if (v instanceof Map) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of v) o[k as string] = rewrite(x, form, r);
    return o;
  }
  if (
    v !== null && typeof v === "object" &&
    !(v instanceof Object.getPrototypeOf(float64(1)).constructor)
  ) {
    const entries = Object.entries(v).map(([k, x]) => [k, rewrite(x, form, r)] as const);
    return r() < 0.5 ? new Map(entries) : Object.fromEntries(entries.reverse());
  }
  return v;
}

const HASHES: [string, KeyForm, (args: unknown[]) => string][] = [
  ["standard", STD_FORM, (args) => argsHash(args)],
  ["interop", ARGS_FORM, (args) => interopArgsHash(args)],
];

function hashOr(h: (a: unknown[]) => string, args: unknown[]): string | undefined {
  try {
    return h(args);
  } catch {
    return undefined; // refused: no entry is ever stored under its cheap key
  }
}

for (const [name, form, hash] of HASHES) {
  test(`argKey (${name} key hash): one cheap key implies one protocol key (20,000 random lists)`, () => {
    const next = generator(0xa11a5 + form);
    const seen = new Map<string | number, { args: unknown[]; hash: string }>();
    let repeats = 0;
    for (let i = 0; i < 20_000; i++) {
      const args = next();
      const key = argKey(args, form);
      const h = hashOr(hash, args);
      if (key === undefined || h === undefined) continue;
      const prev = seen.get(key);
      if (prev === undefined) seen.set(key, { args, hash: h });
      else {
        repeats++;
        assert.equal(
          h,
          prev.hash,
          `cheap key ${JSON.stringify(String(key))} shared by calls hashed apart:\n` +
            `${inspect(prev.args)}\n${inspect(args)}`,
        );
      }
    }
    assert.ok(seen.size > 3_000, `${seen.size} distinct cheap keys`);
    assert.ok(repeats > 100, `repeated keys occur (${repeats}), so the check ran`);
  });

  test(`argKey (${name} key hash): arguments hashed alike share one cheap key (20,000 rewrites)`, () => {
    const next = generator(0xd0b1e + form);
    const r = prng(7 + form);
    let checked = 0;
    for (let i = 0; i < 20_000; i++) {
      const args = next();
      const other = args.map((a) => rewrite(a, form, r));
      const h = hashOr(hash, args);
      if (h === undefined) continue;
      assert.equal(hashOr(hash, other), h, `the rewrite is hashed alike: ${inspect(args)}`);
      const key = argKey(args, form);
      if (key === undefined) continue; // the protocol key is the L1 key: one for both
      const k2 = argKey(other, form);
      if (k2 === undefined) continue;
      assert.equal(k2, key, `${inspect(args)}\n${inspect(other)}`);
      checked++;
    }
    assert.ok(checked > 5_000, `${checked} pairs compared`);
  });
}

test("argKey: aliases by hand, per key hash; L1-only functions keep every type apart", () => {
  const d = new Date(1500);
  const iso = pythonIsoformat(d)!;
  const std: [unknown[], unknown[]][] = [
    [[d], [iso]],
    [[1, d], [1, iso]],
    [[float64(1.5)], [1.5]],
    [[new Map([["a", 1]])], [{ a: 1 }]],
    [[Buffer.from([1, 2])], [Uint8Array.of(1, 2)]],
    [[7n], [7]],
  ];
  const args: [unknown[], unknown[]][] = [
    [[d], [1.5]],
    [[float64(3)], [3]],
    [[2n ** 60n], [2 ** 60]],
    [[new Set([2, 1, 2])], [[1, 2]]],
    [[new Map([["b", [new Date(0)]]])], [{ b: [0] }]],
  ];
  for (const [a, b] of std) {
    assert.equal(argsHash(a), argsHash(b), inspect(a));
    assert.equal(argKey(a, STD_FORM), argKey(b, STD_FORM), inspect(a));
    if (!(a[0] instanceof Map || a[0] instanceof Object.getPrototypeOf(float64(1)).constructor)) {
      assert.notEqual(argKey(a, APART), argKey(b, APART), `apart without an L2: ${inspect(a)}`);
    }
  }
  for (const [a, b] of args) {
    assert.equal(interopArgsHash(a), interopArgsHash(b), inspect(a));
    assert.equal(argKey(a, ARGS_FORM), argKey(b, ARGS_FORM), inspect(a));
  }
  // What the standard hash tells apart stays apart under it.
  assert.notEqual(argsHash([float64(3)]), argsHash([3]));
  assert.notEqual(argKey([float64(3)], STD_FORM), argKey([3], STD_FORM));
  assert.notEqual(argKey([2n ** 60n], STD_FORM), argKey([2 ** 60], STD_FORM));
  assert.notEqual(argKey([d], STD_FORM), argKey([1.5], STD_FORM));
});

test("an invalidation through one form of an argument evicts the L1 copy of the other form", async () => {
  let calls = 0;
  const f = cache((_at: Date | string) => ({ n: ++calls }), {
    name: "argkey.alias.invalidate",
    backend: new MemoryBackend(),
    ttl: 60,
  });
  const d = new Date(1_700_000_000_000);
  const iso = pythonIsoformat(d)!;
  assert.deepEqual(await f(d), { n: 1 });
  assert.deepEqual(await f(iso), { n: 1 }, "one protocol key: the value of the first call");
  await f.invalidate(d);
  assert.deepEqual(await f(iso), { n: 2 }, "the ISO text's copy went with the Date's");
  assert.deepEqual(await f(d), { n: 2 });
  await f.invalidate(iso);
  assert.deepEqual(await f(d), { n: 3 });
});

test("pythonArgs: arguments its result tells apart keep their own L1 entries", async () => {
  const f = cache((x: unknown) => typeof x, {
    name: "argkey.alias.python_args",
    backend: new MemoryBackend(),
    ttl: 60,
    pythonArgs: (x: unknown) => ({ args: [typeof x], kwargs: {} }),
  });
  assert.equal(await f(1), "number");
  assert.equal(await f(1n), "bigint", "not the number's L1 entry");
  assert.equal(await f(new Date(0)), "object");
  assert.equal(await f(pythonIsoformat(new Date(0))!), "string");
});
