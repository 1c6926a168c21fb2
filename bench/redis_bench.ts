/**
 * RedisBackend against raw node-redis on the shared Redis (127.0.0.1:6379), in the same run:
 * - L2 get: 100 concurrent `backend.get` vs 100 concurrent raw `GET` (Buffer replies) of the same
 *   1 KiB value (baseline: raw);
 * - set: 100 concurrent `backend.set` (`SET … PX … GET`, to retire a chunked predecessor) vs raw
 *   `SET … PX`;
 * - one caller at a time: a single awaited get, both ways.
 * Keys carry a unique prefix and a 10-minute TTL.
 */
import { Buffer } from "node:buffer";
import { createClient } from "redis";
import { RedisBackend } from "../backends/redis.ts";

const URL = "redis://127.0.0.1:6379";
const prefix = `bench:redis:${crypto.randomUUID().slice(0, 8)}:`;
const value = new Uint8Array(1024).map((_, i) => (i * 17) & 0xff);
const CONCURRENCY = 100;

const backend = new RedisBackend({ url: URL, keyPrefix: prefix });
const raw = createClient({ url: URL }).withTypeMapping({ 36: Buffer });
raw.on("error", () => {});
await raw.connect();
await backend.set("k", value, 600);
const rawKey = `${prefix}k`;
const check = await raw.get(rawKey);
if (!check || check.length !== value.length) throw new Error("bench setup: value not stored");

// Warm both paths up before measuring, so the order of the benchmarks does not favour either.
for (let round = 0; round < 50; round++) {
  await Promise.all(Array.from({ length: CONCURRENCY }, () => backend.get("k")));
  await Promise.all(Array.from({ length: CONCURRENCY }, () => raw.get(rawKey)));
}

globalThis.addEventListener("unload", () => {
  void backend.close();
  raw.destroy();
});

Deno.bench({
  name: "RedisBackend.get × 100 concurrent",
  group: "l2-get-100",
  async fn() {
    const ps = new Array(CONCURRENCY);
    for (let i = 0; i < CONCURRENCY; i++) ps[i] = backend.get("k");
    await Promise.all(ps);
  },
});

Deno.bench({
  name: "raw node-redis GET × 100 concurrent",
  group: "l2-get-100",
  baseline: true,
  async fn() {
    const ps = new Array(CONCURRENCY);
    for (let i = 0; i < CONCURRENCY; i++) ps[i] = raw.get(rawKey);
    await Promise.all(ps);
  },
});

Deno.bench({
  name: "RedisBackend.set × 100 concurrent",
  group: "l2-set-100",
  async fn() {
    const ps = new Array(CONCURRENCY);
    for (let i = 0; i < CONCURRENCY; i++) ps[i] = backend.set(`s${i}`, value, 600);
    await Promise.all(ps);
  },
});

const buf = Buffer.from(value);
Deno.bench({
  name: "raw node-redis SET PX × 100 concurrent",
  group: "l2-set-100",
  baseline: true,
  async fn() {
    const ps = new Array(CONCURRENCY);
    for (let i = 0; i < CONCURRENCY; i++) {
      ps[i] = raw.set(`${prefix}r${i}`, buf, { expiration: { type: "PX", value: 600_000 } });
    }
    await Promise.all(ps);
  },
});

Deno.bench({
  name: "RedisBackend.get, one caller",
  group: "l2-get-1",
  async fn() {
    await backend.get("k");
  },
});

Deno.bench({
  name: "raw node-redis GET, one caller",
  group: "l2-get-1",
  baseline: true,
  async fn() {
    await raw.get(rawKey);
  },
});
