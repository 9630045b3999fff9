// `fdbroker lease NAME [-- CMD]`: check out one member of a pool exclusively. With CMD, exec CMD with the member at
// fd 3; the lease lasts exactly as long as CMD's process (the broker watches its pid, which exec keeps). Without,
// describe the member; the lease ends as this command exits.
import { Command, Option } from "commander";
import { lease, openSession } from "../client/index.ts";
import { requireName } from "../proto/index.ts";
import { close } from "../sys/index.ts";
import { brokerUidOption, parseDuration, socketOf, socketOption } from "./broker-common.ts";

interface LeaseOpts {
  socket?: string;
  brokerUid?: number;
  wait: number;
  ttl?: number;
  json?: boolean;
}

/** Beyond the wait, how long the broker has to answer. */
const ANSWER_MS = 10_000;

export function command(): Command {
  return new Command("lease")
    .description("check out one member of a pool exclusively; describe it, or exec CMD (after --) with it at fd 3 for as long as CMD runs")
    .argument("<NAME>", "the pool")
    .argument("[CMD...]", "command and arguments (after --): member at fd 3")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .addOption(new Option("--wait <DURATION>", "wait this long in line for a member to come free (0: not at all); then exit 3").argParser((s) => parseDuration(s, "--wait", { allowZero: true })).default(30_000, "30s"))
    .addOption(new Option("--ttl <DURATION>", "the broker revokes the lease after this long (a socket member is shut down)").argParser((s) => parseDuration(s, "--ttl")))
    .option("--json", "describe the member as JSON")
    .addHelpText("after", "\nCMD gets the member at fd 3 with LISTEN_FDS=1 and LISTEN_FDNAMES=NAME; no other\nfd leaks into it.\nExample: fdbroker lease db -- ./job.sh")
    .action(async (name: string, cmd: string[], opts: LeaseOpts) => {
      requireName(name);
      const exec = cmd.length > 0 ? await import("../launch/exec.ts") : null;
      const path = exec?.resolveCommand(cmd[0]!);
      // Closed by exec (close-on-exec) or at exit: a lease bound to this pid outlives it, any other ends with it.
      const session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid, timeoutMs: opts.wait + ANSWER_MS });
      let got;
      try {
        got = lease(session, name, { waitMs: opts.wait, ttlMs: opts.ttl, bindPid: exec !== null });
      } catch (e) {
        session.close();
        throw e;
      }
      try {
        if (exec) exec.execWithFds(cmd, [{ fd: got.fd, name }], { path, targets: [3] });
        const [{ describeFd }, { printGroups }] = await Promise.all([import("../describe/index.ts"), import("./describe-view.ts")]);
        printGroups([{ fds: [{ id: 0, name, desc: describeFd(got.fd) }] }], !!opts.json, "#");
      } finally {
        close(got.fd);
        session.close();
      }
    });
}
