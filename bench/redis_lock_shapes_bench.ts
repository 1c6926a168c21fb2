/**
 * The Redis command shapes a stampede-protected miss could use, sent by the raw node-redis client
 * (per-command timeout off) on a private redis-server: 100 concurrent new keys per batch, paired
 * rounds (every shape once per round, rotated order, median of per-round ratios against raw
 * `GET` + `SET PX`), with the redis-server's CPU per miss (`INFO cpu`) and its `usec_per_call` per
 * command (`INFO commandstats`, which in Redis 7 also counts the commands a script runs).
 *
 * The lease-in-the-key shapes are the native mode's (`backends/_redis_lease.ts`): the marker
 * taken with one plain `SET … NX PX … GET`, the value written over it with a plain `SET`.
 *
 * `deno run -A --lock=deno.dev.lock bench/redis_lock_shapes_bench.ts [rounds]`
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createClient } from "redis";
import { Packr } from "msgpackr";
import { pairedRounds, roundRatios, spread } from "./_paired.ts";
import { freePort } from "./_goals_env.ts";
import { startRedisServer } from "../tests/_redis_server.ts";
import { FETCH_LOCK_MANY_SCRIPT, SET_UNLOCK_MANY_SCRIPT } from "../backends/_redis_chunks.ts";

const FETCH_LOCK = `
if ARGV[3] ~= '1' then
  local v = redis.call('GET', KEYS[1])
  if v then return v end
end
if redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return 0
`;
const SET_UNLOCK = `
local old
if tonumber(ARGV[2]) > 0 then
  old = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
else
  old = redis.call('SET', KEYS[1], ARGV[1], 'GET')
end
if redis.call('GET', KEYS[2]) == ARGV[3] then redis.call('DEL', KEYS[2]) end
return old
`;
const UNLOCK = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

const ROUNDS = Number(Deno.args[0] ?? 150);
const N = 100;
const server = await startRedisServer(await freePort());
const raw = createClient({ url: server.url, commandOptions: { timeout: 0 } })
  .withTypeMapping({ 36: Buffer });
raw.on("error", () => {});
await raw.connect();
const packr = new Packr();
const sha = async (s: string) => String(await raw.sendCommand(["SCRIPT", "LOAD", s]));
const fetchSha = await sha(FETCH_LOCK);
const setUnlockSha = await sha(SET_UNLOCK);
const unlockSha = await sha(UNLOCK);
const fetchManySha = await sha(FETCH_LOCK_MANY_SCRIPT.source);
const setManySha = await sha(SET_UNLOCK_MANY_SCRIPT.source);
const record = (i: number) => ({
  id: i,
  name: `user ${i}`,
  email: `user${i}@example.com`,
  roles: ["reader", "writer"],
  active: true,
  score: 12.5 + i,
  created: "2024-05-01T12:00:00Z",
  bio: "x".repeat(600),
});
const send = (args: (string | Buffer)[]): Promise<unknown> => raw.sendCommand(args);
let fresh = 0;
type Miss = (key: string, i: number) => Promise<unknown>;
const batch = (miss: Miss) => () => {
  const base = fresh;
  fresh += N;
  const ps = new Array(N);
  for (let i = 0; i < N; i++) ps[i] = miss(`shape:${base + i}`, base + i);
  return Promise.all(ps);
};
const token = (i: number) => `0123456789abcdef:${i.toString(36)}`;
const ttl = "20000";
/** The lease marker's prefix (`backends/_redis_lease.ts`). */
const MARKER = "\0cachekit\x01lease:";
const lease = "10000";

/** The whole batch of 100 misses as one read-or-lock script call and one store-and-unlock one. */
const batched = () => {
  const base = fresh;
  fresh += N;
  const keys: string[] = [];
  const args: string[] = [];
  for (let i = 0; i < N; i++) {
    const k = `shape:${base + i}`;
    keys.push(k, k + ":lock");
    args.push(token(base + i), lease, "0");
  }
  return send(["EVALSHA", fetchManySha, String(keys.length), ...keys, ...args]).then((r) => {
    const got = r as unknown[];
    const values: Buffer[] = [];
    const wargs: string[] = [];
    const wkeys: string[] = [];
    for (let i = 0; i < N; i++) {
      if (got[i] !== 1) continue;
      const v = packr.pack(record(base + i));
      values.push(v);
      wkeys.push(keys[2 * i], keys[2 * i + 1]);
      wargs.push(String(v.length), ttl, token(base + i));
    }
    return send([
      "EVALSHA",
      setManySha,
      String(wkeys.length),
      ...wkeys,
      Buffer.concat(values),
      ...wargs,
    ]);
  });
};

const shapes: [string, Miss][] = [
  [
    "raw GET + SET PX",
    (k, i) => send(["GET", k]).then((v) => v ?? send(["SET", k, packr.pack(record(i)), "PX", ttl])),
  ],
  [
    "Lua read-or-lock + Lua set-and-unlock (main)",
    (k, i) =>
      send(["EVALSHA", fetchSha, "2", k, k + ":lock", token(i), lease, "0"]).then((v) =>
        v === 1
          ? send([
            "EVALSHA",
            setUnlockSha,
            "2",
            k,
            k + ":lock",
            packr.pack(record(i)),
            ttl,
            token(i),
          ])
          : v
      ),
  ],
  ["[GET, SET NX PX] + [SET PX GET, Lua unlock]", (k, i) => {
    const get = send(["GET", k]);
    const lock = send(["SET", k + ":lock", token(i), "NX", "PX", lease]);
    return Promise.all([get, lock]).then(([v, l]) => {
      if (v !== null || l === null) return v;
      const set = send(["SET", k, packr.pack(record(i)), "PX", ttl, "GET"]);
      const un = send(["EVALSHA", unlockSha, "1", k + ":lock", token(i)]);
      return Promise.all([set, un]);
    });
  }],
  ["[GET, SET NX PX] + Lua set-and-unlock", (k, i) => {
    const get = send(["GET", k]);
    const lock = send(["SET", k + ":lock", token(i), "NX", "PX", lease]);
    return Promise.all([get, lock]).then(([v, l]) => {
      if (v !== null || l === null) return v;
      return send([
        "EVALSHA",
        setUnlockSha,
        "2",
        k,
        k + ":lock",
        packr.pack(record(i)),
        ttl,
        token(i),
      ]);
    });
  }],
  [
    "Lua read-or-lock + [SET PX GET, Lua unlock]",
    (k, i) =>
      send(["EVALSHA", fetchSha, "2", k, k + ":lock", token(i), lease, "0"]).then((v) => {
        if (v !== 1) return v;
        const set = send(["SET", k, packr.pack(record(i)), "PX", ttl, "GET"]);
        const un = send(["EVALSHA", unlockSha, "1", k + ":lock", token(i)]);
        return Promise.all([set, un]);
      }),
  ],
  [
    "lease in the key: SET marker NX PX GET + SET PX GET (native mode)",
    (k, i) =>
      send(["SET", k, MARKER + token(i), "NX", "PX", lease, "GET"]).then((v) =>
        v ?? send(["SET", k, packr.pack(record(i)), "PX", ttl, "GET"])
      ),
  ],
  [
    "lease in the key: SET marker NX PX GET + SET PX",
    (k, i) =>
      send(["SET", k, MARKER + token(i), "NX", "PX", lease, "GET"]).then((v) =>
        v ?? send(["SET", k, packr.pack(record(i)), "PX", ttl])
      ),
  ],
  ["[GET, SET NX PX] + [SET PX GET, DEL] (no token check: floor)", (k, i) => {
    const get = send(["GET", k]);
    const lock = send(["SET", k + ":lock", token(i), "NX", "PX", lease]);
    return Promise.all([get, lock]).then(([v, l]) => {
      if (v !== null || l === null) return v;
      const set = send(["SET", k, packr.pack(record(i)), "PX", ttl, "GET"]);
      const un = send(["DEL", k + ":lock"]);
      return Promise.all([set, un]);
    });
  }],
];

const cpuOf = async () => {
  const info = String(await raw.sendCommand(["INFO", "cpu"]));
  const num = (k: string) => Number(new RegExp(`${k}:([\\d.]+)`).exec(info)![1]);
  return num("used_cpu_user") + num("used_cpu_sys");
};
shapes.push([
  "batched: one read-or-lock script + one store-and-unlock script per 100",
  () => Promise.resolve(),
]);
const serverCpu = shapes.map(() => 0);
const variants = shapes.map(([name, miss], v) => {
  const run = v === shapes.length - 1 ? batched : batch(miss);
  return {
    name,
    run: async () => {
      await run();
      void v;
    },
  };
});
// Server CPU: a separate pass per shape (INFO in the timed rounds would skew them).
for (let pass = 0; pass < 3; pass++) {
  for (let v = 0; v < shapes.length; v++) {
    const c0 = await cpuOf();
    for (let r = 0; r < 40; r++) await variants[v].run();
    serverCpu[v] += await cpuOf() - c0;
  }
}
await raw.sendCommand(["CONFIG", "RESETSTAT"]);
const t = await pairedRounds(variants, { rounds: ROUNDS, warmup: 10 });
const stats = String(await raw.sendCommand(["INFO", "commandstats"]));
console.log(
  `${ROUNDS} rounds of ${N} concurrent misses, Redis ${
    /redis_version:(\S+)/.exec(String(await raw.sendCommand(["INFO", "server"])))![1]
  }`,
);
const rows = shapes.map(([name], v) => {
  const s = spread(roundRatios(t[v], t[0]));
  return {
    shape: name,
    "µs/miss": (spread(t[v]).median * 1000 / N).toFixed(2),
    "÷ raw": `${s.median.toFixed(2)} [${s.q1.toFixed(2)}–${s.q3.toFixed(2)}]`,
    "server CPU µs/miss": (serverCpu[v] * 1e6 / (3 * 40 * N)).toFixed(2),
  };
});
console.table(rows);
for (const line of stats.split("\n")) {
  const m = /^cmdstat_(\w+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)/.exec(line);
  if (m && Number(m[2]) > 1000) {
    console.log(`${m[1].padEnd(8)} usec_per_call ${m[4]} (${m[2]} calls)`);
  }
}
await raw.quit();
await server.stop();
