// `fdbroker get NAME... [-- CMD]`: retrieve fds in one round trip; describe them, cat them, or exec CMD with them.
import { Command } from "commander";
import { collectEnv, ENV_HELP } from "../launch/env-template.ts";
import { brokerUidOption, collect, parseCount, socketOption } from "./broker-common.ts";
import { runGet, type GetOpts } from "./get-action.ts";

export function command(): Command {
  return new Command("get")
    .description("retrieve fds from the broker; describe them, --cat them, or exec CMD (after --) with them")
    .argument("[NAME...]", "entry names, then optionally -- CMD ARGS")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--all", "every entry this client may get")
    .option("--rm", "remove the entries once retrieved")
    .option("--cat", "copy each retrieved file's or pipe's contents to stdout")
    .option("--stdin", "with CMD: put the first fd at fd 0")
    .option("--as <N>", "with CMD: put the next fd at N (repeatable, in order; default 3, 4, ...)", collect((s) => parseCount(s, "--as", 0)))
    .option("--json", "describe as JSON")
    .option("--env <NAME=TEMPLATE>", "with CMD: set NAME to the fds' numbers, e.g. 'NGINX={fds;}' (below); repeatable", collectEnv)
    .addHelpText("after", `\nWith CMD at 3, 4, ..., CMD gets LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES; no\nother fd leaks into it.\nExample: fdbroker get web -- ./server\n\n${ENV_HELP}; {fd:NAME} names an entry.`)
    .action(async (operands: string[], opts: GetOpts) => {
      const dd = process.argv.indexOf("--");
      const cmd = dd >= 0 ? process.argv.slice(dd + 1) : [];
      // No commander default for --as: it would print as "(default: [])" in the help.
      await runGet(operands.slice(0, operands.length - cmd.length), { ...opts, as: opts.as ?? [] }, cmd);
    });
}
