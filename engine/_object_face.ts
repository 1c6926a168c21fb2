/**
 * What `cache_object.ts` uses of the engine's key-based operations, gathered so that
 * `internal.ts` re-exports them as one namespace (`objectOps`).
 *
 * @module
 */
export {
  deleteByTags,
  deleteKeys,
  expire,
  get,
  getOrSet,
  has,
  type ObjectFactory,
  set,
  trampoline,
} from "./_object_ops.ts";
export { objectPrefix } from "./_object_keys.ts";
