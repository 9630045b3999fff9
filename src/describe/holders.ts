// Which processes hold an open file, found by scanning every /proc/PID/fd we may read (what `lsof` and `ss -p` do):
// the holders of a socket bound at an address, for the hint after `bind: EADDRINUSE`; the holders of a UNIX
// socket's peer, for inspect. Processes we may not read (another user's, without root) are skipped, and the
// scan stops at SCAN_LIMITS: the answer is for people, never a check.
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { decodeSockAddr, encodeInet } from "../sys/index.ts";
import { readSocketTables } from "./proc-net.ts";
import type { SocketDescription } from "./types.ts";
import { escapeText } from "../text.ts";

/** Most holders named: a hint is one line. */
const MAX_HOLDERS = 4;

export interface Holder {
  pid: number;
  command: string;
}

/** How much of /proc one scan reads at most: processes listed, and fd links read over all of them. */
export interface ScanLimits {
  maxProcesses: number;
  maxFds: number;
}

/** The default bounds: far above a busy server (a few hundred processes, some with tens of thousands of fds). */
export const SCAN_LIMITS: ScanLimits = { maxProcesses: 32768, maxFds: 1_000_000 };

/** One fd of one process, as a scan found it. `command` is raw: escape it before printing it for a person. */
export interface FdHolder {
  pid: number;
  fd: number;
  command: string;
  /** What /proc/PID/fd/N links to. */
  link: string;
}

export interface Scan {
  holders: FdHolder[];
  /** False when the scan stopped at a limit before it had read all of /proc. */
  complete: boolean;
}

/** The command name of a process as /proc has it, raw; "?" when the pid is gone (or in another pid namespace). */
export function rawCommandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").replace(/\n$/, "");
  } catch {
    return "?";
  }
}

/**
 * The command name of a process, as /proc has it: "?" when the pid is gone or in another pid namespace (it reads 0).
 * Read after the fact, so a pid reused in between would show another's; escaped, as any text from another process.
 */
export const commandOf = (pid: number): string => escapeText(rawCommandOf(pid));

export interface ScanOptions {
  /** A process not to look at (the caller itself). */
  skipPid?: number;
  /** Stop once this many processes have matched. */
  maxPids?: number;
  limits?: ScanLimits;
}

/**
 * Every fd of every process we may read whose link text `matches` (lowest pid first, then fd): one pass over
 * /proc, bounded by `limits`. `matches` may read more about the fd (its fdinfo) from `/proc/PID/fd...` itself.
 */
export function scanFds(matches: (link: string, pid: number, fd: number) => boolean, o: ScanOptions = {}): Scan {
  const limits = o.limits ?? SCAN_LIMITS;
  const holders: FdHolder[] = [];
  let pids = readdirSync("/proc").filter((n) => /^\d+$/.test(n)).map(Number).sort((a, b) => a - b);
  let complete = pids.length <= limits.maxProcesses;
  pids = pids.slice(0, limits.maxProcesses);
  let fdsRead = 0;
  let matched = 0;
  for (const pid of pids) {
    if (o.maxPids !== undefined && matched >= o.maxPids) break;
    if (pid === o.skipPid) continue;
    let fds: number[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`).map(Number).sort((a, b) => a - b);
    } catch {
      continue; // exited, or not ours to read
    }
    let command: string | null = null;
    const before = holders.length;
    for (const fd of fds) {
      if (fdsRead++ >= limits.maxFds) return { holders, complete: false };
      let link: string;
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue; // closed since the listing
      }
      if (matches(link, pid, fd)) holders.push({ pid, fd, command: (command ??= rawCommandOf(pid)), link });
    }
    if (holders.length > before) matched++;
  }
  return { holders, complete };
}

const WILDCARD = new Set(["0.0.0.0", "::"]);

/**
 * Whether a socket in the tables conflicts with binding `label`: a UNIX path or @name exactly; `tcp:HOST:PORT`
 * a listener on that port at that host or a wildcard one (either side), `udp:HOST:PORT` any socket bound so.
 */
function matcher(label: string): ((s: SocketDescription) => boolean) | null {
  const inet = /^(tcp|udp):(.*):(\d+)$/.exec(label);
  if (!inet) return (s) => s.family === "unix" && s.local === label;
  let want;
  try {
    const bytes = encodeInet(inet[2]!, Number(inet[3]));
    want = decodeSockAddr(bytes, bytes.length);
  } catch {
    return null;
  }
  if (want.family !== "inet" && want.family !== "inet6") return null;
  const { host, port } = want;
  const type = inet[1] === "tcp" ? "stream" : "dgram";
  return (s) => {
    const at = s.localAddress;
    if (s.type !== type || (type === "stream" && !s.listening) || !at || !("port" in at) || at.port !== port) return false;
    return at.host === host || WILDCARD.has(at.host) || WILDCARD.has(host);
  };
}

/** Up to MAX_HOLDERS processes that hold a socket bound at `label` (a bind error's address), lowest pid first. */
export function socketHolders(label: string): Holder[] {
  const matches = matcher(label);
  if (!matches) return [];
  const inodes = new Set<string>();
  for (const [inode, s] of readSocketTables("self")) if (matches(s)) inodes.add(`socket:[${inode}]`);
  if (inodes.size === 0) return [];
  const pids = new Map<number, Holder>();
  for (const h of scanFds((link) => inodes.has(link), { skipPid: process.pid, maxPids: MAX_HOLDERS }).holders)
    if (!pids.has(h.pid)) pids.set(h.pid, { pid: h.pid, command: escapeText(h.command) });
  return [...pids.values()];
}
