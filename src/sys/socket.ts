// Socket syscalls. Every socket fdbroker makes is CLOEXEC from birth (SOCK_CLOEXEC), so none leaks into a child.
import { abi, C, E } from "./abi.ts";
import { SysError, sysError } from "./errors.ts";
import { close, poll } from "./fd.ts";
import { libc, lastErrno } from "./libc.ts";
import { scratch } from "./mem.ts";
import { decodeSockAddr, encodeInet, encodeUnix, formatSockAddr, type SockAddr } from "./sockaddr.ts";

export type SocketType = "stream" | "dgram" | "seqpacket";
const typeNumber = { stream: C.SOCK_STREAM, dgram: C.SOCK_DGRAM, seqpacket: C.SOCK_SEQPACKET };

export function socket(domain: number, type: SocketType, nonBlocking = true): number {
  const fd = libc.socket(domain, typeNumber[type] | C.SOCK_CLOEXEC | (nonBlocking ? C.SOCK_NONBLOCK : 0), 0);
  if (fd < 0) throw sysError("socket");
  return fd;
}

const pairBuf = scratch(8);
const pairView = new DataView(pairBuf.buffer);
export function socketpair(type: SocketType = "stream", nonBlocking = false): [number, number] {
  const flags = typeNumber[type] | C.SOCK_CLOEXEC | (nonBlocking ? C.SOCK_NONBLOCK : 0);
  if (libc.socketpair(C.AF_UNIX, flags, 0, pairBuf) !== 0) throw sysError("socketpair");
  return [pairView.getInt32(0, true), pairView.getInt32(4, true)];
}

/** Copy of an encoded sockaddr in ArrayBuffer-backed memory, as libc wants it. */
function addrBytes(a: Uint8Array): Uint8Array {
  const b = scratch(a.length);
  b.set(a);
  return b;
}

export function bind(fd: number, addr: Uint8Array, label: string): void {
  if (libc.bind(fd, addrBytes(addr), addr.length) !== 0) throw sysError("bind", label);
}

export function listen(fd: number, backlog: number, label?: string): void {
  if (libc.listen(fd, backlog) !== 0) throw sysError("listen", label);
}

/** accept4 with CLOEXEC (and NONBLOCK unless told otherwise); null when no connection is pending. */
export function accept(fd: number, nonBlocking = true): number | null {
  for (;;) {
    const r = libc.accept4(fd, null, null, C.SOCK_CLOEXEC | (nonBlocking ? C.SOCK_NONBLOCK : 0));
    if (r >= 0) return r;
    const errno = lastErrno();
    if (errno === E.EAGAIN) return null;
    if (errno !== E.EINTR) throw sysError("accept4");
  }
}

/**
 * Connect a non-blocking socket, waiting up to `timeoutMs`. A UNIX socket whose listen queue is full answers
 * EAGAIN rather than queueing us, so that case is retried until the deadline too.
 */
export function connect(fd: number, addr: Uint8Array, label: string, timeoutMs: number): void {
  const bytes = addrBytes(addr);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (libc.connect(fd, bytes, bytes.length) === 0) return;
    const errno = lastErrno();
    if (errno === E.EINTR) continue;
    if (errno === E.EINPROGRESS) {
      for (;;) {
        const left = deadline - Date.now();
        if (left <= 0) throw new SysError("connect", E.ETIMEDOUT, label, `no answer in ${timeoutMs} ms`);
        const rev = poll([{ fd, events: C.POLLOUT }], left)[0]!;
        if (rev === 0) continue;
        const err = getIntOpt(fd, C.SOL_SOCKET, C.SO_ERROR);
        if (err !== 0) throw new SysError("connect", err, label);
        return;
      }
    }
    if (errno === E.EAGAIN) {
      if (Date.now() >= deadline) throw new SysError("connect", E.ETIMEDOUT, label, `listen queue still full after ${timeoutMs} ms`);
      poll([], 5);
      continue;
    }
    throw new SysError("connect", errno, label);
  }
}

/**
 * Begin connecting a non-blocking socket: true when connected at once, false while under way (wait for POLLOUT,
 * then ask connectError). Refusals that come at once (ECONNREFUSED, ENOENT) throw.
 */
export function connectStart(fd: number, addr: Uint8Array, label: string): boolean {
  const bytes = addrBytes(addr);
  for (;;) {
    if (libc.connect(fd, bytes, bytes.length) === 0) return true;
    const errno = lastErrno();
    if (errno === E.EINTR) continue;
    if (errno === E.EINPROGRESS || errno === E.EAGAIN) return false;
    throw new SysError("connect", errno, label);
  }
}

/** How a connect begun by connectStart ended, once the socket polls writable: 0 when connected, else the errno. */
export function connectError(fd: number): number {
  return getIntOpt(fd, C.SOL_SOCKET, C.SO_ERROR);
}

export function shutdown(fd: number, how: number): void {
  if (libc.shutdown(fd, how) !== 0) throw sysError("shutdown", `fd ${fd}`);
}

const optBuf = scratch(64);
const optView = new DataView(optBuf.buffer);
const optLenBuf = scratch(4);
const optLenView = new DataView(optLenBuf.buffer);

export function getIntOpt(fd: number, level: number, name: number): number {
  optLenView.setUint32(0, 4, true);
  if (libc.getsockopt(fd, level, name, optBuf, optLenBuf) !== 0) throw sysError("getsockopt", `fd ${fd}`);
  return optView.getInt32(0, true);
}

export function setIntOpt(fd: number, level: number, name: number, value: number): void {
  optView.setInt32(0, value, true);
  if (libc.setsockopt(fd, level, name, optBuf, 4) !== 0) throw sysError("setsockopt", `fd ${fd}`);
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}
export function peerCred(fd: number): PeerCred {
  const u = abi.ucred;
  optLenView.setUint32(0, u.size, true);
  if (libc.getsockopt(fd, C.SOL_SOCKET, C.SO_PEERCRED, optBuf, optLenBuf) !== 0) throw sysError("getsockopt", "SO_PEERCRED");
  return { pid: optView.getInt32(u.pid, true), uid: optView.getUint32(u.uid, true), gid: optView.getUint32(u.gid, true) };
}

// Room for 64 groups; a peer in more gets a buffer of its own size (the kernel says how large on ERANGE).
let groupsBuf = scratch(64 * 4);

/**
 * The peer's supplementary groups as they were when it called connect() (SO_PEERGROUPS: Linux 4.13, older than
 * any kernel Bun runs on), like SO_PEERCRED: nothing a later process with the same pid does can change them,
 * unlike /proc/PID/status.
 */
export function peerGroups(fd: number): number[] {
  for (;;) {
    optLenView.setUint32(0, groupsBuf.length, true);
    if (libc.getsockopt(fd, C.SOL_SOCKET, C.SO_PEERGROUPS, groupsBuf, optLenBuf) === 0) break;
    const errno = lastErrno();
    const need = optLenView.getUint32(0, true);
    if (errno !== E.ERANGE || need <= groupsBuf.length) throw new SysError("getsockopt", errno, "SO_PEERGROUPS");
    groupsBuf = scratch(need);
  }
  const view = new DataView(groupsBuf.buffer);
  const n = optLenView.getUint32(0, true) >> 2;
  const groups = new Array<number>(n);
  for (let i = 0; i < n; i++) groups[i] = view.getUint32(i * 4, true);
  return groups;
}

const nameBuf = scratch(128);
function nameOf(call: "getsockname" | "getpeername", fd: number): SockAddr {
  optLenView.setUint32(0, nameBuf.length, true);
  if (libc[call](fd, nameBuf, optLenBuf) !== 0) throw sysError(call, `fd ${fd}`);
  return decodeSockAddr(nameBuf, Math.min(optLenView.getUint32(0, true), nameBuf.length));
}
export const sockName = (fd: number) => nameOf("getsockname", fd);
export const peerName = (fd: number) => nameOf("getpeername", fd);

interface SocketInfo {
  domain: number;
  type: number;
  listening: boolean;
}
export function socketInfo(fd: number): SocketInfo {
  return {
    domain: getIntOpt(fd, C.SOL_SOCKET, C.SO_DOMAIN),
    type: getIntOpt(fd, C.SOL_SOCKET, C.SO_TYPE),
    listening: getIntOpt(fd, C.SOL_SOCKET, C.SO_ACCEPTCONN) !== 0,
  };
}

/** A fresh socket bound to `addr`; closed again if binding fails. */
export function boundSocket(domain: number, type: SocketType, addr: Uint8Array, label: string, nonBlocking = true): number {
  const fd = socket(domain, type, nonBlocking);
  try {
    if (domain !== C.AF_UNIX) setIntOpt(fd, C.SOL_SOCKET, C.SO_REUSEADDR, 1);
    bind(fd, addr, label);
    return fd;
  } catch (e) {
    close(fd);
    throw e;
  }
}

export { decodeSockAddr, encodeInet, encodeUnix, formatSockAddr, type SockAddr };

/**
 * Bind a UNIX socket to a name the kernel picks in the abstract namespace (an address of the family alone,
 * "autobind"), so that a datagram server can answer it.
 */
export function autobindUnix(fd: number): void {
  const addr = scratch(abi.sockaddrUn.pathOffset);
  new DataView(addr.buffer).setUint16(0, C.AF_UNIX, true);
  if (libc.bind(fd, addr, addr.length) !== 0) throw sysError("bind", `fd ${fd}`, "autobind");
}
