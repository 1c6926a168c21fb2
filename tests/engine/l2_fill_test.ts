// An L2 hit fills L1 with the payload bytes the value was just decoded from (a copy), not with a
// second serialization of the value (issue 12: keep the decoded payload for L1, the faster way).
// The value an L1 hit returns afterwards is the one the L2 hit returned, and a caller mutating
// either cannot change the other.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { cache, MemoryBackend } from "../../mod.ts";
import { StdSerializer } from "../../serializers/mod.ts";

/** The std serializer, counting its calls. */
class Counting extends StdSerializer {
  serialized = 0;
  deserialized = 0;
  override serialize(value: unknown): Uint8Array {
    this.serialized++;
    return super.serialize(value);
  }
  override deserialize(bytes: Uint8Array): unknown {
    this.deserialized++;
    return super.deserialize(bytes);
  }
}

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;

for (const wire of ["envelope", "document"] as const) {
  for (const integrityChecking of [true, false]) {
    test(`an L2 hit fills L1 without serializing again (${wire} wire, integrity ${integrityChecking})`, async () => {
      const backend = new MemoryBackend();
      const record = { id: 7, name: "Ada", tags: ["a", "b"], nested: { n: 1 } };
      const fn = async (id: number) => await Promise.resolve({ ...record, id });
      const name = `l2fill.${wire}.${integrityChecking}`;
      const writer = cache(fn, { name, backend, ttl: 60, wire, integrityChecking, ...bare });
      assert.deepEqual(await writer(7), record);

      const s = new Counting();
      const reader = cache(fn, {
        name,
        backend,
        ttl: 60,
        wire,
        integrityChecking,
        serializer: s,
        ...bare,
      });
      const fromL2 = await reader(7) as typeof record;
      assert.deepEqual(fromL2, record);
      assert.equal(reader.cacheInfo().l2Hits, 1);
      assert.equal(s.serialized, 0, "no second serialization to fill L1");
      fromL2.tags.push("mutated");
      const fromL1 = await reader(7);
      assert.equal(reader.cacheInfo().l1Hits, 1);
      assert.deepEqual(fromL1, record, "L1 holds its own copy of the payload");
    });
  }
}
