// Describing an open fd: what it is, how it is open, where it points. This process's fds are read with syscalls
// (fstat, getsockopt, getsockname, getpeername) plus /proc/self/fdinfo; another process's come from /proc alone
// (proc.ts), through the same build().
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import {
  C, formatSockAddr, fromNodeError, fstat, getFdFlags, getIntOpt, isOpen, isSysError, peerName, socketInfo, sockName,
  type SockAddr, type Stat,
} from "../sys/index.ts";
import { accessOf, flagNames, parseFdinfo, type FdInfo } from "./fdinfo.ts";
import { addressParts } from "./address.ts";
import { netlinkProtocolName } from "./proc-net.ts";
import type { FdDescription, FdKind, SocketDescription } from "./types.ts";

function readProc<T>(path: string, read: (p: string) => T): T {
  try {
    return read(path);
  } catch (e) {
    throw fromNodeError(e, path);
  }
}

const anonKinds: Record<string, FdKind> = {
  "[eventfd]": "eventfd", "[eventpoll]": "epoll", "[signalfd]": "signalfd", "[timerfd]": "timerfd",
  "[pidfd]": "pidfd", inotify: "inotify", "[fanotify]": "fanotify", "[io_uring]": "io_uring",
};

const modeKinds: [number, FdKind][] = [
  [C.S_IFREG, "file"], [C.S_IFDIR, "directory"], [C.S_IFIFO, "fifo"], [C.S_IFSOCK, "socket"],
  [C.S_IFCHR, "chardev"], [C.S_IFBLK, "blockdev"], [C.S_IFLNK, "symlink"],
];

/** Kind and path from the /proc link text, with the file mode deciding for real paths. */
export function classify(target: string, mode: number | null): { kind: FdKind; path: string | null; deleted: boolean } {
  if (target.startsWith("socket:[")) return { kind: "socket", path: null, deleted: false };
  if (target.startsWith("pipe:[")) return { kind: "pipe", path: null, deleted: false };
  // Kernels with pidfs (6.9+) link pidfds as `pidfd:[ino]`.
  if (target.startsWith("pidfd:")) return { kind: "pidfd", path: null, deleted: false };
  if (target.startsWith("anon_inode:")) return { kind: anonKinds[target.slice(11)] ?? "anon", path: null, deleted: false };
  const deleted = target.endsWith(" (deleted)");
  const path = deleted ? target.slice(0, -10) : target;
  if (path.startsWith("/memfd:")) return { kind: "memfd", path: path.slice(1), deleted: false };
  if (!path.startsWith("/")) return { kind: "unknown", path: null, deleted: false };
  const fmt = mode === null ? -1 : mode & C.S_IFMT;
  return { kind: modeKinds.find(([m]) => m === fmt)?.[1] ?? "unknown", path, deleted };
}

const seekable = new Set<FdKind>(["file", "directory", "chardev", "blockdev", "memfd"]);

function details(kind: FdKind, info: FdInfo): Record<string, string | number> {
  const d: Record<string, string | number> = { ...info.extra };
  if (d.tfd !== undefined) {
    d.watches = d.tfd; // fd numbers in the process that registered them
    delete d.tfd;
  }
  // The kernel prints the counter in hex.
  if (kind === "eventfd" && info.extra["eventfd-count"] !== undefined) d["eventfd-count"] = String(parseInt(info.extra["eventfd-count"], 16));
  if (info.extra.scm_fds !== undefined) d.scm_fds = Number(info.extra.scm_fds);
  return d;
}

export interface Facts {
  fd: number;
  target: string;
  info: FdInfo;
  stat: { mode: number; ino: number; size: number } | null;
  cloexec?: boolean;
  socket: () => SocketDescription | null;
}

export function build(f: Facts): FdDescription {
  const { kind, path, deleted } = classify(f.target, f.stat?.mode ?? null);
  return {
    fd: f.fd,
    kind,
    target: f.target,
    path,
    deleted,
    access: accessOf(f.info.flags),
    flags: flagNames(f.info.flags, f.cloexec),
    rawFlags: f.info.flags,
    offset: seekable.has(kind) ? f.info.pos : null,
    inode: f.info.ino ?? f.stat?.ino ?? null,
    size: kind === "file" || kind === "memfd" ? (f.stat?.size ?? null) : null,
    socket: kind === "socket" ? f.socket() : null,
    details: details(kind, f.info),
  };
}

const familyNames: Record<number, SocketDescription["family"]> = {
  [C.AF_UNIX]: "unix", [C.AF_INET]: "inet", [C.AF_INET6]: "inet6", [C.AF_NETLINK]: "netlink", [C.AF_PACKET]: "packet",
};
const typeNames: Record<number, SocketDescription["type"]> = {
  [C.SOCK_STREAM]: "stream", [C.SOCK_DGRAM]: "dgram", [C.SOCK_SEQPACKET]: "seqpacket", [C.SOCK_RAW]: "raw",
};

function addressText(a: SockAddr): string | null {
  if (a.family === "other" || (a.family === "unix" && a.path === "")) return null;
  return formatSockAddr(a);
}

function ownSocket(fd: number): SocketDescription {
  const s = socketInfo(fd);
  let peer: SockAddr | null = null;
  try {
    peer = peerName(fd);
  } catch (e) {
    if (!isSysError(e, "ENOTCONN")) throw e;
  }
  const local = sockName(fd);
  return {
    family: familyNames[s.domain] ?? "other",
    type: typeNames[s.type] ?? "other",
    local: addressText(local),
    peer: peer && addressText(peer),
    localAddress: addressParts(local),
    peerAddress: peer && addressParts(peer),
    listening: s.listening,
    ...(s.domain === C.AF_NETLINK ? { protocol: netlinkProtocolName(getIntOpt(fd, C.SOL_SOCKET, C.SO_PROTOCOL)) } : {}),
  };
}

/**
 * Describe one of this process's fds. Throws SysError EBADF when it is not open. `stat`: its fstat, already taken
 * (off the loop's thread, by a broker: fstat is the one call here that a file system's server can hold up).
 */
export function describeFd(fd: number, stat?: Stat): FdDescription {
  const st = stat ?? fstat(fd);
  return build({
    fd,
    target: readProc(`/proc/self/fd/${fd}`, (p) => readlinkSync(p)),
    info: parseFdinfo(readProc(`/proc/self/fdinfo/${fd}`, (p) => readFileSync(p, "utf8"))),
    stat: st,
    cloexec: (getFdFlags(fd) & C.FD_CLOEXEC) !== 0,
    socket: () => ownSocket(fd),
  });
}

/** The fd numbers open in a process, ascending. For "self" the directory fd readdir used is not included. */
export function openFds(pid: number | "self"): number[] {
  const path = `/proc/${pid}/fd`;
  const names = readProc(path, (p) => readdirSync(p));
  const fds = names.map(Number).sort((a, b) => a - b);
  return pid === "self" ? fds.filter(isOpen) : fds;
}
