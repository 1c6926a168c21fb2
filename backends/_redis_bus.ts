/**
 * The invalidation bus on Redis (`capabilities.invalidation`): JSON events on a pub/sub channel,
 * the subscriber connection's handlers, and the gap signal when that connection comes back. The
 * message format is described in the module doc of `redis.ts`.
 *
 * @module
 */
import type { InvalidationCapability, InvalidationEvent } from "./types.ts";
import {
  callEach,
  checkHandler,
  deliver,
  eventMessage,
  invalidEvent,
  knownReason,
  parseEvent,
} from "./_bus_message.ts";
import type { RedisCore } from "./_redis_core.ts";
import { type BatchEntry, type BatchKind, type CommandBatch, MAX_BATCH } from "./_redis_batch.ts";
import type { RedisDriver } from "./_redis_driver.ts";

/**
 * The `key` events of one reason published one after another in a turn, waiting in the
 * connection's batch as one entry: one operation (one deadline, one promise) for all of them.
 */
interface KeyEventEntry extends BatchEntry {
  targets: string[];
  reason: string | undefined;
  /** Set when the batch sent it: later events start a new entry. */
  sent: boolean;
  /** What every event merged into it gets. */
  promise: Promise<void>;
}

/**
 * The `key` events published in one turn of the event loop (each write announces its key) as
 * one message per reason, its targets the events' targets in order: one `PUBLISH` for the
 * concurrent writes of a batch, which receivers handle as the separate events (every target is
 * evicted either way).
 */
function keyEventBatch(
  driver: RedisDriver,
  channel: string,
  sender: string,
): BatchKind<KeyEventEntry> {
  const send = (group: KeyEventEntry[]) => {
    const targets: string[] = [];
    for (const e of group) for (const t of e.targets) targets.push(t);
    const reason = group[0].reason;
    const message = JSON.stringify({
      v: 1,
      level: "key",
      targets,
      sender,
      ...(reason !== undefined ? { reason } : {}),
    });
    driver.sendNow(undefined, false, ["PUBLISH", channel, message]).then(() => {
      for (const e of group) e.resolve(undefined);
    }, (error) => {
      for (const e of group) e.reject(error);
    });
  };
  return {
    flush(entries: KeyEventEntry[]): void {
      for (const e of entries) e.sent = true;
      let from = 0;
      for (let i = 1; i <= entries.length; i++) {
        if (i === entries.length || entries[i].reason !== entries[from].reason) {
          send(entries.slice(from, i));
          from = i;
        }
      }
    },
  };
}

/** Publish and subscribe on one channel; this instance's own events are dropped. */
export class RedisBus implements InvalidationCapability {
  /** This instance's id: the `sender` of the events it publishes. */
  readonly instanceId: string = crypto.randomUUID();
  /** The pub/sub channel. */
  readonly channel: string;
  readonly #core: RedisCore;
  readonly #handlers = new Set<(event: InvalidationEvent) => void>();
  readonly #gapHandlers = new Set<() => void>();
  readonly #downHandlers = new Set<() => void>();
  #subscribing: Promise<void> | undefined;
  /**
   * How this instance's own messages end (`publish` writes `sender` last but for `reason`): a
   * message ending so is dropped without parsing it. A concurrent writer receives every event it
   * publishes back, a `key` message naming up to a batch's keys; parsing it only to find its own
   * id cost more than the rest of the receiving. In a well-formed message such an ending can only
   * be the top-level `sender` (a string's quotes inside JSON text are escaped), so nothing the
   * full check would deliver is dropped.
   */
  readonly #ownEnds: readonly string[];
  readonly #keyEvents: BatchKind<KeyEventEntry>;
  /** The newest `key` event entry; while unsent, it is the batch's last entry (see publish). */
  #group: KeyEventEntry | null = null;

  /** The bus on `channel` over `core`'s connection (the subscriber connection opens on demand). */
  constructor(core: RedisCore, channel: string) {
    this.#core = core;
    this.channel = channel;
    const sender = `"sender":${JSON.stringify(this.instanceId)}`;
    this.#ownEnds = [
      `${sender}}`,
      `${sender},"reason":"write"}`,
      `${sender},"reason":"set"}`,
      `${sender},"reason":"delete"}`,
    ];
    this.#keyEvents = keyEventBatch(core.driver, channel, this.instanceId);
    core.driver.onSubscriberGap = () => callEach(this.#gapHandlers);
    core.driver.onSubscriberDown = () => callEach(this.#downHandlers);
  }

  /** Drop every handler (the backend is closing). */
  clear(): void {
    this.#handlers.clear();
    this.#gapHandlers.clear();
    this.#downHandlers.clear();
  }

  /** Wait for a subscription under way (closing waits for it before the connections go). */
  async settled(): Promise<void> {
    await this.#subscribing?.catch(() => {});
  }

  /** Broadcast an invalidation event to the other instances. */
  publish(event: Omit<InvalidationEvent, "sender">): Promise<void> {
    const refused = invalidEvent(event, "redis");
    if (refused !== null) return refused;
    const reason = knownReason(event.reason) ? event.reason : undefined;
    const batch = this.#core.driver.batch;
    if (event.level === "key" && batch !== undefined) return this.#keyEvent(batch, event, reason);
    const message = eventMessage(event, this.instanceId);
    return this.#core.run(
      "publish",
      undefined,
      () => this.#core.driver.publish(this.channel, message),
    );
  }

  /**
   * A `key` event through the batch. An event of the same reason as the newest entry, which the
   * batch has not sent yet, joins it: that entry is then the batch's last one (an operation of
   * another kind or any other command flushes the batch first), so the targets go out in the
   * order they were published, in the message they would have shared anyway (`keyEventBatch`
   * sends consecutive entries of one reason as one message), and the event costs no operation of
   * its own (deadline, promises). Up to {@linkcode MAX_BATCH} targets per entry, then the batch
   * goes out, as {@linkcode MAX_BATCH} entries of one target each did.
   */
  #keyEvent(
    batch: CommandBatch,
    event: Omit<InvalidationEvent, "sender">,
    reason: string | undefined,
  ): Promise<void> {
    const g = this.#group;
    if (g !== null && !g.sent && g.reason === reason) {
      for (const t of event.targets) g.targets.push(t);
      if (g.targets.length >= MAX_BATCH) batch.flush();
      return g.promise;
    }
    const entry = {
      targets: [...event.targets],
      reason,
      sent: false,
    } as unknown as KeyEventEntry;
    this.#group = entry;
    entry.promise = this.#core.run(
      "publish",
      undefined,
      () =>
        new Promise<void>((resolve, reject) => {
          entry.resolve = resolve;
          entry.reject = reject;
          batch.add(this.#keyEvents, entry);
        }),
    );
    // Settled without going out (closing, connection refused, deadline): later events start anew.
    const closed = () => {
      entry.sent = true;
    };
    entry.promise.then(closed, closed);
    return entry.promise;
  }

  /**
   * Receive the other instances' events (own events and malformed messages are dropped). The first
   * subscription opens the subscriber connection. Resolves an unsubscribe function. `onGap` is
   * called when the subscriber connection is back (resubscribed) after it was lost: the events
   * published meanwhile were missed. `onDown` is called when it is lost.
   */
  async subscribe(
    handler: (event: InvalidationEvent) => void,
    onGap?: () => void,
    onDown?: () => void,
  ): Promise<() => Promise<void>> {
    checkHandler(handler, "redis");
    if (this.#core.closing) throw this.#core.closedError("subscribe");
    this.#handlers.add(handler);
    if (typeof onGap === "function") this.#gapHandlers.add(onGap);
    if (typeof onDown === "function") this.#downHandlers.add(onDown);
    if (!this.#subscribing) {
      this.#subscribing = this.#core.run(
        "subscribe",
        { timeoutMs: this.#core.opTimeoutMs },
        () => this.#core.driver.subscribe(this.channel, (m) => this.#onMessage(m)),
      );
      this.#subscribing.catch(() => (this.#subscribing = undefined));
    }
    try {
      await this.#subscribing;
    } catch (e) {
      this.#handlers.delete(handler);
      if (onGap) this.#gapHandlers.delete(onGap);
      if (onDown) this.#downHandlers.delete(onDown);
      throw e;
    }
    let active = true;
    return async () => {
      if (!active) return;
      active = false;
      this.#handlers.delete(handler);
      if (onGap) this.#gapHandlers.delete(onGap);
      if (onDown) this.#downHandlers.delete(onDown);
      if (this.#handlers.size === 0 && this.#subscribing && !this.#core.closing) {
        this.#subscribing = undefined;
        await this.#core.driver.unsubscribe(this.channel).catch(() => {});
      }
    };
  }

  /**
   * `false` while the subscriber connection is lost (events published now are missed; see
   * `subscribe`'s `onGap`), else `true`. Not tracked on a cluster (always `true`).
   */
  get subscriptionUp(): boolean {
    return this.#core.driver.subscriberUp;
  }

  #onMessage(message: string): void {
    const own = this.#ownEnds;
    if (
      message.endsWith(own[0]) || message.endsWith(own[1]) || message.endsWith(own[2]) ||
      message.endsWith(own[3])
    ) return;
    const event = parseEvent(message, this.instanceId);
    if (event !== null) deliver(this.#handlers, event);
  }
}
