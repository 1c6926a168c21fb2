/**
 * Loading Apache Arrow's JavaScript implementation (`apache-arrow` on npm) on demand.
 *
 * `apache-arrow` is an optional dependency: nothing here imports it statically, so an application
 * that never caches tables neither loads it nor (on Node and Bun) needs it installed. The Arrow
 * serializer (`serializer: "arrow"`) calls {@linkcode loadArrow} before the first call of a cached
 * function reaches the cache, so an asynchronous function needs nothing more. Call it yourself:
 *
 * - with your own module, `await loadArrow(await import("apache-arrow"))` — recommended: the tables
 *   your functions return and the ones the cache returns then come from the same copy of the
 *   library (two copies of `apache-arrow` do not recognise each other's `Table`s);
 * - before the first call of a **synchronous** function cached in L1 only, which cannot wait.
 *
 * Without a module, it imports `"apache-arrow"` (your import map or `node_modules`), then on Deno
 * `npm:apache-arrow@^21.2.0`. The specifier is held in a variable: a literal would make Deno fetch
 * the package for every program that imports this library.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as arrow from "apache-arrow";
 * import { arrowLoaded, loadArrow } from "@cachekit/core/serializers";
 *
 * await loadArrow(arrow);
 * assert.equal(arrowLoaded(), true);
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";

/**
 * The parts of the `apache-arrow` module the cache uses. Declared here rather than imported from
 * `apache-arrow`'s types, so that the package's declarations type-check without it installed.
 */
export interface ArrowModule {
  /** `Table`: what the Arrow serializer writes and returns. */
  // deno-lint-ignore no-explicit-any
  readonly Table: abstract new (...args: any[]) => object;
  /** Reads an IPC file or stream into a `Table`. */
  tableFromIPC(bytes: Uint8Array): object;
  /** Writes a `Table` as an IPC file (`"file"`). */
  tableToIPC(table: never, type: "file"): Uint8Array;
  /** Builds a column of the given type. */
  vectorFromArray(values: unknown[], type: never): object;
  /** Column type of numbers in records. */
  // deno-lint-ignore no-explicit-any
  readonly Float64: new () => any;
  /** Column type of strings in records. */
  // deno-lint-ignore no-explicit-any
  readonly Utf8: new () => any;
  /** Column type of booleans in records. */
  // deno-lint-ignore no-explicit-any
  readonly Bool: new () => any;
  /** Column type of bigints in records. */
  // deno-lint-ignore no-explicit-any
  readonly Int64: new () => any;
  /** Column type of a records column holding only nulls. */
  // deno-lint-ignore no-explicit-any
  readonly Null: new () => any;
}

const SPECIFIERS: readonly string[] = ["apache-arrow", "npm:apache-arrow@^21.2.0"];

let loaded: ArrowModule | null = null;
let loading: Promise<ArrowModule> | null = null;

function isArrowModule(m: unknown): m is ArrowModule {
  const o = m as Record<string, unknown> | null;
  return typeof o === "object" && o !== null && typeof o.tableFromIPC === "function" &&
    typeof o.tableToIPC === "function" && typeof o.vectorFromArray === "function" &&
    typeof o.Table === "function";
}

/**
 * Load `apache-arrow` for the Arrow and auto serializers (once; later calls return the same
 * module).
 *
 * @param module The `apache-arrow` module your code imported (recommended, see the module doc).
 *   Given after another module was loaded, it replaces it.
 * @returns The module in use.
 * @throws {SerializationError} `module` is not `apache-arrow`, or it could not be imported:
 *   install it (`npm install apache-arrow`, or add `npm:apache-arrow@^21` to your import map).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import * as arrow from "apache-arrow";
 * import { loadArrow } from "@cachekit/core/serializers";
 *
 * assert.equal(await loadArrow(arrow), arrow);
 * ```
 */
export function loadArrow(module?: unknown): Promise<ArrowModule> {
  if (module !== undefined) {
    if (!isArrowModule(module)) {
      return Promise.reject(
        new SerializationError(
          'loadArrow: not the apache-arrow module (pass the namespace: import * as arrow from "apache-arrow")',
        ),
      );
    }
    loaded = module;
    return Promise.resolve(module);
  }
  if (loaded !== null) return Promise.resolve(loaded);
  return loading ??= importArrow().finally(() => {
    loading = null;
  });
}

async function importArrow(): Promise<ArrowModule> {
  let first: unknown = null;
  for (const spec of SPECIFIERS) {
    try {
      const m: unknown = await import(spec);
      if (isArrowModule(m)) return loaded ??= m;
    } catch (e) {
      first ??= e;
    }
  }
  throw new SerializationError(
    "apache-arrow could not be imported: install it (npm install apache-arrow, or add " +
      '"apache-arrow": "npm:apache-arrow@^21.2.0" to your import map), or pass it to loadArrow()',
    { cause: first },
  );
}

/**
 * Whether `apache-arrow` is loaded.
 *
 * @returns `true` once {@linkcode loadArrow} has resolved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { arrowLoaded, loadArrow } from "@cachekit/core/serializers";
 *
 * await loadArrow(await import("apache-arrow"));
 * assert.ok(arrowLoaded());
 * ```
 */
export function arrowLoaded(): boolean {
  return loaded !== null;
}

/**
 * The loaded module, for synchronous code.
 *
 * @throws {SerializationError} Not loaded yet: await {@linkcode loadArrow} first.
 */
export function arrowModule(): ArrowModule {
  if (loaded === null) {
    throw new SerializationError(
      "apache-arrow is not loaded: await loadArrow() (from @cachekit/core/serializers) before " +
        'the first call of a synchronous function cached with serializer "arrow"',
    );
  }
  return loaded;
}
