// `fdbroker rm NAME...`: remove entries (all or none) from the broker, closing its copies.
import { Command } from "commander";
import { openSession, rm } from "../client/index.ts";
import { requireName } from "../proto/index.ts";
import { brokerUidOption, socketOf, socketOption } from "./broker-common.ts";

export function command(): Command {
  return new Command("rm")
    .description("remove entries from the broker (all of them, or none if one is missing or denied)")
    .argument("<NAME...>", "entry names")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .action((names: string[], opts: { socket?: string; brokerUid?: number }) => {
      for (const n of names) requireName(n);
      using session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid });
      rm(session, names);
    });
}
