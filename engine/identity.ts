/**
 * Function identity: the `func:` segment of a cache key.
 *
 * ## The rule
 *
 * 1. An explicit `name` option is the identity, as given (`cache(fn, { name: "users.get" })`). To
 *    share entries with a Python function, use its `module.qualname` (e.g. `app.users.get_user`).
 * 2. Otherwise the identity is `{module}.{function name}`, where `{module}` is the path of the file
 *    that called `cache()` relative to its *package root* — the nearest directory upwards holding a
 *    `deno.json`, `deno.jsonc` or `package.json` — without its extension, `/` turned into `.`, the
 *    way Python names modules: `<root>/src/users/repo.ts` + `getUser` → `src.users.repo.getUser`.
 *    A file under `node_modules/` uses the part after the last `node_modules/` instead (it starts
 *    with the package's name: `@acme/shared/dist/users.js` → `@acme.shared.dist.users`); a remote
 *    module its URL's path. When no package root is found above a file reached through a symbolic
 *    link, the link is resolved and the root looked up above the real file (Node and Bun name
 *    modules by their real path already). A file with no package root at all, or whose root
 *    cannot be looked up (Deno without read permission for its directories), uses its whole
 *    absolute path without the leading `/`: `/srv/jobs/users.ts` → `srv.jobs.users`, never a path
 *    relative to the working directory. Such an identity is the same from any directory and across
 *    restarts, but not after the checkout moves or on a machine with another path, so a function
 *    with an L2 cache whose identity is derived that way is reported once per process (a warning
 *    record, and a console line while no logging is configured: `health/_console_notice.ts`)
 *    saying to pass `name`, add a `package.json` / `deno.json`, or grant read permission.
 *
 *    What stays stable: with a package root, the identity does not depend on the working
 *    directory, the machine or the checkout location, so the same code gives the same keys from
 *    any directory, and services that import one shared package (from `node_modules/` or a
 *    workspace) compute the same identity for its functions. What does not: anything that moves
 *    or renames the file relative to its package root. A build does exactly that — `src/users/repo.ts` run with Deno or `tsx` is
 *    `src.users.repo`, its compiled `dist/users/repo.js` is `dist.users.repo`, and a bundler puts
 *    every function in one file. Two packages of a monorepo with the same relative path and
 *    function name also get the same identity. When entries must be shared across builds,
 *    bundles, languages or such packages, or must survive a refactoring that moves code, pin the
 *    identity with `name`:
 *
 *    ```ts ignore
 *    const getUser = cache(loadUser, { name: "users.get_user" }); // the same key everywhere
 *    ```
 * 3. A function without a name (an inline arrow function, `function () {}`) gets the name
 *    `<anonymous>` only when a `namespace` is given; without `name` and `namespace` it is a
 *    {@linkcode CacheConfigError}: two anonymous functions in one module would share entries.
 * 4. In one process, two *different* functions (different source text) that register the same
 *    identity in the same key space (namespace, or interop namespace/operation) are refused with a
 *    {@linkcode CacheConfigError}. Registering the same function again (the same source, e.g. a
 *    factory called twice, a re-created wrapper) is allowed and shares entries, as the same
 *    `module.qualname` does in Python.
 *
 * Class methods wrapped by the `cached` decorator are named `{module}.{Class}.{method}`.
 *
 * ## Names that keys cannot tell apart
 *
 * A standard key is `ns:{namespace}:func:{name}:args:…`, after which spaces and line breaks become
 * `_`. So that no two (namespace, name) pairs share keys, {@linkcode validateKeyPart} refuses
 * (with a {@linkcode CacheConfigError} when the function is wrapped):
 * - a namespace holding `:func:` or ending in `:func` (`namespace: "p:func:q"` with `name: "r"`
 *   would share keys with `namespace: "p"`, `name: "q:func:r"`);
 * - a name holding `:args:` or ending in `:args` (with a custom `key`, `name: "f:args:x"` and key
 *   `y` would share keys with `name: "f"` and key `x:args:y`);
 * - a name holding a space, `\n` or `\r` (`a b` would be `a_b`): explicit names and namespaces
 *   refuse all white space already, so this only concerns derived names (a file or function name
 *   with a space).
 *
 * Every other colon is allowed (`namespace: "app:users"`), and no name the Python SDK derives
 * (`module.qualname`) is refused.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveIdentity } from "./identity.ts";
 *
 * function getUser(id: number) {
 *   return { id };
 * }
 * assert.equal(deriveIdentity(getUser, { name: "users.get" }), "users.get");
 * ```
 *
 * @module
 */
import { existsSync, realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { CacheConfigError } from "../errors.ts";
import { validateKeyPart } from "../protocol/keys.ts";

export { validateKeyPart };

/** Inputs of {@linkcode deriveIdentity}. */
export interface IdentityInput {
  /** Explicit `name` option. */
  name?: string | null;
  /** Namespace option (allows anonymous functions). */
  namespace?: string | null;
  /** Module path override (default: derived from the caller's stack frame). */
  module?: string;
  /** Qualifier placed between module and function name (a class name). */
  qualifier?: string;
}

/**
 * The identity of `fn` per the rule in this module's documentation.
 *
 * @param fn The function being wrapped.
 * @param input Name, namespace and (optionally) an explicit module path.
 * @returns The identity string used as the key's `func:` segment.
 * @throws {CacheConfigError} An anonymous function without `name` or `namespace`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { deriveIdentity } from "./identity.ts";
 *
 * assert.equal(deriveIdentity(function load() {}, { module: "app.repo" }), "app.repo.load");
 * ```
 */
export function deriveIdentity(
  fn: (...args: never[]) => unknown,
  input: IdentityInput = {},
): string {
  if (input.name) return input.name;
  let fname = typeof fn.name === "string" ? fn.name.replace(/^bound /, "") : "";
  if (fname === "") {
    if (!input.namespace) {
      throw new CacheConfigError(
        "name",
        undefined,
        'a name for an anonymous function (e.g. { name: "users.get" }) or a namespace: ' +
          "without either, two anonymous functions would share cache entries",
      );
    }
    fname = "<anonymous>";
  }
  const module = input.module ?? callerModule();
  const qual = input.qualifier ? `${input.qualifier}.${fname}` : fname;
  const identity = module ? `${module}.${qual}` : qual;
  const rootless = module ? rootlessModules.get(module) : undefined;
  if (rootless !== undefined) rootlessIdentities.set(identity, rootless);
  return identity;
}

// Files of this package (relative to its root, one level up): stack frames in them are skipped
// when looking for the caller.
const OWN_FILES = new Set([
  "engine/identity.ts",
  "cache.ts",
  "decorator.ts",
  "engine/_engine.ts",
  "engine/_call.ts",
  "mod.ts",
]);
const PACKAGE_DIR = dirOf(dirOf(import.meta.url).slice(0, -1));

function dirOf(url: string): string {
  const i = url.lastIndexOf("/");
  return i >= 0 ? url.slice(0, i + 1) : url;
}

/**
 * The dotted module path of the first stack frame outside this package's engine files, e.g.
 * `src.users.repo`; `""` when it cannot be determined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { callerModule } from "./identity.ts";
 *
 * assert.equal(typeof callerModule(), "string");
 * ```
 */
export function callerModule(): string {
  const stack = new Error().stack ?? "";
  for (const line of stack.split("\n").slice(1)) {
    const file = frameFile(line);
    if (!file) continue;
    if (isOwnFile(file)) continue;
    if (file.startsWith("node:") || file.startsWith("ext:")) continue;
    const { module, rootless } = locate(file);
    if (rootless !== null && module !== "") rootlessModules.set(module, rootless);
    return module;
  }
  return "";
}

/**
 * Whether a stack frame's file is one of this package's engine files, whichever form the runtime
 * prints: `file://` URLs (Deno, Node) or plain paths (Bun), `.ts` sources or a transpiled `.js` build.
 */
function isOwnFile(file: string): boolean {
  const url = file.startsWith("/") ? pathToFileURL(file).href : file;
  if (!url.startsWith(PACKAGE_DIR)) return false;
  return OWN_FILES.has(url.slice(PACKAGE_DIR.length).replace(/\.[cm]?js$/, ".ts"));
}

function frameFile(line: string): string | null {
  // "    at fn (file:///a/b.ts:1:2)" or "    at file:///a/b.ts:1:2" or "fn@file:///a/b.ts:1:2" (JSC)
  const m = /(?:\(|at |@)((?:file|https?|ext|node):[^\s)]+?|\/[^\s)]+?):\d+:\d+\)?\s*$/.exec(line);
  return m ? m[1] : null;
}

/**
 * Dotted module path of a file URL or path: relative to `base` (default: the file's package root,
 * the nearest directory upwards holding a `deno.json`, `deno.jsonc` or `package.json`, looked up
 * above the real file when a symbolic link leads to it; when there is none, or it cannot be looked
 * up, the file's whole absolute path). A file under `node_modules/` is named from the part after
 * the last `node_modules/`. Never relative to the working directory.
 *
 * @param file `file:` / `http(s):` URL or absolute path.
 * @param base Directory the path is taken relative to (default: the file's package root, else
 * none); `null` for none.
 * @returns e.g. `src.users.repo`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modulePath } from "./identity.ts";
 *
 * assert.equal(modulePath("file:///srv/app/src/users/repo.ts", "/srv/app"), "src.users.repo");
 * assert.equal(modulePath("file:///srv/app/src/users/repo.ts", null), "srv.app.src.users.repo");
 * ```
 */
export function modulePath(file: string, base?: string | null): string {
  return locate(file, base).module;
}

/**
 * Why a module's identity is its absolute path: no package root above it (`"none"`), or its
 * directories could not be read to look for one (`"unreadable"`: Deno without read permission).
 */
export type RootlessReason = "none" | "unreadable";

/** A module named from its absolute path, and why (see {@linkcode rootlessIdentity}). */
export interface Rootless {
  /** Absolute path of the module's file. */
  file: string;
  /** Why no package root was used. */
  reason: RootlessReason;
}

/**
 * The warning about a function whose identity is its module's absolute path: what happened and
 * what to do.
 *
 * @param identity The function identity.
 * @param rootless Its module (from {@linkcode rootlessIdentity}).
 * @returns One sentence group, without a `cachekit: ` prefix.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rootlessMessage } from "./identity.ts";
 *
 * const text = rootlessMessage("srv.jobs.users.get", { file: "/srv/jobs/users.ts", reason: "none" });
 * assert.match(text, /pass a name/);
 * ```
 */
export function rootlessMessage(identity: string, rootless: Rootless): string {
  const why = rootless.reason === "none"
    ? `no package root (a directory holding deno.json, deno.jsonc or package.json) was found ` +
      `above ${rootless.file}`
    : `the package root of ${rootless.file} (the nearest directory upwards holding deno.json, ` +
      `deno.jsonc or package.json) could not be looked up without read permission`;
  const fix = rootless.reason === "none"
    ? "add a package.json or deno.json to the project's root directory"
    : "grant read permission for the project's directory (deno run --allow-read=<that directory>)";
  return `function identity "${identity}": ${why}, so the identity, and with it every cache ` +
    `key of this function, is the file's absolute path. It is the same from any working ` +
    `directory, but another checkout location or machine computes other keys and does not ` +
    `share these entries. To make it stable, pass a name (cache(fn, { name: "users.get" })), ` +
    `or ${fix}.`;
}

/** Modules (dotted) that {@linkcode callerModule} named from their absolute path. */
const rootlessModules = new Map<string, Rootless>();
/** Identities {@linkcode deriveIdentity} built on such a module. */
const rootlessIdentities = new Map<string, Rootless>();

/**
 * Whether `identity` was derived (by {@linkcode deriveIdentity} in this process) from a module
 * with no package root, so from the module's absolute path: the same from any working directory,
 * but not after the checkout moves or on another machine. The engine reports such identities of
 * functions with an L2 cache once.
 *
 * @param identity A function identity.
 * @returns The module's file and why it has no root; `undefined` for any other identity.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rootlessIdentity } from "./identity.ts";
 *
 * assert.equal(rootlessIdentity("users.get"), undefined);
 * ```
 */
export function rootlessIdentity(identity: string): Rootless | undefined {
  return rootlessIdentities.get(identity);
}

/** {@linkcode modulePath}, with whether (and why) the module was named from its absolute path. */
function locate(
  file: string,
  base?: string | null,
): { module: string; rootless: Rootless | null } {
  let path = file;
  let local = true;
  if (path.startsWith("file://")) path = decodeURIComponent(new URL(path).pathname);
  else if (/^https?:\/\//.test(path)) {
    path = new URL(path).pathname;
    local = false;
  }
  path = path.replace(/\\/g, "/");
  let rootless: Rootless | null = null;
  if (base === undefined && local && !path.includes("/node_modules/")) {
    const found = packageRoot(path);
    path = found.path;
    base = found.root;
    if (found.root === null) rootless = { file: path, reason: found.reason };
  }
  const nm = path.lastIndexOf("/node_modules/");
  const prefix = base ? base.replace(/\\/g, "/").replace(/\/?$/, "/") : null;
  if (prefix && path.startsWith(prefix)) path = path.slice(prefix.length);
  else path = nm >= 0 ? path.slice(nm + "/node_modules/".length) : path.replace(/^\/+/, "");
  path = path.replace(/\.(?:[cm]?[jt]sx?)$/, "");
  return { module: path.split("/").filter((s) => s !== "").join("."), rootless };
}

/** Files whose directory is a package root. */
const ROOT_MARKERS = ["deno.json", "deno.jsonc", "package.json"];
/** Package root of each directory looked up so far (`null`: none up to `/`, or unreadable). */
const roots = new Map<string, { root: string | null; reason: RootlessReason }>();

/**
 * The package root of a file: the nearest directory upwards holding a `deno.json`, `deno.jsonc` or
 * `package.json`. When there is none above `file` as given and `file` is reached through a
 * symbolic link (Deno names modules by the path they were imported with), the same above its real
 * path, which is then the file's path. Without a root: why (`"unreadable"`: a directory could not
 * be read, e.g. Deno without read permission, where it is not even asked for so that no
 * permission prompt appears).
 *
 * @param file Absolute path (`/` separated) of a module.
 * @returns The root directory (without a trailing `/`) or `null`, and the file's path.
 */
function packageRoot(
  file: string,
): { root: string | null; reason: RootlessReason; path: string } {
  const found = rootAbove(file);
  if (found.root !== null || found.reason === "unreadable") return { ...found, path: file };
  let real: string;
  try {
    if (exists(file) !== true) return { ...found, path: file };
    real = realpathSync(file).replace(/\\/g, "/");
  } catch {
    return { ...found, path: file }; // not a file on this file system (e.g. a bundle's frames)
  }
  return real === file ? { ...found, path: file } : { ...rootAbove(real), path: real };
}

/** The nearest root above `file` (looked up once per directory). */
function rootAbove(file: string): { root: string | null; reason: RootlessReason } {
  const dir = file.slice(0, Math.max(0, file.lastIndexOf("/")));
  const known = roots.get(dir);
  if (known !== undefined) return known;
  let found: { root: string | null; reason: RootlessReason } = { root: null, reason: "none" };
  let d = dir;
  search: while (true) {
    for (const m of ROOT_MARKERS) {
      const there = exists(`${d}/${m}`);
      if (there === null) {
        found = { root: null, reason: "unreadable" };
        break search;
      }
      if (there) {
        found = { root: d || "/", reason: "none" };
        break search;
      }
    }
    const up = d.lastIndexOf("/");
    if (up < 0 || d === "") break;
    d = d.slice(0, up);
  }
  roots.set(dir, found);
  return found;
}

/**
 * Whether `path` exists; `null` when that cannot be known: no read permission (on Deno, checked
 * first so that no permission prompt appears), no file system.
 */
function exists(path: string): boolean | null {
  // deno-lint-ignore no-explicit-any
  const perms = (globalThis as any).Deno?.permissions;
  try {
    if (typeof perms?.querySync === "function") {
      if (perms.querySync({ name: "read", path }).state !== "granted") return null;
    }
    return existsSync(path);
  } catch {
    return null;
  }
}

interface Registration {
  source: string;
  ref: WeakRef<(...args: never[]) => unknown>;
}

const registry = new Map<string, Registration>();

/**
 * Claim `identity` within `space` (the key space: namespace or interop segments) for `fn`.
 * Re-registering the same function, or a function with identical source text, is allowed.
 *
 * @param space Key space, e.g. the namespace (`""` when none).
 * @param identity The function identity.
 * @param fn The function.
 * @throws {CacheConfigError} A different function already holds that identity.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { registerIdentity } from "./identity.ts";
 *
 * function fn() {}
 * registerIdentity("docs", "example.fn", fn);
 * registerIdentity("docs", "example.fn", fn); // the same function again: allowed
 * assert.throws(() => registerIdentity("docs", "example.fn", function other() {}));
 * ```
 */
export function registerIdentity(
  space: string,
  identity: string,
  fn: (...args: never[]) => unknown,
): void {
  const id = `${space}\u0000${identity}`;
  const source = Function.prototype.toString.call(fn);
  const prev = registry.get(id);
  if (prev) {
    const live = prev.ref.deref();
    if (live !== undefined && live !== fn && prev.source !== source) {
      throw new CacheConfigError(
        "name",
        identity,
        `an identity no other function uses${space ? ` in namespace "${space}"` : ""}: ` +
          "a different function is already cached under it; give one of them another name",
      );
    }
  }
  registry.set(id, { source, ref: new WeakRef(fn) });
}

/** Line breaks and spaces: `finalizeKey` turns them into `_`, so names holding them could collide. */
