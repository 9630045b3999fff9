// inspect --holders FD / --inode N: who holds a file, and who shares its open file description, for people (a
// title line and a table) or scripts (--json: the report as src/describe/file-holders.ts builds it).
import { existsSync } from "node:fs";
import { holdersOfFd, holdersOfInode, inheritedFds, type FileHolder, type HoldersReport } from "../describe/index.ts";
import { UsageError } from "../errors.ts";
import { escapeText } from "../text.ts";
import { printJson, printText, table } from "./output.ts";

export interface HoldersQuery {
  pid?: number;
  fd?: number;
  inode?: number;
}

function report(q: HoldersQuery): HoldersReport {
  if (q.fd === undefined) return holdersOfInode(q.inode!);
  // Without --pid, FD is one of fdbroker's own inherited fds, as for inspect FD.
  if (q.pid === undefined && !inheritedFds().includes(q.fd)) throw new UsageError(`fd ${q.fd} is not open`);
  const pid = q.pid ?? process.pid;
  try {
    return holdersOfFd(pid, q.fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(q.pid === undefined ? `fd ${q.fd} is not open` : existsSync(`/proc/${pid}`) ? `fd ${q.fd} is not open in process ${pid}` : `no process ${pid}`);
    throw e;
  }
}

/** What a holder shares with the reference fd: its description, or only the file (kcmp's refusal named). */
function sharesCell(h: FileHolder, r: HoldersReport): string {
  if (r.reference === null) return h.description === null ? `? (kcmp: ${h.kcmpError})` : `description #${h.description}`;
  if (h.pid === r.reference.pid && h.fd === r.reference.fd) return "(this fd)";
  if (h.description === 1) return "description";
  return h.kcmpError && h.description === null ? `file (kcmp: ${h.kcmpError})` : "file only";
}

export function printHolders(q: HoldersQuery, json: boolean): void {
  const r = report(q);
  if (!r.complete) process.stderr.write("fdbroker: the /proc scan stopped at its limit: some holders may be missing\n");
  if (json) return printJson(r);
  // As ls says "no entries": an empty table would read as a failure to look.
  if (r.holders.length === 0) return void process.stderr.write(`no process this user may read holds inode ${r.inode}\n`);
  const ref = r.reference;
  const title = ref ? `fd ${ref.fd} of pid ${ref.pid}: ${r.holders[0]?.target ?? "?"} (inode ${r.inode})` : `inode ${r.inode}`;
  const rows = r.holders.map((h) => [String(h.pid), String(h.fd), h.command, sharesCell(h, r), h.target]);
  printText(`${escapeText(title)}\n${table(["PID", "FD", "COMMAND", "SHARES", "WHAT"], rows)}\n`);
}
