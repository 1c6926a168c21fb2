/**
 * node-redis closes clients by itself, not only when the application closes the backend: a cluster
 * client destroys the client of a node that no longer serves slots when it learns the new topology
 * (a slot moved away, a failover). An operation that had that node's client in hand then fails with
 * node-redis's `ClientClosedError`, while the backend is open and the same operation succeeds when
 * tried again. It was classified as kind `closed` ("the application closed the backend"): no
 * console notice, not retried or queued for recovery (a `clear()` that failed so left the entries
 * in L2 for good, without a word), and the function's health said the backend was closed. It is a
 * `transient` failure; only an operation on a backend whose `close()` ran is `closed`.
 *
 * The cluster is made here with its slots skewed (the third master serves one slot), so that one
 * `CLUSTER SETSLOT` moves that master's last slot away; the second master is held in
 * `DEBUG SLEEP` so that a prefix deletion, which takes every master's client at its start, reaches
 * the third one's client after node-redis has destroyed it.
 */
import assert from "node:assert/strict";
import process from "node:process";
import { BackendError } from "../../errors.ts";
import { RedisBackend } from "../../backends/redis.ts";
import { toBackendError } from "../../backends/_redis_errors.ts";
import { keySlot } from "../../backends/_redis_fetch_lock.ts";
import { test } from "../_harness.ts";
import {
  freeClusterPorts,
  redisCli,
  type RedisServer,
  redisServerTestOptions,
  startRedisServer,
} from "../_redis_server.ts";
import { onExit } from "../_runtime.ts";
import { sleep } from "../_timing.ts";

/** Three masters serving slots 0–16000, 16001–16382 and 16383; every node allows `DEBUG`. */
async function skewedCluster(): Promise<{ nodes: RedisServer[]; ports: number[] }> {
  const ports = await freeClusterPorts(3);
  const nodes: RedisServer[] = [];
  onExit(() => {
    for (const n of nodes) {
      try {
        process.kill(n.pid, "SIGKILL");
      } catch { /* gone */ }
    }
  });
  try {
    for (const p of ports) {
      nodes.push(
        await startRedisServer(p, [
          "--cluster-enabled",
          "yes",
          "--cluster-config-file",
          `nodes-${p}.conf`,
          "--cluster-node-timeout",
          "2000",
          "--enable-debug-command",
          "yes",
        ]),
      );
    }
    const [a, b, c] = ports;
    await redisCli(a, ["CLUSTER", "ADDSLOTSRANGE", "0", "16000"]);
    await redisCli(b, ["CLUSTER", "ADDSLOTSRANGE", "16001", "16382"]);
    await redisCli(c, ["CLUSTER", "ADDSLOTSRANGE", "16383", "16383"]);
    await redisCli(a, ["CLUSTER", "MEET", "127.0.0.1", String(b)]);
    await redisCli(a, ["CLUSTER", "MEET", "127.0.0.1", String(c)]);
    const deadline = Date.now() + 20_000;
    for (const p of ports) {
      while (!(await redisCli(p, ["CLUSTER", "INFO"])).includes("cluster_state:ok")) {
        if (Date.now() > deadline) throw new Error(`cluster node ${p} never reached state ok`);
        await sleep(50);
      }
    }
    return { nodes, ports };
  } catch (e) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw e;
  }
}

test(
  "redis cluster: a node's client that node-redis closed on a topology change fails as transient, not closed",
  async () => {
    const { nodes, ports } = await skewedCluster();
    const [a, b, c] = ports;
    const backend = new RedisBackend({
      cluster: { rootNodes: ports.map((p) => `127.0.0.1:${p}`) },
      keyPrefix: "p:",
    });
    try {
      let n = 0;
      while (keySlot(`p:${n}`) !== 16383) n++;
      const key = String(n); // served by the third master
      await backend.set(key, new Uint8Array([1]), 60); // connected, topology known
      await backend.delete(key); // its slot empty: it moves without keys
      // Long enough for the retries below on a loaded machine (the test ends when it wakes).
      const asleep = redisCli(b, ["DEBUG", "SLEEP", "4"]).catch(() => {});
      await sleep(100); // the second master sleeps
      // Takes every master's client, then scans them in turn: it waits on the second one.
      const deletion = backend.capabilities.prefix!.deleteByPrefix("none-").then(
        () => null,
        (e: unknown) => e,
      );
      await sleep(50);
      // The third master's slot moves to the first; a command for it learns so (MOVED) and
      // node-redis drops the third master's client.
      const idA = await redisCli(a, ["CLUSTER", "MYID"]);
      await redisCli(a, ["CLUSTER", "SETSLOT", "16383", "NODE", idA]);
      await redisCli(c, ["CLUSTER", "SETSLOT", "16383", "NODE", idA]);
      // A node whose view lags (the sleeping one, or gossip not yet spread) can send the command
      // back and forth ("Too many Cluster redirections", transient), and node-redis's slot map
      // can lack the slot's node while it rediscovers, which may wait for the sleeping node (a
      // transient `TypeError`): tried again until it lands, past the sleep.
      const until = Date.now() + 15_000;
      for (;;) {
        try {
          assert.equal(await backend.get(key), null);
          break;
        } catch (e) {
          if (!(e instanceof BackendError) || e.kind !== "transient" || Date.now() > until) throw e;
          await sleep(50);
        }
      }
      const err = await deletion;
      await asleep;
      assert.ok(err instanceof BackendError, `the deletion met the dropped client: ${err}`);
      assert.notEqual(err.kind, "closed", `an open backend's failure: ${err.message}`);
      assert.equal(err.kind, "transient", err.message);
      // The backend is open: the same deletion, tried again, succeeds.
      assert.equal(await backend.capabilities.prefix!.deleteByPrefix("none-"), 0);
    } finally {
      await backend.close();
      await Promise.all(nodes.map((n) => n.stop()));
    }
  },
  { ...redisServerTestOptions, sanitize: false },
);

test("redis cluster: a TypeError from node-redis's slot routing while it rediscovers is transient", () => {
  // As node-redis throws it when a command is routed to a slot whose node its map lost.
  const routing = new TypeError("Cannot read properties of undefined (reading 'replicas')");
  routing.stack = `${routing.message}\n    at RedisClusterSlots.getSlotRandomNode ` +
    "(file:///x/node_modules/@redis/client/lib/cluster/cluster-slots.ts:1329:15)";
  const e = toBackendError(routing, "get");
  assert.equal(e.kind, "transient", e.message);
  // Any other TypeError stays unknown (a bug, not a state that passes).
  const other = new TypeError("Cannot read properties of undefined (reading 'x')");
  other.stack = `${other.message}\n    at somewhere (file:///app/main.ts:1:1)`;
  assert.equal(toBackendError(other, "get").kind, "unknown");
});
