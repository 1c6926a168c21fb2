// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * The lease marker a Redis key holds while its value is computed (`backends/_redis_lease.ts`) is
 * accepted by no decoder of a stored value: every serializer, the envelope, the wire document,
 * and, through the engine, every stored form (std, JSON, orjson, auto, interop, encrypted, both
 * wire forms) reads it as an unreadable entry, i.e. a miss that computes, never a value.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { isLeaseMarker, leaseMarker } from "../../backends/_redis_lease.ts";
import { decodeManifest, hasMagic } from "../../backends/_redis_chunks.ts";
import type { Backend } from "../../backends/types.ts";
import {
  ArrowSerializer,
  AutoSerializer,
  JsonSerializer,
  OrjsonSerializer,
  StdSerializer,
} from "../../serializers/mod.ts";
import { decodeEnvelope } from "../../protocol/envelope.ts";
import { decodeWire } from "../../protocol/stored_value.ts";
import { cache } from "../../mod.ts";

const MARKER = new TextEncoder().encode(leaseMarker("0123456789abcdef:1z"));
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const quiet = { collectStats: false, prometheus: false, structuredLogging: false };

test("lease marker: its bytes, as a marker and not a manifest", () => {
  assert.ok(isLeaseMarker(MARKER));
  assert.ok(hasMagic(MARKER), "read paths hand it to the chunked reader");
  assert.equal(decodeManifest(MARKER, "k"), null, "which reads it as absent");
  assert.ok(!isLeaseMarker(MARKER.subarray(0, 12)));
  assert.ok(!isLeaseMarker(new TextEncoder().encode("lease:x")));
});

test("lease marker: every serializer, the envelope and the wire document reject it", async () => {
  const arrow = new ArrowSerializer();
  await arrow.prepare();
  const auto = new AutoSerializer();
  for (
    const [name, s] of [
      ["std", new StdSerializer()],
      ["json", new JsonSerializer()],
      ["orjson", new OrjsonSerializer()],
      ["arrow", arrow],
      ["auto", auto],
    ] as const
  ) {
    assert.throws(() => s.deserialize(MARKER), `${name} accepted a lease marker`);
  }
  assert.throws(() => decodeEnvelope(MARKER), "envelope");
  assert.throws(() => decodeWire(MARKER), "wire document");
});

const masterKey = Array.from(
  crypto.getRandomValues(new Uint8Array(32)),
  (b) => b.toString(16).padStart(2, "0"),
).join("");

test("lease marker: every stored form the engine reads takes it for an unreadable entry (a miss)", async () => {
  const modes: [string, Record<string, unknown>][] = [
    ["std", {}],
    ["std envelope", { wire: "envelope" }],
    ["std document", { wire: "document" }],
    ["json", { serializer: "json" }],
    ["orjson", { serializer: "orjson" }],
    ["auto", { serializer: "auto" }],
    ["interop", { interop: true, namespace: "lease" }],
    ["interop orjson", { interop: true, namespace: "lease2", serializer: "orjson" }],
    ["encrypted", { encryption: { masterKey } }],
    ["encrypted envelope", { encryption: { masterKey }, wire: "envelope" }],
  ];
  for (const [name, extra] of modes) {
    let reads = 0;
    let deletes = 0;
    // A backend whose every key holds a lease marker (one that knows nothing of markers).
    const backend: Backend = {
      type: "memory",
      capabilities: {},
      get: async () => (reads++, MARKER.slice()),
      set: async () => {},
      delete: async () => (deletes++, true),
      exists: async () => true,
      healthCheck: async () => ({ healthy: true, latencyMs: 0 }),
    } as unknown as Backend;
    let computed = 0;
    const f = cache(
      async (i: number) => ({ i, n: ++computed }),
      {
        name: `lease.${name.replaceAll(" ", "_")}`,
        ttl: 60,
        backend,
        l1: false,
        monitoring: quiet,
        ...bare,
        ...extra,
      } as Parameters<typeof cache>[1],
    );
    assert.deepEqual(await f(1), { i: 1, n: 1 }, `${name}: a miss that computes`);
    assert.equal(reads, 1, `${name}: read`);
    assert.equal(computed, 1, name);
    // A reader that does not know markers sees a corrupt entry: it deletes it.
    assert.equal(deletes, 1, `${name}: treated as unreadable`);
  }
});
