/**
 * Builds the package the way a Node user consumes it from JSR's npm compatibility layer: every
 * TypeScript module of the library (the files `deno publish` would ship), of `tests/`, of `fuzz/`
 * (a test runs a slice of the fuzzers) and of `examples/` (a test runs them) is transpiled, one file at a time and without bundling, to
 * an ES module in `.build/npm/`:
 *
 * - relative `.ts` imports become `.js` (`rewriteRelativeImportExtensions`);
 * - bare specifiers of the `deno.json` import map (and inline `npm:` specifiers) become the npm
 *   package name plus subpath, e.g. `@noble/hashes/blake2.js` → `@noble/hashes/blake2.js`,
 *   `npm:hash-wasm@^4.12.0` → `hash-wasm`; an unmapped bare specifier or a `jsr:` one fails the build;
 * - a generated `package.json` (`"type": "module"`, `exports` from `deno.json`) lists the npm
 *   packages the library imports as `dependencies` and those only tests import as
 *   `devDependencies`, with the import map's version ranges; `npm install` runs in the folder,
 *   skipped when the dependency set has not changed since the last install.
 *
 * Transpiler: TypeScript's `transpileModule` (`npm:typescript@^6`, locked in `deno.dev.lock`).
 * Measured on the 76 modules of the repository it takes about 2 s against esbuild's 0.1 s, which is
 * noise next to the test run; it is the reference emitter (the same isolated-module semantics Deno checks with), it
 * rewrites relative extensions on the syntax tree rather than by pattern, and it is plain JavaScript
 * with no platform binary or install script (npm here refuses install scripts by default).
 *
 * With `--pkg` it builds the package a Node or Bun user installs instead (`deno task build:pkg`):
 * the library only (no tests, no bench), each module as ESM `.js` plus its `.d.ts` declarations
 * (TypeScript's `transpileDeclaration`, one file at a time: the sources have explicit types on
 * their exports, as JSR's "no slow types" demands), a publishable `package.json` (`exports` with
 * `types` for every subpath of `deno.json`, `engines`, `sideEffects: false`, `dependencies`) and
 * the README, in `.build/pkg/`, then `npm pack` writes `.build/cachekit-core-<version>.tgz`.
 *
 * Usage: `deno run -A tools/build_npm.ts [--out <dir>] [--no-install] [--pkg]`
 *
 * @module
 */
// Inline, not in deno.json's import map: every import-map package is installed by any `deno run`
// in the repository (the demo in a fresh clone too); tools run with --lock=deno.dev.lock.
// deno-lint-ignore no-import-prefix
import ts from "npm:typescript@^6.0.3";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (the folder holding `deno.json`). */
export const ROOT: string = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Default output folder of the build. */
export const DEFAULT_OUT: string = join(ROOT, ".build", "npm");

/** Default output folder of the package build (`--pkg`); `npm pack` writes next to it. */
export const DEFAULT_PKG_OUT: string = join(ROOT, ".build", "pkg");

/** Folders never transpiled (besides the publish excludes): tooling and build outputs. */
const ALWAYS_SKIP = new Set([
  "node_modules",
  ".build",
  ".git",
  "tools",
  "bench",
  "coverage",
  ".ci",
]);

interface DenoJson {
  name: string;
  version: string;
  license?: string;
  exports: string | Record<string, string>;
  imports?: Record<string, string>;
  publish?: { exclude?: string[]; include?: string[] };
}

/** What {@linkcode buildNpm} produced. */
export interface BuildResult {
  /** Output folder. */
  out: string;
  /** Number of modules transpiled. */
  modules: number;
  /** npm packages the library imports (name → range). */
  dependencies: Record<string, string>;
  /** npm packages only the tests import (name → range). */
  devDependencies: Record<string, string>;
  /** Whether `npm install` ran (false when the cached install still matched). */
  installed: boolean;
  /** Milliseconds spent transpiling. */
  transpileMs: number;
  /** Milliseconds spent in `npm install` (0 when cached). */
  installMs: number;
  /** Path of the tarball `npm pack` wrote (package builds only). */
  tarball?: string;
}

/** An npm target of the import map: package name, version range, subpath (may be ""). */
interface NpmTarget {
  name: string;
  range: string;
  subpath: string;
}

/** Parse `npm:name@range/sub`, `npm:@scope/name@range/sub` and Deno's `npm:/@scope/name@range/`. */
export function parseNpmSpecifier(spec: string): NpmTarget | null {
  if (!spec.startsWith("npm:")) return null;
  const rest = spec.slice(4).replace(/^\//, "");
  const m = /^((?:@[^/@]+\/)?[^/@]+)(?:@([^/]*))?(\/.*)?$/.exec(rest);
  if (!m) return null;
  return { name: m[1], range: m[2] ?? "*", subpath: m[3] ?? "" };
}

/**
 * Map one module specifier of the sources to what Node resolves; records npm packages used.
 * Returns `undefined` for specifiers left as they are (relative, `node:`, URLs).
 */
function mapSpecifier(
  spec: string,
  imports: Record<string, string>,
  used: Map<string, string>,
  where: string,
): string | undefined {
  if (spec.startsWith(".") || spec.startsWith("/") || spec.startsWith("node:")) return undefined;
  if (spec.startsWith("bun:")) return undefined;
  let target: string | undefined = undefined;
  if (spec in imports) {
    target = imports[spec];
  } else {
    // Longest "prefix/" key of the import map.
    let best = "";
    for (const key of Object.keys(imports)) {
      if (key.endsWith("/") && spec.startsWith(key) && key.length > best.length) best = key;
    }
    if (best) target = imports[best] + spec.slice(best.length);
  }
  target ??= spec;
  if (target.startsWith("jsr:")) {
    throw new Error(
      `${where}: "${spec}" maps to ${target}; JSR packages are not mapped to npm yet`,
    );
  }
  const npm = parseNpmSpecifier(target);
  if (npm) {
    used.set(npm.name, npm.range);
    return npm.name + npm.subpath.replace(/^\/\//, "/");
  }
  if (/^[a-z]+:/i.test(target)) {
    throw new Error(`${where}: "${spec}" maps to ${target}, which Node cannot load`);
  }
  throw new Error(`${where}: bare specifier "${spec}" is not in the deno.json import map`);
}

/**
 * A transformer rewriting module specifiers of static and literal dynamic imports (and, in
 * declarations, of `import("…")` types).
 */
function specifierTransformer(
  rewrite: (spec: string) => string | undefined,
): ts.TransformerFactory<ts.SourceFile> {
  return (context) => {
    const f = context.factory;
    const lit = (node: ts.Expression | undefined): ts.StringLiteral | undefined => {
      if (!node || !ts.isStringLiteral(node)) return undefined;
      const mapped = rewrite(node.text);
      return mapped === undefined ? undefined : f.createStringLiteral(mapped);
    };
    const visit = (node: ts.Node): ts.Node => {
      if (ts.isImportDeclaration(node)) {
        const s = lit(node.moduleSpecifier);
        if (s) {
          return f.updateImportDeclaration(
            node,
            node.modifiers,
            node.importClause,
            s,
            node.attributes,
          );
        }
        return node;
      }
      if (ts.isExportDeclaration(node)) {
        const s = lit(node.moduleSpecifier);
        if (s) {
          return f.updateExportDeclaration(
            node,
            node.modifiers,
            node.isTypeOnly,
            node.exportClause,
            s,
            node.attributes,
          );
        }
        return node;
      }
      if (
        ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) &&
        ts.isStringLiteral(node.argument.literal)
      ) {
        const s = lit(node.argument.literal);
        const typed = ts.visitEachChild(node, visit, context);
        if (!s) return typed;
        return f.updateImportTypeNode(
          typed,
          f.createLiteralTypeNode(s),
          typed.attributes,
          typed.qualifier,
          typed.typeArguments,
          typed.isTypeOf,
        );
      }
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
        const s = lit(node.arguments[0]);
        const args = ts.visitNodes(node.arguments, visit) as ts.NodeArray<ts.Expression>;
        if (s) {
          return f.updateCallExpression(node, node.expression, node.typeArguments, [
            s,
            ...args.slice(1),
          ]);
        }
        return f.updateCallExpression(node, node.expression, node.typeArguments, args);
      }
      return ts.visitEachChild(node, visit, context);
    };
    return (sf) => ts.visitNode(sf, visit) as ts.SourceFile;
  };
}

/**
 * Works around `transpileDeclaration` (TypeScript 6.0) declaring a class method with a computed name
 * (`[Symbol.asyncDispose]()`) twice, once as a property of function type: a consumer's `tsc` reports
 * "Duplicate identifier". Drops such a property when the class declares the method too.
 */
const dedupeComputedMembers: ts.TransformerFactory<ts.SourceFile> = (context) => {
  const f = context.factory;
  const computed = (m: ts.ClassElement) =>
    m.name && ts.isComputedPropertyName(m.name) ? m.name.expression.getText() : undefined;
  const visit = (node: ts.Node): ts.Node => {
    if (!ts.isClassDeclaration(node)) return ts.visitEachChild(node, visit, context);
    const methods = new Set(node.members.filter(ts.isMethodDeclaration).map(computed));
    const members = node.members.filter((m) =>
      !(ts.isPropertyDeclaration(m) && computed(m) !== undefined && methods.has(computed(m)))
    );
    if (members.length === node.members.length) return node;
    return f.updateClassDeclaration(
      node,
      node.modifiers,
      node.name,
      node.typeParameters,
      node.heritageClauses,
      members,
    );
  };
  return (sf) => ts.visitNode(sf, visit) as ts.SourceFile;
};

/** Glob-ish match of a publish exclude entry ("tests/", "demo.ts", "node_modules/"). */
function excluded(rel: string, patterns: string[]): boolean {
  const posix = rel.split(sep).join("/");
  return patterns.some((p) => {
    const q = p.replace(/^\.\//, "");
    if (q.endsWith("/")) return posix === q.slice(0, -1) || posix.startsWith(q);
    return posix === q || posix.startsWith(q + "/");
  });
}

function walk(dir: string, keep: (rel: string, isDir: boolean) => boolean, out: string[] = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, entry.name);
    const rel = relative(ROOT, abs);
    if (entry.isDirectory()) {
      if (keep(rel, true)) walk(abs, keep, out);
    } else if (entry.isFile() && keep(rel, false)) {
      out.push(rel);
    }
  }
  return out;
}

/**
 * Top-level folders built although not published: the tests, the fuzzers the tests import and the
 * examples the tests run.
 */
const TEST_DIRS = new Set(["tests", "fuzz", "examples"]);

/** Built although not published (the test build only): those folders and the demo. */
const TEST_ONLY = /^\.?\/?(tests\/?|fuzz\/?|examples\/?|demo\.ts)$/;

/**
 * The relative paths of the modules to build: the published library and (unless `tests` is false)
 * `tests/`, `fuzz/`, `examples/` and `demo.ts`.
 */
export function sourceFiles(config: DenoJson, tests = true): string[] {
  const excludes = (config.publish?.exclude ?? []).filter((p) => !tests || !TEST_ONLY.test(p));
  return walk(ROOT, (rel, isDir) => {
    const top = rel.split(sep)[0];
    if (ALWAYS_SKIP.has(top) || top.startsWith(".")) return false;
    if (excluded(rel, excludes)) return false;
    if (isDir) return true;
    return rel.endsWith(".ts") && !rel.endsWith(".d.ts");
  }).sort();
}

const COMPILER_OPTIONS: ts.CompilerOptions = {
  target: ts.ScriptTarget.ES2022, // Node 20: downlevels `using`, keeps everything it runs natively
  module: ts.ModuleKind.ESNext,
  isolatedModules: true,
  rewriteRelativeImportExtensions: true,
  inlineSourceMap: true,
  inlineSources: true,
  removeComments: false,
};

/** Compiler options of the package build: no source maps. */
const PKG_COMPILER_OPTIONS: ts.CompilerOptions = {
  ...COMPILER_OPTIONS,
  inlineSourceMap: false,
  inlineSources: false,
};

/** Compiler options of the package's declarations. */
const DTS_COMPILER_OPTIONS: ts.CompilerOptions = {
  ...PKG_COMPILER_OPTIONS,
  declaration: true,
  isolatedDeclarations: true,
};

function depsKey(pkg: Record<string, unknown>): string {
  return JSON.stringify([pkg.dependencies, pkg.devDependencies]);
}

/** Transpile one module (and, for the package, its declarations) into `out`. */
function transpileFile(
  rel: string,
  out: string,
  ctx: {
    imports: Record<string, string>;
    options: ts.CompilerOptions;
    pkgBuild: boolean;
    libUsed: Map<string, string>;
    testUsed: Map<string, string>;
    errors: string[];
  },
): void {
  const { imports, options, pkgBuild, libUsed, testUsed, errors } = ctx;
  const isTest = TEST_DIRS.has(rel.split(sep)[0]);
  const used = isTest ? testUsed : libUsed;
  const rewrite = (spec: string) => {
    try {
      return mapSpecifier(spec, imports, used, rel);
    } catch (e) {
      errors.push((e as Error).message);
      return undefined;
    }
  };
  const source = readFileSync(join(ROOT, rel), "utf8");
  const result = ts.transpileModule(source, {
    compilerOptions: options,
    fileName: rel,
    reportDiagnostics: true,
    transformers: { before: [specifierTransformer(rewrite)] },
  });
  const dest = join(out, rel.replace(/\.ts$/, ".js"));
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest, result.outputText);
  const diagnostics = [...(result.diagnostics ?? [])];
  if (pkgBuild) {
    // Declarations: relative `.ts` imports become `.js` (resolved to the `.d.ts` beside it).
    const rewriteDts = (spec: string) =>
      spec.startsWith(".") ? spec.replace(/\.ts$/, ".js") : rewrite(spec);
    const dts = ts.transpileDeclaration(source, {
      compilerOptions: DTS_COMPILER_OPTIONS,
      fileName: rel,
      reportDiagnostics: true,
      transformers: {
        afterDeclarations: [
          specifierTransformer(rewriteDts),
          dedupeComputedMembers,
        ] as ts.TransformerFactory<ts.SourceFile | ts.Bundle>[],
      },
    });
    // 9038: a computed member name (`[Symbol.for("nodejs.util.inspect.custom")]()`) is left out
    // of the declarations, which is what a consumer needs: those are runtime inspection hooks.
    diagnostics.push(...(dts.diagnostics ?? []).filter((d) => d.code !== 9038));
    writeFileSync(dest.replace(/\.js$/, ".d.ts"), dts.outputText);
  }
  for (const d of diagnostics) {
    errors.push(`${rel}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
  }
}

/** `npm install` the build's dependencies, unless the installed ones are already these. */
function installDeps(
  out: string,
  pkg: Record<string, unknown>,
  log: (s: string) => void,
): { installed: boolean; installMs: number } {
  const stamp = join(out, "node_modules", ".cachekit-deps.json");
  const key = depsKey(pkg);
  if (existsSync(stamp) && readFileSync(stamp, "utf8") === key) {
    return { installed: false, installMs: 0 };
  }
  const t1 = performance.now();
  log("build_npm: npm install (dependencies changed or not yet installed)");
  const r = spawnSync(
    "npm",
    ["install", "--no-audit", "--no-fund", "--loglevel=error", "--include=dev"],
    { cwd: out, stdio: ["ignore", "inherit", "inherit"], env: { ...process.env, NODE_ENV: "" } },
  );
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`build_npm: npm install exited ${r.status}`);
  writeFileSync(stamp, key);
  const installMs = performance.now() - t1;
  log(`build_npm: npm install took ${(installMs / 1000).toFixed(1)} s`);
  return { installed: true, installMs };
}

/** Transpile the package into `out`, write its package.json and install its npm dependencies. */
export function buildNpm(
  opts: { out?: string; install?: boolean; quiet?: boolean; pkg?: boolean } = {},
): BuildResult {
  const pkgBuild = opts.pkg ?? false;
  const out = opts.out ?? (pkgBuild ? DEFAULT_PKG_OUT : DEFAULT_OUT);
  const log = opts.quiet ? () => {} : (s: string) => console.log(s);
  const config = JSON.parse(readFileSync(join(ROOT, "deno.json"), "utf8")) as DenoJson;
  const imports = config.imports ?? {};

  // Fresh output, but keep the installed dependencies and their lock.
  mkdirSync(out, { recursive: true });
  for (const entry of readdirSync(out)) {
    if (entry !== "node_modules" && entry !== "package-lock.json") {
      rmSync(join(out, entry), { recursive: true, force: true });
    }
  }

  const t0 = performance.now();
  const files = sourceFiles(config, !pkgBuild);
  const options = pkgBuild ? PKG_COMPILER_OPTIONS : COMPILER_OPTIONS;
  const libUsed = new Map<string, string>();
  const testUsed = new Map<string, string>();
  const errors: string[] = [];
  const ctx = { imports, options, pkgBuild, libUsed, testUsed, errors };
  for (const rel of files) transpileFile(rel, out, ctx);
  if (errors.length) {
    throw new Error(`build_npm: ${errors.length} error(s)\n  ${errors.join("\n  ")}`);
  }
  const transpileMs = performance.now() - t0;

  const toJs = (p: string) => p.replace(/\.ts$/, ".js");
  const entry = (p: string) =>
    pkgBuild ? { types: p.replace(/\.ts$/, ".d.ts"), default: toJs(p) } : toJs(p);
  const exportsMap = typeof config.exports === "string"
    ? { ".": entry(config.exports) }
    : Object.fromEntries(Object.entries(config.exports).map(([k, v]) => [k, entry(v)]));
  const dependencies = Object.fromEntries([...libUsed].sort());
  const devDependencies = Object.fromEntries(
    [...testUsed].filter(([name]) => !libUsed.has(name)).sort(),
  );
  if (pkgBuild) {
    return packBuild(config, out, exportsMap, dependencies, files.length, transpileMs, log);
  }
  const pkg = {
    name: config.name,
    version: config.version,
    license: config.license,
    type: "module",
    private: true, // a test build: never `npm publish` this folder
    exports: exportsMap,
    engines: { node: ">=20" },
    dependencies,
    devDependencies,
  };
  writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  log(`build_npm: ${files.length} modules transpiled in ${transpileMs.toFixed(0)} ms → ${out}`);

  const { installed, installMs } = (opts.install ?? true)
    ? installDeps(out, pkg, log)
    : { installed: false, installMs: 0 };
  return {
    out,
    modules: files.length,
    dependencies,
    devDependencies,
    installed,
    transpileMs,
    installMs,
  };
}

/** Write the publishable package.json and README into `out`, then `npm pack` it next to `out`. */
/**
 * Packages the library imports only through a specifier held in a variable (`apache-arrow`, see
 * `serializers/arrow_module.ts`), so the transpiler never sees them: optional peer dependencies of
 * the published package, at the import map's range.
 */
const OPTIONAL_PEERS = ["apache-arrow"];

function optionalPeers(config: DenoJson): {
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional: true }>;
} {
  const peers: Record<string, string> = {};
  for (const name of OPTIONAL_PEERS) {
    const target = config.imports?.[name];
    const range = target?.startsWith(`npm:${name}@`) ? target.slice(`npm:${name}@`.length) : null;
    if (range === null) throw new Error(`build_npm: deno.json imports no npm:${name}@<range>`);
    peers[name] = range;
  }
  if (Object.keys(peers).length === 0) return {};
  return {
    peerDependencies: peers,
    peerDependenciesMeta: Object.fromEntries(
      Object.keys(peers).map((n) => [n, { optional: true as const }]),
    ),
  };
}

function packBuild(
  config: DenoJson,
  out: string,
  exportsMap: Record<string, unknown>,
  dependencies: Record<string, string>,
  modules: number,
  transpileMs: number,
  log: (s: string) => void,
): BuildResult {
  const pkg = {
    name: config.name,
    version: config.version,
    description:
      "Production caching for TypeScript, wire-compatible with cachekit-py (protocol v1.0)",
    license: config.license,
    type: "module",
    main: "./mod.js",
    types: "./mod.d.ts",
    exports: exportsMap,
    sideEffects: false,
    engines: { node: ">=20" },
    dependencies,
    ...optionalPeers(config),
  };
  writeFileSync(join(out, "package.json"), JSON.stringify(pkg, null, 2) + "\n");
  for (const doc of ["README.md", "LICENSE", "THIRD_PARTY_NOTICES.md"]) {
    if (existsSync(join(ROOT, doc))) writeFileSync(join(out, doc), readFileSync(join(ROOT, doc)));
  }
  log(`build_npm: ${modules} modules + declarations in ${transpileMs.toFixed(0)} ms → ${out}`);
  const dest = dirname(out);
  const r = spawnSync("npm", ["pack", "--json", "--pack-destination", dest], {
    cwd: out,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`build_npm: npm pack exited ${r.status}`);
  const [{ filename }] = JSON.parse(r.stdout) as { filename: string }[];
  const tarball = join(dest, filename);
  log(`build_npm: npm pack → ${tarball}`);
  return {
    out,
    modules,
    dependencies,
    devDependencies: {},
    installed: false,
    transpileMs,
    installMs: 0,
    tarball,
  };
}

/**
 * The test files under `dir` (`*<suffix>`, in subfolders too: `tests/` mirrors the source folders),
 * as absolute paths, sorted; helper folders (`_fixtures/`, any `_name/`) are not searched.
 */
export function testFiles(dir: string, suffix: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const abs = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!entry.name.startsWith("_")) found.push(...testFiles(abs, suffix));
    } else if (entry.name.endsWith(suffix) && statSync(abs).isFile()) {
      found.push(abs);
    }
  }
  return found.sort();
}

/** The built test files (`*_test.js` in `tests/` and its subfolders), sorted. */
export function builtTests(out: string = DEFAULT_OUT): string[] {
  return testFiles(join(out, "tests"), "_test.js");
}

if (import.meta.main) {
  const args = Deno.args;
  const outIdx = args.indexOf("--out");
  const pkg = args.includes("--pkg");
  const out = outIdx >= 0 ? resolve(args[outIdx + 1]) : pkg ? DEFAULT_PKG_OUT : DEFAULT_OUT;
  try {
    buildNpm({ out, install: !args.includes("--no-install"), pkg });
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
