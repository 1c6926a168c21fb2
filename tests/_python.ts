/**
 * Runs Debian's Python 3 with python3-msgpack, -lz4, -xxhash, -cryptography and -redis: an
 * independent implementation of the protocol to check our bytes against.
 *
 * Outside CI a machine without those packages skips the cross-checks (with the reason printed); in
 * CI (`CI=true`) it fails them: `.ci/run` installs the packages.
 *
 * @module
 */
import { spawnSync } from "node:child_process";
import { IN_CI } from "./_harness.ts";

/** Interpreter with Debian's dist-packages (pyenv's python3 on PATH lacks them). */
export const PYTHON: string = "/usr/bin/python3";

function probe(): string | null {
  const r = spawnSync(PYTHON, ["-c", "import msgpack, lz4.block, xxhash, cryptography, redis"], {
    encoding: "utf8",
  });
  if (r.error) return `${PYTHON} not found (${r.error.message})`;
  if (r.status !== 0) return `missing Python packages: ${r.stderr.trim().split("\n").pop()}`;
  return null;
}

/** Why the Python cross-checks cannot run here, or `null` when they can. */
export const PYTHON_UNAVAILABLE: string | null = probe();

/** `ignore` options for a cross-check test: skipped only outside CI, with the reason. */
export const pythonTestOptions: { ignore: boolean; ignoreReason?: string } =
  PYTHON_UNAVAILABLE && !IN_CI
    ? {
      ignore: true,
      ignoreReason:
        `${PYTHON_UNAVAILABLE}; apt-get install python3-msgpack python3-lz4 python3-xxhash python3-cryptography python3-redis`,
    }
    : { ignore: false };

/**
 * Run a Python script; `input` is written to its stdin. Returns stdout as bytes. Throws with the
 * script's stderr when it exits non-zero.
 */
export function runPython(script: string, input?: Uint8Array | string): Uint8Array {
  if (PYTHON_UNAVAILABLE) throw new Error(`Python cross-check unavailable: ${PYTHON_UNAVAILABLE}`);
  const r = spawnSync(PYTHON, ["-c", script], { input, maxBuffer: 1 << 30 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`python exited ${r.status}: ${r.stderr.toString()}`);
  return new Uint8Array(r.stdout.buffer, r.stdout.byteOffset, r.stdout.byteLength);
}

/** Run a Python script and parse its stdout as JSON. */
export function runPythonJson<T = unknown>(script: string, input?: Uint8Array | string): T {
  return JSON.parse(new TextDecoder().decode(runPython(script, input))) as T;
}
