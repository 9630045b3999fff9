// Entry point: finds the subcommand, loads only that module (start-up cost matters for `get -- CMD`), parses, runs.
import type { Command, CommanderError } from "commander";
import { UsageError } from "../errors.ts";
import { escapeLines, escapeText } from "../text.ts";
import { COMMANDS } from "./commands.ts";
import { environmentHelp } from "./environment.ts";
import { requireUtf8Args } from "./argv-bytes.ts";
import { GLOBALS_HELP, takeGlobals } from "./globals.ts";
import { EXIT, EXIT_HELP, fail } from "./exit.ts";
import { VERSION } from "../version.ts";

const HELP_COLUMNS = 80;

function configure(cmd: Command): Command {
  // commander exits 1 on its own usage errors; ours is 2.
  cmd.exitOverride((err: CommanderError) => {
    if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") process.exit(EXIT.ok);
    process.exit(EXIT.usage);
  });
  // commander quotes the arguments it rejects; its messages may run over lines, each escaped on its own.
  // Help is wrapped at 80 columns even on a wider terminal: the texts of our own are written to that width.
  cmd.configureOutput({
    outputError: (s, write) => write(`fdbroker: ${escapeLines(s.replace(/^error: /, "").trimEnd())}\n`),
    getOutHelpWidth: () => HELP_COLUMNS,
    getErrHelpWidth: () => HELP_COLUMNS,
  });
  for (const sub of cmd.commands) configure(sub);
  return cmd;
}

/** A command's arguments as its usage line shows them: `<ADDR> [CMD...]`. */
function argumentsOf(cmd: Command): string {
  return cmd.registeredArguments.map((a) => {
    const n = `${a.name()}${a.variadic ? "..." : ""}`;
    return a.required ? `<${n}>` : `[${n}]`;
  }).join(" ");
}

/** Commands that need the list of fds fdbroker inherited (for --fd checks, or to describe them). */
const NEEDS_INHERITED = new Set(["inspect", "send", "exec", "run", "put", "serve"]);

async function main(given: string[]): Promise<void> {
  requireUtf8Args(given.slice(2));
  let argv = takeGlobals(given);
  // Before any module that can make the runtime open fds of its own (Bun dups fd 1 or 2 when process.stdout or
  // process.stderr is first touched): the list of fds fdbroker inherited. Only the commands that use it pay.
  if (NEEDS_INHERITED.has(argv[2] ?? "")) await import("../describe/startup.ts");
  // commander is loaded only past this point: see get-fast.ts and serve-fast.ts.
  if (argv[2] === "get" && (await (await import("./get-fast.ts")).tryFastGet(argv))) return;
  if (argv[2] === "serve" && (await (await import("./serve-fast.ts")).tryFastServe(argv))) return;
  const { Command } = await import("commander");
  const program = new Command("fdbroker")
    .description("pass open file descriptors between processes over UNIX sockets (SCM_RIGHTS)")
    .version(VERSION, "-V, --version")
    // Not commander options: declared on the program, they would be accepted (and ignored) by every command.
    // A function, so the help's word wrapping runs only when help is printed.
    .addHelpText("after", () => `\n${GLOBALS_HELP}\n\n${environmentHelp()}\n\n${EXIT_HELP}\n`);
  // `fdbroker help [CMD]`, which commander lists, is `fdbroker [CMD] --help`.
  if (argv[2] === "help") argv = [argv[0]!, argv[1]!, ...argv.slice(3, 4), "--help"];
  const name = argv[2];
  const entry = name !== undefined ? COMMANDS[name] : undefined;
  if (entry) {
    // Every command's help ends with the exit codes, after any text of its own.
    program.addCommand((await entry.load()).command().addHelpText("after", `\n${EXIT_HELP}\n`));
  } else {
    // Help lists each command with its arguments, read from its own definition: worth loading them all only then.
    const listing = name === undefined || name === "-h" || name === "--help";
    for (const [n, c] of Object.entries(COMMANDS)) program.command(listing ? `${n} ${argumentsOf((await c.load()).command())}`.trimEnd() : n).description(c.summary);
    if (name === undefined) {
      // No command is a usage error, not a request for help: a script that lost its arguments must not pass.
      program.outputHelp({ error: true });
      process.exit(EXIT.usage);
    }
    if (!name.startsWith("-")) {
      process.stderr.write(`fdbroker: unknown command '${escapeText(name)}' (try fdbroker --help)\n`);
      process.exit(EXIT.usage);
    }
  }
  configure(program);
  await program.parseAsync(argv);
}

// Told apart by its code rather than by class: commander's class is not loaded on the fast path.
const isCommanderError = (e: unknown): e is CommanderError => typeof (e as CommanderError)?.code === "string" && (e as CommanderError).code.startsWith("commander.");

main(process.argv).catch((e) => fail(isCommanderError(e) ? new UsageError(e.message) : e));
