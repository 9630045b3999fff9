// Options every command takes wherever they stand before `--`: `--color WHEN`, and `-s/--socket ADDR` also before
// the command's name (`fdbroker -s /run/b.sock ls`). Taken out of argv here, before commander or the `get -- CMD`
// fast path sees it: a plain loop, since this runs on every start.
import { UsageError } from "../errors.ts";

export const GLOBALS_HELP = `Every command takes, anywhere before --:
  --color <WHEN>       colour in human output: auto (default), always or never
The broker commands (serve, put, get, rm, ls, status, lease, exec, run) also
take, even before their name:
  -s, --socket <ADDR>  the broker's address`;

export type ColorMode = "auto" | "always" | "never";
const MODES: readonly string[] = ["auto", "always", "never"];

let colorMode: ColorMode = "auto";

/** What `--color` said (default auto); read by output.ts when a command first prints. */
export const chosenColorMode = (): ColorMode => colorMode;

function colorValue(text: string | undefined): ColorMode {
  if (text === undefined || !MODES.includes(text)) throw new UsageError(`bad --color ${JSON.stringify(text ?? "")}: auto, always or never`);
  return text as ColorMode;
}

const isColor = (arg: string) => arg === "--color" || arg.startsWith("--color=");

/** Apply `--color WHEN` or `--color=WHEN`; returns how many arguments after `arg` it used. */
function takeColor(arg: string, next: string | undefined): number {
  colorMode = colorValue(arg === "--color" ? next : arg.slice(8));
  return arg === "--color" ? 1 : 0;
}

/** argv with the global options taken out (and a leading -s moved after the command's name). */
export function takeGlobals(argv: readonly string[]): string[] {
  const head = [argv[0]!, argv[1]!];
  const socket: string[] = [];
  let i = 2;
  // Before the command's name: -s/--socket and --color.
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "-s" || a === "--socket") socket.push(a, argv[++i] ?? "");
    else if (a.startsWith("--socket=")) socket.push(a);
    else if (isColor(a)) i += takeColor(a, argv[i + 1]);
    else break;
  }
  const rest: string[] = [];
  if (i < argv.length) rest.push(argv[i++]!);
  rest.push(...socket);
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    // Everything after `--` is CMD's own.
    if (a === "--") {
      for (; i < argv.length; i++) rest.push(argv[i]!);
      break;
    }
    if (isColor(a)) i += takeColor(a, argv[i + 1]);
    else rest.push(a);
  }
  return [...head, ...rest];
}
