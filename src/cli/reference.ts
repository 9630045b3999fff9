// Every command's options and arguments, read off the commander definitions themselves: shell completion and the
// man page are generated from this, so neither can drift from what the CLI accepts.
import type { Command } from "commander";
import { COMMANDS } from "./commands.ts";

interface OptionRef {
  flags: string;
  short: string | null;
  long: string | null;
  /** Takes a value (`<X>` or `[X]`). */
  takesValue: boolean;
  description: string;
}

export interface CommandRef {
  name: string;
  summary: string;
  usage: string;
  description: string;
  options: OptionRef[];
  /** Text commander prints after the options (examples, notes), as written. */
  notes: string;
}

/** The text a command adds after its option list with addHelpText("after", ...), without the exit table. */
function notesOf(cmd: Command): string {
  let text = "";
  const capture = { writeOut: (s: string) => (text += s), writeErr: () => {}, outputError: () => {} };
  cmd.configureOutput(capture);
  cmd.outputHelp();
  const options = text.indexOf("\nOptions:\n");
  const end = options < 0 ? -1 : text.indexOf("\n\n", options + 1);
  return end < 0 ? "" : text.slice(end + 2).trim();
}

export async function commandReference(): Promise<CommandRef[]> {
  const out: CommandRef[] = [];
  for (const [name, entry] of Object.entries(COMMANDS)) {
    const cmd = (await entry.load()).command();
    out.push({
      name,
      summary: entry.summary,
      usage: `fdbroker ${name} ${cmd.usage()}`,
      description: cmd.description(),
      options: cmd.options.filter((o) => !o.hidden).map((o) => ({
        flags: o.flags,
        short: o.short ?? null,
        long: o.long ?? null,
        takesValue: o.required || o.optional,
        description: o.description,
      })),
      notes: notesOf(cmd),
    });
  }
  return out;
}
