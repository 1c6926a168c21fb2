/**
 * Reading environment variables, one typed reader per kind of value (number, integer, flag, octal
 * file mode), each raising a {@linkcode CacheConfigError} that names the variable.
 * Separate from `readEnvConfig`, which lists the variables and their defaults.
 *
 * @module
 */
import { CacheConfigError } from "../errors.ts";

/** A source of variables: an object, or a lookup function. */
export type EnvSource = Record<string, string | undefined> | ((name: string) => string | undefined);

/** Read one variable from the running runtime; unset (or not permitted) → `undefined`. */
function runtimeEnv(name: string): string | undefined {
  // deno-lint-ignore no-explicit-any
  const g = globalThis as any;
  try {
    if (g.Deno?.env) return g.Deno.env.get(name) ?? undefined;
  } catch {
    return undefined; // no --allow-env: treat as unset
  }
  return g.process?.env?.[name] ?? undefined;
}

/** The typed readers of one source; unset or blank variables read as `undefined` or the default. */
export interface EnvReaders {
  /** The trimmed value, `undefined` when unset or blank. */
  raw(name: string): string | undefined;
  /** A finite number passing `check`, or `dflt`. */
  num(name: string, dflt: number, check: (n: number) => boolean, expected: string): number;
  /** An integer >= `min`, or `dflt`. */
  int(name: string, dflt: number, min: number): number;
  /** A flag (true/false, 1/0, yes/no, on/off), or `dflt`. */
  bool(name: string, dflt: boolean): boolean;
  /** An octal file mode such as `0600`, or `dflt`. */
  octal(name: string, dflt: number): number;
}

/**
 * The readers of `source` (default: the runtime's environment).
 *
 * @param source Variables to read instead of the process environment.
 */
export function envReaders(source?: EnvSource): EnvReaders {
  const get = source === undefined
    ? runtimeEnv
    : typeof source === "function"
    ? source
    : (name: string) => source[name];
  const raw = (name: string): string | undefined => {
    const v = get(name);
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const num = (name: string, dflt: number, check: (n: number) => boolean, expected: string) => {
    const v = raw(name);
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isFinite(n) || !check(n)) throw new CacheConfigError(name, v, expected);
    return n;
  };
  const int = (name: string, dflt: number, min: number) =>
    num(name, dflt, (n) => Number.isInteger(n) && n >= min, `an integer >= ${min}`);
  const bool = (name: string, dflt: boolean) => {
    const v = raw(name);
    if (v === undefined) return dflt;
    const l = v.toLowerCase();
    if (["1", "true", "yes", "on"].includes(l)) return true;
    if (["0", "false", "no", "off"].includes(l)) return false;
    throw new CacheConfigError(name, v, "one of true/false, 1/0, yes/no, on/off");
  };
  const octal = (name: string, dflt: number) => {
    const v = raw(name);
    if (v === undefined) return dflt;
    if (!/^0?o?[0-7]{3,4}$/i.test(v)) {
      throw new CacheConfigError(name, v, "an octal file mode such as 0600");
    }
    return parseInt(v.replace(/^0?o/i, ""), 8);
  };
  return { raw, num, int, bool, octal };
}
