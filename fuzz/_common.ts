/**
 * What the fuzz targets share: the outcome of one input, the target shape, the classification
 * helpers and the values the corpora are built from.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { hashString, Rng } from "./_mutate.ts";
/** How one input ended. */
export type Verdict = "ok" | "typed" | "wrong" | "untyped";

/** A verdict with its detail (error or wrong value) for the report. */
export interface Outcome {
  verdict: Verdict;
  /** Read path: the entry was refused and the function ran again (a miss). */
  miss?: boolean;
  /** Error name and message, or what the wrong value was. */
  detail?: string;
}

/** One fuzz target. */
export interface Target {
  /** Name used by `--target`. */
  name: string;
  /** What is fed and what is checked. */
  description: string;
  /** Valid stored inputs the mutations start from. */
  corpus: Uint8Array[];
  /** Relative share of the default input budget (slow targets get less). */
  share: number;
  /** Decode one input (`base`: corpus index it was mutated from; `donors`: splice donors). */
  run(bytes: Uint8Array, base: number, donors: readonly number[]): Outcome | Promise<Outcome>;
  /** Release what the target holds (the `journal` target's directory); called once, at the end. */
  close?(): void;
}

export const OK: Outcome = { verdict: "ok" };
export const MISS: Outcome = { verdict: "ok", miss: true };

export function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message.slice(0, 200)}`;
  return `non-Error thrown: ${String(e).slice(0, 200)}`;
}

/** A thrown value: typed when it is one of `types` (every type is a `CacheKitError` subclass). */
export function thrown(
  e: unknown,
  types: readonly (abstract new (...a: never[]) => Error)[],
): Outcome {
  for (const t of types) if (e instanceof t) return { verdict: "typed", detail: describe(e) };
  return { verdict: "untyped", detail: describe(e) };
}

export function show(v: unknown): string {
  try {
    const s = typeof v === "bigint"
      ? `${v}n`
      : JSON.stringify(v, (_k, x) => typeof x === "bigint" ? `${x}n` : x);
    return (s ?? String(v)).slice(0, 120);
  } catch {
    return String(v).slice(0, 120);
  }
}

/**
 * Whether a value read from a splice is one a donor's bytes legitimately hold: the donor's value,
 * or, for a donor storing `undefined` (a `nil` payload flagged `undefined` in its header), `null`
 * (the same payload behind a header without the flag).
 */
export function spliced(read: unknown, donorValue: unknown): boolean {
  if (isDeepStrictEqual(read, donorValue)) return true;
  return donorValue === undefined && read === null;
}

/** Values that survive the standard serializer exactly (`undefined` is added where it applies). */
export const VALUES: readonly unknown[] = [
  42,
  -1.5,
  "hello",
  "",
  null,
  true,
  [1, 2, 3, "x"],
  { id: 7, name: "widget", tags: ["a", "b"], nested: { ok: true, n: null } },
  "repeat ".repeat(40),
  new Map<unknown, unknown>([[1, "one"], ["two", 2]]),
  new Date(1_700_000_000_000),
  2n ** 63n + 5n,
  new Uint8Array([1, 2, 3, 250]),
  Array.from({ length: 12 }, (_, i) => ({ i, s: "v" + i })),
];

/**
 * Highly compressible: a block of about 1 KiB that decompresses to 256 KiB (a bomb's raw material).
 * Only where it is stored compressed (envelopes, the read path): its 256 KiB of plain MessagePack
 * would swamp the systematic phase of the plain decoders.
 */
export const BIG = "0".repeat(256 * 1024);

/** The JSON-representable subset (what the JSON serializer returns unchanged). */
export const JSON_VALUES: readonly unknown[] = VALUES.filter((v) =>
  v === null || typeof v === "string" || typeof v === "boolean" || typeof v === "number" ||
  (typeof v === "object" && v !== null && (Array.isArray(v) || v.constructor === Object))
);

export const FINGERPRINT = "0123456789abcdef0123456789abcdef";

/** A fixed test master key (64 hex, not weak): only for fuzzing. */
export const TEST_MASTER_KEY = "5f1c9a7e3b2d4c6e8a0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a6d";

/**
 * Run `fn` with `crypto.randomUUID` made deterministic (seeded by `name`), so that the instance
 * and journal ids a target's corpus holds are the same in every run and on every runtime, however
 * many other targets were built before it. Restored after.
 */
export async function pinnedUuids<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const c = globalThis.crypto;
  const rng = new Rng(hashString(name));
  const hex = (n: number) => {
    let s = "";
    for (let i = 0; i < n; i++) s += (rng.u32() & 0xf).toString(16);
    return s;
  };
  Object.defineProperty(c, "randomUUID", {
    value: () => `${hex(8)}-${hex(4)}-4${hex(3)}-${"89ab"[rng.u32() & 3]}${hex(3)}-${hex(12)}`,
    configurable: true,
    writable: true,
  });
  try {
    return await fn();
  } finally {
    delete (c as { randomUUID?: unknown }).randomUUID;
  }
}
