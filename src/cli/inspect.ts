// fdbroker inspect [FD...] [--pid PID]: describe the fds this process inherited, or another process's. Exit 3 when
// that process exits while its fds are being read (it could no longer be reached, as a peer that went away).
import { Command } from "commander";
import { closedAtStartup, describeFd, describeProcFds, inheritedFds, markRuntimeCloexec, type FdDescription } from "../describe/index.ts";
import { UsageError } from "../errors.ts";
import { isSysError } from "../sys/index.ts";
import { printGroups } from "./describe-view.ts";
import { printJson } from "./output.ts";
import { fail } from "./exit.ts";
import { parseCount } from "./broker-common.ts";

export function command(): Command {
  return new Command("inspect")
    .description("describe open fds: those fdbroker inherited (default all), or another process's with --pid")
    .argument("[FD...]", "fd numbers (default: all)")
    .option("-p, --pid <PID>", "describe this process's fds, through /proc", (s) => parseCount(s, "--pid"))
    .option("--json", "print JSON instead of a table")
    .action((fdArgs: string[], o) => {
      try {
        const fds = fdArgs.map((a) => parseCount(a, "fd", 0));
        const descs = o.pid !== undefined ? describeProcFds(o.pid, fds.length ? fds : undefined) : describeOwn(fds);
        if (o.json) printJson(descs);
        else printGroups([{ fds: descs.map((desc) => ({ id: desc.fd, desc })) }], false);
      } catch (e) {
        fail(e);
      }
    });
}

/** The fds named (default: every inherited one), with close-on-exec marked where the runtime set it. */
function describeOwn(fds: readonly number[]): FdDescription[] {
  const inherited = new Set(inheritedFds());
  return (fds.length ? fds : [...inherited]).map((fd) => {
    // A 0, 1 or 2 that was closed holds the runtime's /dev/null by now (src/describe/startup.ts).
    if (closedAtStartup.has(fd)) throw new UsageError(`fd ${fd} is not open`);
    try {
      return markRuntimeCloexec(describeFd(fd), inherited);
    } catch (e) {
      throw isSysError(e, "EBADF") ? new UsageError(`fd ${fd} is not open`) : e;
    }
  });
}
