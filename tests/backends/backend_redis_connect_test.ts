// Connecting to Redis: the first operation's deadline starts once connected (a slow connect is
// bounded by connectTimeoutMs, not by a guard's 1 s cold timeout), a cold adaptive timeout over a
// local Redis is its `min`, rediss:// against a plain port says that TLS may be the problem, and a
// URL whose port belongs to another service (an HTTP server) says that it is not Redis.
// A loopback TCP proxy in front of the shared Redis delays accepting connections.
import assert from "node:assert/strict";
import { test } from "../_harness.ts";
import { SHARED_REDIS_URL, sharedRedisTestOptions, uniquePrefix } from "../_redis_server.ts";
import { startTcpProxy } from "../_tcp_proxy.ts";
import { BackendError, FileBackend, MemoryBackend, RedisBackend } from "../../mod.ts";
import { GuardedBackend } from "../../reliability/guarded_backend.ts";
import type { Backend } from "../../backends/types.ts";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const redisOptions = { ...sharedRedisTestOptions, sanitize: false };

test(
  "a slow first connect does not fail the first guarded operation (its deadline starts connected)",
  async () => {
    await using proxy = await startTcpProxy(6379);
    proxy.acceptDelayMs = 1500; // longer than the guard's cold timeout (1 s here)
    const backend = new RedisBackend({
      url: `redis://127.0.0.1:${proxy.port}`,
      keyPrefix: uniquePrefix("connect"),
      connectTimeoutMs: 60_000,
    });
    await using guarded = new GuardedBackend(backend, {
      circuitBreaker: false,
      backpressure: false,
      timeout: { initial: 1, min: 1, max: 5 },
    });
    assert.equal(guarded.adaptiveTimeout?.timeoutMs, 1000);
    await guarded.set("k", new Uint8Array([1, 2, 3]), 60);
    assert.deepEqual(await guarded.get("k"), new Uint8Array([1, 2, 3]));
    assert.equal(guarded.stats().failures.timeout, 0);
    assert.ok(proxy.accepted >= 1, "the connection went through the delaying proxy");
  },
  redisOptions,
);

test(
  "connecting has its own bound: connectTimeoutMs, with a timeout that names it",
  async () => {
    await using proxy = await startTcpProxy(6379);
    proxy.acceptDelayMs = 600_000; // accepted, never forwarded: the handshake hangs
    await using backend = new RedisBackend({
      url: `redis://127.0.0.1:${proxy.port}`,
      connectTimeoutMs: 300,
    });
    await assert.rejects(backend.get("k"), (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.equal(e.kind, "timeout");
      assert.match(e.message, /connectTimeoutMs/);
      assert.doesNotMatch(e.message, /rediss/); // not a TLS connection: no TLS hint
      return true;
    });
  },
  redisOptions,
);

test(
  "rediss:// against a plain Redis port fails with a hint to check rediss:// vs redis://",
  async () => {
    await using backend = new RedisBackend({
      url: SHARED_REDIS_URL.replace("redis://", "rediss://"),
      connectTimeoutMs: 1000,
      operationTimeoutMs: 1000,
    });
    await assert.rejects(backend.get("k"), (e: unknown) => {
      assert.ok(e instanceof BackendError);
      assert.match(e.message, /does not speak TLS on this port/);
      assert.match(e.message, /redis:\/\/ instead of rediss:\/\//);
      return true;
    });
  },
  redisOptions,
);

test("a URL pointing at another service (an HTTP server) says it is not Redis and where to fix the URL", async () => {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("data", () => socket.write("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  try {
    await using backend = new RedisBackend({
      url: `redis://127.0.0.1:${port}`,
      connectTimeoutMs: 5000,
      operationTimeoutMs: 5000,
    });
    await assert.rejects(backend.get("k"), (e: unknown) => {
      assert.ok(e instanceof BackendError, String(e));
      assert.match(e.message, /does not speak the Redis protocol/);
      assert.match(e.message, /CACHEKIT_REDIS_URL/);
      return true;
    });
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
});

function remoteStub(): Backend {
  return {
    type: "stub",
    capabilities: {},
    get: () => Promise.resolve(null),
    set: () => Promise.resolve(),
    delete: () => Promise.resolve(false),
    exists: () => Promise.resolve(false),
    healthCheck: () => Promise.resolve({ healthy: true, latencyMs: 0, backendType: "stub" }),
  };
}

test("a cold adaptive timeout is `min` over a local backend, `initial` over a remote one", async () => {
  const dir = mkdtempSync(join(tmpdir(), "ck-local-"));
  const backends: [Backend, boolean][] = [
    [new RedisBackend({ url: "redis://127.0.0.1:6379" }), true],
    [new RedisBackend({ url: "redis://localhost:6379" }), true],
    [new RedisBackend({ url: "redis://[::1]:6379" }), true],
    [new RedisBackend({ url: "redis://cache.internal:6379" }), false],
    [new RedisBackend({ url: "redis://10.0.0.7:6379" }), false],
    [new RedisBackend({ cluster: { rootNodes: ["127.0.0.1:7000", "127.0.0.2:7001"] } }), true],
    [new RedisBackend({ cluster: { rootNodes: ["127.0.0.1:7000", "10.0.0.7:7001"] } }), false],
    [new MemoryBackend(), true],
    [new FileBackend({ directory: dir }), true],
    [remoteStub(), false],
  ];
  try {
    for (const [b, local] of backends) {
      assert.equal(b.local === true, local, `${b.type} local`);
      const g = new GuardedBackend(b, { timeout: { initial: 1, min: 0.2, max: 5 } });
      assert.equal(g.local, local);
      assert.equal(g.adaptiveTimeout?.timeoutMs, local ? 200 : 1000, `${b.type} cold timeout`);
      g.adaptiveTimeout!.reset();
      assert.equal(g.adaptiveTimeout?.timeoutMs, local ? 200 : 1000, `${b.type} after reset`);
      await g.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
