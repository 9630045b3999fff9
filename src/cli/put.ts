// `fdbroker put NAME`: store a copy of one of our fds (default stdin) in the broker.
import { Command } from "commander";
import { openSession, put } from "../client/index.ts";
import { inheritedFds, requireInherited } from "../describe/inherited.ts";
import { requireName } from "../proto/index.ts";
import { brokerUidOption, parseCount, parseDuration, socketOf, socketOption } from "./broker-common.ts";
import { printJson } from "./output.ts";

interface PutOpts {
  socket?: string;
  brokerUid?: number;
  fd: number;
  ttl?: number;
  replace?: boolean;
  json?: boolean;
}

export function command(): Command {
  return new Command("put")
    .description("store a copy of an fd (default stdin) in the broker under NAME")
    .argument("<NAME>", "entry name")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--fd <N>", "which of this process's fds to store", (s) => parseCount(s, "--fd", 0), 0)
    .option("--ttl <DURATION>", "close the entry after this long (500ms, 30s, 5m, 2h)", (s) => parseDuration(s, "--ttl"))
    .option("--replace", "replace an existing entry of that name")
    .option("--json", "print the stored entry as JSON")
    .addHelpText("after", "\nExample: some-producer | fdbroker put logs --ttl 10m")
    .action((name: string, opts: PutOpts) => {
      // Bad input is a usage error before anything is reached: not a connect error when no broker runs.
      requireName(name);
      requireInherited(opts.fd, `--fd ${opts.fd}`, new Set(inheritedFds()));
      using session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid });
      const entry = put(session, name, opts.fd, { ttlMs: opts.ttl, replace: opts.replace });
      if (opts.json) printJson(entry);
    });
}
