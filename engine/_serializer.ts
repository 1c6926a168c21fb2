/**
 * The serializer a config selects: `"std"` (MessagePack), `"json"`, `"orjson"`, `"arrow"`,
 * `"auto"`, or the user's object.
 *
 * @module
 */
import type { Serializer } from "../serializers/types.ts";
import {
  ArrowSerializer,
  AutoSerializer,
  JsonSerializer,
  OrjsonSerializer,
  StdSerializer,
} from "../serializers/mod.ts";
import { deserializePrefix, isReshaped } from "../serializers/internal.ts";

let std: Serializer | null = null;
let json: Serializer | null = null;
let orjson: Serializer | null = null;
let arrow: Serializer | null = null;
let auto: Serializer | null = null;

/** The serializer instance for a resolved `serializer` option. */
export function resolveSerializer(
  sel: "std" | "json" | "orjson" | "arrow" | "auto" | Serializer,
): Serializer {
  if (sel === "std") return std ??= new StdSerializer();
  if (sel === "json") return json ??= new JsonSerializer();
  if (sel === "orjson") return orjson ??= new OrjsonSerializer();
  if (sel === "arrow") return arrow ??= new ArrowSerializer();
  if (sel === "auto") return auto ??= new AutoSerializer();
  return sel;
}

/**
 * Whether `s` is a built-in serializer, whose `deserialize` keeps no view of its input (`std`
 * copies `bin` values, `json` and `orjson` build strings): the bytes it reads may then be a reused buffer.
 */
export function copiesInput(s: Serializer): boolean {
  return s.constructor === StdSerializer || s.constructor === JsonSerializer ||
    s.constructor === OrjsonSerializer;
}

/**
 * The std serializer's deserialize of a buffer's first `n` bytes (`ReadPolicy.prefix`), when `s`
 * is exactly the built-in std serializer (its own `deserialize`, not a subclass's or an
 * instance's); otherwise `null`.
 */
export function prefixDecoder(s: Serializer): ((buf: Uint8Array, n: number) => unknown) | null {
  return s.deserialize === StdSerializer.prototype.deserialize && s.constructor === StdSerializer
    ? deserializePrefix
    : null;
}

/**
 * Whether `payload`, written by `s`, may decode to something other than the value serialized: a
 * built-in serializer says so per payload (`serializers/_reshaped.ts`); of a custom one nothing is
 * known, so always.
 */
export function reshapes(s: Serializer, payload: Uint8Array): boolean {
  return !copiesInput(s) || isReshaped(payload);
}
