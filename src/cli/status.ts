// `fdbroker status`: is the broker up, and how full is it.
import { Command } from "commander";
import { openSession, status } from "../client/index.ts";
import { brokerUidOption, formatDuration, socketOf, socketOption } from "./broker-common.ts";
import { accountNames, gidText, uidText } from "../describe/accounts.ts";
import { escapeText } from "../text.ts";
import { out, printJson, printText } from "./output.ts";

export function command(): Command {
  return new Command("status")
    .description("show the broker's pid, version, uptime, entries, connections and limits")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--json", "print the status as JSON")
    .action((opts: { socket?: string; brokerUid?: number; json?: boolean }) => {
      using session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid });
      const s = status(session);
      // Who the broker runs as, from the connection (SO_PEERCRED), not from anything the broker says.
      const { uid, gid } = session.broker;
      if (opts.json) return printJson({ ...s, uid, gid, ...accountNames(uid, gid) });
      const l = s.limits;
      const lines: [string, string][] = [
        ["socket", s.socket], ["pid", String(s.pid)], ["user", `${uidText(uid)}, ${gidText(gid)}`], ["version", s.version], ["uptime", formatDuration(s.uptimeMs)],
        ["entries", `${s.entries} of ${l.maxFds}`], ["connections", `${s.connections} of ${l.maxConns}`],
        ["client timeout", formatDuration(l.clientTimeoutMs)], ["drain timeout", formatDuration(l.drainMs)], ["RLIMIT_NOFILE", String(l.nofile.soft)],
      ];
      const p = s.pools;
      if (p && p.count > 0)
        lines.push(["pools", `${p.count}, ${p.leases} leased; ${p.granted} granted, ${p.waited} waited, ${p.timeouts} timed out, ${p.revoked} revoked, ${p.dropped} dropped, ${p.refilled} opened`]);
      // The broker says what its socket is: shown escaped, as any text from another process.
      printText(`${lines.map(([k, v]) => `${out.dim(`${k}:`.padEnd(16))}${escapeText(v)}`).join("\n")}\n`);
    });
}
