/**
 * Capture cachekit's LogTape records in a test: `const logs = await captureLogs()`, then
 * `logs.records`, and `await logs.stop()` in a `finally` (resets LogTape to silent).
 *
 * @module
 */
import { configure, type LogRecord, reset } from "@logtape/logtape";

/** Records captured under the `cachekit` category. */
export interface LogCapture {
  /** Every record, oldest first. */
  readonly records: LogRecord[];
  /** Records whose rendered message matches `re`. */
  matching(re: RegExp): LogRecord[];
  /** Stop capturing (LogTape reset). */
  stop(): Promise<void>;
}

/** The rendered message of a record. */
export function render(r: LogRecord): string {
  return r.message.map((m) => (typeof m === "string" ? m : JSON.stringify(m))).join("");
}

/** Start capturing every `cachekit` record at `lowestLevel` (default debug). */
export async function captureLogs(
  lowestLevel: "debug" | "info" | "warning" | "error" = "debug",
): Promise<LogCapture> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (r: LogRecord) => void records.push(r) },
    loggers: [
      { category: ["cachekit"], lowestLevel, sinks: ["capture"] },
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
    ],
    reset: true,
  });
  return {
    records,
    matching: (re) => records.filter((r) => re.test(render(r))),
    stop: () => Promise.resolve(reset()),
  };
}
