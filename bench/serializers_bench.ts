/**
 * Serializer encode/decode for a ~10 KB and a ~1 MB object: the std serializer against the raw
 * MessagePack libraries (`msgpackr`, `@msgpack/msgpack`) and `JSON`, plus the JSON serializer.
 *
 * Run: `deno bench -A bench/serializers_bench.ts`
 */
import { decode as mpDecode, encode as mpEncode } from "@msgpack/msgpack";
import { Packr, Unpackr } from "msgpackr";
import { deserialize, JsonSerializer, serialize } from "../serializers/mod.ts";

function record(i: number) {
  return {
    id: i,
    name: `user-${i}`,
    email: `user${i}@example.com`,
    active: i % 3 !== 0,
    score: i * 1.5,
    tags: ["alpha", "beta", `t${i % 7}`],
    address: { city: "Berlin", zip: `${10000 + i}`, geo: [52.52, 13.405] },
  };
}
const small = { users: Array.from({ length: 45 }, (_, i) => record(i)) };
const large = { users: Array.from({ length: 4700 }, (_, i) => record(i)) };

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false });
const json = new JsonSerializer();
const enc = new TextEncoder();
const dec = new TextDecoder();

for (const [label, value] of [["10KB", small], ["1MB", large]] as const) {
  const std = serialize(value);
  const mp = mpEncode(value);
  const pk = packr.pack(value);
  const js = enc.encode(JSON.stringify(value));
  console.log(`${label}: std ${std.length} B, msgpack ${mp.length} B, json ${js.length} B`);

  Deno.bench({
    name: `std serialize ${label}`,
    group: `encode ${label}`,
    baseline: true,
    fn: () => {
      serialize(value);
    },
  });
  Deno.bench({
    name: `msgpackr pack ${label}`,
    group: `encode ${label}`,
    fn: () => {
      packr.pack(value);
    },
  });
  Deno.bench({
    name: `@msgpack/msgpack encode ${label}`,
    group: `encode ${label}`,
    fn: () => {
      mpEncode(value);
    },
  });
  Deno.bench({
    name: `JSON.stringify+utf8 ${label}`,
    group: `encode ${label}`,
    fn: () => {
      enc.encode(JSON.stringify(value));
    },
  });
  Deno.bench({
    name: `JsonSerializer ${label}`,
    group: `encode ${label}`,
    fn: () => {
      json.serialize(value);
    },
  });

  Deno.bench({
    name: `std deserialize ${label}`,
    group: `decode ${label}`,
    baseline: true,
    fn: () => {
      deserialize(std);
    },
  });
  Deno.bench({
    name: `msgpackr unpack ${label}`,
    group: `decode ${label}`,
    fn: () => {
      unpackr.unpack(pk);
    },
  });
  Deno.bench({
    name: `@msgpack/msgpack decode ${label}`,
    group: `decode ${label}`,
    fn: () => {
      mpDecode(mp);
    },
  });
  Deno.bench({
    name: `utf8+JSON.parse ${label}`,
    group: `decode ${label}`,
    fn: () => {
      JSON.parse(dec.decode(js));
    },
  });
  Deno.bench({
    name: `JsonSerializer ${label}`,
    group: `decode ${label}`,
    fn: () => {
      json.deserialize(js);
    },
  });
}
