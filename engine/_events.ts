/**
 * Cache events: a web-standard `EventTarget` on each cached function (`f.events`) and one for the
 * whole process ({@linkcode cacheEvents}), carrying `hit`, `miss`, `stale`, `set`, `delete`,
 * `invalidate`, `error`, `circuit`, `timeout` and `bus` as {@linkcode CacheEvent}s.
 *
 * An event says which function (identity, namespace), which layer, how long it took and which
 * protocol key it concerns; never the arguments or the value.
 *
 * Nothing is paid without a listener: each {@linkcode CacheEventTarget} counts its listeners (its
 * `addEventListener` / `removeEventListener` are overridden, `once` and `signal` included), and an
 * engine's `listening` flag is true only while its target or the global one has one. Every emit
 * site checks that one flag before it builds anything; the wrapper checks the engine's `observed`
 * flag (a listener, or `monitoring.tracing`) before it leaves its inlined L1 hit.
 *
 * A listener that throws is logged (LogTape `cachekit.events`, error level) instead of reaching
 * the runtime's uncaught-error handler, which would end the process on Deno and Node: an event
 * must never be why a service goes down.
 *
 * Hand-written: `EventTarget` is the runtime's; the listener accounting is what makes "no
 * listener, no cost" hold.
 *
 * @module
 */
import type { Backend } from "../backends/types.ts";
import { CircuitBreaker, type CircuitState } from "../reliability/circuit_breaker.ts";
import { GuardedBackend } from "../reliability/guarded_backend.ts";
import type { CallLayer, CallStatus } from "./_call_record.ts";
import type { Engine } from "./_engine.ts";
import { liveEngines } from "./_registry.ts";
import { getCacheLogger } from "../health/logging.ts";

/** The types of {@linkcode CacheEvent}. */
export type CacheEventType =
  | "hit"
  | "miss"
  | "stale"
  | "set"
  | "delete"
  | "invalidate"
  | "error"
  | "circuit"
  | "timeout"
  | "bus";

/** What a {@linkcode CacheEvent} carries (never arguments, never values). */
export interface CacheEventDetail {
  /** The function identity, or `null` (an event of a backend shared by several functions). */
  identity: string | null;
  /** The namespace, or `null`. */
  namespace: string | null;
  /** The layer concerned (`l1`, `l2`, `source`), or `null`. */
  layer: CallLayer | null;
  /** How long the operation took, ms, or `null` when not timed. */
  durationMs: number | null;
  /** The protocol key (`hit`, `miss`, `stale`, `set`, `delete`, a remote key event), or `null`. */
  key: string | null;
  /** `hit` / `miss` / `stale`: the call's status (`joined` and `uncached` included). */
  status?: CallStatus;
  /** `invalidate`: whether another instance announced it (the invalidation bus). */
  remote?: boolean;
  /** `invalidate`: what was invalidated. */
  scope?: "key" | "function" | "tags" | "namespace" | "prefix" | "all";
  /** `error`: the `BackendError.kind` (`unknown` for other errors). */
  kind?: string;
  /** `error`: the L2 operation (`get`, `set`, `delete`, `lock`, …). */
  operation?: string;
  /** `error`: the error message. */
  message?: string;
  /** `circuit`: the state before and after, and why. */
  from?: CircuitState;
  /** `circuit`: the new state. */
  to?: CircuitState;
  /** `circuit`: why the state changed. */
  reason?: string;
  /** `timeout`: `soft` (fail-safe served a stale value) or `hard` (an L2 operation timed out). */
  timeout?: "soft" | "hard";
  /** `bus`: the invalidation bus was lost (`disconnected`) or is back (`recovered`). */
  bus?: "disconnected" | "recovered";
  /** `circuit`, `bus`: the backend type. */
  backend?: string;
}

let constructed = 0;

const log = getCacheLogger("events");

/** One registration of a listener: whether it is `once`, and the guard `EventTarget` holds. */
interface Registration {
  once: boolean;
  guard: EventTargetListener;
}

/** Call `listener` with `ev`; what it throws is logged at error level, not rethrown. */
function callGuarded(target: unknown, listener: unknown, ev: { type: string }): void {
  try {
    if (typeof listener === "function") listener.call(target, ev);
    else (listener as { handleEvent(e: unknown): void }).handleEvent(ev);
  } catch (e) {
    log.error("a cache event listener of {type} threw: {error}", {
      type: ev.type,
      error: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
}

/** How many {@linkcode CacheEvent}s were ever constructed (tests: nothing without a listener). */
export function cacheEventsConstructed(): number {
  return constructed;
}

/**
 * One cache event: `type` is a {@linkcode CacheEventType}, `detail` its payload.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, type CacheEvent } from "@cachekit/core";
 *
 * const f = cache((n: number) => n + 1, { name: "docs.events.one", backend: null });
 * const seen: string[] = [];
 * f.events.addEventListener("miss", (e: CacheEvent) => seen.push(`${e.type} ${e.detail.layer}`));
 * f.events.addEventListener("hit", (e: CacheEvent) => seen.push(`${e.type} ${e.detail.layer}`));
 * f(1);
 * f(1);
 * assert.deepEqual(seen, ["miss source", "hit l1"]);
 * ```
 */
export class CacheEvent extends Event {
  /** The payload. */
  readonly detail: CacheEventDetail;

  /**
   * An event of `type` carrying `detail`.
   *
   * @param type The event type.
   * @param detail The payload.
   */
  constructor(type: CacheEventType, detail: CacheEventDetail) {
    super(type);
    constructed++;
    this.detail = detail;
  }
}

/**
 * A listener `EventTarget.addEventListener` takes (the DOM lib's
 * `EventListenerOrEventListenerObject`), named from the global `EventTarget` that both the DOM lib
 * and `@types/node` declare, so the npm package's declarations need no DOM lib.
 *
 * @example
 * ```ts
 * import type { EventTargetListener } from "@cachekit/core";
 *
 * const listener: EventTargetListener = (event) => console.log(event.type);
 * ```
 */
export type EventTargetListener = NonNullable<Parameters<EventTarget["addEventListener"]>[1]>;

/**
 * The options object `EventTarget.addEventListener` takes (`capture`, `once`, `passive`,
 * `signal`: the DOM lib's `AddEventListenerOptions`), named from the global `EventTarget`.
 *
 * @example
 * ```ts
 * import type { AddListenerOptions } from "@cachekit/core";
 *
 * const options: AddListenerOptions = { once: true, signal: new AbortController().signal };
 * ```
 */
export type AddListenerOptions = Exclude<
  Parameters<EventTarget["addEventListener"]>[2],
  boolean | undefined
>;

/**
 * The options object `EventTarget.removeEventListener` takes (`capture`: the DOM lib's
 * `EventListenerOptions`), named from the global `EventTarget`.
 *
 * @example
 * ```ts
 * import type { RemoveListenerOptions } from "@cachekit/core";
 *
 * const options: RemoveListenerOptions = { capture: false };
 * ```
 */
export type RemoveListenerOptions = Exclude<
  Parameters<EventTarget["removeEventListener"]>[2],
  boolean | undefined
>;

/** A listener of {@linkcode CacheEventTarget}. */
export type CacheEventListener =
  | ((event: CacheEvent) => void)
  | { handleEvent(event: CacheEvent): void };

/**
 * An `EventTarget` of cache events that knows whether anyone listens (`listening`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cacheEvents } from "@cachekit/core";
 *
 * const ac = new AbortController();
 * cacheEvents.addEventListener("error", () => {}, { signal: ac.signal });
 * assert.equal(cacheEvents.listening, true);
 * ac.abort();
 * assert.equal(cacheEvents.listening, false);
 * ```
 */
export class CacheEventTarget extends EventTarget {
  /** Registrations by listener: `type|capture` → whether it is `once`, and its guard. */
  readonly #listeners = new Map<unknown, Map<string, Registration>>();
  #count = 0;
  readonly #changed: () => void;

  /**
   * A target that calls `changed` when `listening` turns on or off.
   *
   * @param changed Called when `listening` changes.
   */
  constructor(changed: () => void = () => {}) {
    super();
    this.#changed = changed;
  }

  /** Whether any listener is registered. */
  get listening(): boolean {
    return this.#count > 0;
  }

  /**
   * Listen to `type` (see {@linkcode CacheEventType}).
   *
   * @param type The event type.
   * @param listener The listener, called with a {@linkcode CacheEvent}.
   * @param options `EventTarget` options (`once`, `signal`, `capture`).
   */
  override addEventListener(
    type: CacheEventType,
    listener: CacheEventListener | null,
    options?: boolean | AddListenerOptions,
  ): void;
  /**
   * Listen to an event type of `EventTarget`'s general form.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options `EventTarget` options (`once`, `signal`, `capture`).
   */
  override addEventListener(
    type: string,
    listener: EventTargetListener | null,
    options?: boolean | AddListenerOptions,
  ): void;
  override addEventListener(
    type: string,
    listener: CacheEventListener | EventTargetListener | null,
    options?: boolean | AddListenerOptions,
  ): void {
    if (listener === null) return;
    const o = typeof options === "object" ? options : undefined;
    if (o?.signal?.aborted) return;
    const capture = typeof options === "boolean" ? options : !!o?.capture;
    const id = type + (capture ? "|c" : "|b");
    let regs = this.#listeners.get(listener);
    if (regs === undefined) this.#listeners.set(listener, regs = new Map());
    if (regs.has(id)) return; // EventTarget ignores a duplicate
    // A listener that throws is logged, never thrown at the cache call or the process.
    const guard: EventTargetListener = (ev: { type: string }) => callGuarded(this, listener, ev);
    regs.set(id, { once: !!o?.once, guard });
    super.addEventListener(type, guard, options);
    this.#add(1);
    o?.signal?.addEventListener("abort", () => this.#forget(listener, id), { once: true });
  }

  /**
   * Stop listening.
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options `capture`.
   */
  override removeEventListener(
    type: CacheEventType,
    listener: CacheEventListener | null,
    options?: boolean | RemoveListenerOptions,
  ): void;
  /**
   * Stop listening (`EventTarget`'s general form).
   *
   * @param type The event type.
   * @param listener The listener.
   * @param options `capture`.
   */
  override removeEventListener(
    type: string,
    listener: EventTargetListener | null,
    options?: boolean | RemoveListenerOptions,
  ): void;
  override removeEventListener(
    type: string,
    listener: CacheEventListener | EventTargetListener | null,
    options?: boolean | RemoveListenerOptions,
  ): void {
    if (listener === null) return;
    const capture = typeof options === "boolean" ? options : !!options?.capture;
    const id = type + (capture ? "|c" : "|b");
    const reg = this.#listeners.get(listener)?.get(id);
    if (reg === undefined) return;
    super.removeEventListener(type, reg.guard, options);
    this.#forget(listener, id);
  }

  /**
   * Dispatch `event`; `once` listeners of its type are forgotten afterwards.
   *
   * @param event The event.
   * @returns `false` when a listener called `preventDefault()` on a cancelable event.
   */
  override dispatchEvent(event: Event): boolean {
    const r = super.dispatchEvent(event);
    for (const [listener, regs] of this.#listeners) {
      for (const [id, { once }] of regs) {
        if (once && (id === event.type + "|b" || id === event.type + "|c")) {
          this.#forget(listener, id);
        }
      }
    }
    return r;
  }

  #forget(listener: unknown, id: string): void {
    const regs = this.#listeners.get(listener);
    if (regs === undefined || !regs.delete(id)) return;
    if (regs.size === 0) this.#listeners.delete(listener);
    this.#add(-1);
  }

  #add(n: number): void {
    const before = this.#count > 0;
    this.#count += n;
    if (before !== this.#count > 0) this.#changed();
  }
}

/**
 * The process-wide cache events: every cached function's events, plus each shared backend's
 * `circuit` changes once (with `identity: null`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cache, type CacheEvent, cacheEvents } from "@cachekit/core";
 *
 * const f = cache((n: number) => n * 2, { name: "docs.events.global", backend: null });
 * const seen: string[] = [];
 * const onMiss = (e: CacheEvent) => seen.push(e.detail.identity ?? "?");
 * cacheEvents.addEventListener("miss", onMiss);
 * f(21);
 * cacheEvents.removeEventListener("miss", onMiss);
 * f(22);
 * assert.deepEqual(seen, ["docs.events.global"]);
 * ```
 */
export const cacheEvents: CacheEventTarget = new CacheEventTarget(() => {
  for (const eng of liveEngines()) updateObserved(eng);
});

/** Recompute an engine's `listening` and `observed` flags. */
export function updateObserved(eng: Engine): void {
  eng.listening = eng.events.listening || cacheEvents.listening;
  eng.observed = eng.listening || eng.config.monitoring.tracing;
}

/** The event target of a new engine (its listener changes update the engine's flags). */
export function engineEvents(eng: Engine): CacheEventTarget {
  const ref = new WeakRef(eng);
  return new CacheEventTarget(() => {
    const e = ref.deref();
    if (e !== undefined) updateObserved(e);
  });
}

/**
 * Emit `type` for `eng` (the caller checked `eng.listening`): to its target and the global one.
 * `extra` completes the detail.
 */
export function emit(
  eng: Engine,
  type: CacheEventType,
  layer: CallLayer | null,
  durationMs: number | null,
  key: string | null,
  extra?: Partial<CacheEventDetail>,
): void {
  const detail: CacheEventDetail = {
    identity: eng.identity,
    namespace: eng.namespace,
    layer,
    durationMs,
    key,
    ...extra,
  };
  if (eng.events.listening) eng.events.dispatchEvent(new CacheEvent(type, detail));
  if (cacheEvents.listening) cacheEvents.dispatchEvent(new CacheEvent(type, detail));
}

/** Breakers whose changes already reach {@linkcode cacheEvents} (once per breaker). */
const globalBreakers = new WeakSet<CircuitBreaker>();

/**
 * Relay the circuit changes of `b` (a guarded backend with a breaker) as `circuit` events: to the
 * engine's target, and once per breaker to the global one (`identity: null`).
 */
export function watchCircuit(eng: Engine, b: Backend | null | undefined): void {
  if (!(b instanceof GuardedBackend)) return;
  const breaker = b.circuitBreaker;
  if (!(breaker instanceof CircuitBreaker)) return;
  const ref = new WeakRef(eng);
  const unsubscribe = breaker.onStateChange((c) => {
    const e = ref.deref();
    if (e === undefined) return unsubscribe();
    if (!e.events.listening) return;
    e.events.dispatchEvent(
      new CacheEvent("circuit", {
        identity: e.identity,
        namespace: e.namespace,
        layer: "l2",
        durationMs: null,
        key: null,
        from: c.from,
        to: c.to,
        reason: c.reason,
        backend: b.type,
      }),
    );
  });
  if (globalBreakers.has(breaker)) return;
  globalBreakers.add(breaker);
  breaker.onStateChange((c) => {
    if (!cacheEvents.listening) return;
    cacheEvents.dispatchEvent(
      new CacheEvent("circuit", {
        identity: null,
        namespace: null,
        layer: "l2",
        durationMs: null,
        key: null,
        from: c.from,
        to: c.to,
        reason: c.reason,
        backend: b.type,
      }),
    );
  });
}
