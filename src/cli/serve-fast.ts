// `fdbroker serve` without commander: a supervisor starts the broker with plain options, and commander's matching
// of serve's 23 options runs its inner loop often enough for the runtime to load its optimizing compiler (about
// 2 MiB of RSS, docs/benchmarks.md). Only the plain forms are taken here (`--opt VALUE`, `--opt=VALUE`, `-s
// VALUE`, `--flag`); anything else (help, an unknown option, an argument, a value a parser rejects) returns false
// and goes through the full command, which owns every error message.
import type { OptionRow } from "./broker-common.ts";
import { runServe } from "./serve-action.ts";
import { SERVE_OPTIONS, type ServeOpts } from "./serve-options.ts";

interface Flag {
  row: OptionRow;
  /** The camel-cased long name, as commander keys the option's value. */
  key: string;
  takesValue: boolean;
}

function flagsOf(rows: readonly OptionRow[]): Map<string, Flag> {
  const byName = new Map<string, Flag>();
  for (const row of rows) {
    const names = row.flags.split(/[ ,]+/).filter((w) => w.startsWith("-"));
    const long = names.find((n) => n.startsWith("--"))!;
    const flag = { row, key: long.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()), takesValue: row.flags.includes("<") };
    for (const n of names) byName.set(n, flag);
  }
  return byName;
}

/** The options' values as commander would give them, or null when the arguments are not all in a plain form. */
export function parsePlain(rows: readonly OptionRow[], args: readonly string[]): Record<string, unknown> | null {
  const flags = flagsOf(rows);
  const opts: Record<string, unknown> = {};
  for (const { row, key } of flags.values()) if (row.default !== undefined) opts[key] = row.default;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = flags.get(eq > 0 ? arg.slice(0, eq) : arg);
    if (!flag || (eq > 0 && !flag.takesValue)) return null;
    if (!flag.takesValue) {
      opts[flag.key] = true;
      continue;
    }
    // As commander: a required value is the next argument, whatever it starts with.
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || (flag.row.choices && !flag.row.choices.includes(value))) return null;
    try {
      opts[flag.key] = flag.row.parse ? flag.row.parse(value, opts[flag.key]) : value;
    } catch {
      return null;
    }
  }
  return opts;
}

/** Run `serve` if argv is in the plain form; false when the full command should handle it. */
export async function tryFastServe(argv: readonly string[]): Promise<boolean> {
  if (argv[2] !== "serve") return false;
  const opts = parsePlain(SERVE_OPTIONS, argv.slice(3));
  if (!opts) return false;
  await runServe(opts as unknown as ServeOpts);
  return true;
}
