// deno-lint-ignore-file require-await -- async functions without await are what the tests cache
// "A cache never answers wrong" (issue 11, points 1 and 5): every stored bit that can change the
// answer is covered by a checksum when integrity checking is on and by the AES-GCM tag when
// encrypted, and the reader's configuration decides what it accepts. Targeted regressions (flags
// of the framed header, edited document metadata, encrypted `undefined`, a parser's own limit),
// then every single-bit flip and truncation of an entry of each mode through `cache()`.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { recording } from "../_recording_backend.ts";
import {
  type Backend,
  cache,
  type CacheOptions,
  MemoryBackend,
  WireFormatError,
} from "../../mod.ts";
import { decodeWire, encodeWire } from "../../protocol/stored_value.ts";

const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const MASTER = hex(crypto.getRandomValues(new Uint8Array(32)));
const secure = { encryption: { masterKey: MASTER, singleTenant: true } } as const;
const utf8 = new TextEncoder();
const text = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The stored JSON document, edited by `edit`, as bytes again. */
function editDoc(b: Uint8Array, edit: (doc: { metadata: Record<string, unknown> }) => void) {
  const doc = JSON.parse(text(b));
  edit(doc);
  return utf8.encode(JSON.stringify(doc));
}

/**
 * A function cached with `opts` over a recording MemoryBackend: its first call returns `first`,
 * later calls `{ fresh: n }`. `calls()` counts them; `stored()` / `put()` read and replace the one
 * entry.
 */
async function setup(
  opts: CacheOptions<[number]>,
  first: unknown,
  preset: "plain" | "secure" | "production" = "plain",
) {
  const rec = recording(new MemoryBackend());
  let n = 0;
  const fn = async (_id: number) => n++ === 0 ? first : { fresh: n };
  const all = { name: `wire.integrity.${crypto.randomUUID()}`, ttl: 60, ...opts };
  const f = preset === "plain"
    ? cache(fn, { backend: rec.backend, l1: false, ...bare, ...all })
    : cache[preset](fn, { backend: rec.backend, l1: false, ...bare, ...all });
  assert.deepEqual(await f(1), first);
  const key = rec.keys[0];
  return {
    f: () => f(1),
    calls: () => n,
    stored: async () => (await rec.inner.get(key))!,
    put: (b: Uint8Array) => rec.inner.set(key, b, 60),
  };
}

const VALUE = { id: 1, name: "Ada", tags: ["x", "y"] };

// ------------------------------------------------------------------ framed header flags

test("integrity: the framed 'undefined' flag set on a value is a miss, not undefined", async () => {
  for (const preset of ["plain", "secure"] as const) {
    const s = await setup(
      { staleTtl: 60, ...(preset === "secure" ? secure : {}) },
      VALUE,
      preset,
    );
    const b = (await s.stored()).slice();
    assert.equal(b[0], 0xc1, "framed");
    b[4] |= 0x08;
    await s.put(b);
    assert.deepEqual(await s.f(), { fresh: 2 }, preset);
    assert.equal(s.calls(), 2, `${preset}: recomputed`);
  }
});

test("integrity: clearing the framed 'envelope' flag never serves the envelope array", async () => {
  const s = await setup({ staleTtl: 60, ttl: 300 }, VALUE, "production");
  const b = (await s.stored()).slice();
  b[4] ^= 0x01;
  await s.put(b);
  assert.deepEqual(await s.f(), { fresh: 2 });
  assert.equal(s.calls(), 2);
});

test("integrity: a framed entry without the envelope is refused when integrity is on", async () => {
  const s = await setup({ staleTtl: 60 }, VALUE);
  const doc = decodeWire(await s.stored());
  // A well-formed frame carrying the plain MessagePack bytes (what integrity off writes).
  const plain = encodeWire({ ...doc, compressed: false, data: new Uint8Array([0x2a]) }, "envelope");
  await s.put(plain);
  assert.deepEqual(await s.f(), { fresh: 2 });
});

test("integrity: an old (layout 0x01) framed entry is a miss", async () => {
  const s = await setup({ staleTtl: 60, integrityChecking: false }, VALUE);
  const b = (await s.stored()).slice();
  assert.equal(b[3], 0x02);
  b[3] = 0x01;
  await s.put(b);
  assert.deepEqual(await s.f(), { fresh: 2 });
});

// ------------------------------------------------------------------ document metadata

test("integrity: a document edited to compressed:false or js_undefined:true is a miss", async () => {
  const edits: [string, (d: { metadata: Record<string, unknown> }) => void][] = [
    ["compressed false", (d) => d.metadata.compressed = false],
    ["js_undefined true", (d) => d.metadata.js_undefined = true],
    ["fresh_until added", (d) => d.metadata.fresh_until = Date.now() / 1000 + 3600],
  ];
  for (const [what, edit] of edits) {
    for (const preset of ["plain", "secure"] as const) {
      const s = await setup(
        { wire: "document", ...(preset === "secure" ? secure : {}) },
        VALUE,
        preset,
      );
      await s.put(editDoc(await s.stored(), edit));
      assert.deepEqual(await s.f(), { fresh: 2 }, `${what}, ${preset}`);
    }
  }
});

test("integrity: stripping js_undefined from an undefined document never serves null", async () => {
  for (const preset of ["plain", "secure"] as const) {
    const s = await setup(
      { wire: "document", ...(preset === "secure" ? secure : {}) },
      undefined,
      preset,
    );
    const b = await s.stored();
    assert.equal(JSON.parse(text(b)).metadata.js_undefined, true);
    await s.put(editDoc(b, (d) => delete d.metadata.js_undefined));
    assert.deepEqual(await s.f(), { fresh: 2 }, preset);
  }
});

test("integrity: a stale document whose fresh_until is pushed forward is not served as fresh", async () => {
  for (const preset of ["plain", "secure"] as const) {
    const s = await setup(
      { wire: "document", ttl: 1, staleTtl: 60, ...(preset === "secure" ? secure : {}) },
      VALUE,
      preset,
    );
    await sleep(1100); // the entry is now stale
    await s.put(
      editDoc(await s.stored(), (d) => d.metadata.fresh_until = Date.now() / 1000 + 3600),
    );
    assert.deepEqual(await s.f(), { fresh: 2 }, preset);
  }
});

test("integrity: an undefined flag over a non-nil payload is refused, checksums agreeing", async () => {
  for (const wire of ["document", "envelope"] as const) {
    const s = await setup({ wire, staleTtl: 60 }, VALUE);
    const doc = decodeWire(await s.stored());
    // Well-formed in every other way: encodeWire computes the header check / ck_check.
    const forged = encodeWire({ ...doc, jsUndefined: true }, wire);
    assert.equal(decodeWire(forged).jsUndefined, true);
    await s.put(forged);
    assert.deepEqual(await s.f(), { fresh: 2 }, wire);
  }
});

test("integrity: a cachekit-py plain document (no ck_check) is still a hit", async () => {
  const s = await setup({ wire: "document" }, VALUE);
  const b = await s.stored();
  await s.put(editDoc(b, (d) => delete d.metadata.ck_check));
  assert.deepEqual(await s.f(), VALUE);
  assert.equal(s.calls(), 1);
});

test("integrity: every bit of an encrypted undefined entry is authenticated", async () => {
  for (const wire of ["document", "envelope"] as const) {
    const s = await setup({ wire, ...secure }, undefined, "secure");
    const good = await s.stored();
    const doc = decodeWire(good);
    const start = wire === "envelope" ? good.length - doc.data.length : 0;
    for (let i = 0; i < doc.data.length; i++) {
      let b: Uint8Array;
      if (wire === "envelope") {
        b = good.slice();
        b[start + i] ^= 0x01 << (i % 8);
      } else {
        const data = doc.data.slice();
        data[i] ^= 0x01 << (i % 8);
        b = editDoc(
          good,
          (d) => (d as unknown as { data: string }).data = btoa(String.fromCharCode(...data)),
        );
      }
      await s.put(b);
      const before = s.calls();
      assert.deepEqual(await s.f(), { fresh: before + 1 }, `${wire} byte ${i}`);
    }
  }
});

test("integrity: key rotation rewrites entries whose AAD carries the wire's fields", async () => {
  const K2 = hex(crypto.getRandomValues(new Uint8Array(32)));
  for (const wire of ["envelope", "document"] as const) {
    for (const first of [VALUE, undefined]) {
      const rec = recording(new MemoryBackend());
      let n = 0;
      const fn = async (_id: number) => n++ === 0 ? first : { fresh: n };
      const name = `wire.rotate.${crypto.randomUUID()}`;
      const mk = (masterKey: string, previousKeys: string[] = []) =>
        cache.secure(fn, {
          name,
          wire,
          ttl: 60,
          staleTtl: 60,
          backend: rec.backend,
          l1: false,
          ...bare,
          encryption: { masterKey, previousKeys, singleTenant: true },
        });
      const what = `${wire}, ${first === undefined ? "undefined" : "value"}`;
      assert.deepEqual(await mk(MASTER)(1), first, what);
      const fp = async () => {
        for (const k of await rec.live()) {
          const doc = decodeWire((await rec.inner.get(k))!);
          if (doc.encryption!.keyFingerprint !== oldFp) return doc.encryption!.keyFingerprint;
        }
        return oldFp;
      };
      const oldFp = decodeWire((await rec.inner.get(rec.keys[0]))!).encryption!.keyFingerprint;
      assert.deepEqual(await mk(K2, [MASTER])(1), first, `${what}: read under the previous key`);
      for (let i = 0; i < 200 && (await fp()) === oldFp; i++) await sleep(5);
      assert.notEqual(await fp(), oldFp, `${what}: rewritten under the current key`);
      assert.deepEqual(await mk(K2)(1), first, `${what}: the rewritten entry reads with K2 alone`);
      assert.equal(n, 1, `${what}: never recomputed`);
    }
  }
});

// ------------------------------------------------------------------ typed refusals

test("integrity: a 130,000-digit JSON number decodes (or is a WireFormatError), never a RangeError", async () => {
  const huge = utf8.encode(
    '{"data":"wA==","metadata":{"format":"msgpack","compressed":false,"x":' +
      "1".repeat(130_000) + '},"serializer":"default","version":"2.0"}',
  );
  // Valid JSON: the fast path leaves the number to JSON.parse instead of overflowing on it.
  assert.deepEqual(Array.from(decodeWire(huge).data), [0xc0]);
  // Not JSON at all past the number: a typed refusal.
  assert.throws(() => decodeWire(huge.subarray(0, huge.length - 1)), WireFormatError);
  const s = await setup({ wire: "document" }, VALUE);
  const b = await s.stored();
  // Through the engine: an unknown metadata field holding it is ignored (the same value).
  await s.put(utf8.encode(text(b).replace('"encoding"', `"n":${"7".repeat(130_000)},"encoding"`)));
  assert.deepEqual(await s.f(), VALUE);
  assert.equal(s.calls(), 1);
});

// ------------------------------------------------------------------ every single-bit flip

/** A backend whose `get` answers fixed bytes (when set) and whose writes go nowhere. */
function fixedBackend(inner: Backend) {
  let fixed: Uint8Array | null = null;
  const backend: Backend = {
    type: inner.type,
    capabilities: inner.capabilities,
    get: (k, o) => fixed !== null ? Promise.resolve(fixed.slice()) : inner.get(k, o),
    set: (k, v, t, o) => fixed !== null ? Promise.resolve() : inner.set(k, v, t, o),
    delete: (k, o) => fixed !== null ? Promise.resolve(false) : inner.delete(k, o),
    exists: (k, o) => inner.exists(k, o),
    healthCheck: () => inner.healthCheck(),
    close: () => Promise.resolve(),
  };
  return { backend, fix: (b: Uint8Array | null) => fixed = b };
}

const MODES: [string, CacheOptions<[number]>, unknown, boolean][] = [
  ["envelope wire (bare)", {}, VALUE, false],
  ["envelope wire, fail-safe", { staleTtl: 60 }, VALUE, false],
  ["envelope wire, undefined", {}, undefined, false],
  ["document wire", { wire: "document" }, VALUE, false],
  ["document wire, fail-safe", { wire: "document", staleTtl: 60 }, VALUE, false],
  ["document wire, undefined", { wire: "document" }, undefined, false],
  ["secure, envelope wire", {}, VALUE, true],
  ["secure, envelope wire, fail-safe, undefined", { staleTtl: 60 }, undefined, true],
  ["secure, document wire", { wire: "document" }, VALUE, true],
  [
    "secure, document wire, fail-safe, undefined",
    { wire: "document", staleTtl: 60 },
    undefined,
    true,
  ],
];

test("integrity: every single-bit flip and truncation answers the value or recomputes", async () => {
  for (const [mode, opts, first, isSecure] of MODES) {
    const rec = recording(new MemoryBackend());
    const { backend, fix } = fixedBackend(rec.backend);
    let n = 0;
    let last: unknown = undefined;
    const fn = async (_id: number) => (last = n++ === 0 ? first : { fresh: n });
    const all: CacheOptions<[number]> = {
      name: `wire.flip.${crypto.randomUUID()}`,
      ttl: 60,
      backend,
      l1: false,
      ...bare,
      ...opts,
      ...(isSecure ? secure : {}),
    };
    const f = isSecure ? cache.secure(fn, all) : cache(fn, all);
    assert.deepEqual(await f(1), first);
    const good = (await rec.inner.get(rec.keys[0]))!;
    const check = async (b: Uint8Array, what: string) => {
      fix(b);
      const before = n;
      let got: unknown;
      try {
        got = await f(1);
      } catch (e) {
        assert.fail(`${mode}, ${what}: threw ${e}`);
      }
      if (n === before) assert.deepEqual(got, first, `${mode}, ${what}: served another value`);
      else assert.deepEqual(got, last, `${mode}, ${what}: not the function's value`);
    };
    await check(good, "control");
    assert.equal(n, 1, `${mode}: the control is a hit`);
    for (let i = 0; i < good.length * 8; i++) {
      const b = good.slice();
      b[i >> 3] ^= 1 << (i & 7);
      await check(b, `bit ${i}`);
    }
    for (let len = 0; len < good.length; len++) await check(good.subarray(0, len), `first ${len}`);
    fix(null);
    // The flips did reach the reader: most of them (every truncation) recomputed.
    assert.ok(n > good.length, `${mode}: ${n} runs for ${good.length} bytes`);
  }
});

test("integrity: an undefined entry that lost its flag is a miss, not null (the checksum says undefined)", async () => {
  // Document wire: a splice that cuts both `js_undefined` and `ck_check` out leaves cachekit-py's
  // plain form, whose payload is nil; only the envelope's marker checksum still tells.
  const doc = await setup({ wire: "document" }, undefined);
  await doc.put(editDoc(await doc.stored(), (d) => {
    delete d.metadata.js_undefined;
    delete d.metadata.ck_check;
  }));
  assert.deepEqual(await doc.f(), { fresh: 2 });
  assert.equal(doc.calls(), 2, "document: recomputed");
  // Envelope wire: the framed payload of an `undefined` result, stored bare (no header at all).
  const env = await setup({}, undefined);
  const framed = decodeWire(await env.stored());
  assert.equal(framed.jsUndefined, true);
  await env.put(framed.data.slice());
  assert.deepEqual(await env.f(), { fresh: 2 });
  assert.equal(env.calls(), 2, "envelope: recomputed");
  // And the unedited entries are hits that answer undefined.
  const ok = await setup({ wire: "document" }, undefined);
  assert.equal(await ok.f(), undefined);
  assert.equal(ok.calls(), 1);
});
