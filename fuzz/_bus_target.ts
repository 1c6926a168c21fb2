/**
 * The `bus` fuzz target: messages received on the Redis invalidation channel. Anyone who can reach
 * the Redis server can `PUBLISH` any bytes there, so every message goes through the receiving
 * `RedisBus` as node-redis hands it over (the bytes as UTF-8 text): its fast drop of its own
 * messages (by their ending), the parse and the delivery to the handlers
 * (`backends/_redis_bus.ts`, `backends/_bus_message.ts`).
 *
 * Corpus: the messages the real publish paths send (`RedisBus.publish`, one event per `PUBLISH`,
 * and the key events of one turn merged through the command batch), of another instance and of
 * the receiver itself, plus a few spellings other publishers may use (spaces, members reordered,
 * extra members). Oracle (`fuzz/_bus_spec.ts`): a message the specification makes an event of
 * another sender is delivered exactly once, as that event, to every handler (one of which throws);
 * anything else is delivered to none; nothing escapes the receiving code. `typed` counts the
 * messages dropped.
 *
 * @module
 */
import { RedisBus } from "../backends/_redis_bus.ts";
import { CommandBatch } from "../backends/_redis_batch.ts";
import type { RedisCore } from "../backends/_redis_core.ts";
import type { InvalidationEvent } from "../backends/types.ts";
import { describe, OK, pinnedUuids, type Target } from "./_common.ts";
import { sameEvent, showEvent, specEvent } from "./_bus_spec.ts";

const CHANNEL = "cachekit:invalidation";

/** The driver a `RedisBus` talks to, with the server left out: what it publishes is recorded. */
class TapDriver {
  batch: CommandBatch | undefined = undefined;
  listener: ((message: string) => void) | null = null;
  sent: string[] = [];
  onSubscriberGap: (() => void) | undefined;
  onSubscriberDown: (() => void) | undefined;
  readonly subscriberUp = true;
  readonly cluster = false;

  publish(_channel: string, message: string): Promise<void> {
    this.sent.push(message);
    return Promise.resolve();
  }

  sendNow(_key: unknown, _readonly: boolean, args: string[]): Promise<unknown> {
    if (args[0] === "PUBLISH") this.sent.push(args[2]);
    return Promise.resolve(1);
  }

  subscribe(_channel: string, listener: (message: string) => void): Promise<void> {
    this.listener = listener;
    return Promise.resolve();
  }

  unsubscribe(_channel: string): Promise<void> {
    this.listener = null;
    return Promise.resolve();
  }
}

/** A `RedisBus` on a {@linkcode TapDriver} (its core runs each operation at once). */
function tapBus(): { bus: RedisBus; driver: TapDriver } {
  const driver = new TapDriver();
  const core = {
    driver,
    closing: false,
    opTimeoutMs: 1000,
    run: <T>(_op: string, _opts: unknown, fn: () => Promise<T>) => fn(),
    closedError: () => new Error("closed"),
  } as unknown as RedisCore;
  return { bus: new RedisBus(core, CHANNEL), driver };
}

/** Targets worth having in the corpus: plain, empty, quotes and escapes, non-ASCII, long. */
const TARGETS: readonly string[][] = [
  ["ns:app:func:getUser:args:0123abcd:1s"],
  [],
  ['say "hi"\\', "tab\tnew\nline", "é漢字🙂", "\u0000\u001f"],
  ["t:*:{users}", "ns:app:", "tag-a", "tag-b"],
  [`"sender":"x"}`, '","sender":"y"}'],
  ["k".repeat(300)],
];

/** Every message the real publish paths send for a spread of events, from `bus`. */
async function published(bus: RedisBus, driver: TapDriver): Promise<string[]> {
  driver.sent = [];
  const levels = ["key", "prefix", "tags", "all"] as const;
  const reasons = [undefined, "write", "set", "delete"] as const;
  let n = 0;
  for (const level of levels) {
    for (const targets of TARGETS) {
      const reason = level === "key" ? reasons[n % 4] : undefined;
      await bus.publish({ level, targets: level === "all" ? [] : targets, reason });
      n++;
    }
  }
  // The key events of one turn, through the command batch: one message per run of one reason.
  driver.batch = new CommandBatch();
  const turn: Promise<void>[] = [];
  for (let i = 0; i < 12; i++) {
    const reason = i < 4 ? "write" : i < 6 ? "set" : i < 9 ? "delete" : undefined;
    turn.push(bus.publish({ level: "key", targets: [`ns:app:func:f:args:${i}:1s`], reason }));
  }
  await Promise.all(turn);
  driver.batch = undefined;
  return driver.sent;
}

/** The `bus` target (its instance ids are the same in every run). */
export function busTarget(): Promise<Target> {
  return pinnedUuids("bus", buildBusTarget);
}

async function buildBusTarget(): Promise<Target> {
  const reader = tapBus();
  const other = tapBus();
  const self = reader.bus.instanceId;
  const got: { first: InvalidationEvent[]; second: InvalidationEvent[] } = {
    first: [],
    second: [],
  };
  // The first handler throws (after recording): delivery goes on to the next one.
  await reader.bus.subscribe((e) => {
    got.first.push(e);
    throw new Error("a failing handler");
  });
  await reader.bus.subscribe((e) => got.second.push(e));
  const listener = reader.driver.listener;
  if (listener === null) throw new Error("bus target: the reader did not subscribe");

  const messages = [
    ...await published(other.bus, other.driver),
    ...await published(reader.bus, reader.driver),
  ];
  const sender = other.bus.instanceId;
  const spelled = [
    `{"v": 1, "level": "key", "targets": ["a", "b"], "sender": "${sender}", "reason": "write"}`,
    `{"sender":"${sender}","targets":["a"],"level":"prefix","v":1}`,
    `{"v":1,"level":"tags","targets":["x"],"sender":"${sender}","origin":{"sender":"${self}"}}`,
    `{"v":1,"level":"key","targets":["a"],"sender":"${self}","reason":"write","x":1}`,
    `{"v":1.0,"level":"all","targets":[],"sender":"${sender}","reason":"other"}`,
    // Foreign messages ending all but exactly as the receiver's own do.
    `{"v":1,"level":"key","targets":["a"],"sender":"${sender}","xsender":"${self}"}`,
    `{"v":1,"level":"key","targets":["a"],"sender":"${sender}","s":"${self}","reason":"write"}`,
  ];
  const enc = new TextEncoder();
  const corpus = [...messages, ...spelled].map((m) => enc.encode(m));
  const utf8 = new TextDecoder();

  return {
    name: "bus",
    description: "Redis bus messages (own-message drop, parse, delivery): exactly the " +
      "specification's events, to every handler; typed = dropped",
    corpus,
    share: 6,
    run(bytes) {
      const message = utf8.decode(bytes);
      got.first = [];
      got.second = [];
      try {
        listener(message);
      } catch (e) {
        return { verdict: "untyped", detail: `the message listener threw: ${describe(e)}` };
      }
      const want = specEvent(message, self);
      if (want.kind !== "event") {
        if (got.first.length > 0 || got.second.length > 0) {
          return {
            verdict: "wrong",
            detail: `delivered ${showEvent(got.second[0] ?? got.first[0])} from a ${want.kind} ` +
              "message",
          };
        }
        return { verdict: "typed", detail: want.kind };
      }
      for (const [name, list] of Object.entries(got)) {
        if (list.length !== 1 || !sameEvent(list[0], want.event)) {
          return {
            verdict: "wrong",
            detail: `${name} handler got ${list.length} events (${showEvent(list[0])}), ` +
              `want ${showEvent(want.event)}`,
          };
        }
      }
      return OK;
    },
  };
}
