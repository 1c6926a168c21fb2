// The npm package a Node or Bun user installs (issue 13): `tools/build_npm.ts --pkg` builds and
// `npm pack`s it into a temporary folder; a fresh TypeScript project installs the tarball (plus
// `typescript` at the range the build uses and `@types/node`), and `tsc --strict --noEmit` passes
// on a file that uses `cache()` with inferred types — the `@ts-expect-error` lines fail the check if
// those types were `any` (or missing: TS7016). It passes again with `--lib es2023 --types node
// --skipLibCheck false` (no DOM lib, every declaration checked): the declarations need only
// `@types/node`. The tarball holds declarations for every subpath export and no tests or bench.
// Deno only (the build tool runs on Deno); needs npm and the registry (or npm's cache).
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { test } from "../_harness.ts";
import { denoOnly, siblingModule } from "../_runtime.ts";

const ROOT = siblingModule(import.meta.url, "../..");

function run(cmd: string, args: string[], cwd: string): string {
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", timeout: 120_000 });
  if (r.error) throw r.error;
  assert.equal(r.status, 0, `${cmd} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

const CONSUMER = `import { cache } from "@cachekit/core";
import { MemoryBackend } from "@cachekit/core/backends";
import { blake2b256Hex } from "@cachekit/core/protocol";
import { arrowLoaded, JsonSerializer, type NumpyArray } from "@cachekit/core/serializers";

async function getUser(id: number): Promise<{ id: number; name: string }> {
  return { id, name: "ada" };
}
const cached = cache(getUser, { backend: new MemoryBackend(), ttl: 60 });
const user = await cached(1);
const name: string = user.name;
// @ts-expect-error the inferred result has no \`email\`
user.email;
// @ts-expect-error the inferred parameter is a number
await cached("1");
const local = cache((n: number) => n * 2, { backend: null, name: "double" });
const doubled: number = local(2); // L1 only: stays synchronous
const status = local.withStatus(2); // synchronous too
const st: "hit" | "stale" | "miss" | "joined" | "uncached" = status.status;
const v: number = status.value;
const asyncStatus = await cached.withStatus(1);
// @ts-expect-error the value of an awaited CallResult is the function's result
asyncStatus.value.email;
cached.events.addEventListener("hit", (e) => console.log(e.detail.layer));
const ac = new AbortController();
cached.events.addEventListener("miss", (e) => console.log(e.detail.identity), {
  once: true,
  signal: ac.signal,
});
// @ts-expect-error a listener is a function or an object with handleEvent (the types are not any)
cached.events.addEventListener("miss", 42);
// @ts-expect-error addEventListener's options have no \`bogus\`
cached.events.addEventListener("miss", () => {}, { bogus: true });
console.log(name, doubled, st, v, blake2b256Hex(new Uint8Array(1)), typeof JsonSerializer);
// apache-arrow is an optional peer, not installed here: its serializer's types still check.
const frames = cache(async (n: number): Promise<unknown> => n, { serializer: "arrow", ttl: 60 });
const shape: readonly number[] | undefined = (null as NumpyArray | null)?.shape;
console.log(typeof frames, arrowLoaded(), shape);
`;

test(
  "npm package: the packed tarball type-checks in a fresh TypeScript project (tsc --strict)",
  () => {
    const dir = mkdtempSync(join(tmpdir(), "ck-npm-pkg-"));
    try {
      const out = join(dir, "pkg");
      run(process.execPath, [
        "run",
        "-A",
        "--lock=deno.dev.lock",
        "tools/build_npm.ts",
        "--pkg",
        "--out",
        out,
      ], ROOT);
      const pkg = JSON.parse(readFileSync(join(out, "package.json"), "utf8"));
      const tarball = join(dir, `cachekit-core-${pkg.version}.tgz`);
      const files = run("tar", ["tzf", tarball], dir).split("\n").filter((f) => f !== "");
      assert.ok(files.includes("package/mod.d.ts"), "declarations are packed");
      assert.ok(!files.some((f) => /^package\/(tests|bench|tools)\//.test(f)), files.join("\n"));
      assert.equal(pkg.type, "module");
      assert.equal(pkg.sideEffects, false);
      assert.deepEqual(pkg.engines, { node: ">=20" });
      // Imported statically by the engine (a no-op without an SDK): a dependency, with the wide
      // range that lets npm share the application's copy (the API accepts an SDK registered by the
      // same or a newer minor only).
      assert.equal(pkg.dependencies["@opentelemetry/api"], "^1.3.0");
      assert.equal(pkg.peerDependencies?.["@opentelemetry/api"], undefined);
      // apache-arrow: an optional peer at the import map's range, never a dependency.
      assert.equal(pkg.dependencies["apache-arrow"], undefined);
      assert.equal(pkg.peerDependencies["apache-arrow"], "^21.2.0");
      assert.deepEqual(pkg.peerDependenciesMeta["apache-arrow"], { optional: true });
      for (const [sub, entry] of Object.entries(pkg.exports)) {
        const { types } = entry as { types: string };
        assert.ok(files.includes(`package/${types.slice(2)}`), `types of ${sub}: ${types}`);
      }

      // The TypeScript the build uses (its inline `npm:typescript@<range>` import).
      const build = readFileSync(join(ROOT, "tools", "build_npm.ts"), "utf8");
      const tsRange = /"npm:typescript@([^"]+)"/.exec(build)![1];
      const app = join(dir, "app");
      mkdirSync(app);
      writeFileSync(join(app, "package.json"), '{"name":"app","private":true,"type":"module"}\n');
      writeFileSync(join(app, "main.ts"), CONSUMER);
      run("npm", [
        "install",
        "--no-audit",
        "--no-fund",
        "--prefer-offline",
        "--loglevel=error",
        tarball,
        `typescript@${tsRange}`,
        "@types/node@20",
      ], app);
      const tsc = join(app, "node_modules", "typescript", "bin", "tsc");
      assert.ok(
        !existsSync(join(app, "node_modules", "apache-arrow")),
        "an optional peer is not installed",
      );
      const common = ["--strict", "--noEmit", "--module", "nodenext", "--target", "es2022"];
      const r = spawnSync("node", [tsc, ...common, "main.ts"], {
        cwd: app,
        encoding: "utf8",
        timeout: 120_000,
      });
      assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
      // A Node project without the DOM lib that checks every declaration file: the package's
      // declarations name no DOM-only type (AddEventListenerOptions, CryptoKey, BufferSource…).
      const noDom = spawnSync("node", [
        tsc,
        ...common,
        "--lib",
        "es2023",
        "--types",
        "node",
        "--skipLibCheck",
        "false",
        "main.ts",
      ], { cwd: app, encoding: "utf8", timeout: 120_000 });
      assert.equal(
        noDom.status,
        0,
        `tsc (lib es2023, no DOM) failed:\n${noDom.stdout}${noDom.stderr}`,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  denoOnly("builds the package with tools/build_npm.ts, a Deno program"),
);
