// Child process for tests/health/console_notice_test.ts: wraps a function over the default backend
// (an unreachable Redis from CACHEKIT_REDIS_URL, or a cache directory from CACHEKIT_FILE_CACHE_DIR),
// calls it three times and prints the results on stdout. With `--logtape` it configures LogTape
// first (no sink for cachekit), which must silence the console notice. With `--secure` the function
// is `cache.secure` with plain tenant keys (master key from CACHEKIT_MASTER_KEY). With
// `--notice <kind> <backend>` it only prints the notices of that failure twice (wording checks).
// The process must end by itself.
import process from "node:process";
import { configure } from "@logtape/logtape";
import { cache, closeDefaultBackend } from "../../mod.ts";
import { consoleNotice } from "../../health/internal.ts";
import type { BackendErrorKind } from "../../mod.ts";

const notice = process.argv.indexOf("--notice");
if (notice >= 0) {
  const [kind, backend] = process.argv.slice(notice + 1) as [BackendErrorKind, string];
  consoleNotice(kind, backend, "the error", true);
  consoleNotice(kind, backend, "the error", true); // once per kind
  consoleNotice(kind === "timeout" ? "unknown" : "timeout", backend, "another error", true);
  console.log(JSON.stringify({ out: [2, 4, 2], runs: 0 }));
  process.exit(0);
}
if (process.argv.includes("--logtape")) {
  await configure({ sinks: {}, loggers: [], reset: true });
}
let runs = 0;
const fn = async (n: number) => {
  runs++;
  return await Promise.resolve(n * 2);
};
const options = { name: "tests.console_notice.double", ttl: 60, l1: false } as const;
const double = process.argv.includes("--secure")
  ? cache.secure(fn, { ...options, encryption: { tenantKeys: "plain" } })
  : cache(fn, options);
const out = [await double(1), await double(2), await double(1)];
console.log(JSON.stringify({ out, runs }));
await closeDefaultBackend();
