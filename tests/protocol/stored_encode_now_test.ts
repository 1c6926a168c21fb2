/**
 * `encodeStoredNow`, the stored-value encoder the engine calls: synchronous for a plaintext codec
 * (a miss's store then awaits nothing before its L1 and L2 writes), a promise when it encrypts;
 * its bytes are those of `encodeStoredValue` and of the layers written one by one (serializer →
 * envelope → wire), for every wire, protocol, integrity setting and the values that take another
 * route (`undefined`, a fail-safe `fresh_until`); an encrypted entry decodes back.
 */
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { StdSerializer } from "../../serializers/mod.ts";
import {
  decodeStoredValue,
  encodeStoredNow,
  encodeStoredValue,
  encodeWire,
  type StoredCodec,
} from "../../protocol/stored_value.ts";
import { encodeEnvelope } from "../../protocol/envelope.ts";
import { TenantCipher } from "../../protocol/encryption.ts";

const std = new StdSerializer();

function codec(
  integrity: boolean,
  wire: "document" | "envelope",
  envelopeProtocol: "1.0" | "1.1",
  secure: StoredCodec["secure"] = null,
): StoredCodec {
  return {
    identity: "t.f",
    serializer: std,
    policy: {
      serializer: std,
      acceptNames: new Set(["std", "default"]),
      integrityChecking: integrity,
      limits: { maxSize: 64 << 20 },
      scratch: false,
      framing: null,
    },
    wire,
    envelopeProtocol,
    secure,
  };
}

const values: unknown[] = [
  { id: 1, name: "user 1", tags: ["a", "b"], bio: "x".repeat(600), at: new Date(7) },
  "s",
  0,
  null,
  undefined,
  [1.5, -2, 2n ** 40n],
];

test("encodeStoredNow: plaintext is synchronous and writes encodeStoredValue's bytes", async () => {
  for (const integrity of [true, false]) {
    for (const wire of ["document", "envelope"] as const) {
      for (const proto of ["1.0", "1.1"] as const) {
        const c = codec(integrity, wire, proto);
        for (const v of values) {
          for (const freshUntil of [null, 1_700_000_000_000]) {
            const call = { tenant: "default", protoKey: "k", freshUntil };
            const now = encodeStoredNow(c, v, call);
            assert.ok(!(now instanceof Promise), "no promise without encryption");
            const old = await encodeStoredValue(c, v, call);
            assert.deepEqual(now.stored, old.stored);
            assert.deepEqual(now.payload, old.payload);
            assert.deepEqual(now.payload, std.serialize(v === undefined ? null : v));
            if (integrity && v !== undefined) {
              // The layers one by one.
              const data = encodeEnvelope(now.payload, "msgpack", { protocol: proto });
              const doc = {
                data,
                compressed: true,
                digest: false,
                serializer: "default",
                format: "msgpack",
                encryption: null,
                jsUndefined: false,
                freshUntil,
              };
              assert.deepEqual(now.stored, encodeWire(doc, wire));
            }
            const meta = { freshUntil: null as number | null };
            const back = decodeStoredValue(c, now.stored, "default", "k", meta);
            assert.deepEqual(back, v === undefined ? undefined : std.deserialize(now.payload));
            assert.equal(meta.freshUntil, freshUntil);
          }
        }
      }
    }
  }
});

test("encodeStoredNow: a serializer's error is thrown synchronously (plaintext)", () => {
  const c = codec(true, "envelope", "1.1");
  const call = { tenant: "default", protoKey: "k", freshUntil: null };
  assert.throws(() => encodeStoredNow(c, { f: () => 1 }, call));
});

test("encodeStoredNow: an encrypted codec gives a promise, and the entry decodes back", async () => {
  const cipher = new TenantCipher({ masterKey: crypto.getRandomValues(new Uint8Array(32)) });
  const secure = { cipher, label: (t: string) => t, accepts: (t: string, l: string) => t === l };
  for (const wire of ["document", "envelope"] as const) {
    const c = codec(true, wire, "1.1", secure);
    const v = { id: 2, tags: ["z"] };
    const p = encodeStoredNow(c, v, { tenant: "acme", protoKey: "k", freshUntil: null });
    assert.ok(p instanceof Promise);
    const { stored, payload } = await p;
    assert.deepEqual(payload, std.serialize(v));
    assert.deepEqual(await decodeStoredValue(c, stored, "acme", "k"), v);
    await assert.rejects(async () => await decodeStoredValue(c, stored, "acme", "other-key"));
  }
});
