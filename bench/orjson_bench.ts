/**
 * The orjson serializer against std, **paired**, on a ~1 KB record and a ~100 KB page: every
 * variant once per round in a rotated order, the median of the per-round ratios to std (the
 * machine's speed drifts by tens of percent on a shared host; ratios taken within one round do
 * not). Each is measured bare (the serializer) and as stored with integrity checking on (std: the
 * LZ4 + xxHash3 envelope; orjson: the 8-byte digest, no LZ4).
 *
 * Run: `deno run -A bench/orjson_bench.ts`
 */
import { OrjsonSerializer, StdSerializer } from "../serializers/mod.ts";
import { encodeEnvelope } from "../protocol/envelope.ts";
import { openEnvelope } from "../protocol/_envelope_read.ts";
import { openDigest, withDigest } from "../protocol/_digest_layout.ts";

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

// ------------------------------------------------------------------ paired: orjson against std
{
  const std = new StdSerializer();
  const orjson = new OrjsonSerializer();
  const NONE = new Uint8Array(0);
  const cases = [
    ["1KB record", { page: 1, items: Array.from({ length: 5 }, (_, i) => record(i)) }, 2000],
    ["100KB page", { page: 1, items: Array.from({ length: 480 }, (_, i) => record(i)) }, 20],
  ] as const;
  const ROUNDS = 200;
  for (const [label, value, reps] of cases) {
    const sortedValue = JSON.parse(new TextDecoder().decode(orjson.serialize(value)));
    const sb = std.serialize(value);
    const ob = orjson.serialize(value);
    const se = encodeEnvelope(sb, "msgpack");
    const od = withDigest(ob, false);
    console.log(`${label}: std ${sb.length} B (envelope ${se.length} B), orjson ${ob.length} B`);
    const variants: [string, () => unknown][] = [
      ["std serialize (baseline)", () => std.serialize(value)],
      ["orjson serialize (keys to sort)", () => orjson.serialize(value)],
      ["orjson serialize (keys already sorted)", () => orjson.serialize(sortedValue)],
      ["std serialize + envelope", () => encodeEnvelope(std.serialize(value), "msgpack")],
      ["orjson serialize + digest", () => withDigest(orjson.serialize(value), false)],
      ["std deserialize", () => std.deserialize(sb)],
      ["orjson deserialize", () => orjson.deserialize(ob)],
      ["std open envelope + deserialize", () => std.deserialize(openEnvelope(se).data)],
      [
        "orjson check digest + deserialize",
        () => orjson.deserialize(openDigest(od, false, NONE).payload),
      ],
    ];
    const times = variants.map(() => [] as number[]);
    for (let r = 0; r < ROUNDS; r++) {
      for (let k = 0; k < variants.length; k++) {
        const v = (k + r) % variants.length;
        const fn = variants[v][1];
        const t0 = performance.now();
        for (let i = 0; i < reps; i++) fn();
        times[v].push(performance.now() - t0);
      }
    }
    const q = (a: number[], f: number) =>
      [...a].sort((x, y) => x - y)[Math.floor(f * (a.length - 1))];
    // Encoders against std serialize, decoders against std deserialize.
    console.log(`${label}, paired over ${ROUNDS} rounds of ${reps} calls:`);
    console.table(variants.map(([name], v) => {
      const base = v < 5 ? (v < 3 ? 0 : 3) : (v < 7 ? 5 : 7);
      const ratios = times[v].map((t, r) => t / times[base][r]);
      return {
        variant: name,
        "µs/call (median)": (q(times[v], 0.5) * 1000 / reps).toFixed(2),
        "against": variants[base][0].replace(" (baseline)", ""),
        "÷ against (median [q1, q3])": `${q(ratios, 0.5).toFixed(2)} [${
          q(ratios, 0.25).toFixed(2)
        }, ${q(ratios, 0.75).toFixed(2)}]`,
      };
    }));
  }
}
