/**
 * Counter-based AES-GCM nonces: an 8-byte instance id and a 4-byte counter that never wraps. Apart
 * because uniqueness is its own concern: the instance-id allocation is in `_crypto.ts`, and both
 * the one-shot {@linkcode encrypt} and each key ring draw from a generator.
 *
 * @module
 */
import { CacheConfigError, CacheKitError } from "../errors.ts";
import { allocateInstanceId } from "./_crypto.ts";

/** AES-GCM nonce length in bytes. */
export const NONCE_BYTES = 12;

const COUNTER_LIMIT = 0x1_0000_0000; // 2^32 counter values per instance id
const NONCE_EXHAUSTED = "CACHE_NONCE_EXHAUSTED";

/**
 * Counter-based AES-GCM nonces: `instanceId(8) || counter(4, big-endian)`.
 *
 * The instance id comes from a process-wide 64-bit counter whose start is random (all 64 bits;
 * cachekit-core randomizes only the upper 32), incremented for every generator, so generators in
 * one process never share an id and two processes collide only if their id ranges overlap. The
 * counter runs from `startCounter` (default 0) to 2^32 - 1; after that {@linkcode next} throws
 * a {@linkcode CacheKitError} with code
 * `"CACHE_NONCE_EXHAUSTED"` every time and never wraps ({@linkcode encrypt} and
 * {@linkcode TenantCipher} then switch to a new generator, which has a new instance id).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NonceGenerator } from "@cachekit/core/protocol";
 *
 * const gen = new NonceGenerator();
 * const a = gen.next();
 * const b = gen.next();
 * assert.equal(a.length, 12);
 * assert.deepEqual([a[11], b[11]], [0, 1]);
 * ```
 */
export class NonceGenerator {
  #id: Uint8Array;
  #counter: number;

  /**
   * Create a generator with a newly allocated instance id.
   *
   * @param options `startCounter`: first counter value, an integer in 0..2^32 (2^32 makes an
   * exhausted generator; useful in tests). The instance id is always allocated, never chosen.
   */
  constructor(options: { startCounter?: number } = {}) {
    const start = options.startCounter ?? 0;
    if (!Number.isInteger(start) || start < 0 || start > COUNTER_LIMIT) {
      throw new CacheConfigError("startCounter", start, "an integer in 0..2^32");
    }
    this.#id = allocateInstanceId();
    this.#counter = start;
  }

  /** A copy of this generator's 8-byte instance id. */
  get instanceId(): Uint8Array {
    return this.#id.slice();
  }

  /** The counter value the next nonce will carry (2^32 once exhausted). */
  get counter(): number {
    return this.#counter;
  }

  /** How many nonces are left. */
  get remaining(): number {
    return COUNTER_LIMIT - this.#counter;
  }

  /**
   * The next nonce (12 bytes, a fresh array).
   *
   * @throws {CacheKitError} Code `"CACHE_NONCE_EXHAUSTED"` when all 2^32 counter values are used.
   */
  next(): Uint8Array {
    const c = this.#counter;
    if (c >= COUNTER_LIMIT) {
      throw new CacheKitError(
        "nonce counter exhausted (2^32 encryptions with one instance id); create a new NonceGenerator",
        NONCE_EXHAUSTED,
      );
    }
    this.#counter = c + 1;
    const n = new Uint8Array(NONCE_BYTES);
    n.set(this.#id, 0);
    n[8] = c >>> 24;
    n[9] = (c >>> 16) & 0xff;
    n[10] = (c >>> 8) & 0xff;
    n[11] = c & 0xff;
    return n;
  }
}

let moduleNonces: NonceGenerator | undefined;

/** The next nonce of the module-wide generator (replaced by a new one once exhausted). */
export function nextModuleNonce(): Uint8Array {
  if (moduleNonces === undefined || moduleNonces.remaining === 0) {
    moduleNonces = new NonceGenerator();
  }
  return moduleNonces.next();
}
