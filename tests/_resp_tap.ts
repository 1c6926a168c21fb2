/**
 * A loopback TCP proxy that records the commands a Redis client sends (`node:net`, so it runs on
 * Deno, Bun and Node): each command's name and the index of the socket read it arrived in, so a
 * test can count a call's commands and see which were pipelined together (one round trip).
 *
 * @module
 */
import { Buffer } from "node:buffer";
import net from "node:net";

/** One command the client sent. */
export interface TappedCommand {
  /** Upper-cased command name (`GET`, `EVALSHA`, …). */
  name: string;
  /** Every argument as text (binary values decoded as latin1). */
  args: string[];
  /** Index of the socket read (per connection) it arrived in. */
  chunk: number;
}

/** A running tap; `await using` (or `close()`) stops it. */
export interface RespTap extends AsyncDisposable {
  /** The loopback port to connect to instead of the server's. */
  readonly port: number;
  /** Every command so far, in arrival order. */
  readonly commands: TappedCommand[];
  /** Stop listening and destroy every connection. */
  close(): Promise<void>;
}

/** Incremental parser of RESP arrays of bulk strings (what clients send). */
function parser(onCommand: (args: string[]) => void): (data: Buffer) => void {
  let buf = Buffer.alloc(0);
  return (data) => {
    buf = Buffer.concat([buf, data]);
    while (true) {
      let pos = 0;
      const line = () => {
        const end = buf.indexOf("\r\n", pos);
        if (end < 0) return null;
        const s = buf.toString("latin1", pos, end);
        pos = end + 2;
        return s;
      };
      const head = line();
      if (head === null || head[0] !== "*") return;
      const n = Number(head.slice(1));
      const args: string[] = [];
      for (let i = 0; i < n; i++) {
        const len = line();
        if (len === null) return;
        const size = Number(len.slice(1));
        if (buf.length < pos + size + 2) return;
        args.push(buf.toString("latin1", pos, pos + size));
        pos += size + 2;
      }
      buf = buf.subarray(pos);
      onCommand(args);
    }
  };
}

/** Start a tap on 127.0.0.1 (a free port) forwarding to `127.0.0.1:targetPort`. */
export async function startRespTap(targetPort: number): Promise<RespTap> {
  const sockets = new Set<net.Socket>();
  const commands: TappedCommand[] = [];
  const server = net.createServer((client) => {
    sockets.add(client);
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(upstream);
    let chunk = 0;
    const parse = parser((args) =>
      commands.push({ name: args[0].toUpperCase(), args: args.slice(1), chunk })
    );
    client.on("data", (d: Buffer) => {
      chunk++;
      parse(d);
      upstream.write(d);
    });
    upstream.on("data", (d: Buffer) => client.write(d));
    for (const s of [client, upstream]) {
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
      s.on("error", () => s.destroy());
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  };
  return { port, commands, close, [Symbol.asyncDispose]: close };
}
