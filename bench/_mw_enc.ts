import { encodeFast } from "../serializers/_std_encode.ts";
import { Packr } from "msgpackr";
import { vetCopy } from "../engine/_l1_copy.ts";
import { StdSerializer } from "../serializers/std.ts";
const packr = new Packr();
const record = (i: number) => ({
  id: i,
  name: `user ${i}`,
  email: `user${i}@example.com`,
  tags: ["a", "b", "c"],
  bio: "x".repeat(600),
  score: i * 1.5,
  active: true,
  created: "2024-01-01T00:00:00Z",
});
const recs = Array.from({ length: 1000 }, (_, i) => record(i));
const s = new StdSerializer();
const payloads = recs.map((r) => encodeFast(r)!.bytes);
const out = { bytes: 0, unfreezable: false };
const fs: Record<string, (i: number) => unknown> = {
  fast: (i) => encodeFast(recs[i % 1000]),
  packr: (i) => packr.pack(recs[i % 1000]),
  vetCopy: (i) => vetCopy(recs[i % 1000], out),
  decode: (i) => s.deserialize(payloads[i % 1000]),
};
const N = 200000;
for (let r = 0; r < 5; r++) {
  const line = [];
  for (const k in fs) {
    const f = fs[k];
    const t0 = performance.now();
    for (let i = 0; i < N; i++) f(i);
    line.push(`${k} ${((performance.now() - t0) * 1e6 / N).toFixed(0)}ns`);
  }
  if (r >= 2) console.log(line.join("  "));
}
