// fdbroker recv ADDR [-- CMD ARGS]: take fds from one peer; describe them, or exec CMD with them at 3, 4, ...
import { Command, Option } from "commander";
import { describeFd } from "../describe/index.ts";
import { UsageError } from "../errors.ts";
import { collectEnv, ENV_HELP, namesUsed, type EnvTemplate } from "../launch/env-template.ts";
import { checkFdName } from "../launch/listen-fds.ts";
import { execWithFds } from "../launch/exec.ts";
import { HAPROXY_HELP } from "../open/spec.ts";
import { haproxyStatsPath, takeHaproxySockets } from "../peer/haproxy.ts";
import { CONNECT_TIMEOUT_MS, receiveFrom, type Reception } from "../peer/session.ts";
import type { TrustedUid } from "../peer/trust.ts";
import { closeAll } from "../sys/index.ts";
import { printGroups, type ViewGroup } from "./describe-view.ts";
import { parseCount, parseDuration } from "./broker-common.ts";
import { fail } from "./exit.ts";
import { interruption, peerReporter, peerUidOption, readyNotifier, waitReporter } from "./peer-options.ts";

/** `--names`: the payload, all messages joined, is the fd names separated by ':' (as LISTEN_FDNAMES). */
function namesFrom(got: Reception): string[] {
  const text = Buffer.concat(got.messages.map((m) => m.data)).toString("utf8").replace(/\0/g, "").trim();
  const names = text === "" ? [] : text.split(":");
  if (names.length !== got.fds.length)
    throw new UsageError(`--names: the payload names ${names.length} fds but ${got.fds.length} arrived`);
  return names.map(checkFdName);
}

function describe(got: Reception, names: string[] | undefined, json: boolean): void {
  let i = 0;
  const groups: ViewGroup[] = got.messages.map((m, n) => ({
    title: `message ${n + 1}`,
    payload: m.data,
    fds: m.fds.map((fd) => {
      const id = i++;
      return { id, name: names?.[id], desc: describeFd(fd) };
    }),
  }));
  printGroups(groups, json, "#");
}

/** `recv haproxy:PATH`: every listener of a running HAProxy, named from its address, as one message. */
function fromHaproxy(path: string, o: { timeout?: number; maxFds: number; peerUid?: TrustedUid; readyFd?: number }): Reception & { names: string[] } {
  // A bad --ready-fd is refused before any fd is taken.
  const ready = readyNotifier(o.readyFd);
  const taken = takeHaproxySockets(path, { timeoutMs: o.timeout, maxFds: o.maxFds, peerUid: o.peerUid });
  ready();
  const fds = taken.map((t) => t.fd);
  const close = () => closeAll(fds.splice(0));
  return { messages: [{ data: new Uint8Array(0), fds: [...fds] }], fds, extraClosed: 0, names: taken.map((t) => t.name), close, [Symbol.dispose]: close };
}

export function command(): Command {
  return new Command("recv")
    .description("receive fds from one peer on a UNIX socket; describe them, or exec CMD with them at fd 3, 4, ...")
    .argument("<ADDR>", "PATH, @NAME, unix:PATH or haproxy:PATH (below)")
    .argument("[CMD...]", "command to exec (after --) with the fds, LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES set")
    .option("--connect", "connect to ADDR instead of listening on it")
    .option("-n, --count <N>", "stop after N fds (extra fds in the last message are closed)", (s) => parseCount(s, "--count"))
    .option("-t, --timeout <DURATION>", "longest wait for the peer (--connect: for its socket to appear and accept) or the next message (exit 3); default: no limit, except 5s to connect", (s) => parseDuration(s, "--timeout"))
    .addOption(new Option("--max-fds <N>", "most fds accepted in all; more is an error").argParser((s) => parseCount(s, "--max-fds", 0)).default(4096))
    .addOption(new Option("--max-bytes <N>", "most payload bytes accepted in all").argParser((s) => parseCount(s, "--max-bytes", 0)).default(1 << 20))
    .option("--names", "the payload names the fds, ':'-separated (becomes LISTEN_FDNAMES, labels the table)")
    .option("--ready-fd <FD>", "write a newline to this fd once listening (or connected), then close it", (s) => parseCount(s, "--ready-fd", 0))
    .addOption(peerUidOption())
    .option("-v, --verbose", "say on stderr what is waited for, and who the peer is (pid, uid, gid, command)")
    .option("--json", "print JSON instead of a table")
    .option("--env <NAME=TEMPLATE>", "with CMD: set NAME to the fds' numbers, e.g. 'NGINX={fds;}' (below); repeatable", collectEnv)
    .addHelpText("after", `\n${HAPROXY_HELP}\n\n${ENV_HELP}; {fd:NAME} needs --names.`)
    .action(async (addr: string, cmd: string[], o) => {
      const env: EnvTemplate[] = o.env ?? [];
      if (env.length > 0 && cmd.length === 0) throw new UsageError("--env needs a command after --");
      if (namesUsed(env).length > 0 && !o.names) throw new UsageError("--env {fd:NAME} needs --names: without it the fds have no names");
      const stop = interruption();
      try {
        const stats = haproxyStatsPath(addr);
        // fromHaproxy checks --ready-fd itself, before it takes anything.
        const ready = stats === null ? readyNotifier(o.readyFd) : () => {};
        const waits = waitReporter(!!o.verbose, addr, o.timeout ?? (o.connect ? CONNECT_TIMEOUT_MS : undefined));
        const got: Reception & { names?: string[] } = stats !== null ? fromHaproxy(stats, o) : await receiveFrom(addr, {
          connect: o.connect, count: o.count, timeoutMs: o.timeout, maxFds: o.maxFds, maxBytes: o.maxBytes,
          onReady: () => {
            if (!o.connect) waits.onListening();
            ready();
          },
          signal: stop.signal, onWait: waits.onWait,
          peerUid: o.peerUid, onPeer: peerReporter(!!o.verbose, !o.connect, o.peerUid),
        });
        if (got.extraClosed > 0) process.stderr.write(`fdbroker: closed ${got.extraClosed} fds past --count ${o.count}\n`);
        try {
          const names = got.names ?? (o.names ? namesFrom(got) : undefined);
          if (cmd.length > 0) execWithFds(cmd, got.fds.map((fd, i) => ({ fd, name: names?.[i] })), { envTemplates: env });
          describe(got, names, !!o.json);
        } finally {
          got.close();
        }
      } catch (e) {
        stop.exitIfInterrupted();
        fail(e);
      }
    });
}
