/**
 * What the rest of the package (the engine) uses of the backends' private parts: the backends'
 * internal face. Not public: `deno.json` does not export it and `backends/mod.ts` does not
 * re-export it. What a custom backend needs is public instead, in `types.ts` (the contract and
 * `underAnyTenant`, the key match of `deleteByTenantPrefix`).
 *
 * - {@linkcode unrefTimer}: let a timer not keep the process alive, on every runtime (Node and
 *   Bun timer objects, Deno's numeric ids). Defined beside the Redis deadline queue, its first
 *   user; the engine's subscription retry timer uses it too.
 * - {@linkcode SettleHook}: the options object through which the guard
 *   (`reliability/guarded_backend.ts`) and the Redis backend's `get`, `set` and lease attempt and
 *   write share one promise per operation (`_settle_hook.ts`).
 *
 * Re-exports only: nothing is added on any path.
 *
 * @module
 */
export { unrefTimer } from "./_common.ts";
export type { SettleHook } from "./_settle_hook.ts";
