// Listening on UNIX socket addresses, with the socket-file rules every command shares: a socket file nobody
// answers on is replaced, a live one is never clobbered, and on the way out only our own is removed.
import { lstatSync, unlinkSync } from "node:fs";
import {
  bind, C, close, connect, E, fromNodeError, isSysError, listen as sysListen, socket, SysError, type SocketType,
} from "../sys/index.ts";
import { parseUnixAddress, type UnixAddress } from "./address.ts";

export interface ListenOptions {
  /** Permission bits of the socket file (default 0o600). */
  mode?: number;
  backlog?: number;
  type?: SocketType;
}

/**
 * False only when nobody listens at `addr` (ECONNREFUSED, ENOENT). Any other answer counts as live: a listener
 * whose queue is full times out, and the caller must not take its address away.
 */
export function isLive(addr: UnixAddress, type: SocketType = "stream"): boolean {
  const fd = socket(C.AF_UNIX, type);
  try {
    connect(fd, addr.bytes, addr.label, 1000);
    return true;
  } catch (e) {
    return !(isSysError(e, "ECONNREFUSED") || isSysError(e, "ENOENT"));
  } finally {
    close(fd);
  }
}

/**
 * Listen on a UNIX address. A socket file nobody answers on is stale and replaced; a live one is never clobbered.
 * The file is created with `mode` by narrowing the umask around bind(), so there is no window where it is wider.
 */
export function listenUnix(text: string | UnixAddress, opts: ListenOptions = {}): number {
  const addr = typeof text === "string" ? parseUnixAddress(text) : text;
  const fd = bindUnix(addr, opts);
  try {
    sysListen(fd, opts.backlog ?? 1024, addr.label);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** A non-blocking UNIX socket bound as listenUnix binds it (same stale-file and mode rules), not yet listening. */
export function bindUnix(addr: UnixAddress, opts: Omit<ListenOptions, "backlog"> = {}): number {
  const type = opts.type ?? "stream";
  const fd = socket(C.AF_UNIX, type);
  try {
    bindWithMode(fd, addr, opts.mode ?? 0o600, type);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

function bindWithMode(fd: number, addr: UnixAddress, mode: number, type: SocketType): void {
  const old = process.umask(~mode & 0o777);
  try {
    bind(fd, addr.bytes, addr.label);
  } catch (e) {
    if (!isSysError(e, "EADDRINUSE") || addr.path === null) throw e;
    if (socketFileOf(addr) === null) throw new SysError("bind", E.EADDRINUSE, addr.label, "a file that is not a socket is in the way");
    if (isLive(addr, type)) throw new SysError("bind", E.EADDRINUSE, addr.label, "another process is listening there");
    unlinkFile(addr.path);
    bind(fd, addr.bytes, addr.label);
  } finally {
    process.umask(old);
  }
}

/** What tells one file from another at the same path: a later lstat showing the same pair is the same file. */
export interface FileId {
  dev: number;
  ino: number;
}

/** Both known, and the same file. */
export const sameFileId = (a: FileId | null, b: FileId | null): boolean => a !== null && b !== null && a.dev === b.dev && a.ino === b.ino;

/**
 * The socket file at `addr` now, or null (an abstract address, or no socket file there). Taken right after bind(),
 * it is the file we bound: in the directories sockets live in, nobody else may replace it in that instant.
 */
export function socketFileOf(text: string | UnixAddress): FileId | null {
  const addr = typeof text === "string" ? parseUnixAddress(text) : text;
  if (addr.path === null) return null;
  try {
    const st = lstatSync(addr.path);
    return st.isSocket() ? { dev: st.dev, ino: st.ino } : null;
  } catch {
    return null;
  }
}

/**
 * Remove the socket file behind an address, if it is one; with `own` (what socketFileOf said when we bound it),
 * only if the path still names that same file: a broker or peer stopping after its file was removed and the path
 * reused must not take the newcomer's file away (issue 8). True if a file was removed. Between the lstat and
 * unlink(2) the path could still change; no unlink-by-inode exists to close that window. Throws a SysError naming
 * unlink when the file cannot be removed.
 */
export function unlinkAddress(text: string | UnixAddress, own?: FileId | null): boolean {
  const addr = typeof text === "string" ? parseUnixAddress(text) : text;
  if (addr.path === null) return false;
  const now = socketFileOf(addr);
  if (now === null || (own !== undefined && !sameFileId(own, now))) return false;
  unlinkFile(addr.path);
  return true;
}

// As a SysError, so removing a stale socket fails like every other step of listen() (syscall, errno name, path).
function unlinkFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    throw fromNodeError(e, path);
  }
}

