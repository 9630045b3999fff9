// `fdbroker get NAME... -- CMD` without commander. It sits in services' start paths, and loading commander is
// about a third of the compiled binary's start-up (docs/benchmarks.md). Only the plain forms are taken here;
// anything else (help, --json, a malformed option) returns false and goes through the full command, which also
// owns every error message.
import { runGet, type GetOpts } from "./get-action.ts";

/** Options of `get` this path understands, and whether each takes a value. */
const KNOWN: Record<string, "flag" | "value"> = {
  "-s": "value", "--socket": "value", "--broker-uid": "value", "--rm": "flag", "--all": "flag", "--stdin": "flag", "--as": "value",
};

function parse(args: readonly string[]): { names: string[]; opts: GetOpts } | null {
  const names: string[] = [];
  const opts: GetOpts = { as: [] };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!arg.startsWith("-")) {
      names.push(arg);
      continue;
    }
    const kind = KNOWN[arg];
    if (kind === undefined) return null;
    if (kind === "flag") {
      if (arg === "--rm") opts.rm = true;
      else if (arg === "--all") opts.all = true;
      else opts.stdin = true;
      continue;
    }
    const value = args[++i];
    if (value === undefined || value.startsWith("-")) return null;
    // A malformed number goes to the full command, which owns the error message.
    // A uid is below 2^32, as parseTrustedUid has it.
    if ((arg === "--as" || arg === "--broker-uid") && !/^\d+$/.test(value)) return null;
    if (arg === "--broker-uid" && Number(value) >= 2 ** 32) return null;
    if (arg === "--as") opts.as.push(Number(value));
    else if (arg === "--broker-uid") opts.brokerUid = Number(value);
    else opts.socket = value;
  }
  return { names, opts };
}

/** Run `get ... -- CMD` if argv is in the plain form; false when the full command should handle it. */
export async function tryFastGet(argv: readonly string[]): Promise<boolean> {
  const dd = argv.indexOf("--");
  if (argv[2] !== "get" || dd < 0 || dd === argv.length - 1) return false;
  const parsed = parse(argv.slice(3, dd));
  if (!parsed || (parsed.names.length === 0 && !parsed.opts.all)) return false;
  await runGet(parsed.names, parsed.opts, argv.slice(dd + 1));
  return true;
}
