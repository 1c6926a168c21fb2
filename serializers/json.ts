/**
 * The JSON serializer (`"json"`, key code `o`, format `json`): UTF-8 JSON text, stored like the
 * standard serializer's payload (in the LZ4 + xxHash3 envelope with integrity checking on), under
 * keys ending `o`. This is this library's own JSON entry: cachekit-py 0.3.0 has no serializer that
 * writes or reads it (its `orjson` entries have another layout, key suffix and names). To share
 * JSON entries with cachekit-py 0.3.0 use {@linkcode OrjsonSerializer} (`serializer: "orjson"`).
 *
 * It follows `JSON.stringify` / `JSON.parse` except where they would silently change a value:
 * - `Date` (and {@linkcode CalendarDate} / {@linkcode TimeOfDay}) are written as their ISO-8601
 *   text (`Date` via `toJSON()`, e.g. `"2025-11-14T10:30:00.000Z"`) and come back as **strings**:
 *   JSON has no date type and this serializer does not guess. Use the standard serializer to get
 *   dates back as dates.
 * - `Map`, `Set`, `RegExp`, `Error`, `Promise`, `WeakMap`, `WeakSet`, `bigint`, typed arrays and
 *   `ArrayBuffer`, functions and symbols (as values), `NaN` and `±Infinity` throw
 *   {@linkcode SerializationError} instead of becoming `{}`, `null` or disappearing. `undefined`
 *   follows JSON (an object property is omitted, an array slot is `null`); `-0` comes back as `0`;
 *   class instances, null-prototype objects and boxed primitives come back as plain data (own
 *   enumerable properties; getters on the prototype are not written); an object with `toJSON()`
 *   comes back as what `toJSON()` returned.
 *
 * Where decoding gives back something else than the value written, `serialize` notes it on the
 * bytes it returns: the cache then answers a miss with the decoded value, what every later hit
 * returns.
 * - Bytes that are not UTF-8 or not JSON throw `SerializationError`. A `"__proto__"` key is an own
 *   property (as `JSON.parse` makes it), never the prototype.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JsonSerializer } from "@cachekit/core/serializers";
 *
 * const json = new JsonSerializer();
 * const bytes = json.serialize({ id: 1, at: new Date(0) });
 * assert.equal(new TextDecoder().decode(bytes), '{"id":1,"at":"1970-01-01T00:00:00.000Z"}');
 * assert.deepEqual(json.deserialize(bytes), { id: 1, at: "1970-01-01T00:00:00.000Z" });
 * ```
 *
 * @module
 */
import { SerializationError } from "../errors.ts";
import type { Serializer } from "./types.ts";
import { markReshaped } from "./_reshaped.ts";
import { checkJson, refuse, RESHAPED } from "./_json_check.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * A {@linkcode Serializer} writing UTF-8 JSON (see the module doc for the exact rules).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { JsonSerializer } from "@cachekit/core/serializers";
 *
 * const json = new JsonSerializer();
 * assert.equal(json.code, "o");
 * assert.equal(json.format, "json");
 * assert.deepEqual(json.deserialize(json.serialize([1, "two", null])), [1, "two", null]);
 * ```
 */
export class JsonSerializer implements Serializer {
  /** `"json"`. */
  readonly name: string = "json";
  /** `"o"` (the protocol's JSON code). */
  readonly code: string = "o";
  /** `"json"`. */
  readonly format: string = "json";

  /**
   * Encode `value` as UTF-8 JSON.
   *
   * @throws {SerializationError} for values JSON would silently drop or change.
   */
  serialize(value: unknown): Uint8Array {
    let text: string | undefined;
    let flags = 0;
    try {
      flags = checkJson(value);
      text = JSON.stringify(value);
    } catch (e) {
      if (e instanceof SerializationError) throw e;
      throw new SerializationError(
        `Cannot serialize value as JSON: ${(e as Error)?.message ?? e}`,
        {
          cause: e,
        },
      );
    }
    if (text === undefined) {
      refuse("", `${value === undefined ? "undefined" : typeof value} has no JSON form`);
    }
    const bytes = encoder.encode(text);
    if ((flags & RESHAPED) !== 0) markReshaped(bytes);
    return bytes;
  }

  /**
   * Decode UTF-8 JSON.
   *
   * @throws {SerializationError} for bytes that are not UTF-8 JSON.
   */
  deserialize(bytes: Uint8Array): unknown {
    try {
      return JSON.parse(decoder.decode(bytes));
    } catch (e) {
      throw new SerializationError(`Cannot deserialize JSON: ${(e as Error)?.message ?? e}`, {
        cause: e,
      });
    }
  }
}
