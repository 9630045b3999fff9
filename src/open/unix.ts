// UNIX sockets and FIFOs as a SPEC describes them. Their files are created with `mode` (0600 unless told, as the
// broker's socket) and get their owner and group before anyone could connect: chown after bind, before listen.
import { constants, fchmodSync, fchownSync, lchownSync, openSync, unlinkSync } from "node:fs";
import { bindUnix, unlinkAddress } from "../peer/listen.ts";
import { parseUnixAddress } from "../peer/address.ts";
import { C, close, E, fromNodeError, fstat, listen, lstat, mkfifo, setCloexec, setNonBlocking, SysError, type SocketType } from "../sys/index.ts";
import type { PathParams, UnixKind } from "./parse.ts";

const DEFAULT_MODE = 0o600;
const socketType: Record<UnixKind, SocketType> = { unix: "stream", "unix-seqpacket": "seqpacket", "unix-dgram": "dgram" };

export function openUnix(s: { kind: UnixKind; path: string; backlog?: number } & PathParams): number {
  const addr = parseUnixAddress(s.path);
  const type = socketType[s.kind];
  const fd = bindUnix(addr, { mode: s.mode ?? DEFAULT_MODE, type });
  try {
    // By path: fchown on a socket fd changes the socket's inode, not its file. lchown, so a symlink put in the
    // file's place meanwhile is changed rather than followed.
    if (addr.path !== null && (s.owner !== undefined || s.group !== undefined)) chown(addr.path, s);
    if (type !== "dgram") listen(fd, s.backlog ?? 4096, addr.label);
    // Blocking like the inet listeners: O_NONBLOCK lives on the open file description, so a server whose plain
    // accept loop gets this fd would otherwise see EAGAIN.
    setNonBlocking(fd, false);
    return fd;
  } catch (e) {
    close(fd);
    unlinkAddress(addr);
    throw e;
  }
}

function chown(path: string, s: PathParams): void {
  try {
    lchownSync(path, s.owner ?? -1, s.group ?? -1);
  } catch (e) {
    throw fromNodeError(e, path);
  }
}

/**
 * A FIFO, made if absent, opened read-write and non-blocking as systemd's ListenFIFO= opens it: holding both ends,
 * the opener never blocks waiting for a writer and its reader never sees end of file when the last writer goes.
 * One already there is used as it is, except for the mode, owner and group the SPEC names.
 */
export function openFifo(s: { path: string } & PathParams): number {
  const old = process.umask(~(s.mode ?? DEFAULT_MODE) & 0o777);
  let made: boolean;
  try {
    made = mkfifo(s.path, s.mode ?? DEFAULT_MODE);
  } finally {
    process.umask(old);
  }
  // Checked before opening, as well as after: opening some other file (a device) can have effects of its own.
  if (!made) requireFifo(lstat(s.path).mode, s.path);
  let fd: number;
  try {
    fd = openSync(s.path, constants.O_RDWR | constants.O_NONBLOCK | constants.O_NOFOLLOW | constants.O_NOCTTY);
  } catch (e) {
    if (made) unlinkSync(s.path);
    throw fromNodeError(e, s.path);
  }
  try {
    setCloexec(fd, true);
    requireFifo(fstat(fd).mode, s.path);
    if (!made && s.mode !== undefined) fchmodSync(fd, s.mode);
    if (s.owner !== undefined || s.group !== undefined) fchownSync(fd, s.owner ?? -1, s.group ?? -1);
    return fd;
  } catch (e) {
    close(fd);
    if (made) unlinkSync(s.path);
    throw fromNodeError(e, s.path);
  }
}

function requireFifo(mode: number, path: string): void {
  if ((mode & C.S_IFMT) !== C.S_IFIFO) throw new SysError("mkfifo", E.EEXIST, path, "a file that is not a FIFO is in the way");
}
