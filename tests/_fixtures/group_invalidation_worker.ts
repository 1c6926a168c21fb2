/**
 * Child process for `tests/engine/engine_redis_group_test.ts`: a process that wraps nothing (an admin
 * script, a webhook worker) and runs one group invalidation against the default backend, which
 * `CACHEKIT_REDIS_URL` points at Redis. Prints `{"ok":true}` once done.
 *
 * Usage: `<runtime> group_invalidation_worker.ts '{"op":"tags"|"namespace"|"function","arg":…}'`.
 *
 * @module
 */

import process from "node:process";
import { clearFunction, clearNamespace, closeDefaultBackend, invalidateTags } from "../../mod.ts";

// The default backend's first connection is bounded by connectTimeoutMs (5 s), the driver's
// import included; on an overloaded host (every runtime's files at once beside busy processes) the
// import alone outlasted it, the invalidation failed (a warning, queued for a retry this process
// never makes) and nothing was deleted. Loaded first, the driver leaves the bound to the connection.
await import("redis");

const cfg = JSON.parse(process.argv[process.argv.length - 1]) as {
  op: "tags" | "namespace" | "function";
  arg: string;
  namespace?: string;
};
if (cfg.op === "tags") await invalidateTags(cfg.arg);
else if (cfg.op === "namespace") await clearNamespace(cfg.arg);
else await clearFunction(cfg.arg, { namespace: cfg.namespace });
await closeDefaultBackend();
console.log(JSON.stringify({ ok: true }));
