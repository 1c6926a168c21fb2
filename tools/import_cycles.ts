/**
 * Checks the import layering of the sources: lists import cycles between folders, imports of
 * another folder's private file (`_name.ts`, or anything under a `_name/` folder), and internal
 * faces made public.
 *
 * Why folders: a folder is a layer (`backends/`, `protocol/`, `reliability/`, …) with one
 * direction of dependency; a cycle between two folders means neither can be read, tested or moved
 * without the other. Files at the root are each their own unit (the entry files and `errors.ts`
 * are imported from everywhere and import little). Type-only imports count too (they tie the
 * layers together as much as value imports do), but are marked `(type)` in the report.
 *
 * Internal faces: what other folders need of a folder's private files goes through that folder's
 * `internal.ts` (e.g. `engine/internal.ts`, `protocol/internal.ts`), a non-underscore file that
 * re-exports it. Such a face is for the package only, so it must not be an entry point of
 * `deno.json` `exports` nor be re-exported wholesale (`export * from`) by one; an entry point may
 * take a name from it (`export { closeDefaultBackend } from "./engine/internal.ts"`).
 *
 * Scanned: every `.ts` file outside `tests/`, `bench/`, `fuzz/`, `tools/` and build output (tests
 * may reach into private files). Relative specifiers only; `import(…)` and `export … from` count.
 *
 * Usage: `deno run --allow-read tools/import_cycles.ts [root]`; exits 1 when it finds anything.
 *
 * @module
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative, sep } from "node:path";

/** Top-level folders that are not part of the published sources. */
const SKIP = new Set(["tests", "bench", "fuzz", "tools", "node_modules", "coverage", ".build"]);

/** One import between two files (paths relative to the root, `/`-separated). */
export interface ImportEdge {
  /** The importing file. */
  from: string;
  /** The imported file. */
  to: string;
  /** Whether every import of `to` in `from` is type-only. */
  typeOnly: boolean;
}

/** What {@linkcode checkImports} found. */
export interface ImportReport {
  /** Each elementary cycle between units: the units in order, and the file edges of each step. */
  cycles: { units: string[]; steps: ImportEdge[][] }[];
  /** Imports of another folder's private file. */
  privateImports: ImportEdge[];
  /** Internal faces that are a public entry point (`from` = `to`) or re-exported whole by one. */
  publicFaces: ImportEdge[];
}

/** The file name of a folder's internal face (what other folders may use of its private files). */
export const INTERNAL_FACE = "internal.ts";

const EXPORT_ALL = /(?:^|[\s;])export\s+(type\s+)?\*\s+from\s+["'](\.{1,2}\/[^"']+)["']/g;

const SPECIFIER =
  /(?:^|[\s;])(import|export)\s+(type\s+)?(?:[\w*${}\s,]+?\s+from\s+)?["'](\.{1,2}\/[^"']+)["']|import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;

function sourceFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (dir === root && SKIP.has(name)) continue;
      out.push(...sourceFiles(root, path));
    } else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) {
      out.push(path);
    }
  }
  return out;
}

function posix(path: string): string {
  return path.split(sep).join("/");
}

/** The unit of a file: its top-level folder, or the file itself at the root. */
export function unitOf(file: string): string {
  const slash = file.indexOf("/");
  return slash === -1 ? file : file.slice(0, slash) + "/";
}

/** Whether `file` is private to its folder (`_name.ts` or under a `_name/` folder). */
function isPrivate(file: string): boolean {
  return file.split("/").some((part) => part.startsWith("_"));
}

/** The file edges of the tree under `root` (comments are not stripped: keep examples out of it). */
export function importEdges(root: string): ImportEdge[] {
  const edges = new Map<string, ImportEdge>();
  for (const path of sourceFiles(root)) {
    const from = posix(relative(root, path));
    const text = readFileSync(path, "utf8").replace(/^\s*\*.*$/gm, "").replace(/\/\/.*$/gm, "");
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[3] ?? m[4];
      const to = posix(normalize(join(dirname(from), spec)));
      const typeOnly = m[2] !== undefined;
      const key = `${from}\0${to}`;
      const seen = edges.get(key);
      if (seen) seen.typeOnly &&= typeOnly;
      else edges.set(key, { from, to, typeOnly });
    }
  }
  return [...edges.values()];
}

function isFace(file: string): boolean {
  return file === INTERNAL_FACE || file.endsWith("/" + INTERNAL_FACE);
}

/** The entry points of `root/deno.json` `exports` (relative paths), or none without one. */
function entryPoints(root: string): string[] {
  let exports: unknown;
  try {
    exports = JSON.parse(readFileSync(join(root, "deno.json"), "utf8")).exports;
  } catch {
    return [];
  }
  const targets = typeof exports === "string"
    ? [exports]
    : Object.values((exports ?? {}) as Record<string, string>);
  return targets.map((t) => posix(normalize(t)));
}

/** Internal faces listed as entry points, or re-exported wholesale by an entry point. */
export function publicFaces(root: string): ImportEdge[] {
  const out: ImportEdge[] = [];
  for (const entry of entryPoints(root)) {
    if (isFace(entry)) {
      out.push({ from: entry, to: entry, typeOnly: false });
      continue;
    }
    let text: string;
    try {
      text = readFileSync(join(root, entry), "utf8");
    } catch {
      continue;
    }
    text = text.replace(/^\s*\*.*$/gm, "").replace(/\/\/.*$/gm, "");
    for (const m of text.matchAll(EXPORT_ALL)) {
      const to = posix(normalize(join(dirname(entry), m[2])));
      if (isFace(to)) out.push({ from: entry, to, typeOnly: m[1] !== undefined });
    }
  }
  return out;
}

/** Cycles between units (strongly connected components, each reported once with its edges). */
export function checkImports(root: string): ImportReport {
  const edges = importEdges(root);
  const graph = new Map<string, Set<string>>();
  const privateImports: ImportEdge[] = [];
  for (const e of edges) {
    const a = unitOf(e.from), b = unitOf(e.to);
    if (a === b) continue;
    if (!graph.has(a)) graph.set(a, new Set());
    graph.get(a)!.add(b);
    if (isPrivate(e.to) && b.endsWith("/")) privateImports.push(e);
  }
  const cycles: ImportReport["cycles"] = [];
  for (const scc of stronglyConnected(graph)) {
    if (scc.length < 2) continue;
    for (const units of elementaryCycles(graph, new Set(scc))) {
      const steps = units.map((a, k) => {
        const b = units[(k + 1) % units.length];
        return edges.filter((e) => unitOf(e.from) === a && unitOf(e.to) === b);
      });
      cycles.push({ units, steps });
    }
  }
  return { cycles, privateImports, publicFaces: publicFaces(root) };
}

/** Every elementary cycle within `members`, each once, starting at its smallest unit. */
function elementaryCycles(graph: Map<string, Set<string>>, members: Set<string>): string[][] {
  const out: string[][] = [];
  const path: string[] = [];
  const walk = (start: string, v: string) => {
    path.push(v);
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w) || w < start) continue;
      if (w === start) out.push([...path]);
      else if (!path.includes(w)) walk(start, w);
    }
    path.pop();
  };
  for (const start of [...members].sort()) walk(start, start);
  return out;
}

/** Tarjan's algorithm. */
function stronglyConnected(graph: Map<string, Set<string>>): string[][] {
  let index = 0;
  const indices = new Map<string, number>(), low = new Map<string, number>();
  const stack: string[] = [], onStack = new Set<string>(), out: string[][] = [];
  const visit = (v: string) => {
    indices.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      out.push(scc);
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return out;
}

/** The report as text, one line per finding. */
export function formatReport(report: ImportReport): string {
  const lines: string[] = [];
  const edge = (e: ImportEdge) => `    ${e.from} → ${e.to}${e.typeOnly ? " (type)" : ""}`;
  for (const c of report.cycles) {
    lines.push(`cycle ${[...c.units, c.units[0]].join(" → ")}:`, ...c.steps.flat().map(edge));
  }
  if (report.privateImports.length) {
    lines.push("imports of another folder's private file:", ...report.privateImports.map(edge));
  }
  if (report.publicFaces.length) {
    lines.push(
      "internal faces in the public API (an entry point, or re-exported whole by one):",
      ...report.publicFaces.map(edge),
    );
  }
  if (!lines.length) {
    lines.push("no import cycles between folders, no private imports, no public internal faces");
  }
  return lines.join("\n");
}

if (import.meta.main) {
  const root = Deno.args[0] ?? join(dirname(new URL(import.meta.url).pathname), "..");
  const report = checkImports(root);
  console.log(formatReport(report));
  const found = report.cycles.length + report.privateImports.length + report.publicFaces.length;
  if (found) Deno.exitCode = 1;
}
