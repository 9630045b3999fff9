// fdbroker send ADDR: send our own fds and freshly opened ones to one peer, in the order given.
import { Command } from "commander";
import { describeFd, inheritedFds, requireInherited } from "../describe/index.ts";
import { sendTo } from "../peer/session.ts";
import { parseSpec, SPEC_HELP } from "../open/spec.ts";
import { printGroups } from "./describe-view.ts";
import { fail } from "./exit.ts";
import { integer, interruption, peerReporter, peerUidOption, readyNotifier } from "./peer-options.ts";

export function command(): Command {
  // --fd and --open share one list, so the peer gets the fds in command-line order.
  const items: (number | string)[] = [];
  const addFd = (v: string) => (items.push(integer()(v)), items);
  const addSpec = (v: string) => (items.push(v), items);
  return new Command("send")
    .description("send fds to one peer over a UNIX socket (SCM_RIGHTS); default: fd 0")
    .argument("<addr>", "socket path, @abstract-name or unix:PATH")
    .option("--fd <n>", "send this inherited fd (repeatable)", addFd)
    .option("--open <spec>", `open and send: ${SPEC_HELP} (repeatable)`, addSpec)
    .option("--data <string>", "payload sent with the fds (default: one NUL byte)")
    .option("--listen", "listen on ADDR and serve one peer instead of connecting")
    .option("-t, --timeout <ms>", "longest wait to connect (default 5000), for a peer, or for buffer space", integer(1))
    .option("--ready-fd <fd>", "write a newline to this fd once connected (or listening), then close it", integer())
    .addOption(peerUidOption())
    .option("-v, --verbose", "describe what is sent, as recv would, and say who the peer is (pid, uid, command) on stderr")
    .option("--json", "describe what is sent as JSON (implies --verbose)")
    .action(async (addr: string, o) => {
      const stop = interruption();
      try {
        if (items.length === 0) items.push(0);
        const inherited = new Set(inheritedFds());
        for (const it of items) {
          const fd = typeof it === "number" ? it : fdOfSpec(it);
          if (fd !== null) requireInherited(fd, `${typeof it === "number" ? "--fd " : "--open "}${it}`, inherited);
        }
        await sendTo(addr, items, {
          connect: !o.listen, timeoutMs: o.timeout, payload: o.data, onReady: readyNotifier(o.readyFd), signal: stop.signal,
          peerUid: o.peerUid, onPeer: peerReporter(!!o.verbose, !!o.listen, o.peerUid),
          onSent: (fds) => {
            if (o.verbose || o.json) printGroups([{ fds: fds.map((fd, i) => ({ id: i, desc: describeFd(fd) })) }], !!o.json, "#");
          },
        });
      } catch (e) {
        stop.exitIfInterrupted();
        fail(e);
      }
    });
}

/** The fd an `--open fd:N` names, or null for any other spec (a bad one fails here, before anything opens). */
function fdOfSpec(spec: string): number | null {
  const s = parseSpec(spec);
  return s.kind === "fd" ? s.fd : null;
}
