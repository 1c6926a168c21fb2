/**
 * {@linkcode SecretKey}: how the resolved configuration holds a master key. The bytes live in a
 * module-private `WeakMap`, not on the object, so `JSON.stringify`, `console.log`/`Deno.inspect`/
 * `util.inspect`, `structuredClone`, property enumeration and string conversion of a cached
 * function's `config` never show them; only the engine reads them (through an accessor that the
 * package's entry points do not export).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SecretKey } from "@cachekit/core";
 *
 * const key = new SecretKey(crypto.getRandomValues(new Uint8Array(32)));
 * assert.equal(JSON.stringify({ key }), '{"key":"[redacted]"}');
 * assert.equal(key.byteLength, 32);
 * ```
 *
 * @module
 */

const store = new WeakMap<SecretKey, Uint8Array>();
const REDACTED = "[redacted]";

/** Opaque holder of key material: shows its length, never its bytes. */
export class SecretKey {
  /** Length of the key in bytes. */
  readonly byteLength: number;

  /**
   * Keep a copy of `bytes` (the caller may wipe its own).
   *
   * @param bytes The key material.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SecretKey } from "@cachekit/core";
   * assert.equal(String(new SecretKey(new Uint8Array(32))), "SecretKey([redacted])");
   * ```
   */
  constructor(bytes: Uint8Array) {
    store.set(this, bytes.slice());
    this.byteLength = bytes.length;
  }

  /**
   * JSON form: `"[redacted]"`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SecretKey } from "@cachekit/core";
   * assert.equal(new SecretKey(new Uint8Array(32)).toJSON(), "[redacted]");
   * ```
   */
  toJSON(): string {
    return REDACTED;
  }

  /**
   * String form: `SecretKey([redacted])`.
   *
   * @example
   * ```ts
   * import assert from "node:assert/strict";
   * import { SecretKey } from "@cachekit/core";
   * assert.equal(`${new SecretKey(new Uint8Array(32))}`, "SecretKey([redacted])");
   * ```
   */
  toString(): string {
    return `SecretKey(${REDACTED})`;
  }

  /** `Deno.inspect` / `console.log` on Deno. */
  [Symbol.for("Deno.customInspect")](): string {
    return this.toString();
  }

  /** `util.inspect` / `console.log` on Node and Bun. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }
}

/**
 * A copy of the bytes of `key` (internal: not exported by the package's entry points).
 *
 * @param key The holder.
 * @returns A fresh copy the caller should wipe after use.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { SecretKey } from "@cachekit/core";
 * import { revealSecretKey } from "./secret_key.ts";
 * assert.equal(revealSecretKey(new SecretKey(new Uint8Array([1, 2]))).length, 2);
 * ```
 */
export function revealSecretKey(key: SecretKey): Uint8Array {
  const bytes = store.get(key);
  if (bytes === undefined) throw new TypeError("not a SecretKey");
  return bytes.slice();
}
