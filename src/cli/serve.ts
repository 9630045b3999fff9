// `fdbroker serve`: run a broker holding named fds until SIGTERM/SIGINT. Plain arguments take serve-fast.ts instead.
import { Command } from "commander";
import { HAPROXY_HELP, SPEC_PARAMS_HELP } from "../open/spec.ts";
import { optionOf } from "./broker-common.ts";
import { runServe } from "./serve-action.ts";
import { SERVE_OPTIONS, type ServeOpts } from "./serve-options.ts";

export function command(): Command {
  const cmd = new Command("serve").description("run a broker that holds named fds and hands copies to allowed clients");
  for (const row of SERVE_OPTIONS) cmd.addOption(optionOf(row));
  return cmd
    .addHelpText("after", "\nBy default only the broker's own uid and root may do anything; a uid no --allow\nrule names is refused at accept. SIGTERM or SIGINT: stop accepting, finish\npending replies, close every held fd, remove the socket file if it is still the\none it bound.")
    .addHelpText("after", `\n${SPEC_PARAMS_HELP}\n${HAPROXY_HELP}`)
    .action((opts: ServeOpts) => runServe(opts));
}
