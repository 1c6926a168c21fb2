/**
 * Builds the package the way a Node user consumes it from JSR's npm compatibility layer: every
 * TypeScript module of the library (the files `deno publish` would ship), of `tests/` and of `fuzz/`
 * (a test runs a slice of the fuzzers) is transpiled, one file at a time and without bundling, to
 * an ES module in `.build/npm/`:
 *
 * - relative `.ts` imports become `.js` (`rewriteRelativeImportExtensions`);
 * - bare specifiers of the `deno.json` import map (and inline `npm:` specifiers) become the npm
 *   package name plus subpath, e.g. `@noble/hashes/blake2.js` → `@noble/hashes/blake2.js`,
 *   `npm:lz4js@^0.2.0` → `lz4js`; an unmapped bare specifier or a `jsr:` one fails the build;
 * - a generated `package.json` (`"type": "module"`, `exports` from `deno.json`) lists the npm
 *   packages the library imports as `dependencies` and those only tests import as
 *   `devDependencies`, with the import map's version ranges; `npm install` runs in the folder,
 *   skipped when the dependency set has not changed since the last install.
 *
 * Transpiler: TypeScript's `transpileModule` (pinned in `deno.json` as `typescript`). Measured on the
 * 76 modules of the repository it takes about 2 s against esbuild's 0.1 s, which is noise next to the
 * test run; it is the reference emitter (the same isolated-module semantics Deno checks with), it
 * rewrites relative extensions on the syntax tree rather than by pattern, and it is plain JavaScript
 * with no platform binary or install script (npm here refuses install scripts by default).
 *
 * Usage: `deno run -A tools/build_npm.ts [--out <dir>] [--no-install]`
 *
 * @module
 */
import ts from "typescript";
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

/** A `before` transformer rewriting bare module specifiers of static and literal dynamic imports. */
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

/** Top-level folders built although not published: the tests and the fuzzers the tests import. */
const TEST_DIRS = new Set(["tests", "fuzz"]);

/** The relative paths of the modules to build: the published library, `tests/` and `fuzz/`. */
export function sourceFiles(config: DenoJson): string[] {
  const excludes = (config.publish?.exclude ?? []).filter((p) =>
    !TEST_DIRS.has(p.replace(/^\.?\//, "").replace(/\/$/, ""))
  );
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

function depsKey(pkg: Record<string, unknown>): string {
  return JSON.stringify([pkg.dependencies, pkg.devDependencies]);
}

/** Transpile the package into `out`, write its package.json and install its npm dependencies. */
export function buildNpm(
  opts: { out?: string; install?: boolean; quiet?: boolean } = {},
): BuildResult {
  const out = opts.out ?? DEFAULT_OUT;
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
  const files = sourceFiles(config);
  const libUsed = new Map<string, string>();
  const testUsed = new Map<string, string>();
  const errors: string[] = [];
  for (const rel of files) {
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
      compilerOptions: COMPILER_OPTIONS,
      fileName: rel,
      reportDiagnostics: true,
      transformers: { before: [specifierTransformer(rewrite)] },
    });
    for (const d of result.diagnostics ?? []) {
      errors.push(`${rel}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
    }
    const dest = join(out, rel.replace(/\.ts$/, ".js"));
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, result.outputText);
  }
  if (errors.length) {
    throw new Error(`build_npm: ${errors.length} error(s)\n  ${errors.join("\n  ")}`);
  }
  const transpileMs = performance.now() - t0;

  const toJs = (p: string) => p.replace(/\.ts$/, ".js");
  const exportsMap = typeof config.exports === "string"
    ? { ".": toJs(config.exports) }
    : Object.fromEntries(Object.entries(config.exports).map(([k, v]) => [k, toJs(v)]));
  const dependencies = Object.fromEntries([...libUsed].sort());
  const devDependencies = Object.fromEntries(
    [...testUsed].filter(([name]) => !libUsed.has(name)).sort(),
  );
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

  let installed = false;
  let installMs = 0;
  const stamp = join(out, "node_modules", ".cachekit-deps.json");
  const key = depsKey(pkg);
  const cached = existsSync(stamp) && readFileSync(stamp, "utf8") === key;
  if ((opts.install ?? true) && !cached) {
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
    installed = true;
    installMs = performance.now() - t1;
    log(`build_npm: npm install took ${(installMs / 1000).toFixed(1)} s`);
  }
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

/** The built test files (`tests/*_test.js`), sorted. */
export function builtTests(out: string = DEFAULT_OUT): string[] {
  const dir = join(out, "tests");
  return readdirSync(dir)
    .filter((f) => f.endsWith("_test.js") && statSync(join(dir, f)).isFile())
    .sort()
    .map((f) => join(dir, f));
}

if (import.meta.main) {
  const args = Deno.args;
  const outIdx = args.indexOf("--out");
  const out = outIdx >= 0 ? resolve(args[outIdx + 1]) : DEFAULT_OUT;
  try {
    buildNpm({ out, install: !args.includes("--no-install") });
  } catch (e) {
    console.error((e as Error).message);
    Deno.exit(1);
  }
}
