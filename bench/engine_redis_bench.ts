// deno-lint-ignore-file require-await -- the cached functions are async without awaiting
/**
 * The engine on the shared Redis (127.0.0.1:6379), against the raw client in the same run:
 *
 * - `l2-hit-100`: 100 concurrent calls, each on its own pre-stored key, L1 off, through
 *   `cache(fn, { backend: redis, l1: false })`, against raw node-redis `GET` + msgpackr decode of
 *   the same 100 stored values. Baseline: the interop entries (plain msgpack) read by a node-redis
 *   client with its per-command timeout off, the fastest way to use the raw client; a second row
 *   reads them with node-redis's defaults (a 5 s timeout armed per command). The engine reads the
 *   same interop bytes (interop mode) and the default wire's bare ByteStorage envelope, plain and
 *   with the default breaker / adaptive timeout / backpressure / stats / Prometheus on; the raw
 *   client also opens that envelope by hand (LZ4 + xxHash3 + msgpack) for the default wire's own
 *   baseline. Printed first, the **paired** table: every variant once per round in a rotated
 *   order, 300 rounds, the median of the per-round ratios (the machine's speed drifts by tens of
 *   percent over the seconds a `Deno.bench` row takes; ratios within one round do not drift).
 *   Then the same rows as `Deno.bench` rows, in three passes (groups `#1`–`#3`), each iteration 4
 *   rounds of 100 calls (per-iteration figures are for 400 calls). Group `wire formats`: the framed
 *   plain msgpack (integrity off) and the cachekit-py JSON document wire.
 * - `miss-set-100`: 100 concurrent calls on new keys (miss, stampede lock, compute, store,
 *   unlock), against raw `GET` (miss) + `SET PX` of the same encoded bytes.
 * - `invalidation`: `invalidate()` in one instance until the other instance's L1 entry is evicted
 *   (separate connections, as two processes would have), against a raw `PUBLISH` → `SUBSCRIBE`
 *   delivery.
 *
 * Keys carry a unique prefix and short TTLs; the server is never flushed.
 */
import { Buffer } from "node:buffer";
import { createClient } from "redis";
import { Unpackr } from "msgpackr";
import { cache, RedisBackend } from "../mod.ts";
import { decodeEnvelope } from "../protocol/mod.ts";
import { openEnvelopeScratch } from "../protocol/_envelope_read.ts";

const URL = "redis://127.0.0.1:6379";
const id = crypto.randomUUID().slice(0, 8);
const prefix = `bench:engine:${id}:`;
const N = 100;
const bare = { circuitBreaker: false, timeout: false, backpressure: false } as const;
const quiet = { collectStats: false, prometheus: false, structuredLogging: false };

const record = (i: number) => ({
  id: i,
  name: `user ${i}`,
  email: `user${i}@example.com`,
  roles: ["reader", "writer"],
  active: true,
  score: 12.5 + i,
  created: "2024-05-01T12:00:00Z",
  bio: "x".repeat(300),
});

const backend = new RedisBackend({
  url: URL,
  keyPrefix: prefix,
  invalidationChannel: `${prefix}inv`,
});
const raw = createClient({ url: URL }).withTypeMapping({ 36: Buffer });
raw.on("error", () => {});
await raw.connect();
const rawFast = createClient({ url: URL, commandOptions: { timeout: 0 } })
  .withTypeMapping({ 36: Buffer });
rawFast.on("error", () => {});
await rawFast.connect();
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

let computed = 0;
async function getUser(i: number) {
  computed++;
  return record(i);
}

const interop = cache(getUser, {
  interop: { namespace: `b${id}`, operation: "user" },
  ttl: 600,
  backend,
  l1: false,
  monitoring: quiet,
  ...bare,
});
const wire = cache(getUser, {
  name: "bench.user",
  namespace: `b${id}`,
  ttl: 600,
  backend,
  l1: false,
  wire: "document",
  monitoring: quiet,
  ...bare,
});
const wirePlain = cache(getUser, {
  name: "bench.user.plain",
  namespace: `b${id}`,
  ttl: 600,
  backend,
  l1: false,
  wire: "document",
  integrityChecking: false,
  monitoring: quiet,
  ...bare,
});
const env = cache(getUser, {
  name: "bench.user.env",
  namespace: `b${id}`,
  ttl: 600,
  backend,
  l1: false,
  wire: "envelope",
  monitoring: quiet,
  ...bare,
});
const envPlain = cache(getUser, {
  name: "bench.user.env.plain",
  namespace: `b${id}`,
  ttl: 600,
  backend,
  l1: false,
  wire: "envelope",
  integrityChecking: false,
  monitoring: quiet,
  ...bare,
});
const envDefaults = cache(getUser, {
  name: "bench.user.env",
  namespace: `b${id}`,
  ttl: 600,
  backend,
  l1: false,
});

// Store the 100 values through each engine, then find their Redis keys for the raw baselines.
for (const f of [interop, wire, wirePlain, env, envPlain]) {
  await Promise.all(Array.from({ length: N }, (_, i) => f(i)));
}
async function keysOf(pattern: string): Promise<string[]> {
  const out: string[] = [];
  for await (const b of raw.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    out.push(...b.map(String).filter((k) => !k.endsWith(":lock")));
  }
  if (out.length !== N) throw new Error(`bench setup: ${out.length} keys for ${pattern}`);
  return out;
}
const interopKeys = await keysOf(`${prefix}b${id}:user:*`);
const wireKeys = await keysOf(`${prefix}t:default:ns:b${id}:func:bench.user:args:*`);
const envKeys = await keysOf(`${prefix}t:default:ns:b${id}:func:bench.user.env:args:*`);
computed = 0;

/**
 * Decode the cachekit-py JSON document without the engine: JSON, base64, the ByteStorage envelope
 * (LZ4 + xxHash3 check, `protocol/`'s decoder), msgpack. The format's own cost.
 */
const utf8 = new TextDecoder();
function decodeDocument(bytes: Uint8Array): unknown {
  const doc = JSON.parse(utf8.decode(bytes));
  const data = Uint8Array.from(atob(doc.data), (c) => c.charCodeAt(0));
  return unpackr.unpack(decodeEnvelope(data).data);
}
/**
 * The bare envelope without the engine: LZ4 + xxHash3 check, msgpack. Opened as the engine opens
 * it (into a reused buffer, `_envelope_read.ts`), so that the row differs from the engine's only
 * by the engine; the public `decodeEnvelope` returns a new array per call, which costs ~0.8 µs
 * more and the full GCs a stream of new `ArrayBuffer`s brings.
 */
function decodeBareEnvelope(bytes: Uint8Array): unknown {
  return unpackr.unpack(openEnvelopeScratch(bytes).data);
}
// Sanity: the by-hand decoders read exactly what the engine stored.
const check = (await raw.get(wireKeys[0]))!;
if ((decodeDocument(check) as { email: string }).email.indexOf("@example.com") < 0) {
  throw new Error("bench setup: wire document not decoded");
}
const checkEnv = (await raw.get(envKeys[0]))!;
if ((decodeBareEnvelope(checkEnv) as { email: string }).email.indexOf("@example.com") < 0) {
  throw new Error("bench setup: bare envelope not decoded");
}
type Client = typeof raw;
const rawOnce = (keys: string[], decode: (b: Uint8Array) => unknown, client: Client = rawFast) => {
  const ps = new Array(N);
  for (let i = 0; i < N; i++) ps[i] = client.get(keys[i]).then((b) => decode(b!));
  return Promise.all(ps);
};
const engineOnce = (f: (i: number) => Promise<unknown>) => {
  const ps = new Array(N);
  for (let i = 0; i < N; i++) ps[i] = f(i);
  return Promise.all(ps);
};
/** One measured iteration of the hit group: ROUNDS rounds of N concurrent calls. */
const ROUNDS = 4;
const rounds = async (once: () => Promise<unknown>) => {
  for (let r = 0; r < ROUNDS; r++) await once();
};
const unpack = (b: Uint8Array) => unpackr.unpack(b);

// Warm every path up before measuring, so the order of the benchmarks does not favour any.
for (let round = 0; round < 100; round++) {
  await rawOnce(interopKeys, unpack);
  await rawOnce(interopKeys, unpack, raw);
  await rawOnce(wireKeys, decodeDocument);
  await engineOnce(interop);
  await engineOnce(wire);
  await engineOnce(wirePlain);
  await engineOnce(env);
  await engineOnce(envPlain);
  await engineOnce(envDefaults);
  await rawOnce(envKeys, decodeBareEnvelope);
}
if (computed !== 0) throw new Error(`bench setup: ${computed} misses while warming up hits`);

/**
 * `gc()` when the bench runs with `--v8-flags=--expose-gc` (as `deno task bench` does): each row
 * starts with a full collection during its (unmeasured) warm-up, so a major GC owed to the garbage
 * of earlier rows does not land inside a later row's measurements (without it, whichever row ran
 * fourth to sixth showed one 25–90 ms outlier).
 */
const fullGc = (globalThis as { gc?: () => void }).gc ?? (() => {});
// `async fn` (not an arrow returning a promise): deno bench awaits only async functions.
const hit = (
  group: string,
  name: string,
  once: () => Promise<unknown>,
  baseline = false,
  n = 150,
) => {
  let first = true;
  Deno.bench({
    name,
    group,
    baseline,
    warmup: 20,
    n,
    async fn() {
      if (first) {
        first = false;
        fullGc();
      }
      await rounds(once);
    },
  });
};
const interopLogical = interopKeys.map((k) => k.slice(prefix.length));

/**
 * The rows the target is about, in three passes (groups `l2-hit-100 #1..#3`, each with its own
 * baseline): the machine's speed drifts by tens of percent over the seconds a row takes, so each
 * pass compares rows measured close together, and three passes show the spread.
 */
const PASSES = 3;
for (let pass = 1; pass <= PASSES; pass++) {
  const g = `l2-hit-100 #${pass}`;
  const tag = (name: string) => `${name} [#${pass}]`;
  hit(
    g,
    tag("raw GET + msgpack decode × 100 (interop bytes)"),
    () => rawOnce(interopKeys, unpack),
    true,
  );
  hit(
    g,
    tag("raw GET, node-redis default 5 s command timeout, + msgpack decode × 100"),
    () => rawOnce(interopKeys, unpack, raw),
  );
  hit(g, tag("RedisBackend.get + msgpack decode × 100 (no engine)"), () => {
    const ps = new Array(N);
    for (let i = 0; i < N; i++) ps[i] = backend.get(interopLogical[i]).then((b) => unpack(b!));
    return Promise.all(ps);
  });
  hit(g, tag("engine, interop mode (same bytes), L1 off × 100"), () => engineOnce(interop));
  hit(
    g,
    tag("raw GET + bare envelope decoded by hand × 100"),
    () => rawOnce(envKeys, decodeBareEnvelope),
  );
  hit(
    g,
    tag("engine, envelope wire + integrity (bare envelope), L1 off × 100"),
    () => engineOnce(env),
  );
  hit(
    g,
    tag("engine, envelope wire + breaker/timeout/backpressure/stats (defaults) × 100"),
    () => engineOnce(envDefaults),
  );
}

/**
 * Paired measurement, printed before the rows: the same variants, one batch of 100 concurrent calls
 * each per round, in a rotated order, for PAIRED_ROUNDS rounds; each round's time of a variant is
 * divided by that round's time of the baseline, and the median of those ratios is reported (with
 * the quartiles). Rows measured seconds apart differ by the machine's drift (tens of percent on a
 * shared 2-core host); ratios taken within one round do not.
 */
const PAIRED_ROUNDS = 300;
const paired: [string, () => Promise<unknown>][] = [
  ["raw GET + msgpack decode (baseline)", () => rawOnce(interopKeys, unpack)],
  ["raw GET, node-redis default command timeout", () => rawOnce(interopKeys, unpack, raw)],
  ["RedisBackend.get + msgpack decode (no engine)", () => {
    const ps = new Array(N);
    for (let i = 0; i < N; i++) ps[i] = backend.get(interopLogical[i]).then((b) => unpack(b!));
    return Promise.all(ps);
  }],
  ["engine, interop mode (same bytes)", () => engineOnce(interop)],
  ["raw GET + bare envelope decoded by hand", () => rawOnce(envKeys, decodeBareEnvelope)],
  ["engine, envelope wire + integrity", () => engineOnce(env)],
  ["engine, envelope wire, defaults (breaker, timeout, …)", () => engineOnce(envDefaults)],
];
{
  const times = paired.map(() => [] as number[]);
  for (let r = 0; r < PAIRED_ROUNDS; r++) {
    for (let k = 0; k < paired.length; k++) {
      const v = (k + r) % paired.length;
      const t0 = performance.now();
      await paired[v][1]();
      times[v].push(performance.now() - t0);
    }
  }
  const q = (a: number[], f: number) =>
    [...a].sort((x, y) => x - y)[Math.floor(f * (a.length - 1))];
  const ratios = (v: number, base: number) => times[v].map((t, r) => t / times[base][r]);
  const rows = paired.map(([name], v) => {
    const vsRaw = ratios(v, 0);
    const vsEnv = ratios(v, 4);
    return {
      variant: name,
      "µs/call (median)": (q(times[v], 0.5) * 1000 / N).toFixed(2),
      "÷ baseline (median [q1, q3])": `${q(vsRaw, 0.5).toFixed(2)} [${q(vsRaw, 0.25).toFixed(2)}, ${
        q(vsRaw, 0.75).toFixed(2)
      }]`,
      "÷ envelope by hand": q(vsEnv, 0.5).toFixed(2),
    };
  });
  console.log(`l2-hit-100, paired over ${PAIRED_ROUNDS} rounds of ${N} concurrent calls:`);
  console.table(rows);
}

// What each wire format costs, once.
const wf = "l2-hit-100 wire formats";
hit(wf, "raw GET + msgpack decode × 100 (interop bytes)", () => rawOnce(interopKeys, unpack), true);
hit(
  wf,
  "engine, envelope wire, integrity off (framed msgpack), L1 off × 100",
  () => engineOnce(envPlain),
);
hit(wf, "raw GET + wire document decoded by hand × 100", () => rawOnce(wireKeys, decodeDocument));
hit(wf, "engine, cachekit-py wire + integrity, L1 off × 100", () => engineOnce(wire));
hit(wf, "engine, cachekit-py wire, integrity off, L1 off × 100", () => engineOnce(wirePlain));

// ---------------------------------------------------------------- miss + set

let fresh = 1_000_000;
const missWire = cache(getUser, {
  name: "bench.miss",
  namespace: `b${id}`,
  ttl: 30,
  backend,
  l1: false,
  monitoring: quiet,
  ...bare,
});
const missNoLock = cache(getUser, {
  name: "bench.miss.nolock",
  namespace: `b${id}`,
  ttl: 30,
  backend,
  l1: false,
  stampede: false,
  monitoring: quiet,
  ...bare,
});
const encoded = Buffer.from((await raw.get(wireKeys[0]))!);

Deno.bench({
  name: "raw GET (miss) + SET PX × 100",
  group: "miss-set-100",
  baseline: true,
  n: 300,
  async fn() {
    const ps = new Array(N);
    for (let i = 0; i < N; i++) {
      const k = `${prefix}rawmiss:${fresh++}`;
      ps[i] = raw.get(k).then(() =>
        raw.set(k, encoded, { expiration: { type: "PX", value: 30_000 } })
      );
    }
    await Promise.all(ps);
  },
});
Deno.bench({
  name: "engine miss: GET, lock, GET, compute, SET, unlock × 100",
  group: "miss-set-100",
  n: 300,
  async fn() {
    await engineOnce(() => missWire(fresh++));
  },
});
Deno.bench({
  name: "engine miss, stampede lock off: GET, compute, SET × 100",
  group: "miss-set-100",
  n: 300,
  async fn() {
    await engineOnce(() => missNoLock(fresh++));
  },
});

// ---------------------------------------------------------------- invalidation latency

const other = new RedisBackend({
  url: URL,
  keyPrefix: prefix,
  invalidationChannel: `${prefix}inv`,
});
const invOpts = {
  name: "bench.inv",
  namespace: `b${id}`,
  ttl: 600,
  l1: { invalidation: true },
  monitoring: quiet,
  ...bare,
};
const fa = cache(getUser, { ...invOpts, backend });
const fb = cache(getUser, { ...invOpts, backend: other });
let delivered: (() => void) | null = null;
await fb(2); // b's engine subscribes first …
// … so this handler runs after the engine's own one has evicted b's L1 entry.
await other.subscribe(() => delivered?.());
await new Promise((r) => setTimeout(r, 100));
{
  const passed = new Promise<void>((r) => (delivered = r));
  await fa(1);
  await passed;
}

const sub = raw.duplicate();
sub.on("error", () => {});
await sub.connect();
let rawDelivered: (() => void) | null = null;
await sub.subscribe(`${prefix}rawinv`, () => rawDelivered?.());

Deno.bench({
  name: "raw PUBLISH → SUBSCRIBE delivery",
  group: "invalidation",
  baseline: true,
  n: 300,
  async fn(b) {
    const got = new Promise<void>((r) => (rawDelivered = r));
    b.start();
    await raw.publish(`${prefix}rawinv`, "x");
    await got;
    b.end();
  },
});
Deno.bench({
  name: "invalidate() in A → B's L1 entry evicted",
  group: "invalidation",
  n: 300,
  async fn(b) {
    await fb(1); // B holds the entry in L1 (an L2 hit of A's value)
    if (fb.cacheInfo().size !== 2) throw new Error("B has no L1 entry"); // fb(2)'s and fb(1)'s
    const got = new Promise<void>((r) => (delivered = r));
    b.start();
    await fa.invalidate(1);
    await got;
    b.end();
    if (fb.cacheInfo().size !== 1) throw new Error("B's L1 entry was not evicted");
    // A stores again; wait for its write event to pass B, so B's next read is not discarded as
    // racing with an invalidation.
    const passed = new Promise<void>((r) => (delivered = r));
    await fa(1);
    await passed;
  },
});

globalThis.addEventListener("unload", () => {
  void backend.close();
  void other.close();
  raw.destroy();
  rawFast.destroy();
  sub.destroy();
});
