// Child process for tests/health/console_notice_test.ts: a cached function over a backend of the
// kind given (`memory`, `file` in a fresh directory, or `redis` on CACHEKIT_TEST_REDIS_URL under a
// unique prefix) that the application closes while a call computes, so that the call's L2 write and
// lock release land after close(); with `--after`, calls made after close() too (a read, an
// invalidation, a refresh). Prints on stdout the answers, the kinds of the function's `error` events and its
// health. No logging is configured: any console notice goes to stderr. The process must end by
// itself.
import process from "node:process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Backend, cache, FileBackend, MemoryBackend, RedisBackend } from "../../mod.ts";

const kind = process.argv.find((a) => ["memory", "file", "redis"].includes(a));
const dir = kind === "file" ? mkdtempSync(join(tmpdir(), "ck-closed-")) : null;
const backend: Backend = kind === "memory"
  ? new MemoryBackend()
  : dir !== null
  ? new FileBackend({ directory: dir })
  : new RedisBackend({
    url: process.env.CACHEKIT_TEST_REDIS_URL ?? "redis://127.0.0.1:6379",
    keyPrefix: `cktest:closed:${crypto.randomUUID()}:`,
  });
let open!: () => void;
const gate = new Promise<void>((r) => open = r);
let computing!: () => void;
const started = new Promise<void>((r) => computing = r);
const double = cache(async (n: number) => {
  if (n === 1) {
    computing();
    await gate;
  }
  return n * 2;
}, { name: `tests.closed_backend.${kind}`, ttl: 60, backend });
const kinds: string[] = [];
double.events.addEventListener("error", (e) => kinds.push(e.detail.kind ?? "none"));
const first = double(1);
await started;
await backend.close!(); // the application closes the backend while a call computes
open();
const out = [await first]; // its write and lock release land after close()
if (process.argv.includes("--after")) {
  // Calls made after close(): a read, an invalidation, a refresh, a read again.
  out.push(await double(2));
  await double.invalidate(2);
  await double.refresh(3);
  out.push(await double(1));
}
// Let anything still in flight (a write, a lock release, a publish) land and report.
for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 10));
const health = double.getHealthStatus();
console.log(
  JSON.stringify({ out, kinds, status: health.status, lastErrorKind: health.lastErrorKind }),
);
if (dir !== null) rmSync(dir, { recursive: true, force: true });
