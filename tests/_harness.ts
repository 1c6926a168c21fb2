/**
 * A tiny test harness shared by every test file, so the same files run under `deno test`, under
 * `bun test` (on the TypeScript sources, through `bun:test`) and under `node --test` (on the
 * transpiled ESM build, through `node:test`). Assertions come from `node:assert/strict`.
 *
 * Registration is synchronous at import time on every runtime: the runner module is loaded once by a
 * top-level `await` here, so by the time a test file's body runs, `test()` calls straight into it.
 *
 * @module
 */

/** Options of {@linkcode test}. */
export interface TestOptions {
  /** Skip the test; give the reason in `ignoreReason` (printed). */
  ignore?: boolean;
  /** Why the test is skipped (required with `ignore`). */
  ignoreReason?: string;
  /** Turn off Deno's resource/op sanitizers (for tests holding sockets or child processes). */
  sanitize?: boolean;
}

type Fn = () => unknown | Promise<unknown>;

// deno-lint-ignore no-explicit-any
const g = globalThis as any;

/** The runtime running the tests. */
export type Runtime = "deno" | "bun" | "node";

/** Which runtime runs this test process (Bun also defines `process`, so it is checked first). */
export const RUNTIME: Runtime = g.Deno?.test ? "deno" : g.Bun ? "bun" : "node";

/** Per-test timeout on Bun (its default of 5 s is shorter than some cross-checks take). */
const BUN_TIMEOUT_MS = 120_000;

interface NodeTest {
  (name: string, options: { skip?: boolean | string }, fn: Fn): unknown;
}
interface BunTest {
  (name: string, fn: Fn, timeoutMs?: number): void;
  skip(name: string, fn: Fn): void;
}

// The specifier sits in a variable so `deno check` does not try to resolve the `bun:` scheme.
const BUN_TEST = "bun:test";
const bunTest: BunTest | undefined = RUNTIME === "bun"
  ? ((await import(BUN_TEST)) as { test: BunTest }).test
  : undefined;
const nodeTest: NodeTest | undefined = RUNTIME === "node"
  ? ((await import("node:test")) as unknown as { test: NodeTest }).test
  : undefined;

/** Register a test with the runtime's own runner. */
export function test(name: string, fn: Fn, options: TestOptions = {}): void {
  const skip = options.ignore ?? false;
  if (skip && options.ignoreReason) {
    console.warn(`skipping "${name}": ${options.ignoreReason}`);
  }
  // A zero-argument wrapper: Bun and Node treat a function declaring parameters as callback-style.
  const run: Fn = () => fn();
  if (RUNTIME === "deno") {
    g.Deno.test({
      name,
      fn: run,
      ignore: skip,
      sanitizeOps: options.sanitize ?? true,
      sanitizeResources: options.sanitize ?? true,
    });
  } else if (bunTest) {
    if (skip) bunTest.skip(name, run);
    else bunTest(name, run, BUN_TIMEOUT_MS);
  } else if (nodeTest) {
    nodeTest(name, { skip: skip ? (options.ignoreReason ?? true) : false }, run);
  }
}

/** True when running in CI (`CI=true`): missing services are failures there, never skips. */
export const IN_CI: boolean = (g.process?.env?.CI ?? g.Deno?.env?.get("CI")) === "true";
