// Connecting to UNIX socket addresses and accepting on them, with the timeout rules every command shares. All
// sockets are non-blocking and CLOEXEC; callers wait with poll. Binding an address is in listen.ts, which needs
// the filesystem; a client's start-up path loads only this.
import { accept, C, close, connect, E, socket, socketpair, SysError, waitFd, type SocketType } from "../sys/index.ts";
import { parseUnixAddress, type UnixAddress } from "./address.ts";

export function connectTo(text: string | UnixAddress, timeoutMs = 5000, type: SocketType = "stream"): number {
  const addr = typeof text === "string" ? parseUnixAddress(text) : text;
  const fd = socket(C.AF_UNIX, type);
  try {
    connect(fd, addr.bytes, addr.label, timeoutMs);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

/** Wait for and accept one connection. */
export function acceptOne(listenFd: number, timeoutMs = Infinity, label?: string): number {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const fd = accept(listenFd);
    if (fd !== null) return fd;
    if (waitFd(listenFd, C.POLLIN, Math.max(0, deadline - Date.now())) === 0)
      throw new SysError("accept4", E.ETIMEDOUT, label, `no peer connected in ${timeoutMs} ms`);
  }
}

/** A connected pair of UNIX stream sockets, both CLOEXEC. */
export function socketPair(type: SocketType = "stream"): [number, number] {
  return socketpair(type, true);
}
