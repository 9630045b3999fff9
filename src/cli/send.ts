// fdbroker send ADDR: send our own fds and freshly opened ones to one peer, in the order given.
import { Command } from "commander";
import { describeFd, inheritedFds, requireInherited } from "../describe/index.ts";
import { CONNECT_TIMEOUT_MS, sendTo } from "../peer/session.ts";
import { openSpec, parseSpec, SPEC_HELP, SPEC_PARAMS_HELP, type Spec } from "../open/spec.ts";
import { closeAll } from "../sys/index.ts";
import { printGroups } from "./describe-view.ts";
import { parseCount, parseDuration } from "./broker-common.ts";
import { fail } from "./exit.ts";
import { interruption, peerReporter, peerUidOption, readyNotifier, waitReporter } from "./peer-options.ts";

export function command(): Command {
  // --fd and --open share one list, so the peer gets the fds in command-line order. SPECs are parsed as they are
  // read, so a bad one is refused before any other is opened.
  const items: (number | { text: string; spec: Spec })[] = [];
  const addFd = (v: string) => (items.push(parseCount(v, "--fd", 0)), items);
  const addSpec = (v: string) => (items.push({ text: v, spec: parseSpec(v) }), items);
  return new Command("send")
    .description("send fds to one peer over a UNIX socket (SCM_RIGHTS); default: fd 0")
    .argument("<ADDR>", "socket path, @abstract-name or unix:PATH")
    .option("--fd <N>", "send this inherited fd (repeatable)", addFd)
    .option("--open <SPEC>", `open and send: ${SPEC_HELP} (repeatable)`, addSpec)
    .option("--data <STRING>", "payload sent with the fds (default: one NUL byte)")
    .option("--listen", "listen on ADDR and serve one peer instead of connecting")
    .option("-t, --timeout <DURATION>", "longest wait for the socket to appear and accept (default 5s), for a peer (--listen), or for buffer space", (s) => parseDuration(s, "--timeout"))
    .option("--ready-fd <FD>", "write a newline to this fd once connected (or listening), then close it", (s) => parseCount(s, "--ready-fd", 0))
    .addOption(peerUidOption())
    .option("-v, --verbose", "describe what is sent, as recv would; on stderr, say what is waited for and who the peer is (pid, uid, gid, command)")
    .option("--json", "describe what is sent as JSON (implies --verbose)")
    .addHelpText("after", `\n${SPEC_PARAMS_HELP}`)
    .action(async (addr: string, o) => {
      const stop = interruption();
      const opened: number[] = [];
      try {
        if (items.length === 0) items.push(0);
        const inherited = new Set(inheritedFds());
        // Our own fds are checked and every SPEC opened (once) before the peer is contacted: a bad one fails here.
        const fds: number[] = [];
        for (const it of items) {
          if (typeof it === "number") {
            requireInherited(it, `--fd ${it}`, inherited);
            fds.push(it);
            continue;
          }
          const { spec, text } = it;
          if (spec.kind === "fd") requireInherited(spec.fd, `--open ${text}`, inherited);
          opened.push(openSpec(spec));
          fds.push(opened[opened.length - 1]!);
        }
        const ready = readyNotifier(o.readyFd);
        const waits = waitReporter(!!o.verbose, addr, o.timeout ?? (o.listen ? undefined : CONNECT_TIMEOUT_MS));
        await sendTo(addr, fds, {
          connect: !o.listen, timeoutMs: o.timeout, payload: o.data, signal: stop.signal, onWait: waits.onWait,
          onReady: () => {
            if (o.listen) waits.onListening();
            ready();
          },
          peerUid: o.peerUid, onPeer: peerReporter(!!o.verbose, !!o.listen, o.peerUid),
        });
        if (o.verbose || o.json) printGroups([{ fds: fds.map((fd, i) => ({ id: i, desc: describeFd(fd) })) }], !!o.json, "#");
      } catch (e) {
        closeAll(opened.splice(0));
        stop.exitIfInterrupted();
        fail(e);
      } finally {
        closeAll(opened);
      }
    });
}
