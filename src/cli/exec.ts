// `fdbroker exec`: socket activation. Open listeners, gather fds, become CMD (same pid) with them at 3, 4, ...
import { Command } from "commander";
import { collectEnv, ENV_HELP, type EnvTemplate } from "../launch/env-template.ts";
import { execWithFds } from "../launch/exec.ts";
import { collectInto, gatherFds, parseFdSource, parseGetSource, parseListenSource, type Source } from "../launch/sources.ts";
import { HAPROXY_HELP, SPEC_HELP, SPEC_PARAMS_HELP } from "../open/spec.ts";
import { brokerUidOption, socketOf, socketOption } from "./broker-common.ts";

export function command(): Command {
  const sources: Source[] = [];
  const add = collectInto(sources);
  return new Command("exec")
    .description("open listeners and gather fds, then exec CMD with them at fd 3, 4, ... (LISTEN_FDS protocol)")
    .option("--listen <[NAME=]SPEC>", `open a listener or file (${SPEC_HELP}); repeatable`, add(parseListenSource))
    .option("--fd <[NAME=]N>", "pass fd N, inherited by fdbroker; repeatable", add(parseFdSource))
    .option("--get <NAME>", "retrieve a broker entry; repeatable", add(parseGetSource))
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--no-inherit", "ignore LISTEN_FDS passed to fdbroker (by default they come first)")
    .option("--env <NAME=TEMPLATE>", "set NAME to the passed fds' numbers, e.g. 'NGINX={fds;}' (below); repeatable", collectEnv)
    .argument("<CMD...>", "command and arguments (after --)")
    .addHelpText(
      "after",
      `
Order of the fds: inherited LISTEN_FDS first, then --listen/--fd/--get in
command-line order. CMD gets LISTEN_FDS, LISTEN_PID (its own pid) and
LISTEN_FDNAMES (NAME, or "unknown"); only 0, 1, 2 and these fds survive the
exec.

Example: fdbroker exec --listen web=tcp:0.0.0.0:8080 -- ./server`,
    )
    .addHelpText("after", `\n${ENV_HELP}\n\n${SPEC_PARAMS_HELP}\n${HAPROXY_HELP}`)
    .action((cmd: string[], opts: { inherit: boolean; socket?: string; brokerUid?: number; env?: EnvTemplate[] }) => {
      execWithFds(cmd, gatherFds(sources, opts.inherit, { socket: socketOf(opts), brokerUid: opts.brokerUid }), { envTemplates: opts.env });
    });
}
