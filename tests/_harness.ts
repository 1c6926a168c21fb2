/**
 * A tiny test harness shared by every test file, so the same files run under `deno test`, and later
 * under Bun and Node (`node:test`). Assertions come from `node:assert/strict`.
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

/** Register a test with the runtime's own runner. */
export function test(name: string, fn: Fn, options: TestOptions = {}): void {
  if (options.ignore && options.ignoreReason) {
    console.warn(`skipping "${name}": ${options.ignoreReason}`);
  }
  if (g.Deno?.test) {
    g.Deno.test({
      name,
      fn,
      ignore: options.ignore ?? false,
      sanitizeOps: options.sanitize ?? true,
      sanitizeResources: options.sanitize ?? true,
    });
    return;
  }
  nodeTest(name, fn, options);
}

let nodeTestModule: Promise<{ test: (...a: unknown[]) => void }> | undefined;
function nodeTest(name: string, fn: Fn, options: TestOptions): void {
  nodeTestModule ??= import("node:test") as Promise<{ test: (...a: unknown[]) => void }>;
  // Top-level registration in node:test must be synchronous per module; await once at import time.
  void nodeTestModule.then((m) => m.test(name, { skip: options.ignore ?? false }, fn));
}

/** True when running in CI (`CI=true`): missing services are failures there, never skips. */
export const IN_CI: boolean = (g.process?.env?.CI ?? g.Deno?.env?.get("CI")) === "true";
