/**
 * Runtime helpers for tests that run on Deno, Bun (TypeScript sources) and Node (the transpiled
 * build in `.build/npm/`, where every `.ts` module is a `.js` module): process exit hooks, sibling
 * module paths, commands that run a helper module with the current runtime, and skip options for
 * tests that only one runtime can run.
 *
 * @module
 */
import process from "node:process";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { RUNTIME, type Runtime, type TestOptions } from "./_harness.ts";

export { RUNTIME };
export type { Runtime };

/**
 * Run `fn` when the test process ends (Deno: the `unload` event; Node and Bun: `process` `exit`),
 * e.g. to SIGKILL servers a file started if its last test never ran. `fn` must be synchronous.
 */
export function onExit(fn: () => void): void {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  if (RUNTIME === "deno" && typeof g.addEventListener === "function") {
    g.addEventListener("unload", fn);
  } else {
    process.once("exit", fn);
  }
}

/**
 * Absolute path of a module next to the calling module, with the caller's own extension: `foo.ts`
 * on Deno and Bun, `foo.js` in the Node build.
 *
 * @param importMetaUrl The caller's `import.meta.url`.
 * @param relative Path relative to the caller, written with `.ts`.
 */
export function siblingModule(importMetaUrl: string, relative: string): string {
  const ext = extname(fileURLToPath(importMetaUrl));
  const rel = ext === ".ts" ? relative : relative.replace(/\.ts$/, ext);
  return fileURLToPath(new URL(rel, importMetaUrl));
}

/** The lock file the Deno suite runs with (`deno task test:deno`): the runtime and test packages. */
export const DENO_DEV_LOCK: string = fileURLToPath(new URL("../deno.dev.lock", import.meta.url));

/**
 * The package resolution of a Deno subprocess of a test: `--config <deno.json>` (when given) and
 * `--lock <deno.dev.lock>`, the lock the test process itself runs with. Not `deno.json`'s own
 * `deno.lock`: it resolves some packages to other versions (`@opentelemetry/api`), and Deno
 * re-links the shared `node_modules` to them as the subprocess starts, while test files running
 * beside it (Deno's, Bun's) load packages from there and find them missing.
 *
 * @param denoConfig `deno.json` for the import map.
 */
export function denoResolutionArgs(denoConfig?: string): string[] {
  return [...(denoConfig ? ["--config", denoConfig] : []), "--lock", DENO_DEV_LOCK];
}

/**
 * Command that runs the module `script` (a path from {@linkcode siblingModule}) with the runtime
 * running the tests: `deno run -A --config <deno.json> --lock <deno.dev.lock>`
 * ({@linkcode denoResolutionArgs}), `bun`, or `node` (with type stripping only for a `.ts` file,
 * which Node 20 cannot run anyway).
 *
 * @param script Absolute path of the module.
 * @param args Arguments for the module.
 * @param denoConfig `deno.json` for the import map (Deno only).
 */
export function runtimeCommand(
  script: string,
  args: string[] = [],
  denoConfig?: string,
): { bin: string; args: string[] } {
  if (RUNTIME === "deno") {
    return {
      bin: process.execPath,
      args: ["run", "-A", "--quiet", ...denoResolutionArgs(denoConfig), script, ...args],
    };
  }
  if (RUNTIME === "bun") return { bin: process.execPath, args: [script, ...args] };
  const strip = script.endsWith(".ts") ? ["--experimental-strip-types", "--no-warnings"] : [];
  return { bin: process.execPath, args: [...strip, script, ...args] };
}

/** Test options that skip a test except on the given runtimes, giving the reason. */
export function onlyOn(runtimes: readonly Runtime[], reason: string): TestOptions {
  return runtimes.includes(RUNTIME) ? {} : {
    ignore: true,
    ignoreReason: `${reason} (only on ${runtimes.join("/")}, this is ${RUNTIME})`,
  };
}

/** Test options for a test that needs a Deno-only API (e.g. `Deno.serve`, `Deno.FsFile.lock`). */
export function denoOnly(reason: string): TestOptions {
  return onlyOn(["deno"], reason);
}
