// fdbroker inspect [FD...] [--pid PID]: describe the fds this process inherited, or another process's, with the
// other end of every UNIX socket; --holders FD / --inode N: every process holding that file. Exit 3 when the
// process exits while its fds are being read (it could no longer be reached, as a peer that went away).
import { Command } from "commander";
import {
  addSocketDetails, closedAtStartup, describeFd, describeProcFds, inheritedFds, lazySocketTables, markRuntimeCloexec,
  type FdDescription,
} from "../describe/index.ts";
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
    .option("--holders <FD>", "list every process holding FD's file, and which share its description", (s) => parseCount(s, "--holders", 0))
    .option("--inode <N>", "list every process holding a file with inode N", (s) => parseCount(s, "--inode"))
    .option("--json", "print JSON instead of a table")
    .addHelpText("after", "\nA UNIX socket's PEER column names the processes holding its other end (pid/fd\ncommand), found through sock_diag and a scan of /proc: it shows only the\nprocesses this user may read, as lsof does.")
    .action(async (fdArgs: string[], o) => {
      try {
        const fds = fdArgs.map((a) => parseCount(a, "fd", 0));
        if (o.holders !== undefined || o.inode !== undefined) {
          if (fds.length || (o.holders !== undefined && o.inode !== undefined)) throw new UsageError("--holders and --inode take no FD arguments, and one excludes the other");
          const { printHolders } = await import("./holders-view.ts");
          return printHolders({ pid: o.pid, fd: o.holders, inode: o.inode }, !!o.json);
        }
        const tables = lazySocketTables(o.pid ?? "self");
        const descs = o.pid !== undefined ? describeProcFds(o.pid, fds.length ? fds : undefined, tables) : describeOwn(fds);
        const details = addSocketDetails(o.pid ?? "self", descs, undefined, tables);
        if (details.diagError) process.stderr.write(`fdbroker: no UNIX socket peers: ${details.diagError}\n`);
        if (!details.complete) process.stderr.write("fdbroker: the /proc scan stopped at its limit: some peers may be missing\n");
        if (o.json) printJson(details.descs);
        else printGroups([{ fds: details.descs.map((desc) => ({ id: desc.fd, desc })) }], false, "FD", true);
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
