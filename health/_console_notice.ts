/**
 * The one console line an application sees about an L2 failure when it has set up no logging.
 *
 * cachekit logs through LogTape, which prints nothing until the application calls LogTape's
 * `configure()`. That is right for a library, except for failures that make the cache useless
 * without failing a single call: a wrong Redis password, no Redis at that address, a cache
 * directory we may not write. Every call then answers from the function, uncached, and without
 * this notice nobody would know. So while LogTape is not configured, the first failure of each
 * kind (authentication, unreachable, timeout, permanent, other) is printed once per process with
 * `console.warn`, saying what to fix for that backend (a Redis address, a cache directory), and the
 * first one how to see every record or silence the notices (`CACHEKIT_CONSOLE_NOTICES=false`).
 * So is a configuration mistake that only shows as misses: entries encrypted under a master key
 * this process does not have. Once the application configures LogTape, the records go where
 * it says and the console is left alone. A backend the application closed (kind `closed`) has no
 * advice here: nothing is wrong with it. Work that lands after `close()` prints nothing; a call
 * made after it prints one line saying so (`recordFailure` in `engine/_status.ts`, through
 * {@linkcode consoleMessage}), since every call then runs uncached.
 *
 * @module
 */
import { getConfig } from "@logtape/logtape";
import type { BackendErrorKind } from "../errors.ts";

const shown = new Set<string>();
let explained = false;

const REDIS_URL = "(CACHEKIT_REDIS_URL or the backend's `url` option)";
const FILE_DIR = "(CACHEKIT_FILE_CACHE_DIR or FileBackend's `directory` option)";

/** The kinds of failure that have a notice (a closed backend has none: see the module doc). */
type NoticeKind = Exclude<BackendErrorKind, "closed">;

/** What each kind of failure of a Redis backend means, and what to look at. */
const REDIS: Record<NoticeKind, string> = {
  authentication:
    `refused our credentials: check the user and password of the backend's URL ${REDIS_URL}`,
  transient: `cannot be reached: check that the server runs at the configured address ${REDIS_URL}`,
  timeout: "did not answer in time: check the server's load and the network",
  permanent: "refused the operation: check its permissions and configuration",
  unknown: "failed",
};

/** The same for the file backend: a directory, not a server. */
const FILE: Record<NoticeKind, string> = {
  authentication: "was refused access",
  transient: "could not use the cache directory (disk full, quota reached, too many open " +
    `files, or an I/O error): check the free space and the file system of the directory ${FILE_DIR}`,
  timeout: "did not answer in time: check the load of the disk holding the cache directory",
  permanent: "refused the operation: check that the cache directory can be created and is " +
    `writable by this process ${FILE_DIR}`,
  unknown: "failed",
};

/** Any other backend (memory, custom). */
const OTHER: Record<NoticeKind, string> = {
  authentication: "refused our credentials: check the backend's credentials",
  transient: "is unavailable: check that what it stores to is up and reachable",
  timeout: "did not answer in time: check its load",
  permanent: "refused the operation: check its permissions and configuration",
  unknown: "failed",
};

function what(kind: NoticeKind, backend: string): string {
  return (backend === "redis" ? REDIS : backend === "file" ? FILE : OTHER)[kind];
}

/** Removes a password from any URL in `text` (`scheme://user:secret@host` → `scheme://user:***@host`). */
function redact(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^\s:@/]*:)[^\s@/]*@/gi, "$1***@");
}

/**
 * Print the first L2 failure of `kind` to the console, once per process and kind, when the
 * application has configured no LogTape logging and has not turned notices off. A `closed`
 * backend has no advice here (see the module documentation).
 *
 * @param kind The failure's kind (`BackendError.kind`).
 * @param backend The backend's type (`"redis"`, `"file"`, …): the advice depends on it.
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
  if (kind === "closed") return false;
  return consoleMessage(
    kind,
    `the ${backend} cache backend ${what(kind, backend)}. Calls answer without it (uncached) ` +
      `until this is fixed. Error: ${error}`,
    enabled,
  );
}

/**
 * Print `message` (passwords in URLs redacted) once per process for `id`, under the same
 * conditions as {@linkcode consoleNotice}; the first line printed also says why and how to silence
 * it.
 *
 * @param id What the message is about: each id is printed at most once per process.
 * @param message The text, without the `cachekit: ` prefix.
 * @param enabled `false` when `CACHEKIT_CONSOLE_NOTICES` turned notices off.
 * @returns Whether a line was printed.
 */
export function consoleMessage(id: string, message: string, enabled: boolean): boolean {
  if (!enabled || shown.has(id) || getConfig() !== null) return false;
  shown.add(id);
  const why = explained ? "" : `\ncachekit: this is printed once per kind of failure because no ` +
    `logging is configured; configure LogTape for the "cachekit" category to see every record, ` +
    `or set CACHEKIT_CONSOLE_NOTICES=false to silence it.`;
  explained = true;
  console.warn(`cachekit: ${redact(message)}${why}`);
  return true;
}

/** Forget which notices were printed (tests). */
export function resetConsoleNotices(): void {
  shown.clear();
  explained = false;
}
