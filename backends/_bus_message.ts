/**
 * The invalidation bus message, shared by the Redis bus (pub/sub) and the file bus (a journal):
 * its check on publish, its JSON text (`{ v: 1, level, targets, sender, reason? }`), its parse on
 * receipt (`parseEvent`: malformed messages and this instance's own are dropped; `readEvent` tells
 * the two apart, for the file bus, where a line that is not an event is damage) and the delivery
 * to the handlers, where a failing handler stops nothing. Internal.
 *
 * @module
 */
import { BackendError } from "../errors.ts";
import type { InvalidationEvent } from "./types.ts";

const LEVELS = new Set(["key", "prefix", "tags", "all"]);

/** Whether `reason` is one a `key` event may carry (`InvalidationEvent.reason`). */
export function knownReason(reason: unknown): reason is "write" | "set" | "delete" {
  return reason === "write" || reason === "set" || reason === "delete";
}

/** A rejection for an event that is not `{ level, targets: string[] }`, or `null` when it is one. */
export function invalidEvent(
  event: Omit<InvalidationEvent, "sender">,
  backend: string,
): Promise<never> | null {
  if (
    typeof event === "object" && event !== null && LEVELS.has(event.level) &&
    Array.isArray(event.targets) && event.targets.every((t) => typeof t === "string")
  ) return null;
  return Promise.reject(
    new BackendError(
      `Invalid invalidation event: expected { level: "key"|"prefix"|"tags"|"all", targets: string[] }.`,
      { kind: "permanent", backend, operation: "publish" },
    ),
  );
}

/** Throw unless `handler` is a function (a bus's `subscribe`). */
export function checkHandler(handler: unknown, backend: string): void {
  if (typeof handler !== "function") {
    throw new BackendError("Invalid handler for subscribe: expected a function.", {
      kind: "permanent",
      backend,
      operation: "subscribe",
    });
  }
}

/** The message of `event` sent by `sender`. */
export function eventMessage(event: Omit<InvalidationEvent, "sender">, sender: string): string {
  return JSON.stringify({
    v: 1,
    level: event.level,
    targets: event.targets,
    sender,
    ...(knownReason(event.reason) ? { reason: event.reason } : {}),
  });
}

/** The event a received `message` carries, or `null` (malformed, or sent by `self`). */
export function parseEvent(message: string, self: string): InvalidationEvent | null {
  const event = readEvent(message);
  return event === null || event.sender === self ? null : event;
}

/** The event `message` carries, whoever sent it, or `null` when it is not an event. */
export function readEvent(message: string): InvalidationEvent | null {
  let e: Record<string, unknown>;
  try {
    e = JSON.parse(message);
  } catch {
    return null;
  }
  if (
    typeof e !== "object" || e === null || e.v !== 1 || typeof e.sender !== "string" ||
    typeof e.level !== "string" || !LEVELS.has(e.level) ||
    !Array.isArray(e.targets) || e.targets.some((t) => typeof t !== "string")
  ) return null;
  const event: InvalidationEvent = {
    level: e.level as InvalidationEvent["level"],
    targets: e.targets as string[],
    sender: e.sender,
  };
  if (knownReason(e.reason)) event.reason = e.reason;
  return event;
}

/** Give `event` to every handler; one that throws does not stop the others or the bus. */
export function deliver(
  handlers: Set<(event: InvalidationEvent) => void>,
  event: InvalidationEvent,
): void {
  for (const h of [...handlers]) {
    try {
      h(event);
    } catch {
      // A failing handler must not stop the others or the bus.
    }
  }
}

/** Call every handler of a gap or a loss of the subscription; one that throws stops nothing. */
export function callEach(handlers: Set<() => void>): void {
  for (const h of [...handlers]) {
    try {
      h();
    } catch {
      // A failing handler must not stop the others.
    }
  }
}
