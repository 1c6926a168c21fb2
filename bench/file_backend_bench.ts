/**
 * File backend get/set against raw `Deno.readFile` / `Deno.writeFile` of the same bytes, for a
 * small (100 B) and a 100 KB value. Raw I/O is the floor: the backend adds the header, key check,
 * no-follow open, temp file + rename, and the LRU touch.
 *
 * Run: `deno bench -A bench/file_backend_bench.ts`
 *
 * @module
 */

import { FileBackend } from "../backends/mod.ts";

const dir = Deno.makeTempDirSync({ prefix: "ck-bench-" });
const backend = new FileBackend({ directory: `${dir}/cache` });
const rawDir = `${dir}/raw`;
Deno.mkdirSync(rawDir);

const small = crypto.getRandomValues(new Uint8Array(100));
const large = new Uint8Array(100 * 1024);
for (let i = 0; i < large.length; i += 65536) {
  crypto.getRandomValues(large.subarray(i, Math.min(i + 65536, large.length)));
}

await backend.set("bench:small", small);
await backend.set("bench:large", large);
Deno.writeFileSync(`${rawDir}/small`, small);
Deno.writeFileSync(`${rawDir}/large`, large);

let n = 0;
for (const [label, value] of [["100 B", small], ["100 KB", large]] as const) {
  const key = label === "100 B" ? "bench:small" : "bench:large";
  const raw = `${rawDir}/${label === "100 B" ? "small" : "large"}`;

  Deno.bench({
    name: `raw Deno.readFile ${label}`,
    group: `get ${label}`,
    baseline: true,
    fn: async () => {
      await Deno.readFile(raw);
    },
  });
  Deno.bench({
    name: `FileBackend.get ${label}`,
    group: `get ${label}`,
    fn: async () => {
      if ((await backend.get(key)) === null) throw new Error("miss");
    },
  });
  Deno.bench({
    name: `raw Deno.writeFile ${label}`,
    group: `set ${label}`,
    baseline: true,
    fn: async () => {
      await Deno.writeFile(raw, value);
    },
  });
  Deno.bench({
    name: `raw write temp + rename ${label}`,
    group: `set ${label}`,
    fn: async () => {
      const tmp = `${raw}.tmp${n++}`;
      await Deno.writeFile(tmp, value, { createNew: true, mode: 0o600 });
      await Deno.rename(tmp, raw);
    },
  });
  Deno.bench({
    name: `FileBackend.set ${label}`,
    group: `set ${label}`,
    fn: async () => {
      await backend.set(key, value, 3600);
    },
  });
}

globalThis.addEventListener("unload", () => {
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch { /* ignore */ }
});
