/**
 * `deno task fuzz`: seeded mutational fuzzing of every decoder of stored bytes and of the read
 * path of `cache()` (see `fuzz/fuzz.ts` and `fuzz/_targets.ts`). Exits 1 on any wrong value,
 * untyped error or input over the time limit, 2 on a usage error.
 *
 * Usage:
 *
 * ```text
 * deno task fuzz [--seed N] [--inputs N] [--target NAME[,NAME…]] [--slow-ms N]
 * deno task fuzz --seed N --target NAME --index I     # reproduce one input, print it whole
 * deno task fuzz --list                               # the targets
 * ```
 *
 * Runs on Bun and Node as well (`bun fuzz/main.ts`, or `node` on the transpiled build).
 *
 * @module
 */
import process from "node:process";
import { failed, runFuzz, runOne, summary, TARGET_NAMES } from "./fuzz.ts";
import { createTargets } from "./_targets.ts";

/** Default number of inputs of a full run. */
export const DEFAULT_INPUTS = 1_000_000;

/** Default seed: fixed, so that two runs of the same code find the same things. */
export const DEFAULT_SEED = 1;

interface Args {
  seed: number;
  inputs: number;
  targets: string[];
  index: number | null;
  slowMs: number;
  list: boolean;
}

function usage(message: string): never {
  console.error(`fuzz: ${message}`);
  console.error(
    "usage: deno task fuzz [--seed N] [--inputs N] [--target NAME[,NAME...]] [--index I] " +
      "[--slow-ms N] [--list]",
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seed: DEFAULT_SEED,
    inputs: DEFAULT_INPUTS,
    targets: [...TARGET_NAMES],
    index: null,
    slowMs: 1000,
    list: false,
  };
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v?.replace(/_/g, ""));
    if (v === undefined || !Number.isSafeInteger(n) || n < 0) {
      usage(`${flag} needs an integer >= 0`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].includes("=") ? argv[i].split("=", 2) : [argv[i], undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--seed":
        args.seed = int(flag, value()) >>> 0;
        break;
      case "--inputs":
        args.inputs = int(flag, value());
        break;
      case "--index":
        args.index = int(flag, value());
        break;
      case "--slow-ms":
        args.slowMs = int(flag, value());
        break;
      case "--target": {
        const names = (value() ?? "").split(",").filter((s) => s !== "");
        for (const n of names) {
          if (!TARGET_NAMES.includes(n)) {
            usage(`unknown target "${n}" (known: ${TARGET_NAMES.join(", ")})`);
          }
        }
        if (names.length === 0) usage("--target needs a name");
        args.targets = names;
        break;
      }
      case "--list":
        args.list = true;
        break;
      default:
        usage(`unknown argument "${argv[i]}"`);
    }
  }
  return args;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const t of await createTargets()) console.log(`${t.name.padEnd(22)} ${t.description}`);
    return 0;
  }
  if (args.index !== null) {
    if (args.targets.length !== 1) usage("--index needs exactly one --target");
    const [target] = await createTargets(args.targets);
    const r = await runOne(target, args.seed, args.index);
    const hex = Array.from(r.input, (b) => b.toString(16).padStart(2, "0")).join("");
    console.log(`target:   ${target.name}\nseed:     ${args.seed}\nindex:    ${args.index}`);
    console.log(`mutation: ${r.mutation}\ninput:    ${r.input.length} bytes\n${hex}`);
    console.log(
      `verdict:  ${r.outcome.verdict}${r.outcome.detail ? ` (${r.outcome.detail})` : ""}`,
    );
    console.log(`time:     ${r.ms.toFixed(1)} ms`);
    const bad = r.outcome.verdict === "wrong" || r.outcome.verdict === "untyped" ||
      r.ms > args.slowMs;
    return bad ? 1 : 0;
  }
  const report = await runFuzz({
    seed: args.seed,
    inputs: args.inputs,
    targets: args.targets,
    slowMs: args.slowMs,
    progress: (line) => console.log(line),
  });
  console.log(summary(report));
  const bad = failed(report);
  console.log(bad ? "\nFUZZ FAILED" : "\nfuzz ok");
  return bad ? 1 : 0;
}

process.exit(await main());
