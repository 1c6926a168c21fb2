/**
 * The seeded generator the property tests share, so that a failing case names a seed that
 * replays it on every runtime. (`fuzz/_mutate.ts` has its own, as the fuzzer does not import the
 * tests.)
 *
 * @module
 */

/** mulberry32: a small seeded PRNG returning numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
