/**
 * The CPU of an L2 hit's decode alone (no Redis, no engine call flow): `decodeStoredValue` of the
 * goals' 1 KB record as the defaults store it (envelope wire: frame + envelope + std), against
 * msgpackr's `unpack` of the same record (what the raw baseline pays). Paired rounds.
 *
 * `deno run -A bench/stored_decode_bench.ts [rounds]`
 *
 * @module
 */
import { Packr } from "msgpackr";
import { record } from "./_goals_values.ts";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";
import { StdSerializer } from "../serializers/std.ts";
import { prefixDecoder } from "../engine/_serializer.ts";
import {
  decodeStoredValue,
  encodeStoredValue,
  type StoredCodec,
} from "../protocol/stored_value.ts";

const ROUNDS = Number(Deno.args[0] ?? 200);
const N = 100;
const serializer = new StdSerializer();
const codec: StoredCodec = {
  identity: "bench",
  serializer,
  policy: {
    serializer,
    acceptNames: new Set(["default", "std"]),
    integrityChecking: true,
    limits: { maxSize: 64 * 1024 * 1024 },
    scratch: true,
    // As the engine sets it for std (`engine/_serializer.ts`): decoded in the codec's reused view.
    prefix: prefixDecoder(serializer),
    framing: null,
  },
  wire: "envelope",
  envelopeProtocol: "1.1",
  secure: null,
};
const packr = new Packr({ useRecords: false, mapsAsObjects: true });
const stored: Uint8Array[] = [];
const packed: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  stored.push(
    (await encodeStoredValue(codec, record(i), {
      tenant: "default",
      protoKey: "k",
      freshUntil: null,
    }))
      .stored,
  );
  packed.push(packr.pack(record(i)));
}
const meta = { freshUntil: null as number | null };
let sink = 0;
const t = await pairedRounds([
  {
    name: "unpack",
    run: () => {
      for (let k = 0; k < 10; k++) {
        for (let i = 0; i < N; i++) sink += (packr.unpack(packed[i]) as { id: number }).id;
      }
    },
  },
  {
    name: "decodeStoredValue",
    run: () => {
      for (let k = 0; k < 10; k++) {
        for (let i = 0; i < N; i++) {
          sink += (decodeStoredValue(codec, stored[i], "default", "k", meta) as { id: number }).id;
        }
      }
    },
  },
], { rounds: ROUNDS, warmup: 20 });
const s = spread(roundRatios(t[1], t[0]));
console.log(
  `decode µs/value: unpack ${(spread(t[0]).median * 1000 / N / 10).toFixed(3)}, stored ${
    (spread(t[1]).median * 1000 / N / 10).toFixed(3)
  }; stored ÷ unpack ${s.median.toFixed(2)} [${s.q1.toFixed(2)}–${s.q3.toFixed(2)}] (${sink > 0})`,
);
