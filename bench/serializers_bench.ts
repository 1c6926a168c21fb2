/**
 * Serializer encode/decode for a ~10 KB and a ~1 MB object: the std serializer against the raw
 * MessagePack libraries (`msgpackr`, `@msgpack/msgpack`) and `JSON`, plus the JSON serializer.
 *
 * Printed first, the **paired** table (`bench/MEASUREMENTS.md`): std `serialize`/`deserialize`
 * against a bare msgpackr `pack`/`unpack` and against the serializer before its fast paths (the
 * frozen copy in `tests/_fixtures/std_reference/`), on a ~1 KB record, a 10 KB list of records, a
 * 100 KB page and 1 MB. Every variant runs one batch per round in a rotated order; the table gives
 * the median of the per-round ratios (the machine's speed drifts between `Deno.bench` rows; ratios
 * taken within one round do not).
 *
 * Run: `deno bench -A bench/serializers_bench.ts` (the paired table alone: `deno run -A
 * bench/serializers_bench.ts`).
 */
import { decode as mpDecode, encode as mpEncode } from "@msgpack/msgpack";
import { Packr, Unpackr } from "msgpackr";
import { deserialize, JsonSerializer, serialize } from "../serializers/mod.ts";
import * as before from "../tests/_fixtures/std_reference/std.ts";

/** A ~1 KB record: about 20 fields, a nested object, an array of strings, numbers, a Date. */
function cached(i: number) {
  return {
    id: i,
    uuid: `6f1c2a7e-${String(i).padStart(4, "0")}-4b1d-9c3e-8d2f1a0b7c6e`,
    name: `User Number ${i}`,
    email: `user.number${i}@example.com`,
    active: i % 3 !== 0,
    score: i * 1.5 + 0.25,
    rank: i * 7,
    balance: 1234.56 + i,
    visits: 100000 + i,
    plan: "professional",
    locale: "de-DE",
    tz: "Europe/Berlin",
    bio: "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor " +
      "incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud.",
    tags: ["alpha", "beta", "gamma", "delta", "epsilon", `tag-${i % 7}`, "customer", "eu"],
    address: {
      street: "Unter den Linden 1",
      city: "Berlin",
      zip: `${10000 + i}`,
      country: "DE",
      geo: [52.52, 13.405],
    },
    prefs: { theme: "dark", newsletter: true, lang: "de", digest: "weekly" },
    history: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233],
    roles: ["reader", "writer"],
    created: new Date(Date.UTC(2025, 0, 1 + (i % 28), 10, 30)),
    version: 3,
    note: null,
  };
}

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

const pairedPackr = new Packr({
  useRecords: false,
  encodeUndefinedAsNil: true,
  variableMapSize: true,
  useFloat32: 0,
});
const pairedUnpackr = new Unpackr({ useRecords: false });
const median = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1];
const paired: Record<string, string>[] = [];
for (
  const [label, value, batch, rounds] of [
    ["1 KB record", cached(1), 50, 400],
    ["1 KB record, no Date", { ...cached(1), created: "2025-01-02" }, 50, 400],
    ["10 KB list", Array.from({ length: 11 }, (_, i) => cached(i)), 5, 400],
    [
      "100 KB page",
      {
        page: 3,
        total: 12000,
        next: "/users?page=4",
        items: Array.from({ length: 110 }, (_, i) => cached(i)),
      },
      1,
      300,
    ],
    ["1 MB", Array.from({ length: 1100 }, (_, i) => cached(i)), 1, 60],
  ] as const
) {
  const bytes = serialize(value);
  const raw = pairedPackr.pack(value).slice(); // a Date as the timestamp extension
  const variants: [string, () => unknown][] = [
    ["pack", () => pairedPackr.pack(value)],
    ["serialize", () => serialize(value)],
    ["pack + copy", () => new Uint8Array(pairedPackr.pack(value))], // bytes that own their memory
    ["serialize before", () => before.serialize(value)],
    ["unpack", () => pairedUnpackr.unpack(raw)],
    ["deserialize", () => deserialize(bytes)],
    ["deserialize before", () => before.deserialize(bytes)],
  ];
  const times = variants.map(() => [] as number[]);
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < variants.length; k++) {
      const v = (k + r) % variants.length;
      const f = variants[v][1];
      const t0 = performance.now();
      for (let i = 0; i < batch; i++) f();
      times[v].push((performance.now() - t0) / batch);
    }
  }
  const ratio = (a: number, b: number) => median(times[a].map((t, r) => t / times[b][r]));
  const us = (v: number) => (median(times[v]) * 1000).toFixed(2);
  paired.push({
    value: `${label} (${bytes.length} B)`,
    "serialize µs": us(1),
    "÷ pack": ratio(1, 0).toFixed(2),
    "÷ pack + copy": ratio(1, 2).toFixed(2),
    "after ÷ before": ratio(1, 3).toFixed(2),
    "deserialize µs": us(5),
    "÷ unpack": ratio(5, 4).toFixed(2),
    "after ÷ before ": ratio(5, 6).toFixed(2),
  });
}
console.log("std serializer, paired (median of per-round ratios; µs are medians, for scale):");
console.table(paired);

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
