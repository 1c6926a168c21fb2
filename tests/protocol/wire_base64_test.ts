// The `data` field of a wire document is standard base64 as Python writes it. Checked against
// Python's `base64.b64decode(s, validate=True)` on every decoder of the codec (the byte-level one of
// its fast path; on its general path the runtime's `Uint8Array.fromBase64` and the table decoder
// used where a runtime has none, e.g. Node 20):
// everything Python's encoder writes decodes to the same bytes; whatever else we accept, Python
// accepts with the same bytes (we may refuse more, e.g. excess padding: a refused document is a
// miss, never a wrong value); and all decoders accept and refuse exactly the same strings.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { pythonTestOptions, runPythonJson } from "../_python.ts";
import { decodeWire, WireFormatError } from "../../protocol/stored_value.ts";

const PY = String.raw`
import sys, json, base64, binascii
out = []
for s in json.load(sys.stdin):
    try:
        out.append(list(base64.b64decode(s, validate=True)))
    except (binascii.Error, ValueError):
        out.append(None)
print(json.dumps(out))
`;

function doc(data: string, general: boolean): Uint8Array {
  const text = JSON.stringify({
    data,
    metadata: { format: "msgpack", encoding: "utf-8", compressed: false, original_type: "msgpack" },
    serializer: "default",
    version: "2.0",
  });
  // An escape elsewhere in the document (`\u0074` is "t") makes the codec read it through its
  // general path (text decode + JSON.parse + the string decoders) instead of the byte-level one.
  return new TextEncoder().encode(general ? text.replace('"default"', '"defaul\\u0074"') : text);
}

function decode(data: string, general: boolean): number[] | null {
  try {
    return Array.from(decodeWire(doc(data, general)).data);
  } catch (e) {
    assert.ok(e instanceof WireFormatError, `a WireFormatError, got ${e}`);
    return null;
  }
}

/** Strings Python's `b64encode` writes. */
function canonical(): string[] {
  const out = ["", "QQ==", "QUI=", "QUJD", "AAAA", "+/+/", "////"];
  for (const n of [1, 2, 3, 4, 5, 47, 48, 1000, 70_000]) {
    const bytes = new Uint8Array(n).map((_, i) => (i * 89 + n * 7) & 0xff);
    let bin = "";
    for (const b of bytes) bin += String.fromCharCode(b);
    out.push(btoa(bin));
  }
  return out;
}

/** Strings it never writes. */
function other(): string[] {
  const s = btoa(String.fromCharCode(...new Uint8Array(48).map((_, i) => i * 5))); // 64 chars
  return [
    "QR==",
    "QUJ=",
    "QUK=",
    "QQ",
    "QQ=",
    "QQ===",
    "Q===",
    "====",
    "QQ==QUJD",
    "QU=D",
    "QUJD ",
    " QUJD",
    "QU JD",
    "QUJ\nD",
    "QUJD\n",
    "QUJD\t",
    "QU-D",
    "QU_D",
    "QUJÉ",
    "QUJ\u0000",
    "QUJ\u{1F600}",
    s.slice(0, 30) + " " + s.slice(31),
    s.slice(0, 30) + "*" + s.slice(31),
    s + "=",
    s + "==",
    s.slice(0, -1),
  ];
}

test("wire: base64 data decodes as Python's b64decode(validate=True), never to other bytes", () => {
  const good = canonical();
  const cases = [...good, ...other()];
  const expected = runPythonJson<(number[] | null)[]>(PY, JSON.stringify(cases));
  const ctor = Uint8Array as unknown as { fromBase64?: unknown };
  const native = ctor.fromBase64;
  const results: Record<string, (number[] | null)[]> = {};
  const decoders: [string, () => void, boolean][] = [
    ["bytes", () => {}, false],
    ["table", () => delete ctor.fromBase64, true],
  ];
  if (native !== undefined) decoders.unshift(["native", () => {}, true]);
  for (const [name, setup, general] of decoders) {
    setup();
    try {
      results[name] = cases.map((c) => decode(c, general));
    } finally {
      if (native !== undefined) ctor.fromBase64 = native;
    }
    results[name].forEach((got, i) => {
      const what = `${name} decoder, input ${JSON.stringify(cases[i].slice(0, 80))}`;
      if (i < good.length) assert.deepEqual(got, expected[i], what);
      else if (got !== null) assert.deepEqual(got, expected[i], `${what}: accepted, so as Python`);
    });
  }
  if (results.native) assert.deepEqual(results.native, results.table, "both decoders agree");
  assert.deepEqual(results.bytes, results.table, "the byte-level path agrees");
  const refused = results.table.filter((r) => r === null).length;
  assert.ok(refused >= 20, `the malformed inputs are refused (${refused})`);
}, pythonTestOptions);
