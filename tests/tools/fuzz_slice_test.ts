// A fixed-seed slice of the fuzzers (`fuzz/`, `deno task fuzz` runs a million inputs): about
// 50,000 mutated inputs over every decoder, the cache() read path and the invalidation buses (Redis
// messages, the file journal), on every runtime. No input may give a wrong value or throw an error
// type its decoder does not document; no bus may deliver an event the message specification does
// not give, or lose one without calling its gap handler. The time limit per
// input is generous here (the suite must pass beside CPU-heavy work); `deno task fuzz` uses 1 s.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { closeTargets, inputFor, runFuzz, summary, TARGET_NAMES } from "../../fuzz/fuzz.ts";
import { createTargets } from "../../fuzz/_targets.ts";

const SEED = 20_261_203;
const INPUTS = 50_000;

test("fuzz: the same seed and index give the same input, on every runtime", async () => {
  const [target] = await createTargets(["envelope"]);
  const a = inputFor(target, SEED, 123_457);
  const b = inputFor(target, SEED, 123_457);
  assert.deepEqual(a, b);
  assert.notDeepEqual(inputFor(target, SEED + 1, 123_457).bytes, a.bytes);
  // Even indexes start with the systematic inputs: a single bit flip of a corpus entry.
  const s = inputFor(target, SEED, 0);
  assert.match(s.ops[0], /^bitflip@/);
  const base = target.corpus[s.base];
  let diff = 0;
  for (let i = 0; i < base.length; i++) diff += popcount(base[i] ^ s.bytes[i]);
  assert.equal(diff, 1);
});

test("fuzz: the bus and journal corpora are the same in every run, and read unmutated as written", async () => {
  const build = async () => {
    const targets = await createTargets(["bus", "journal"]);
    try {
      const verdicts: string[][] = [];
      for (const t of targets) {
        const v: string[] = [];
        for (const [i, entry] of t.corpus.entries()) v.push((await t.run(entry, i, [])).verdict);
        verdicts.push(v);
      }
      return { corpora: targets.map((t) => t.corpus), verdicts };
    } finally {
      closeTargets(targets);
    }
  };
  const a = await build();
  const b = await build();
  assert.deepEqual(a.corpora, b.corpora);
  const [bus, journal] = a.verdicts;
  // Bus: delivered (another sender's) or dropped (the receiver's own), nothing else.
  assert.ok(bus.every((v) => v === "ok" || v === "typed"), bus.join());
  assert.ok(bus.includes("ok") && bus.includes("typed"));
  // Journal: every case delivers what was appended; one (a journal renamed away unread) is a gap.
  assert.deepEqual(journal.filter((v) => v !== "ok"), ["typed"]);
});

function popcount(x: number): number {
  let n = 0;
  for (; x; x &= x - 1) n++;
  return n;
}

test(`fuzz: ${INPUTS} inputs (seed ${SEED}): no wrong value, no untyped error`, async () => {
  const report = await runFuzz({ seed: SEED, inputs: INPUTS, slowMs: 10_000 });
  const text = summary(report);
  assert.equal(report.inputs, INPUTS);
  assert.deepEqual(Object.keys(report.targets), [...TARGET_NAMES]);
  for (const [name, s] of Object.entries(report.targets)) {
    // Each target really ran, and its mutations really broke inputs (else the oracle sees nothing).
    assert.ok(s.inputs > 1000, `${name}: ${s.inputs} inputs`);
    const refused = name.startsWith("cache:") ? s.miss : s.typed;
    assert.ok(refused > s.inputs / 10, `${name}: ${refused} of ${s.inputs} refused`);
  }
  assert.equal(report.wrong, 0, text);
  assert.equal(report.untyped, 0, text);
  assert.equal(report.slow, 0, text);
});
