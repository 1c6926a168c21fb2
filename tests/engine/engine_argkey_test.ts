/**
 * The cheap L1 argument key (`engine/_argkey.ts`), tested directly: calls with one cheap key must
 * have one protocol key (else L1 could answer a call with another call's value), checked over
 * random argument lists built from the encoding's own delimiters (seeded, so a failure
 * reproduces); `undefined` handled as the protocol key handles it; cyclic and very deep arguments
 * make it give up in a few steps (the protocol key then refuses them).
 */
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import { argKey, MAX_DEPTH, STD_FORM } from "../../engine/_argkey.ts";
import { argsHash } from "../../protocol/keys.ts";
import { prng } from "../_prng.ts";

// Strings made of the encoding's delimiters and type tags, so that a missing length prefix or
// terminator shows up as a collision.
const PIECES = ["", "1", "2", ":", ";", "s", "n", "a", "[", "{", "1:", "s1:", "n1;", "T", "z", "é"];
const NUMBERS = [0, -0, 1, -1, 2, 12, 1.5, 0.1, NaN, Infinity, -Infinity, 2 ** 53 + 2, 1e21];

function generator(seed: number) {
  const r = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const str = (): string => {
    let s = "";
    for (let n = Math.floor(r() * 4); n > 0; n--) s += pick(PIECES);
    return s;
  };
  const value = (depth: number): unknown => {
    const kind = Math.floor(r() * (depth >= 3 ? 8 : 10));
    switch (kind) {
      case 0:
        return pick(NUMBERS);
      case 1:
      case 2:
        return str();
      case 3:
        return r() < 0.5;
      case 4:
        return null;
      case 5:
        return pick([0n, 1n, 12n, -1n, 2n ** 63n]);
      case 6:
        return new Date(pick([0, 1, 1_700_000_000_000]));
      case 7:
        return Uint8Array.from({ length: Math.floor(r() * 3) }, () => pick([0, 1, 49, 58, 255]));
      case 8:
        return Array.from({ length: Math.floor(r() * 3) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let n = Math.floor(r() * 3); n > 0; n--) {
          o[str()] = r() < 0.2 ? undefined : value(depth + 1);
        }
        return o;
      }
    }
  };
  return (): unknown[] => {
    const args = Array.from({ length: Math.floor(r() * 4) }, () => value(0));
    if (r() < 0.2) args.push(undefined); // a trailing undefined is the same call without it
    return args;
  };
}

test("argKey: one cheap key implies one protocol key (20,000 random argument lists)", () => {
  const next = generator(0x5eed);
  const seen = new Map<string | number, { args: unknown[]; hash: string }>();
  const naive = new Map<string, string>(); // keys without delimiters, to show the inputs are hard
  let naiveCollisions = 0;
  let sharedCheapKeys = 0;
  for (let i = 0; i < 20_000; i++) {
    const args = next();
    const key = argKey(args);
    if (key === undefined) continue;
    const hash = argsHash(args);
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, { args, hash });
    else {
      sharedCheapKeys++;
      assert.equal(
        hash,
        prev.hash,
        `cheap key ${JSON.stringify(String(key))} shared by different calls:\n` +
          `${inspect(prev.args)}\n${inspect(args)}`,
      );
    }
    const flat = args.map((a) => String(a)).join("");
    const other = naive.get(flat);
    if (other !== undefined && other !== hash) naiveCollisions++;
    naive.set(flat, hash);
  }
  assert.ok(seen.size > 5_000, `${seen.size} distinct cheap keys`);
  assert.ok(sharedCheapKeys > 100, "repeated calls occur, so the check above ran");
  assert.ok(naiveCollisions > 50, "a key without delimiters would collide on these inputs");
});

test("argKey: hand-picked near collisions stay apart", () => {
  const distinct: unknown[][] = [
    [],
    [""],
    ["", ""],
    [null],
    [0],
    ["0"],
    [0n],
    [[]],
    [{}],
    [[0]],
    [["0"]],
    ["a", "b"],
    ["ab"],
    ["a", "", "b"],
    ["s1:a"],
    [{ a: "b" }],
    [{ "a1:": "" }],
    [{ x: "Tz" }],
    [{ "xs2:T": null }],
    [{ x: null, y: true }],
    [{ "xzy": true }],
    [{ a: 1, b: 2 }],
    [{ a: 1 }, { b: 2 }],
    [[1, 2]],
    [[1], [2]],
    [[[1, 2]]],
    [true],
    ["T"],
    [new Uint8Array([49])],
    ["1"],
    [new Date(1)],
    [1],
    [NaN],
    ["NaN"],
    [Infinity],
    [1.5],
    ["1.5"],
  ];
  const keys = distinct.map((a) => argKey(a));
  assert.ok(keys.every((k) => k !== undefined));
  assert.equal(new Set(keys).size, keys.length, keys.map(String).join(" | "));
});

test("argKey (standard key hash): a bigint within the safe integers has the key of the number it equals", () => {
  // With an L2, one protocol key is one entry, so one cheap key: two would be two L1 copies of
  // it, and an invalidation would reach only the one its call names.
  const same: [unknown[], unknown[]][] = [
    [[0n], [0]],
    [[0n], [-0]],
    [[1n], [1]],
    [[-7n], [-7]],
    [[BigInt(Number.MAX_SAFE_INTEGER)], [Number.MAX_SAFE_INTEGER]],
    [[-BigInt(Number.MAX_SAFE_INTEGER)], [-Number.MAX_SAFE_INTEGER]],
    [["a", 2n], ["a", 2]],
    [[[3n, { k: 4n }]], [[3, { k: 4 }]]],
  ];
  for (const [a, b] of same) {
    assert.equal(argsHash(a), argsHash(b), "the protocol key does not tell them apart");
    assert.equal(argKey(a, STD_FORM), argKey(b, STD_FORM), inspect(a));
  }
  // Still one cheap key implies one protocol key (the random lists above, shared).
  const next = generator(0xb161);
  const seen = new Map<string | number, string>();
  let merged = 0;
  for (let i = 0; i < 20_000; i++) {
    const args = next();
    const key = argKey(args, STD_FORM);
    if (key === undefined) continue;
    const hash = argsHash(args);
    const prev = seen.get(key);
    if (prev === undefined) seen.set(key, hash);
    else assert.equal(hash, prev, `cheap key ${JSON.stringify(String(key))}: ${inspect(args)}`);
    if (key !== argKey(args)) merged++;
  }
  assert.ok(merged > 100, `bigints took their number's key (${merged})`);
  // L1 only (not shared): apart, as before (each computes its own value).
  assert.notEqual(argKey([1n]), argKey([1]));
  assert.notEqual(argKey([["a", 2n]]), argKey([["a", 2]]));
  // Beyond the safe integers the protocol key tells them apart (a number there is a float).
  for (const n of [2 ** 53, 2 ** 60, -(2 ** 53)]) {
    const a = [BigInt(n)], b = [n];
    assert.notEqual(argsHash(a), argsHash(b));
    assert.notEqual(argKey(a, STD_FORM), argKey(b, STD_FORM), inspect(a));
    assert.notEqual(argKey([["x", BigInt(n)]], STD_FORM), argKey([["x", n]], STD_FORM));
  }
});

test("argKey: undefined is left out exactly where the protocol key leaves it out (issue 13.4)", () => {
  const same: [unknown[], unknown[]][] = [
    [["a"], ["a", undefined]],
    [["a"], ["a", undefined, undefined]],
    [[7], [7, undefined]],
    [[], [undefined]],
    [[{ limit: 10 }], [{ limit: 10, cursor: undefined }]],
    [[{ a: 1 }], [{ a: 1, b: undefined }]],
    [[{ a: {} }], [{ a: { b: undefined } }]],
    [["x", { a: 1 }], ["x", { b: undefined, a: 1 }, undefined]],
  ];
  for (const [a, b] of same) {
    assert.notEqual(argKey(a), undefined);
    assert.equal(argKey(a), argKey(b), `${inspect(a)} vs ${inspect(b)}`);
    assert.equal(argsHash(a), argsHash(b), "the protocol key agrees");
  }
  assert.equal(argKey([7, undefined]), 7, "still the plain number key");
  // Elsewhere undefined has no key: the cheap key gives up, the protocol key refuses.
  for (
    const args of [[undefined, 1], [[1, undefined]], [{ a: [undefined] }], ["a", undefined, 1]]
  ) {
    assert.equal(argKey(args), undefined, inspect(args));
    assert.throws(() => argsHash(args));
  }
  // An object that is all undefined is an empty object, not a missing one.
  assert.notEqual(argKey([{ a: undefined }]), argKey([]));
  assert.equal(argKey([{ a: undefined }]), argKey([{}]));
});

test("argKey: cyclic and deep arguments give up at once instead of overflowing (issue 11.4)", () => {
  const a: Record<string, unknown> = { id: 1 };
  a.self = a;
  const wide: unknown[] = [];
  for (let i = 0; i < 1000; i++) wide.push(wide); // a cycle 1,000 times over at every level
  let deep: unknown = 1;
  for (let i = 0; i < 10_000; i++) deep = [deep];
  for (const args of [[a], [1, a], [wide], [deep], [{ x: deep }]]) {
    assert.equal(argKey(args), undefined);
  }
  let ok: unknown = 1;
  for (let i = 0; i < MAX_DEPTH; i++) ok = [ok];
  assert.notEqual(argKey([ok]), undefined, "the cheap key's own limit is accepted");
  ok = [ok];
  assert.equal(argKey([ok]), undefined, "beyond it, the protocol key is used");
});
