/**
 * The fuzz targets: every decoder of stored bytes, the full read path of `cache()`, and the
 * receiving side of both invalidation buses (`bus`: Redis pub/sub messages, `fuzz/_bus_target.ts`;
 * `journal`: the file backend's journal, `fuzz/_journal_target.ts`), each with its corpus of valid
 * inputs and its oracle.
 *
 * A target classifies one input as `ok` (decoded, or for the read path: a hit with the identical
 * value or a miss that reran the function), `typed` (refused with the error type the decoder
 * documents), `wrong` (a value that is not the one stored) or `untyped` (any other exception).
 * On the read path of `cache()` every error that escapes the cached function is a failure: a
 * corrupt entry must be a miss.
 *
 * Oracles: a decoder protected by a checksum or an authentication tag (envelope, decryption, and
 * the chain behind the wire reader for compressed entries) must return exactly the bytes or value
 * of the entry it was mutated from, or of a splice donor; the read path must return the value of
 * the function. Formats without integrity of their own (plain MessagePack, JSON, the file entry
 * head) may decode to another value; for them only the error type, time and memory are checked.
 * The bus targets deliver exactly the events the message specification gives (`fuzz/_bus_spec.ts`),
 * and the journal reader calls its gap handler rather than lose an event; `typed` counts the
 * messages dropped and the journals that were a gap.
 *
 * @module
 */
import { isDeepStrictEqual } from "node:util";
import { encode as msgpackEncode } from "@msgpack/msgpack";
import { CacheKitError, DecryptionError, IntegrityError, SerializationError } from "../errors.ts";
import {
  acceptEntry,
  decodeWire,
  encodeWire,
  openEntry,
  type ReadPolicy,
} from "../protocol/stored_value.ts";
import { decodeEnvelope, encodeEnvelope } from "../protocol/envelope.ts";
import { openEnvelopeScratch } from "../protocol/_envelope_read.ts";
import { undefinedEnvelope } from "../protocol/_undefined_envelope.ts";
import { decodeInteropValue, encodeInteropValue } from "../protocol/keys.ts";
import { TenantCipher } from "../protocol/encryption.ts";
import { deserialize, serialize, StdSerializer } from "../serializers/std.ts";
import { JsonSerializer } from "../serializers/json.ts";
import { decodeKey, encodeHead, parseHead, sameBytes } from "../backends/_file_format.ts";
import { Rng } from "./_mutate.ts";
import {
  BIG,
  describe,
  FINGERPRINT,
  JSON_VALUES,
  OK,
  show,
  spliced,
  type Target,
  TEST_MASTER_KEY,
  thrown,
  VALUES,
} from "./_common.ts";
import { READ_PATH_MODES, readPathTarget } from "./_read_path.ts";
import { arrowTarget } from "./_arrow_target.ts";
import { busTarget } from "./_bus_target.ts";
import { journalTarget } from "./_journal_target.ts";

// -------------------------------------------------------------------------------- decoders

function envelopeTarget(): Target {
  const plains: Uint8Array[] = [];
  const corpus: Uint8Array[] = [];
  [...VALUES, BIG].forEach((v, i) => {
    const p = serialize(v);
    plains.push(p);
    corpus.push(encodeEnvelope(p, "msgpack", { protocol: i % 3 === 0 ? "1.0" : "1.1" }));
  });
  // The named-map form of the spec text, built from a 1.0 envelope's fields.
  const p = serialize({ named: "map form" });
  const [, checksum] = decodeArray(encodeEnvelope(p, "msgpack", { protocol: "1.0" }));
  const block = decodeArray(encodeEnvelope(p))[0] as Uint8Array;
  plains.push(p);
  corpus.push(
    msgpackEncode({
      compressed_data: block,
      checksum,
      original_size: p.length,
      format: "msgpack",
    }),
  );
  return {
    name: "envelope",
    description: "decodeEnvelope and the engine's scratch reader (IntegrityError, exact bytes)",
    corpus,
    share: 10,
    run(bytes, base, donors) {
      let a: Uint8Array;
      try {
        a = decodeEnvelope(bytes).data;
      } catch (e) {
        return thrown(e, [IntegrityError]);
      }
      if (!sameBytes(a, plains[base]) && !donors.some((d) => sameBytes(a, plains[d]))) {
        return { verdict: "wrong", detail: `decoded ${a.length} bytes that were never stored` };
      }
      let b: Uint8Array;
      try {
        b = openEnvelopeScratch(bytes).data;
      } catch (e) {
        return {
          verdict: "wrong",
          detail: `scratch reader refused what decodeEnvelope read: ${describe(e)}`,
        };
      }
      if (!sameBytes(a, b)) return { verdict: "wrong", detail: "scratch reader disagrees" };
      return OK;
    },
  };
}

function decodeArray(bytes: Uint8Array): unknown[] {
  // Only for building the corpus: the 1.0 envelope is a MessagePack array of 4.
  return deserialize(bytes) as unknown[];
}

interface WireEntry {
  bytes: Uint8Array;
  /** The value the chain must give back; `null` when the entry has no integrity to check. */
  value: { v: unknown } | null;
}

function wireCorpus(): WireEntry[] {
  const out: WireEntry[] = [];
  const json = new JsonSerializer();
  const picks = [0, 2, 7, 8, 9, 11, 13].map((i) => VALUES[i]).concat([BIG]);
  for (const form of ["envelope", "document"] as const) {
    for (const [n, v] of picks.entries()) {
      const plain = serialize(v);
      const env = encodeEnvelope(plain, "msgpack", { protocol: n % 2 === 0 ? "1.1" : "1.0" });
      out.push({
        bytes: encodeWire({ data: env, compressed: true, serializer: "default" }, form),
        value: { v },
      });
    }
    const env = encodeEnvelope(serialize(VALUES[7]));
    out.push({
      bytes: encodeWire(
        { data: env, compressed: true, serializer: "default", freshUntil: 1_900_000_000_123 },
        form,
      ),
      value: { v: VALUES[7] },
    });
    out.push({
      bytes: encodeWire(
        {
          data: undefinedEnvelope(serialize(null), "msgpack", "1.1"),
          compressed: true,
          serializer: "default",
          jsUndefined: true,
        },
        form,
      ),
      value: { v: undefined },
    });
    out.push({
      bytes: encodeWire(
        { data: serialize(VALUES[7]), compressed: false, serializer: "default" },
        form,
      ),
      value: null,
    });
    out.push({
      bytes: encodeWire(
        {
          data: encodeEnvelope(json.serialize(VALUES[7]), "json"),
          compressed: true,
          serializer: "json",
          format: "json",
        },
        form,
      ),
      value: { v: VALUES[7] },
    });
    out.push({
      bytes: encodeWire({
        data: crypto.getRandomValues(new Uint8Array(48)),
        compressed: true,
        serializer: "default",
        encryption: { tenantId: "tenant-a", keyFingerprint: FINGERPRINT },
        freshUntil: 1_900_000_000_000,
      }, form),
      value: null,
    });
  }
  return out;
}

/** What a function with integrity checking on accepts (`protocol/_stored_read.ts`), per serializer. */
const STD_POLICY: ReadPolicy = {
  serializer: new StdSerializer(),
  acceptNames: new Set(["default", "std"]),
  integrityChecking: true,
  limits: { maxSize: 100 * 1024 * 1024 },
  scratch: false,
};
const JSON_POLICY: ReadPolicy = {
  ...STD_POLICY,
  serializer: new JsonSerializer(),
  acceptNames: new Set(["json"]),
};

function wireTarget(): Target {
  const entries = wireCorpus();
  return {
    name: "wire",
    description:
      "decodeWire, then the engine's chain for plaintext entries (envelope, std/JSON deserialize); " +
      "compressed entries must give back their value",
    corpus: entries.map((e) => e.bytes),
    share: 16,
    run(bytes, base, donors) {
      let value: unknown;
      let checked = false;
      try {
        const doc = decodeWire(bytes);
        if (doc.encryption) return OK; // the ciphertext is the decrypt target's business
        // The engine's own reader rules, for a function with integrity checking on.
        const policy = doc.serializer === "json" ? JSON_POLICY : STD_POLICY;
        acceptEntry(doc, policy);
        value = openEntry(doc, doc.data, policy);
        checked = doc.compressed;
      } catch (e) {
        return thrown(e, [CacheKitError]);
      }
      if (!checked) return OK;
      const want = entries[base].value;
      if (want === null) return OK; // an entry without integrity of its own, now "compressed"
      if (isDeepStrictEqual(value, want.v)) return OK;
      for (const d of donors) {
        const alt = entries[d].value;
        if (alt !== null && spliced(value, alt.v)) return OK;
      }
      return { verdict: "wrong", detail: `read ${show(value)}, stored ${show(want.v)}` };
    },
  };
}

function stdTarget(): Target {
  return {
    name: "std",
    description: "std deserialize (SerializationError)",
    corpus: VALUES.map((v) => serialize(v)),
    share: 12,
    run(bytes) {
      try {
        deserialize(bytes);
        return OK;
      } catch (e) {
        return thrown(e, [SerializationError]);
      }
    },
  };
}

function jsonTarget(): Target {
  const json = new JsonSerializer();
  return {
    name: "json",
    description: "JsonSerializer.deserialize (SerializationError)",
    corpus: JSON_VALUES.map((v) => json.serialize(v)),
    share: 8,
    run(bytes) {
      try {
        json.deserialize(bytes);
        return OK;
      } catch (e) {
        return thrown(e, [SerializationError]);
      }
    },
  };
}

function interopTarget(): Target {
  const values = VALUES.filter((v) => !(v instanceof Map) && !(v instanceof Date));
  return {
    name: "interop",
    description: "decodeInteropValue (SerializationError)",
    corpus: values.map((v) => encodeInteropValue(v)),
    share: 10,
    run(bytes) {
      try {
        decodeInteropValue(bytes);
        return OK;
      } catch (e) {
        return thrown(e, [SerializationError]);
      }
    },
  };
}

const HEAD_READ = 4096;

function fileTarget(): Target {
  const enc = new TextEncoder();
  const corpus = VALUES.slice(0, 8).map((v, i) => {
    const key = enc.encode(`ns:fuzz:func:f:args:${"ab".repeat(i + 4)}:1s`);
    const value = encodeWire({
      data: encodeEnvelope(serialize(v)),
      compressed: true,
      serializer: "default",
    }, "envelope");
    const head = encodeHead(key, i % 2 === 0 ? 0 : 1_900_000_000_000, value.length);
    const out = new Uint8Array(head.length + value.length);
    out.set(head);
    out.set(value, head.length);
    return out;
  });
  return {
    name: "file",
    description: "file entry head (parseHead failure codes, offsets in range, decodeKey)",
    corpus,
    share: 8,
    run(bytes) {
      try {
        // As the file backend reads it: the first bytes, more when the head says so, then whole.
        let p = parseHead(bytes.subarray(0, HEAD_READ), bytes.length);
        if ("needMore" in p) {
          if (!(p.needMore > HEAD_READ && p.needMore <= bytes.length)) {
            return { verdict: "wrong", detail: `needMore ${p.needMore} out of range` };
          }
          p = parseHead(bytes.subarray(0, p.needMore), bytes.length);
          if ("needMore" in p) return { verdict: "wrong", detail: "needMore twice" };
        }
        if ("fail" in p) return { verdict: "typed", detail: p.fail };
        const whole = parseHead(bytes, bytes.length);
        if (!("keyBytes" in whole)) {
          return { verdict: "wrong", detail: "whole file parses differently" };
        }
        if (p.valueOffset > bytes.length || whole.valueOffset !== p.valueOffset) {
          return { verdict: "wrong", detail: `value offset ${p.valueOffset} of ${bytes.length}` };
        }
        if (!Number.isSafeInteger(p.expiresAtMs) || p.expiresAtMs < 0) {
          return { verdict: "wrong", detail: `expiry ${p.expiresAtMs}` };
        }
        decodeKey(p.keyBytes);
        return OK;
      } catch (e) {
        return thrown(e, []);
      }
    },
  };
}

async function decryptTarget(): Promise<Target> {
  const cipher = new TenantCipher({ masterKey: TEST_MASTER_KEY });
  const plains = VALUES.slice(0, 8).map((v) => encodeEnvelope(serialize(v)));
  const keys = plains.map((_, i) => `ns:fuzz:func:decrypt:args:${i}:1s`);
  const corpus: Uint8Array[] = [];
  let fingerprint = "";
  for (const [i, p] of plains.entries()) {
    const sealed = await cipher.encryptFor("tenant-a", keys[i], p, "msgpack", true);
    corpus.push(sealed.ciphertext);
    fingerprint = sealed.fingerprint;
  }
  return {
    name: "decrypt",
    description: "TenantCipher.decryptFor (DecryptionError; exact plaintext)",
    corpus,
    share: 4,
    async run(bytes, base) {
      let out: Uint8Array;
      try {
        out = await cipher.decryptFor("tenant-a", keys[base], bytes, "msgpack", true, fingerprint);
      } catch (e) {
        return thrown(e, [DecryptionError]);
      }
      if (!sameBytes(out, plains[base])) {
        return { verdict: "wrong", detail: `decrypted ${out.length} bytes that were never sealed` };
      }
      return OK;
    },
  };
}

/** Names of every target, in run order. */
export const TARGET_NAMES: readonly string[] = [
  "envelope",
  "wire",
  "std",
  "json",
  "interop",
  "file",
  "decrypt",
  "arrow",
  "bus",
  "journal",
  ...READ_PATH_MODES.map((m) => m.name),
];

/** The clock while corpora are written: fixed, so that `fresh_until` fields are the same bytes. */
const PINNED_NOW = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/**
 * Run `fn` with `crypto.getRandomValues` and `Date.now` made deterministic, so that the corpora
 * (nonces and key-instance ids of encrypted entries, `fresh_until` of fail-safe entries) are the
 * same bytes in every run and on every runtime, and `--seed S --target T --index I` rebuilds the
 * very input that failed. Only while the corpora are built; both are restored after.
 */
async function pinned<T>(fn: () => Promise<T>): Promise<T> {
  const c = globalThis.crypto;
  const rng = new Rng(0x5eed_c0de);
  const realNow = Date.now;
  Object.defineProperty(c, "getRandomValues", {
    value: <V extends ArrayBufferView | null>(a: V): V => {
      if (a !== null) {
        const b = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
        for (let i = 0; i < b.length; i++) b[i] = rng.u32() & 0xff;
      }
      return a;
    },
    configurable: true,
    writable: true,
  });
  Date.now = () => PINNED_NOW;
  try {
    return await fn();
  } finally {
    delete (c as { getRandomValues?: unknown }).getRandomValues;
    Date.now = realNow;
  }
}

/** Build the targets named in `names` (default: all), with their corpora. */
export function createTargets(names: readonly string[] = TARGET_NAMES): Promise<Target[]> {
  return pinned(() => buildTargets(names));
}

async function buildTargets(names: readonly string[]): Promise<Target[]> {
  const out: Target[] = [];
  for (const name of names) {
    switch (name) {
      case "envelope":
        out.push(envelopeTarget());
        break;
      case "wire":
        out.push(wireTarget());
        break;
      case "std":
        out.push(stdTarget());
        break;
      case "json":
        out.push(jsonTarget());
        break;
      case "interop":
        out.push(interopTarget());
        break;
      case "file":
        out.push(fileTarget());
        break;
      case "decrypt":
        out.push(await decryptTarget());
        break;
      case "arrow":
        out.push(await arrowTarget());
        break;
      case "bus":
        out.push(await busTarget());
        break;
      case "journal":
        out.push(await journalTarget());
        break;
      default: {
        const mode = READ_PATH_MODES.find((m) => m.name === name);
        if (mode === undefined) {
          throw new Error(`unknown fuzz target "${name}" (known: ${TARGET_NAMES.join(", ")})`);
        }
        out.push(await readPathTarget(mode));
      }
    }
  }
  return out;
}
