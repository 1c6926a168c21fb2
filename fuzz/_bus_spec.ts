/**
 * The invalidation bus message as its specification states it (`backends/redis.ts`, "Invalidation
 * bus"), written out again for the `bus` and `journal` fuzz targets' oracles, independently of the
 * bus code (`backends/_bus_message.ts`): UTF-8 JSON
 * `{"v":1,"level":"key"|"prefix"|"tags"|"all","targets":[string…],"sender":string}` plus an
 * optional `"reason":"write"|"set"|"delete"` (any other reason is no reason); any other member is
 * ignored. A receiver delivers exactly the events of other senders that are so.
 *
 * @module
 */
import type { InvalidationEvent } from "../backends/types.ts";

/** What the specification makes of one message (or one journal line). */
export type SpecVerdict =
  /** A well-formed event of another sender: delivered. */
  | { kind: "event"; event: InvalidationEvent }
  /** A well-formed event of the receiver itself: dropped. */
  | { kind: "own" }
  /** Not an event (not JSON, another shape, version, level, or target type): dropped. */
  | { kind: "malformed" };

const LEVEL_NAMES: readonly string[] = ["key", "prefix", "tags", "all"];

/** The specification's verdict on `text`, received by the instance `self`. */
export function specEvent(text: string, self: string): SpecVerdict {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { kind: "malformed" };
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) return { kind: "malformed" };
  const m = doc as Record<string, unknown>;
  const own = (k: string) => Object.prototype.hasOwnProperty.call(m, k);
  if (!own("v") || m.v !== 1) return { kind: "malformed" };
  if (!own("level") || !LEVEL_NAMES.includes(m.level as string)) return { kind: "malformed" };
  if (!own("sender") || typeof m.sender !== "string") return { kind: "malformed" };
  if (!own("targets") || !Array.isArray(m.targets)) return { kind: "malformed" };
  for (const t of m.targets) if (typeof t !== "string") return { kind: "malformed" };
  if (m.sender === self) return { kind: "own" };
  const event: InvalidationEvent = {
    level: m.level as InvalidationEvent["level"],
    targets: [...m.targets] as string[],
    sender: m.sender,
  };
  if (m.reason === "write" || m.reason === "set" || m.reason === "delete") event.reason = m.reason;
  return { kind: "event", event };
}

/**
 * Whether a delivered event is exactly `want`: the same level, targets, sender and reason, and no
 * other member (a receiver hands out the event, not the message it came in).
 */
export function sameEvent(got: unknown, want: InvalidationEvent): boolean {
  if (got === null || typeof got !== "object") return false;
  const g = got as Record<string, unknown>;
  const keys = Object.keys(g).sort().join(",");
  const wantKeys = Object.keys(want).sort().join(",");
  if (keys !== wantKeys) return false;
  if (g.level !== want.level || g.sender !== want.sender || g.reason !== want.reason) return false;
  const t = g.targets;
  if (!Array.isArray(t) || t.length !== want.targets.length) return false;
  for (let i = 0; i < t.length; i++) if (t[i] !== want.targets[i]) return false;
  return true;
}

/** A short text of an event for a finding. */
export function showEvent(e: unknown): string {
  try {
    return JSON.stringify(e).slice(0, 160);
  } catch {
    return String(e).slice(0, 160);
  }
}
