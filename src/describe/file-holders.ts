// inspect --holders FD and --inode N: every process holding an open file, and which of them share one open file
// description (a dup, an inherited copy, an fd passed over a socket: one offset, one set of status flags) rather
// than only the same file (opened again by path). Only kcmp(2) can tell the two apart; it needs ptrace-read access
// to both processes, and where it is refused a holder is shown as holding the same file, description unknown.
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { isSysError, kcmpFile } from "../sys/index.ts";
import { scanFds, type FdHolder, type ScanLimits } from "./holders.ts";

export interface FileHolder {
  pid: number;
  fd: number;
  /** As /proc/PID/comm has it (raw: escape it before printing it for a person). */
  command: string;
  /** What /proc/PID/fd/N links to. */
  target: string;
  /**
   * The open file descriptions found, numbered in the order met (with --holders the reference fd's is 1): holders
   * with one number share one description. Null where kcmp was refused (the errno is in `kcmpError`).
   */
  description: number | null;
  kcmpError?: string;
}

export interface HoldersReport {
  inode: number;
  /** The fd asked about (--holders), listed first among the holders; null for --inode. */
  reference: { pid: number; fd: number } | null;
  holders: FileHolder[];
  /** False when the /proc scan stopped at its limits: some holders may be missing. */
  complete: boolean;
}

// Pipes, sockets, pidfds and the like name their inode in the link; anon inodes (eventfd, epoll, ...) all share
// one inode, so for them only a shared description means anything.
const BRACKETED = /^([a-z_]+):\[(\d+)\]$/;
const ANON = /^anon_inode:/;

/** The inode of an fd whose link is a path, from its fdinfo (Linux 5.14) or else its stat; null if it closed. */
function pathInode(pid: number, fd: number): number | null {
  try {
    const m = /^ino:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, "utf8"));
    return m ? Number(m[1]) : statSync(`/proc/${pid}/fd/${fd}`).ino;
  } catch {
    return null;
  }
}

/** Whether an fd found by the scan holds the file: same inode, and for paths the same device too. */
function fileMatcher(inode: number, dev: number | null, refLink: string | null): (link: string, pid: number, fd: number) => boolean {
  // The link text of a pipe, socket or anon inode names the file exactly.
  if (refLink !== null && (BRACKETED.test(refLink) || ANON.test(refLink))) return (link) => link === refLink;
  return (link, pid, fd) => {
    const b = BRACKETED.exec(link);
    if (b) return refLink === null && Number(b[2]) === inode;
    if (!link.startsWith("/") || pathInode(pid, fd) !== inode) return false;
    if (dev === null) return true;
    try {
      return statSync(`/proc/${pid}/fd/${fd}`).dev === dev;
    } catch {
      return false;
    }
  };
}

/**
 * Descriptions told apart by kcmp against one holder of each: past this many, a holder is left unnumbered rather
 * than compared with every one (/dev/null is open in nearly every process, each time on its own).
 */
const MAX_DESCRIPTIONS = 256;

/**
 * Number the open file descriptions among `found` with kcmp, the first holder's being 1. `firstOnly`: keep only
 * the holders of the first one (an anon inode is "the same file" for every eventfd, say, so only that counts).
 */
function numberDescriptions(found: FdHolder[], firstOnly: boolean): FileHolder[] {
  const reps: FdHolder[] = [];
  const out: FileHolder[] = [];
  for (const h of found) {
    const holder: FileHolder = { pid: h.pid, fd: h.fd, command: h.command, target: h.link, description: null };
    try {
      const i = reps.findIndex((r) => kcmpFile(r.pid, r.fd, h.pid, h.fd));
      if (i >= 0) holder.description = i + 1;
      else if (reps.length === 0 || (!firstOnly && reps.length < MAX_DESCRIPTIONS)) holder.description = reps.push(h);
      else holder.kcmpError = firstOnly ? "not shared" : `over ${MAX_DESCRIPTIONS} descriptions`;
    } catch (e) {
      if (!isSysError(e)) throw e;
      holder.kcmpError = e.code;
    }
    if (!firstOnly || holder.description === 1) out.push(holder);
  }
  return out;
}

/** Every holder of the file open at fd `fd` of process `pid`, that fd first. */
export function holdersOfFd(pid: number, fd: number, limits?: ScanLimits): HoldersReport {
  const link = `/proc/${pid}/fd/${fd}`;
  const target = readlinkSync(link);
  const st = statSync(link);
  const scan = scanFds(fileMatcher(st.ino, target.startsWith("/") ? st.dev : null, target), { limits });
  const self = scan.holders.find((h) => h.pid === pid && h.fd === fd) ?? { pid, fd, command: "?", link: target };
  const ordered = [self, ...scan.holders.filter((h) => h !== self)];
  return { inode: st.ino, reference: { pid, fd }, holders: numberDescriptions(ordered, ANON.test(target)), complete: scan.complete };
}

/** Every holder of a file with inode `inode` (on any file system: the targets tell them apart). */
export function holdersOfInode(inode: number, limits?: ScanLimits): HoldersReport {
  const scan = scanFds(fileMatcher(inode, null, null), { limits });
  return { inode, reference: null, holders: numberDescriptions(scan.holders, false), complete: scan.complete };
}
