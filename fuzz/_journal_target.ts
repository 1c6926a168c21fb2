/**
 * The `journal` fuzz target: the file backend's invalidation journal (`backends/_file_bus.ts`) as
 * a reader finds it. Any process that can write in the cache directory, or a crash, a full disk
 * or a bad sector, can leave anything in `.bus` and `.bus.1`: torn or garbled lines, NULs, invalid
 * UTF-8, a header claiming any id or sequence number, a file shrunk or replaced between two polls.
 *
 * Corpus: directory states written by the real publish path (`FileBus.publish` of two instances,
 * one of them the reader, journals made by the writer itself; a rotation is the rename a writer
 * does past `MAX_JOURNAL_BYTES`), one per case: the state in which the reader subscribes
 * (`before`, not mutated) and the state at its first poll (`after`, the corpus entry, mutated);
 * each case is in the corpus twice, the second time with the reader subscribing on the input.
 * An input is `[flags][u32 BE length of .bus.1][.bus.1][.bus]` (flag bit 0: `.bus.1` exists,
 * bit 1: `.bus` exists, bit 2: the reader subscribes on the input itself, not on `before`).
 *
 * One input, in a directory of its own making (no timers: the bus is polled by hand):
 *
 * 1. the reader subscribes on `before` (or on the input); the files become the input; poll;
 * 2. another instance publishes two events (one append); poll;
 * 3. the journal is renamed (a rotation), that instance publishes one event (a new journal); poll;
 * 4. again: the input's journals are now gone.
 *
 * Oracle, with the events as `fuzz/_bus_spec.ts` reads a line:
 *
 * - nothing escapes a poll, and no poll marks the subscription down (the files are readable);
 * - every event delivered is that of a whole line (not a journal's first line) of a file present
 *   at that poll: nothing invented, half-read or of the reader's own;
 * - stages 2–4: the events just published are delivered, or the poll calls the gap handler (the
 *   engine then drops its L1), whatever the input left in the journal;
 * - stage 1, when the input keeps the journals' identities (every first line names the id and
 *   sequence number its case wrote): unless the poll calls the gap handler, it delivers exactly
 *   the events of the whole lines the case's reader reads (its journal from its offset on,
 *   journals it has not seen from their first line), and those lines hold no line that is not an
 *   event (a damaged line may have been one) and the journal has not shrunk; a torn last line
 *   that no later append completes is a gap by the end of stage 4;
 * - stage 1 of a reader that subscribed on the input delivers nothing (nothing was appended since),
 *   unless it calls the gap handler.
 *
 * `typed` counts the inputs whose reader called its gap handler.
 *
 * @module
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { FileBus, type FileBusHost, MAX_READ_BYTES } from "../backends/_file_bus.ts";
import type { InvalidationEvent } from "../backends/types.ts";
import { describe, type Outcome, pinnedUuids, type Target } from "./_common.ts";
import { sameEvent, showEvent, specEvent } from "./_bus_spec.ts";

/** The files of the bus in a directory (`null`: absent). */
interface BusFiles {
  old: Uint8Array | null;
  cur: Uint8Array | null;
}

/** Where a case's reader reads in the `after` state: a file, from its offset or from its head. */
interface Region {
  file: "old" | "cur";
  from: "offset" | "head";
}

/** One case: the state the reader subscribes in, the state of its first poll, what it reads. */
interface JournalCase {
  name: string;
  before: BusFiles;
  after: BusFiles;
  regions: Region[];
  /** Events were lost before the first poll (a journal renamed away unread): a gap is due. */
  gapDue: boolean;
}

/** What a journal's first line says, read as the specification describes it. */
interface Head {
  id: string;
  seq: number;
  /** Bytes of the first line, newline included. */
  start: number;
}

/** The most a journal's first line may take (`{"journal":"<uuid>","seq":n}` and its newline). */
const HEAD_MAX = 96;
const NEWLINE = 0x0a;

/** The first line of a journal, when it is one (else `null`: no events are read from it). */
function headOf(bytes: Uint8Array | null): Head | null {
  if (bytes === null) return null;
  const nl = bytes.subarray(0, HEAD_MAX).indexOf(NEWLINE);
  if (nl <= 0) return null;
  try {
    const j = JSON.parse(new TextDecoder().decode(bytes.subarray(0, nl)));
    if (j === null || typeof j !== "object" || typeof j.journal !== "string") return null;
    const seq = Number.isSafeInteger(j.seq) && j.seq > 0 ? j.seq : 0;
    return { id: j.journal, seq, start: nl + 1 };
  } catch {
    return null;
  }
}

function sameHead(a: Head | null, b: Head | null): boolean {
  return a === null ? b === null : b !== null && a.id === b.id && a.seq === b.seq;
}

/** The whole lines of `bytes` from `from` on, and the torn rest (bytes after the last newline). */
function linesFrom(bytes: Uint8Array, from: number): { lines: string[]; rest: Uint8Array } {
  const dec = new TextDecoder();
  const lines: string[] = [];
  let start = from;
  for (let i = from; i < bytes.length; i++) {
    if (bytes[i] !== NEWLINE) continue;
    lines.push(dec.decode(bytes.subarray(start, i)));
    start = i + 1;
  }
  return { lines, rest: bytes.subarray(Math.max(start, from)) };
}

/** Encode a directory state as an input. */
function encodeFiles(f: BusFiles, onInput: boolean): Uint8Array {
  const old = f.old ?? new Uint8Array(0);
  const cur = f.cur ?? new Uint8Array(0);
  const out = new Uint8Array(5 + old.length + cur.length);
  out[0] = (f.old !== null ? 1 : 0) | (f.cur !== null ? 2 : 0) | (onInput ? 4 : 0);
  new DataView(out.buffer).setUint32(1, old.length);
  out.set(old, 5);
  out.set(cur, 5 + old.length);
  return out;
}

/** Decode an input (any bytes) as a directory state. */
function decodeFiles(b: Uint8Array): BusFiles {
  const flags = b.length > 0 ? b[0] : 0;
  let len = 0;
  for (let i = 1; i < 5 && i < b.length; i++) len = len * 256 + b[i];
  const body = b.subarray(Math.min(5, b.length));
  len = Math.min(len, body.length);
  return {
    old: flags & 1 ? body.subarray(0, len) : null,
    cur: flags & 2 ? body.subarray(len) : null,
  };
}

/** A directory the target owns, with the bus's two files. */
class BusDir {
  readonly root: string;
  readonly bus: string;
  readonly old: string;

  constructor() {
    this.root = fs.mkdtempSync(path.join(os.tmpdir(), "cachekit-fuzz-journal-"));
    this.bus = path.join(this.root, ".bus");
    this.old = path.join(this.root, ".bus.1");
  }

  host(): FileBusHost {
    const root = this.root;
    return { root: () => Promise.resolve(root), fileMode: 0o600, closed: false };
  }

  read(): BusFiles {
    const get = (p: string) => {
      try {
        return new Uint8Array(fs.readFileSync(p));
      } catch {
        return null;
      }
    };
    return { old: get(this.old), cur: get(this.bus) };
  }

  write(f: BusFiles): void {
    for (const [p, bytes] of [[this.old, f.old], [this.bus, f.cur]] as const) {
      if (bytes === null) fs.rmSync(p, { force: true });
      else fs.writeFileSync(p, bytes, { mode: 0o600 });
    }
  }

  clear(): void {
    for (const name of fs.readdirSync(this.root)) fs.rmSync(path.join(this.root, name));
  }

  /** The rotation a writer does past `MAX_JOURNAL_BYTES`: `.bus` becomes `.bus.1`. */
  rotate(): void {
    if (fs.existsSync(this.bus)) fs.renameSync(this.bus, this.old);
  }

  remove(): void {
    fs.rmSync(this.root, { recursive: true, force: true });
  }
}

/** Events of every level and reason, some long, some with quotes and non-ASCII. */
function someEvents(n: number, tag: string): Omit<InvalidationEvent, "sender">[] {
  const out: Omit<InvalidationEvent, "sender">[] = [];
  for (let i = 0; i < n; i++) {
    switch (i % 5) {
      case 0:
        out.push({ level: "key", targets: [`ns:app:func:f:args:${tag}${i}:1s`], reason: "write" });
        break;
      case 1:
        out.push({
          level: "key",
          targets: [`ns:app:func:g:args:${tag}${i}:1s`, "x"],
          ...(i % 2 === 0 ? { reason: "set" as const } : {}),
        });
        break;
      case 2:
        out.push({ level: "tags", targets: [`tag-${tag}`, 'q"uote\\d', "é漢🙂"] });
        break;
      case 3:
        out.push({ level: "prefix", targets: [`ns:app:func:${tag}:`] });
        break;
      default:
        out.push({ level: "all", targets: [] });
    }
  }
  return out;
}

/** Build the cases in `dir` with the real publish path of `writer` and `reader`. */
async function buildCases(dir: BusDir, writer: FileBus, reader: FileBus): Promise<JournalCase[]> {
  const cases: JournalCase[] = [];
  const publish = async (bus: FileBus, events: Omit<InvalidationEvent, "sender">[]) => {
    // Published together: one append of all their lines (a synchronous run).
    await Promise.all(events.map((e) => bus.publish(e)));
  };
  const one = async (bus: FileBus, events: Omit<InvalidationEvent, "sender">[]) => {
    for (const e of events) await bus.publish(e);
  };
  const add = async (
    name: string,
    setup: () => Promise<void>,
    then: () => Promise<void>,
    regions: Region[],
    gapDue = false,
  ) => {
    dir.clear();
    await setup();
    const before = dir.read();
    await then();
    cases.push({ name, before, after: dir.read(), regions, gapDue });
  };

  await add("appended", () => one(writer, someEvents(1, "a")), async () => {
    await one(writer, someEvents(3, "b"));
    await publish(writer, someEvents(5, "c"));
  }, [{ file: "cur", from: "offset" }]);
  await add("own lines", () => one(writer, someEvents(2, "a")), async () => {
    await one(reader, someEvents(2, "own"));
    await one(writer, someEvents(2, "b"));
    await publish(reader, someEvents(2, "own2"));
    await one(writer, someEvents(1, "c"));
  }, [{ file: "cur", from: "offset" }]);
  await add("no journal yet", () => Promise.resolve(), () => one(writer, someEvents(4, "n")), [
    { file: "cur", from: "head" },
  ]);
  await add("rotated", () => one(writer, someEvents(2, "a")), async () => {
    await one(writer, someEvents(2, "b"));
    dir.rotate();
    await one(writer, someEvents(3, "c"));
  }, [{ file: "old", from: "offset" }, { file: "cur", from: "head" }]);
  await add(
    "rotated twice",
    () => one(writer, someEvents(1, "a")),
    async () => {
      await one(writer, someEvents(2, "b"));
      dir.rotate();
      await one(writer, someEvents(2, "c"));
      dir.rotate();
      await one(writer, someEvents(2, "d"));
    },
    [{ file: "old", from: "head" }, { file: "cur", from: "head" }],
    true,
  );
  await add(
    "older journal kept",
    async () => {
      await one(writer, someEvents(2, "a"));
      dir.rotate();
      await one(writer, someEvents(1, "b"));
    },
    () => publish(writer, someEvents(4, "c")),
    [{ file: "cur", from: "offset" }],
  );
  await add("long lines", () => one(writer, someEvents(1, "a")), async () => {
    await one(writer, [{ level: "key", targets: Array.from({ length: 40 }, (_, i) => `k${i}`) }]);
    await one(writer, [{ level: "tags", targets: ["t".repeat(2000)] }]);
  }, [{ file: "cur", from: "offset" }]);
  return cases;
}

/** Stages 2–4: their name, how many events are published, whether the journal is renamed first. */
const STAGES: readonly (readonly [string, number, boolean])[] = [
  ["2", 2, false],
  ["3", 1, true],
  ["4", 1, true],
];

/** What the reader received in one stage. */
interface Stage {
  events: InvalidationEvent[];
  gaps: number;
  downs: number;
}

/**
 * The `journal` target (writes in a temporary directory of its own; `close` removes it). Its
 * instance and journal ids are the same in every run.
 */
export function journalTarget(): Promise<Target> {
  return pinnedUuids("journal", buildJournalTarget);
}

async function buildJournalTarget(): Promise<Target> {
  const dir = new BusDir();
  const NEVER = 1_000_000_000; // the poll timer never fires: the target polls by hand
  const reader = new FileBus(dir.host(), NEVER);
  const writer = new FileBus(dir.host(), NEVER);
  const self = reader.instanceId;
  let cases: JournalCase[];
  try {
    cases = await buildCases(dir, writer, reader);
  } catch (e) {
    dir.remove();
    throw e;
  }
  let stage: Stage = { events: [], gaps: 0, downs: 0 };
  let serial = 0;

  /**
   * Whether a poll may deliver `e` from the files there now: the event of one of their whole
   * lines (not a first line), or one whose message, as publishers write it, ends at a newline in
   * them (a reader that skipped to the end of a journal cut short, or past a newline corrupted
   * behind its offset, reads on from there).
   */
  const allowed = (f: BusFiles): (e: InvalidationEvent) => boolean => {
    const events = new Set<string>();
    const texts: string[] = [];
    const dec = new TextDecoder();
    for (const bytes of [f.old, f.cur]) {
      if (bytes === null) continue;
      texts.push(dec.decode(bytes));
      const first = bytes.indexOf(NEWLINE);
      if (first < 0) continue;
      for (const line of linesFrom(bytes, first + 1).lines) {
        if (line === "") continue; // not an event (and a failed parse is slow: runs of newlines)
        const v = specEvent(line, self);
        if (v.kind === "event") events.add(key(v.event));
      }
    }
    return (e) =>
      events.has(key(e)) ||
      (e.sender !== self && specEvent(message(e), self).kind === "event" &&
        texts.some((t) => t.includes(`${message(e)}\n`)));
  };

  /** Poll; check what came is sound. */
  const poll = (name: string): { stage: Stage; wrong: string | null } => {
    stage = { events: [], gaps: 0, downs: 0 };
    try {
      reader.poll();
    } catch (e) {
      return { stage, wrong: `poll ${name} threw ${describe(e)}` };
    }
    const s = stage;
    if (s.downs > 0) {
      return { stage: s, wrong: `poll ${name} failed on readable files (subscription down)` };
    }
    const ok = allowed(dir.read());
    for (const e of s.events) {
      if (!ok(e)) {
        return { stage: s, wrong: `poll ${name} delivered ${showEvent(e)}: no such line` };
      }
    }
    return { stage: s, wrong: null };
  };

  /**
   * Publish `n` events from the writer (one append); the poll after must deliver them, or call the
   * gap handler. The stage, or what was wrong.
   */
  const publishAndPoll = async (name: string, n: number): Promise<Stage | string> => {
    const tag = `w${serial++}-`;
    const events = someEvents(n, tag).map((e, i) => ({ ...e, targets: [...e.targets, tag + i] }));
    try {
      await Promise.all(events.map((e) => writer.publish(e)));
    } catch (e) {
      return `${name}: publishing failed on regular files: ${describe(e)}`;
    }
    const r = poll(name);
    if (r.wrong !== null) return r.wrong;
    if (r.stage.gaps > 0) return r.stage;
    let at = 0;
    for (const e of events) {
      const want = { ...e, sender: writer.instanceId } as InvalidationEvent;
      if (want.reason === undefined) delete want.reason;
      while (at < r.stage.events.length && !sameEvent(r.stage.events[at], want)) at++;
      if (at === r.stage.events.length) {
        return `poll ${name}: ${showEvent(want)} was neither delivered nor a gap ` +
          `(got ${r.stage.events.length} events)`;
      }
      at++;
    }
    return r.stage;
  };

  /** Stage 1 on `after`: what is wrong with it, or `null`; counts its gaps into `gaps`. */
  const firstPoll = (
    c: JournalCase,
    after: BusFiles,
    subscribedOnInput: boolean,
  ): { wrong: string | null; gaps: number; torn: boolean } => {
    const first = poll("1 (the input)");
    const gaps = first.stage.gaps;
    if (first.wrong !== null) return { wrong: first.wrong, gaps, torn: false };
    if (subscribedOnInput) {
      // Nothing was appended since the subscription: nothing is delivered.
      const n = first.stage.events.length;
      const wrong = n > 0 && gaps === 0
        ? `poll 1: ${n} events from before the subscription (${showEvent(first.stage.events[0])})`
        : null;
      return { wrong, gaps, torn: false };
    }
    const expect = expected(c, after, self);
    if (expect === null) return { wrong: null, gaps, torn: false };
    const bad = gaps === 0 ? compare(expect, first.stage.events) : null;
    return { wrong: bad === null ? null : `poll 1 (no gap): ${bad}`, gaps, torn: expect.torn };
  };

  const run = async (bytes: Uint8Array, base: number): Promise<Outcome> => {
    const c = cases[base % cases.length];
    const after = decodeFiles(bytes);
    // Flag bit 2: the reader subscribes on the input itself (a journal damaged before it started).
    const onInput = bytes.length > 0 && (bytes[0] & 4) !== 0;
    dir.clear();
    dir.write(onInput ? after : c.before);
    const stop = await reader.subscribe(
      (e) => stage.events.push(e),
      () => stage.gaps++,
      () => stage.downs++,
    );
    let gaps = 0;
    try {
      dir.write(after);
      const first = firstPoll(c, after, onInput);
      if (first.wrong !== null) return { verdict: "wrong", detail: first.wrong };
      gaps += first.gaps;
      // Stages 2–4: events published after it arrive, or the reader says it missed some.
      for (const [name, n, rotate] of STAGES) {
        if (rotate) dir.rotate();
        const r = await publishAndPoll(name, n);
        if (typeof r === "string") return { verdict: "wrong", detail: r };
        gaps += r.gaps;
      }
      if (first.torn && gaps === 0) {
        return {
          verdict: "wrong",
          detail: "a torn last line was never completed, its journal is gone, and no gap",
        };
      }
    } finally {
      await stop();
    }
    return gaps > 0 ? { verdict: "typed", detail: "gap" } : { verdict: "ok" };
  };

  return {
    name: "journal",
    description: "the file bus journal (.bus, .bus.1) read by a polling reader: sound events; " +
      "the valid ones delivered or a gap; typed = gap",
    // Each case twice: the reader subscribes on `before`, and on the input itself.
    corpus: [
      ...cases.map((c) => encodeFiles(c.after, false)),
      ...cases.map((c) => encodeFiles(c.after, true)),
    ],
    share: 3,
    run,
    close: () => dir.remove(),
  };
}

/**
 * What the case's reader must deliver at its first poll unless it calls its gap handler, when
 * the input keeps the journals' identities (else `null`: only soundness is checked).
 */
function expected(c: JournalCase, after: BusFiles, self: string): Expected | null {
  const heads = { old: headOf(after.old), cur: headOf(after.cur) };
  if (
    !sameHead(heads.old, headOf(c.after.old)) || !sameHead(heads.cur, headOf(c.after.cur))
  ) return null;
  const offset = c.before.cur?.length ?? 0;
  const out: Expected = { events: [], gapDue: c.gapDue, why: [], torn: false };
  for (const r of c.regions) {
    const bytes = after[r.file];
    const head = heads[r.file];
    if (bytes === null || head === null) return null; // kept by sameHead: cannot happen
    let from = head.start;
    if (r.from === "offset") {
      if (bytes.length < offset) {
        out.gapDue = true;
        out.why.push(`${r.file} shrank below the reader's offset`);
        continue;
      }
      from = Math.max(offset, head.start);
    }
    // More than one read behind: the reader skips (its journal) or reads on at the next poll.
    if (bytes.length - from > MAX_READ_BYTES) return null;
    const { lines, rest } = linesFrom(bytes, from);
    for (const line of lines) {
      if (line === "") continue;
      const v = specEvent(line, self);
      if (v.kind === "event") out.events.push(v.event);
      else if (v.kind === "malformed") {
        out.gapDue = true;
        out.why.push(
          `${r.file}: a line that is not an event: ${JSON.stringify(line.slice(0, 60))}`,
        );
      }
    }
    if (new TextDecoder().decode(rest).trim() !== "") out.torn = true;
  }
  return out;
}

/** What a first poll must deliver when it calls no gap handler. */
interface Expected {
  events: InvalidationEvent[];
  /** A gap is due (lines that are not events, a shrunk journal, events lost): not calling it is wrong. */
  gapDue: boolean;
  why: string[];
  /** A region ends with a line without its newline (not only blanks). */
  torn: boolean;
}

function compare(e: Expected, got: InvalidationEvent[]): string | null {
  if (e.gapDue) return `a gap was due (${e.why.join("; ") || "events were lost"})`;
  if (got.length !== e.events.length || got.some((g, i) => !sameEvent(g, e.events[i]))) {
    return `delivered ${got.length} events (${showEvent(got)}), want ${e.events.length} ` +
      `(${showEvent(e.events)})`;
  }
  return null;
}

/** An event's message as publishers write it (the specification's member order). */
function message(e: InvalidationEvent): string {
  const reason = e.reason === undefined ? {} : { reason: e.reason };
  return JSON.stringify({ v: 1, level: e.level, targets: e.targets, sender: e.sender, ...reason });
}

function key(e: InvalidationEvent): string {
  const { level, targets, sender, reason, ...rest } = e;
  return JSON.stringify([level, targets, sender, reason ?? null, Object.keys(rest)]);
}
