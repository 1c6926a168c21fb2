// The byte-level fast path of the stored-value codec (`protocol/_document_parse.ts`) against
// `JSON.parse` as the oracle: on
// every input it either declines (`null`, the general path then reads the document) or returns
// exactly what `JSON.parse` returns, with the top-level `data` string left in place as a slot whose
// characters are that string whenever they are plain base64 (the only case the codec uses it).
// Inputs:
// the documents cachekit-py and the engine write (compact and `json.dumps` spacing, every metadata
// field), hand-made edge cases, and thousands of random byte mutations of them.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { DataSlot, parseFast } from "../../protocol/_document_parse.ts";
import { decodeWire, encodeWire, WireFormatError } from "../../protocol/stored_value.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder("utf-8", { fatal: true });
const B64 = /^[A-Za-z0-9+/=]*$/;

function oracle(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(text.decode(bytes));
  } catch {
    return undefined;
  }
}

/** Check one input; returns whether the fast path took it. */
function check(bytes: Uint8Array, what: string): boolean {
  const fast = parseFast(bytes);
  if (fast === null) return false;
  const slot = fast.data;
  let plain = true;
  if (slot instanceof DataSlot) {
    const chars = String.fromCharCode(...bytes.subarray(slot.start, slot.end));
    plain = B64.test(chars);
    fast.data = chars;
  }
  if (!plain) return true; // the codec reads such a document through the general path
  const expected = oracle(bytes);
  assert.notEqual(expected, undefined, `${what}: the fast path took what JSON.parse refuses`);
  assert.deepEqual(fast, expected, what);
  assert.equal(Object.getPrototypeOf(fast), Object.prototype, what);
  return true;
}

const META =
  '{"format": "msgpack", "encoding": "utf-8", "compressed": true, "original_type": "msgpack"}';
const seeds: string[] = [
  // cachekit-py 0.3.0: json.dumps with its default separators.
  `{"data": "lJTEBAHIAP8=", "metadata": ${META}, "serializer": "default", "version": "2.0"}`,
  // The engine: JSON.stringify, every optional field.
  text.decode(encodeWire({
    data: new Uint8Array([1, 2, 3, 250]),
    compressed: true,
    serializer: "default",
    encryption: { tenantId: "acme", keyFingerprint: "0123456789abcdef0123456789abcdef" },
    jsUndefined: true,
    freshUntil: 1_764_000_000_123.5,
  })),
  `{"data":"","metadata":{"compressed":false},"serializer":"std","version":"2.0"}`,
  ` \t\r\n{ "data" : "QUJD" , "metadata" : { } , "serializer" : "x" , "version" : "2.0" } \n`,
  `{"data":"QUJD","data":"QUJE","metadata":{"a":{"b":{"c":1}}},"version":2,"x":null}`,
  `{"n":[-0,0.5,-1.25e+3,1E-7,12345678901234567890,1e400]}`,
  `{"n":-0,"m":0.5,"k":-1.25e+3,"j":1E-7,"i":12345678901234567890,"h":1e400,"g":true,"f":false}`,
  `{"data":"QU\\/D","metadata":{}}`,
  `{"data":"QUJD","metadata":{"tenant_id":"t\\u00e9"}}`,
  `{"data":"QUJD","metadata":{"tenant_id":"té"}}`,
  `{"__proto__":{"compressed":true}}`,
  `{"data":"QUJD","metadata":{"__proto__":1}}`,
  `{"a":{"b":{"c":{"d":{"e":1}}}}}`,
  `{"a":01}`,
  `{"a":1.}`,
  `{"a":.5}`,
  `{"a":+1}`,
  `{"a":-}`,
  `{"a":1e}`,
  `{"a":tru}`,
  `{"a":"\u0001"}`,
  `{"a":"x\u007f"}`,
  `{"a":1,}`,
  `{,"a":1}`,
  `{"a" 1}`,
  `{"a":1}}`,
  `{"a":1} x`,
  `{'a':1}`,
  `{}`,
  `[]`,
  `"x"`,
  `\ufeff{"data":"QUJD"}`,
  ``,
];

test("wire fast path: every seed document read as JSON.parse reads it, or declined", () => {
  for (const s of seeds) check(utf8.encode(s), JSON.stringify(s));
  // The documents as written (both spacings, all fields, whitespace, duplicates, numbers) go
  // through it: the fast path is the path of real hits.
  for (const i of [0, 1, 2, 3, 4, 6]) {
    assert.notEqual(parseFast(utf8.encode(seeds[i])), null, seeds[i]);
  }
});

test("wire fast path: random mutations of the documents never read differently from JSON.parse", () => {
  let seed = 42;
  const rnd = (n: number) => { // xorshift: reproducible
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const alphabet = utf8.encode(' {}[]":,.-+eE0123456789\\/tfnrul\u00e9=A\t\n\u0000');
  let taken = 0;
  for (let round = 0; round < 6000; round++) {
    const base = utf8.encode(seeds[rnd(seeds.length)]);
    const b = Array.from(base);
    for (let k = 1 + rnd(3); k > 0; k--) {
      const op = rnd(3);
      const at = rnd(b.length + 1);
      const c = rnd(4) === 0 ? rnd(256) : alphabet[rnd(alphabet.length)];
      if (op === 0 && b.length > 0) b[Math.min(at, b.length - 1)] = c;
      else if (op === 1) b.splice(at, 0, c);
      else b.splice(at, 1);
    }
    if (check(Uint8Array.from(b), JSON.stringify(String.fromCharCode(...b)))) taken++;
  }
  assert.ok(taken > 500, `mutants the fast path took and matched (${taken})`);
});

test("wire: documents the fast path takes and declines decode alike (decodeWire)", () => {
  const data = new Uint8Array([0x94, 0xc4, 0x04, 1, 0xc8, 0, 0xff]);
  const compact = encodeWire({ data, compressed: true, serializer: "default" });
  const spaced = utf8.encode(
    `{"data": "${
      btoa(String.fromCharCode(...data))
    }", "metadata": ${META}, "serializer": "default", "version": "2.0"}`,
  );
  const escaped = utf8.encode(text.decode(spaced).replace("default", "defaul\\u0074"));
  for (const doc of [compact, spaced, escaped]) {
    const d = decodeWire(doc);
    assert.deepEqual(Array.from(d.data), Array.from(data));
    assert.equal(d.serializer, "default");
    assert.equal(d.compressed, true);
    assert.equal(d.format, "msgpack");
  }
  assert.equal(parseFast(escaped), null, "an escape takes the general path");
  // Refusals are the same errors whichever path met the document first.
  for (
    const bad of [
      `{"data":"QUJD","version":"2.0"}`,
      `{"data":"QUJ","metadata":{"compressed":true},"serializer":"d","version":"2.0"}`,
    ]
  ) {
    assert.throws(() => decodeWire(utf8.encode(bad)), WireFormatError);
  }
  assert.throws(
    () =>
      decodeWire(
        utf8.encode(
          `{"data":"QU\\"D","metadata":{"compressed":true},"serializer":"d","version":"2.0"}`,
        ),
      ),
    /not valid base64/,
  );
});
