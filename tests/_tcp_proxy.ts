/**
 * A loopback TCP proxy for tests (`node:net`, so it runs on Deno, Bun and Node): one client's
 * connections to a server go through it, and the test can cut that client off (every open socket
 * destroyed, new connections dropped at once) and restore it, or hold new connections for a while
 * before they reach the server (a slow connect).
 *
 * @module
 */
import net from "node:net";

/** A running proxy; `await using` (or `close()`) stops it. */
export interface TcpProxy extends AsyncDisposable {
  /** The loopback port to connect to instead of the server's. */
  readonly port: number;
  /** Destroy every open connection and drop new ones until {@linkcode TcpProxy.restore}. */
  cut(): void;
  /** Forward connections again. */
  restore(): void;
  /** Hold each new connection this long (ms) before forwarding it (0 = forward at once). */
  acceptDelayMs: number;
  /** Connections accepted so far (dropped ones included). */
  readonly accepted: number;
  /** Stop listening and destroy every connection. */
  close(): Promise<void>;
}

/** Start a proxy on 127.0.0.1 (a free port) that forwards to `127.0.0.1:targetPort`. */
export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let cut = false;
  let accepted = 0;
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const track = (s: net.Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => s.destroy());
  };
  const server = net.createServer((client) => {
    accepted++;
    track(client);
    if (cut) {
      client.destroy();
      return;
    }
    client.pause();
    const forward = () => {
      if (cut || client.destroyed) {
        client.destroy();
        return;
      }
      const upstream = net.connect(targetPort, "127.0.0.1");
      track(upstream);
      client.pipe(upstream);
      upstream.pipe(client);
      client.on("close", () => upstream.destroy());
      upstream.on("close", () => client.destroy());
      client.resume();
    };
    if (proxy.acceptDelayMs > 0) {
      const t = setTimeout(() => {
        timers.delete(t);
        forward();
      }, proxy.acceptDelayMs);
      timers.add(t);
    } else forward();
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const proxy: TcpProxy = {
    port,
    acceptDelayMs: 0,
    get accepted() {
      return accepted;
    },
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close() {
      cut = true;
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
    [Symbol.asyncDispose]() {
      return proxy.close();
    },
  };
  return proxy;
}

/** Poll `cond` every 10 ms until it holds or `ms` pass; resolves whether it held. */
export async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 10));
  }
  return cond();
}
