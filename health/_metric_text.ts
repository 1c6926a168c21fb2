/**
 * The Prometheus text format 0.0.4 at the level of one token: label values and help text escaped,
 * numbers written the way the format spells them. Kept apart from the metric families so the
 * format's rules are in one place.
 *
 * @module
 */

/** Escape a label value for the text format: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : "\\" + c));
}

/** Escape `# HELP` text: backslash and line feed. */
export function escapeHelp(help: string): string {
  return help.replace(/[\\\n]/g, (c) => (c === "\n" ? "\\n" : "\\\\"));
}

/** A sample value as the format spells it (`NaN`, `+Inf`, `-Inf`). */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** The Prometheus content type of `MetricsRegistry.exposition`. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
