// Child process for tests/health/console_notice_test.ts: wraps a function over an unreachable Redis
// (CACHEKIT_REDIS_URL from the parent), calls it three times and prints the results on stdout.
// With `--logtape` it configures LogTape first (no sink for cachekit), which must silence the
// console notice. The process must end by itself.
import process from "node:process";
import { configure } from "@logtape/logtape";
import { cache, closeDefaultBackend } from "../../mod.ts";

if (process.argv.includes("--logtape")) {
  await configure({ sinks: {}, loggers: [], reset: true });
}
let runs = 0;
const double = cache(async (n: number) => {
  runs++;
  return await Promise.resolve(n * 2);
}, { name: "tests.console_notice.double", ttl: 60, l1: false });
const out = [await double(1), await double(2), await double(1)];
console.log(JSON.stringify({ out, runs }));
await closeDefaultBackend();
