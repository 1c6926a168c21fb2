/**
 * What the rest of the package (the engine) uses of the health folder's private parts: its
 * internal face. Not public: `deno.json` exports `health/mod.ts` only, which does not re-export
 * this file.
 *
 * - {@linkcode consoleNotice}: the one console line about an L2 failure an application sees while
 *   it has configured no logging (the engine's failure recording prints it).
 *
 * Re-exports only: nothing is added on any path.
 *
 * @module
 */
export { consoleMessage, consoleNotice } from "./_console_notice.ts";
