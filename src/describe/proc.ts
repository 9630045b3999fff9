// Another process's fds, from /proc alone (ptrace-read rights on it are needed, as for ls -l /proc/PID/fd).
//
// The process runs on while it is read: an fd listed by readdir may close before its link or fdinfo is read, and
// its number may be reused by the next open in between. Such an fd is described as `gone` rather than failing
// the whole listing or mixing two files into one row; and if the process itself exits (or its pid is reused)
// while anything could not be read, the caller gets an error instead of a partial table that looks complete.
import { readFileSync, readlinkSync, statSync } from "node:fs";
import { UsageError } from "../errors.ts";
import { E, fromNodeError, SysError } from "../sys/index.ts";
import { build, openFds, type Facts } from "./describe.ts";
import { parseFdinfo } from "./fdinfo.ts";
import { lazySocketTables, type SocketTable } from "./proc-net.ts";
import type { FdDescription, SocketDescription } from "./types.ts";

/** How often an fd whose link and fdinfo disagree (closed and reopened mid-read) is read again. */
const READ_ATTEMPTS = 3;

/**
 * The process's start time (field 22 of /proc/PID/stat, which tells a reused pid apart), or null once it has
 * exited: no such pid, or a zombie, whose fds are all closed.
 */
function startOf(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // The command name (field 2) is in parentheses and may hold spaces and parentheses: count from the last ')'.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return f[0] === "Z" || f[0] === "X" ? null : (f[19] ?? null);
}

function checkProcess(pid: number): string {
  if (!Number.isInteger(pid) || pid <= 0) throw new UsageError(`bad pid: ${pid}`);
  const start = startOf(pid);
  if (start === null) throw new UsageError(`no process ${pid}`);
  return start;
}

/** `read(path)`, or null when the fd (or the whole process) is no longer there; other failures are thrown. */
function ifOpen<T>(path: string, read: (p: string) => T): T | null {
  try {
    return read(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ESRCH") return null;
    throw fromNodeError(e, path);
  }
}

/** A socket no table of the process's network namespace lists (netlink, packet, or one closed meanwhile). */
const UNKNOWN_SOCKET: SocketDescription = {
  family: "other", type: "other", local: null, peer: null, localAddress: null, peerAddress: null, listening: false,
};

/**
 * A listed socket as a description holds it: the state and queue lengths the tables list too are inspect's to add
 * (src/describe/peers.ts), so another process's fds read the same as this process's.
 */
function described(s: SocketDescription): SocketDescription {
  const { state: _state, recvQ: _recvQ, sendQ: _sendQ, ...base } = s;
  return base;
}

/** One fd, or null if it is not open or closed while being read (or kept being replaced: READ_ATTEMPTS). */
function readProcFd(pid: number, fd: number, tables: () => SocketTable): FdDescription | null {
  const link = `/proc/${pid}/fd/${fd}`;
  for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
    const target = ifOpen(link, (p) => readlinkSync(p));
    if (target === null) return null;
    let stat: Facts["stat"] = null;
    try {
      // stat follows the /proc magic link to the open file itself, pipes and sockets included.
      stat = statSync(link);
    } catch {}
    const text = ifOpen(`/proc/${pid}/fdinfo/${fd}`, (p) => readFileSync(p, "utf8"));
    if (text === null) return null;
    const info = parseFdinfo(text);
    // The number was closed and reused between the reads: link, stat and fdinfo may be of different files.
    if (ifOpen(link, (p) => readlinkSync(p)) !== target || (stat && info.ino !== null && info.ino !== stat.ino)) continue;
    const ino = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    return build({
      fd, target, info, stat,
      socket: () => described(tables().get(Number(ino)) ?? UNKNOWN_SOCKET),
    });
  }
  return null;
}

/** What is shown for an fd that was listed but could not be read: it closed under us. */
function goneFd(fd: number): FdDescription {
  return {
    fd, kind: "gone", target: "", path: null, deleted: false, access: null, flags: [], rawFlags: 0, offset: null,
    inode: null, size: null, socket: null, details: {},
  };
}

/** Describe one fd of process `pid` from /proc. */
export function describeProcFd(pid: number, fd: number): FdDescription {
  return describeProcFds(pid, [fd])[0]!;
}

/**
 * Describe `fds` (default: every open fd) of process `pid`, reading its socket tables at most once. In a listing,
 * an fd that closes before it is read is kind `gone`; an fd asked for by number that is not open is a
 * UsageError. If the process exits, or its pid is reused, while anything could not be read: SysError ESRCH.
 */
export function describeProcFds(pid: number, fds?: readonly number[], lazyTables = lazySocketTables(pid)): FdDescription[] {
  const start = checkProcess(pid);
  const listed = fds ?? ifOpen(`/proc/${pid}/fd`, () => openFds(pid)) ?? [];
  const descs: FdDescription[] = [];
  const missing: number[] = [];
  for (const fd of listed) {
    const d = readProcFd(pid, fd, lazyTables);
    if (d === null) missing.push(fd);
    descs.push(d ?? goneFd(fd));
  }
  const now = startOf(pid);
  if (now !== start && (now !== null || missing.length > 0 || listed.length === 0)) {
    const why = now === null ? "exited" : "exited and its pid was reused";
    throw new SysError("readlink", E.ESRCH, `/proc/${pid}/fd`, `process ${pid} ${why} while its fds were being read (${listed.length - missing.length} of ${listed.length} read)`);
  }
  if (fds && missing.length > 0) throw new UsageError(`fd ${missing[0]} is not open in process ${pid}`);
  return descs;
}
