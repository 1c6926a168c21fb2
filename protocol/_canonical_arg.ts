/**
 * The canonical bytes of one argument, as the key hash encodes it: what the L1 key builder
 * (`engine/_argkey.ts`) orders a `Set` argument's elements by, so that its cheap key is the key of
 * the array the protocol key encodes it as (elements sorted by their bytes, duplicates dropped).
 * Internal.
 *
 * @module
 */
import { encodeValue, withEncoder, written } from "./_canonical.ts";
import { ARGS, EncodeRefusal } from "./_canonical_model.ts";

export { compareBytes } from "./_canonical_python.ts";

/**
 * The argument `v` as the key hash encodes it (a fresh array), or `undefined` when the protocol
 * key refuses it.
 */
export function argBytes(v: unknown): Uint8Array | undefined {
  try {
    return withEncoder(() => {
      encodeValue(v, ARGS);
      return written().slice();
    });
  } catch (e) {
    if (e instanceof EncodeRefusal) return undefined;
    throw e;
  }
}
