/**
 * Payloads whose value does not come back as itself.
 *
 * A built-in serializer's pre-pass already visits every value it writes, so it can tell, at no
 * extra walk, when decoding will give back something else than what was written: a `Map` with
 * string keys comes back as a plain object, `undefined` inside a container as `null`, a `Date` as
 * text in JSON, and so on. It marks those payloads here; the cache then answers a miss with the
 * payload decoded (what every later hit returns), and answers every other miss with the function's
 * own value, without decoding anything.
 *
 * @module
 */

const reshaped = new WeakSet<Uint8Array>();

/** Record that `payload` decodes to a value different from the one serialized. */
export function markReshaped(payload: Uint8Array): void {
  reshaped.add(payload);
}

/** Whether `payload` (as returned by a built-in serializer) decodes to a different value. */
export function isReshaped(payload: Uint8Array): boolean {
  return reshaped.has(payload);
}
