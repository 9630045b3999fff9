// `fdbroker grab PID FD...`: copy fds out of a running process with pidfd_getfd(2) (Linux 5.6; ptrace rights over
// it): a deleted log still open in a daemon, the listener of a server that knows no handover. Describe the copies,
// copy a file's or pipe's contents to stdout (--cat), store them in the broker (--put), or exec CMD with them.
import { Command, Option } from "commander";
import { UsageError } from "../errors.ts";
import { requireName } from "../proto/index.ts";
import { closeAll, isSysError, pidfdGetfd, pidfdOpen } from "../sys/index.ts";
import { brokerUidOption, parseCount, parseDuration, socketOf, socketOption } from "./broker-common.ts";

interface GrabOpts {
  put?: string;
  replace?: boolean;
  cat?: boolean;
  timeout: number;
  json?: boolean;
  socket?: string;
  brokerUid?: number;
}

export function command(): Command {
  return new Command("grab")
    .description("copy fds out of a running process (pidfd_getfd); describe them, --cat, --put them in the broker, or exec CMD (after --) with them")
    .argument("<PID>", "the process")
    .argument("<FD...>", "its fd numbers, then optionally -- CMD ARGS")
    .option("--put <NAME>", "store the copies in the broker as NAME (NAME.FD each, for several)")
    .option("--replace", "with --put: replace an existing entry of that name")
    .option("--cat", "copy each file's or pipe's contents to stdout (a file from offset 0, its offset untouched)")
    .addOption(
      new Option("--timeout <DURATION>", "--cat of a pipe or socket: longest wait for more when its writer is still open (then exit 3)")
        .argParser((v) => parseDuration(v, "--timeout"))
        .default(5000, "5s"),
    )
    .option("--json", "describe as JSON")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .addHelpText("after", "\nNeeds ptrace rights over PID: the same uid with kernel.yama.ptrace_scope\nallowing it, or CAP_SYS_PTRACE. fdbroker inspect --pid PID lists its fds. With\nCMD, the copies go to 3, 4, ..., as with get -- CMD.\nExample: fdbroker grab 4242 5 --cat > rescued.log")
    .action(async (pidText: string, operands: string[], opts: GrabOpts) => {
      const dd = process.argv.indexOf("--");
      const cmd = dd >= 0 ? process.argv.slice(dd + 1) : [];
      const targets = operands.slice(0, operands.length - cmd.length).map((s) => parseCount(s, "FD", 0));
      if (targets.length === 0) throw new UsageError("name at least one FD of the process");
      const pid = parseCount(pidText, "PID");
      const modes = [opts.put !== undefined, !!opts.cat, cmd.length > 0].filter(Boolean).length;
      if (modes > 1) throw new UsageError("--put, --cat and a command are one or the other");
      if (opts.replace && opts.put === undefined) throw new UsageError("--replace goes with --put");
      const names = targets.length === 1 ? [opts.put] : targets.map((t) => (opts.put === undefined ? undefined : `${opts.put}.${t}`));
      for (const n of names) if (n !== undefined) requireName(n);
      const exec = cmd.length > 0 ? await import("../launch/exec.ts") : null;
      const path = exec?.resolveCommand(cmd[0]!);
      const pidfd = openProcess(pid);
      const fds: number[] = [];
      try {
        for (const t of targets) fds.push(pidfdGetfd(pidfd, t, `fd ${t} of pid ${pid}`));
      } catch (e) {
        closeAll(fds);
        throw e;
      } finally {
        closeAll([pidfd]);
      }
      try {
        if (exec) exec.execWithFds(cmd, fds.map((fd, i) => ({ fd, name: names[i] ?? `fd${targets[i]}` })), { path });
        if (opts.put !== undefined) {
          const { openSession, put } = await import("../client/index.ts");
          using session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid });
          for (let i = 0; i < fds.length; i++) put(session, names[i]!, fds[i]!, { replace: !!opts.replace });
          return;
        }
        if (opts.cat) {
          const { catFd } = await import("./cat-fd.ts");
          for (let i = 0; i < fds.length; i++) catFd(fds[i]!, `fd ${targets[i]} of pid ${pid}`, 1, opts.timeout);
          return;
        }
        const [{ describeFd }, { printGroups }] = await Promise.all([import("../describe/index.ts"), import("./describe-view.ts")]);
        printGroups([{ fds: fds.map((fd, i) => ({ id: targets[i]!, desc: describeFd(fd) })) }], !!opts.json, "FD");
      } finally {
        closeAll(fds);
      }
    });
}

/** A pid that is not running is a usage error, in the words and with the code of inspect --pid. */
function openProcess(pid: number): number {
  try {
    return pidfdOpen(pid);
  } catch (e) {
    if (isSysError(e, "ESRCH")) throw new UsageError(`no process ${pid}`);
    throw e;
  }
}
