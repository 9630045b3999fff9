// `fdbroker rm NAME...`: remove entries (all or none) from the broker, closing its copies.
import { Command } from "commander";
import { openSession, rm } from "../client/index.ts";
import { socketOf, socketOption } from "./broker-common.ts";

export function command(): Command {
  return new Command("rm")
    .description("remove entries from the broker (all of them, or none if one is missing or denied)")
    .argument("<NAME...>", "entry names")
    .addOption(socketOption())
    .action((names: string[], opts: { socket?: string }) => {
      using session = openSession({ socket: socketOf(opts) });
      rm(session, names);
    });
}
