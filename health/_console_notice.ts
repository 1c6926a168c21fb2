/**
 * The one console line an application sees about an L2 failure when it has set up no logging.
 *
 * cachekit logs through LogTape, which prints nothing until the application calls LogTape's
 * `configure()`. That is right for a library, except for failures that make the cache useless
 * without failing a single call: a wrong Redis password, no Redis at that address, a cache
 * directory we may not write. Every call then answers from the function, uncached, and without
 * this notice nobody would know. So while LogTape is not configured, the first failure of each
 * kind (authentication, unreachable, timeout, permanent, other) is printed once per process with
 * `console.warn`, saying what to fix and how to see every record or silence the notice
 * (`CACHEKIT_CONSOLE_NOTICES=false`). Once the application configures LogTape, the records go where
 * it says and the console is left alone.
 *
 * @module
 */
import { getConfig } from "@logtape/logtape";
import type { BackendErrorKind } from "../errors.ts";

const shown = new Set<string>();

/** What each kind of failure means for the application, and what to look at. */
const WHAT: Record<BackendErrorKind, string> = {
  authentication: "refused our credentials: check the user and password of the backend's URL " +
    "(CACHEKIT_REDIS_URL or the backend's `url` option)",
  transient: "cannot be reached: check that the server runs at the configured address " +
    "(CACHEKIT_REDIS_URL or the backend's `url` option)",
  timeout: "did not answer in time: check the server's load and the network",
  permanent: "refused the operation: check its permissions and configuration (for the file " +
    "backend, that the cache directory is writable by this process)",
  unknown: "failed",
};

/** Removes a password from any URL in `text` (`scheme://user:secret@host` → `scheme://user:***@host`). */
function redact(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, "$1***@");
}

/**
 * Print the first L2 failure of `kind` to the console, once per process and kind, when the
 * application has configured no LogTape logging and has not turned notices off.
 *
 * @param kind The failure's kind (`BackendError.kind`).
 * @param backend The backend's type (`"redis"`, `"file"`, …).
 * @param error The failure's message.
 * @param enabled `false` when `CACHEKIT_CONSOLE_NOTICES` turned notices off.
 * @returns Whether a line was printed.
 */
export function consoleNotice(
  kind: BackendErrorKind,
  backend: string,
  error: string,
  enabled: boolean,
): boolean {
  if (!enabled || shown.has(kind) || getConfig() !== null) return false;
  shown.add(kind);
  console.warn(
    `cachekit: the ${backend} cache backend ${WHAT[kind]}. Calls answer without it (uncached) ` +
      `until this is fixed. Error: ${redact(error)}\n` +
      `cachekit: this is printed once per kind of failure because no logging is configured; ` +
      `configure LogTape for the "cachekit" category to see every record, or set ` +
      `CACHEKIT_CONSOLE_NOTICES=false to silence it.`,
  );
  return true;
}

/** Forget which notices were printed (tests). */
export function resetConsoleNotices(): void {
  shown.clear();
}
