// `fdbroker ls`: the entries this client may see: name, what the fd is, who stored it, age, expiry.
import { Command } from "commander";
import { ls, openSession, pools, type PoolInfo } from "../client/index.ts";
import { accountNames, uidCell } from "../describe/accounts.ts";
import { brokerUidOption, formatDuration, socketOf, socketOption } from "./broker-common.ts";
import { out, printJson, printText, styled, table } from "./output.ts";

export function command(): Command {
  return new Command("ls")
    .description("list the broker's entries")
    .addOption(socketOption())
    .addOption(brokerUidOption())
    .option("--json", "print the entries as JSON")
    .option("--names", "print only the names, one per line (as s6-fdholder-list does)")
    .option("--pools", "list the pools instead: size, idle, leases (lessee pid, uid, age), waiters")
    .action((opts: { socket?: string; brokerUid?: number; json?: boolean; names?: boolean; pools?: boolean }) => {
      using session = openSession({ socket: socketOf(opts), brokerUid: opts.brokerUid });
      if (opts.pools) return printPools(pools(session), opts);
      const entries = ls(session);
      // JSON keeps the numbers and adds the names where /etc/passwd and /etc/group have them.
      if (opts.json) return printJson(entries.map((e) => ({ ...e, ...accountNames(e.uid, e.gid) })));
      // Names hold no control or format character (the broker refuses them), so one per line is unambiguous.
      if (opts.names) return printText(entries.map((e) => `${e.name}\n`).join(""));
      if (entries.length === 0) return void process.stderr.write("no entries\n");
      const now = Date.now();
      const rows = entries.map((e) => [
        // what, uid, pid and age are told only to the owner, root and the storer: "-" where the broker withheld them.
        styled(e.name, out.bold), e.kind, e.what ?? "-", e.uid === undefined ? "-" : uidCell(e.uid), String(e.pid ?? "-"), e.created === undefined ? "-" : formatDuration(now - e.created),
        e.expires === null ? styled("never", out.dim) : `in ${formatDuration(e.expires - now)}`,
      ]);
      printText(`${table(["NAME", "KIND", "WHAT", "UID", "PID", "AGE", "EXPIRES"], rows)}\n`);
    });
}

function printPools(list: PoolInfo[], opts: { json?: boolean; names?: boolean }): void {
  if (opts.json) return printJson(list);
  if (opts.names) return printText(list.map((p) => `${p.name}\n`).join(""));
  if (list.length === 0) return void process.stderr.write("no pools\n");
  const leases = (p: PoolInfo) =>
    p.leased.map((l) => `${l.pid === undefined ? `#${l.id}` : `pid ${l.pid} uid ${uidCell(l.uid!)}`} ${formatDuration(l.ageMs)}`).join(", ") || "-";
  const rows = list.map((p) => [styled(p.name, out.bold), String(p.size), String(p.idle), String(p.opening), String(p.waiters), leases(p)]);
  printText(`${table(["POOL", "SIZE", "IDLE", "OPENING", "WAITERS", "LEASED (LESSEE, AGE)"], rows)}\n`);
}
