// `fdbroker put NAME`: store a copy of one of our fds (default stdin) in the broker.
import { Command } from "commander";
import { openSession, put, putMember } from "../client/index.ts";
import { inheritedFds, requireInherited } from "../describe/inherited.ts";
import { requireName } from "../proto/index.ts";
import { brokerUidOption, parseCount, parseDuration, socketOf, socketOption } from "./broker-common.ts";
import { UsageError } from "../errors.ts";
import { openSpec, SPEC_HELP, SPEC_PARAMS_HELP } from "../open/spec.ts";
import { close as closeFd } from "../sys/index.ts";
import { printJson } from "./output.ts";

interface PutOpts {
  socket?: string;
  brokerUid?: number;
  fd?: number;
  open?: string;
  ttl?: number;
  replace?: boolean;
  pool?: boolean;
  json?: boolean;
}

export function command(): Command {
  return new Command("put")
    .description("store a copy of an fd (default stdin), or of a freshly opened SPEC, in the broker under NAME")
    .argument("<NAME>", "entry name")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--fd <N>", "which of this process's fds to store (default 0)", (s) => parseCount(s, "--fd", 0))
    .option("--open <SPEC>", `open and store this instead of an fd of ours: ${SPEC_HELP}`)
    .option("--ttl <DURATION>", "close the entry after this long (500ms, 30s, 5m, 2h)", (s) => parseDuration(s, "--ttl"))
    .option("--replace", "replace an existing entry of that name")
    .option("--pool", "add it as a member of pool NAME (created if new), lent by `fdbroker lease`; dropped when it breaks")
    .option("--json", "print the stored entry as JSON")
    .addHelpText("after", "\nExamples:\n  some-producer | fdbroker put logs --ttl 10m\n  fdbroker put web --open tcp:0.0.0.0:8080")
    .addHelpText("after", `\n${SPEC_PARAMS_HELP}`)
    .action((name: string, opts: PutOpts) => {
      // Bad input is a usage error before anything is reached: not a connect error when no broker runs.
      requireName(name);
      if (opts.open !== undefined && opts.fd !== undefined) throw new UsageError("give --fd or --open, not both");
      if (opts.pool && (opts.ttl !== undefined || opts.replace)) throw new UsageError("--pool takes no --ttl or --replace (a lease has its own --ttl)");
      const inherited = new Set(inheritedFds());
      if (opts.open === undefined) requireInherited(opts.fd ?? 0, `--fd ${opts.fd ?? 0}`, inherited);
      // What --open opened is ours: the broker keeps its own copy, ours is closed on every path.
      const opened = opts.open === undefined ? null : openSpec(opts.open, inherited);
      try {
        using session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid });
        const fd = opened ?? opts.fd ?? 0;
        const stored = opts.pool ? putMember(session, name, fd) : put(session, name, fd, { ttlMs: opts.ttl, replace: opts.replace });
        if (opts.json) printJson(stored);
      } finally {
        if (opened !== null) closeFd(opened);
      }
    });
}
