// Listening on UNIX socket addresses, with the stale-socket rules every command shares: a socket file nobody
// answers on is replaced, a live one is never clobbered.
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
export function listen(text: string | UnixAddress, opts: ListenOptions = {}): number {
  const addr = typeof text === "string" ? parseUnixAddress(text) : text;
  const type = opts.type ?? "stream";
  const fd = socket(C.AF_UNIX, type);
  try {
    bindWithMode(fd, addr, opts.mode ?? 0o600, type);
    sysListen(fd, opts.backlog ?? 1024, addr.label);
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
    if (!isSocketFile(addr.path)) throw new SysError("bind", E.EADDRINUSE, addr.label, "a file that is not a socket is in the way");
    if (isLive(addr, type)) throw new SysError("bind", E.EADDRINUSE, addr.label, "another process is listening there");
    unlinkFile(addr.path);
    bind(fd, addr.bytes, addr.label);
  } finally {
    process.umask(old);
  }
}

function isSocketFile(path: string): boolean {
  try {
    return lstatSync(path).isSocket();
  } catch {
    return false;
  }
}

/** Remove the socket file behind an address, if it is one. Throws a SysError naming unlink when it cannot. */
export function unlinkAddress(text: string | UnixAddress): void {
  const addr = typeof text === "string" ? parseUnixAddress(text) : text;
  if (addr.path !== null && isSocketFile(addr.path)) unlinkFile(addr.path);
}

// As a SysError, so removing a stale socket fails like every other step of listen() (syscall, errno name, path).
function unlinkFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (e) {
    throw fromNodeError(e, path);
  }
}

