/**
 * The cheap L1 key (`engine/_argkey.ts`) against the protocol key, differentially, on the richer
 * generator of `_argkey_attack_gen.ts` (edge numbers, bigints at the 64-bit edges, dates outside
 * Python's years, typed arrays, null-prototype objects, `__proto__` keys, lone surrogates, Maps
 * with non-string keys or `undefined` values, Sets of elements hashed alike, nesting around the
 * depth limit, `undefined` arguments):
 *
 * - one cheap key, one outcome of the protocol key: the same hash, or a refusal for both (a call
 *   the hash refuses must never be answered another call's L1 entry), for each form against the
 *   hash it stands for (APART against both: a `pythonArgs` function may hash with either);
 * - arguments hashed alike share one cheap key (`STD_FORM`, `ARGS_FORM`), so that an invalidation
 *   through one form reaches the other's L1 copy; at the depth limit too.
 */
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { test } from "../_harness.ts";
import {
  APART,
  argKey,
  ARGS_FORM,
  callKey,
  type KeyForm,
  MAX_DEPTH,
  STD_FORM,
} from "../../engine/_argkey.ts";
import { argsHash, float64 } from "../../protocol/keys.ts";
import { interopArgsHash } from "../../protocol/_interop.ts";
import { pythonIsoformat } from "../../protocol/internal.ts";
import { generator, rewrite } from "./_argkey_attack_gen.ts";
import { prng } from "../_prng.ts";
import { pythonKwargs } from "../../config/python_kwargs.ts";

const show = (v: unknown) => inspect(v, { depth: 12, breakLength: 120 });
const REFUSED = "refused";

function outcome(std: boolean, args: unknown[]): string {
  try {
    return std ? argsHash(args) : interopArgsHash(args);
  } catch {
    return REFUSED;
  }
}

const COMBOS: [string, KeyForm, boolean][] = [
  ["STD_FORM, standard hash", STD_FORM, true],
  ["ARGS_FORM, interop hash", ARGS_FORM, false],
  ["APART, standard hash", APART, true],
  ["APART, interop hash", APART, false],
];

for (const [name, form, std] of COMBOS) {
  test(`argKey (${name}): one cheap key, one protocol key or one refusal (rich generator)`, () => {
    const next = generator(0x5eed + 31 * form + (std ? 0 : 7), { maxDepth: 9, maxBytes: 4 });
    const r = prng(0xbeef + form);
    const seen = new Map<string | number, { args: unknown[]; h: string }>();
    let repeats = 0;
    let refusals = 0;
    const check = (args: unknown[]) => {
      const key = argKey(args, form);
      if (key === undefined) return;
      const h = outcome(std, args);
      if (h === REFUSED) refusals++;
      const prev = seen.get(key);
      if (prev === undefined) return void seen.set(key, { args, h });
      repeats++;
      assert.equal(
        h,
        prev.h,
        `cheap key ${JSON.stringify(String(key))} shared by:\n${show(prev.args)}\n${show(args)}`,
      );
    };
    for (let i = 0; i < 15_000; i++) {
      const args = next();
      check(args);
      check(args.map((a) => rewrite(a, std, r)));
    }
    assert.ok(seen.size > 3_000, `${seen.size} distinct cheap keys`);
    assert.ok(repeats > 3_000, `${repeats} repeated keys`);
    assert.ok(refusals > 100, `${refusals} refused calls with a cheap key`);
  });
}

for (const [name, form, std] of COMBOS.slice(0, 2)) {
  test(`argKey (${name}): arguments hashed alike share one cheap key (rich generator)`, () => {
    const next = generator(0xa1a5 + form, { maxDepth: 9, maxBytes: 4 });
    const r = prng(0xf00d + form);
    let checked = 0;
    for (let i = 0; i < 15_000; i++) {
      const args = next();
      const other = args.map((a) => rewrite(a, std, r));
      const h = outcome(std, args);
      if (h === REFUSED) continue;
      assert.equal(outcome(std, other), h, `the rewrite is hashed alike: ${show(args)}`);
      const a = argKey(args, form);
      const b = argKey(other, form);
      if (a === undefined && b === undefined) continue; // both keyed by the protocol key
      assert.ok(Object.is(a, b), `${show(args)} → ${show(a)}\n${show(other)} → ${show(b)}`);
      checked++;
    }
    assert.ok(checked > 5_000, `${checked} pairs compared`);
  });
}

test("argKey: a Date, float64 or bytes at the depth limit keeps the key of its twin", () => {
  const nest = (v: unknown, n: number): unknown => (n === 0 ? v : [nest(v, n - 1)]);
  const d = new Date(1500);
  const pairs: [KeyForm, unknown, unknown][] = [
    [STD_FORM, d, pythonIsoformat(d)],
    [STD_FORM, float64(1.5), 1.5],
    [ARGS_FORM, d, 1.5],
    [ARGS_FORM, float64(3), 3],
    [STD_FORM, new Uint8Array(2), new Uint8Array(2)],
  ];
  for (const [form, a, b] of pairs) {
    for (const n of [MAX_DEPTH - 1, MAX_DEPTH]) {
      const x = [nest(a, n)];
      const y = [nest(b, n)];
      const hash = form === STD_FORM ? argsHash : interopArgsHash;
      assert.equal(hash(x), hash(y));
      assert.equal(argKey(x, form), argKey(y, form), `${show(a)} at depth ${n}`);
      assert.notEqual(argKey(x, form), undefined, `${show(a)} at depth ${n}: a cheap key`);
    }
    // One container more is past the limit for both.
    assert.equal(argKey([nest(a, MAX_DEPTH + 1)], form), undefined);
    assert.equal(argKey([nest(b, MAX_DEPTH + 1)], form), undefined);
  }
});

test("callKey (pythonArgs): one cheap key, one hash of [args, kwargs] or one refusal", () => {
  const next = generator(0xca11, { maxDepth: 6, maxBytes: 4 });
  const r = prng(0xca12);
  const names = ["", "a", "b", "_x", "\ud800", "é"];
  const seen = new Map<string | number, { call: unknown; h: string }>();
  let repeats = 0;
  let named = 0;
  for (let i = 0; i < 15_000; i++) {
    const args = next();
    const kwargs: Record<string, unknown> = r() < 0.5 ? {} : Object.create(null);
    if (r() < 0.6) {
      for (const v of next()) kwargs[names[Math.floor(r() * names.length)]] = v;
    }
    for (
      const [a, kw] of [[args, kwargs], [args.map((x) => rewrite(x, true, r)), kwargs]] as const
    ) {
      const key = callKey(a, kw);
      if (key === undefined) continue;
      if (typeof key === "string" && key.startsWith("w")) named++;
      let h: string;
      try {
        h = argsHash(a as unknown[], kw);
      } catch {
        h = REFUSED;
      }
      const prev = seen.get(key);
      if (prev === undefined) seen.set(key, { call: [a, kw], h });
      else {
        repeats++;
        assert.equal(
          h,
          prev.h,
          `${JSON.stringify(String(key))}:\n${show(prev.call)}\n${show([a, kw])}`,
        );
      }
    }
  }
  assert.ok(repeats > 2_000 && named > 1_000, `${repeats} repeats, ${named} with kwargs`);
  // No key of a call with keyword arguments is the key of a call without (or of another split).
  assert.notEqual(callKey([], { a: 1 }), callKey([{ a: 1 }], {}));
  assert.notEqual(callKey([1], { a: 1 }), callKey([1, { a: 1 }], {}));
  assert.equal(callKey([1, undefined], { a: undefined }), callKey([1], {}));
});

test("pythonKwargs: the arguments' own key (STD_FORM) implies one Python call's hash or one refusal", () => {
  for (const [positional, names] of [[0, ["a", "b", "c"]], [1, ["a", "b"]], [2, ["x"]]] as const) {
    const split = pythonKwargs(positional, [...names]);
    const next = generator(0x9e + positional, { maxDepth: 4, maxBytes: 4 });
    const r = prng(0x9f + positional);
    const seen = new Map<string | number, { args: unknown[]; h: string }>();
    let repeats = 0;
    for (let i = 0; i < 8_000; i++) {
      const args = next();
      for (const a of [args, args.map((x) => rewrite(x, true, r))]) {
        const key = argKey(a, STD_FORM);
        if (key === undefined) continue;
        let h: string;
        try {
          const call = split(...a);
          h = argsHash(call.args, call.kwargs);
        } catch {
          h = REFUSED;
        }
        const prev = seen.get(key);
        if (prev === undefined) seen.set(key, { args: a, h });
        else {
          repeats++;
          assert.equal(h, prev.h, `pythonKwargs(${positional}): ${show(prev.args)}\n${show(a)}`);
        }
      }
    }
    assert.ok(repeats > 1_000, `${repeats} repeats`);
  }
});

test("argKey: a float64 marker whose value is no number has no cheap key (it is not its value's twin)", () => {
  for (const value of ["3", 3n, null, undefined, { a: 1 }]) {
    const f = float64(1);
    (f as unknown as { value: unknown }).value = value; // writable at run time
    for (const form of [STD_FORM, ARGS_FORM]) {
      assert.equal(argKey([f], form), undefined, `${show(value)}`);
      assert.equal(argKey([1, [f]], form), undefined, `${show(value)}`);
    }
  }
});
