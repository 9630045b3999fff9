// sendmsg/recvmsg over preallocated buffers. Only this file writes pointers into structs; every buffer they
// point at is module-level, so nothing C can still reach is ever collected.
import { abi, C, E, cmsgSpace } from "./abi.ts";
import { SysError, sysError } from "./errors.ts";
import { closeAll } from "./fd.ts";
import { parseControl, rightsOf, rightsSpace, writeRights } from "./cmsg.ts";
import { libc, lastErrno } from "./libc.ts";
import { addressOf, getU64, putU64, scratch } from "./mem.ts";

const M = abi.msghdr;
const H = abi.cmsghdr;
const hdr = scratch(M.size);
const hdrView = new DataView(hdr.buffer);
const iov = scratch(abi.iovec.size);
const iovView = new DataView(iov.buffer);
// Room for SCM_MAX_FD fds, the most either call ever offers the kernel (recvmsg offers what its caller accepts).
const ctrl = scratch(rightsSpace(C.SCM_MAX_FD));
const ctrlView = new DataView(ctrl.buffer);
let data = scratch(64 * 1024);

// Addresses are taken once: every buffer above is over its own ArrayBuffer, whose memory never moves (the
// stale-pointer bug concerns small typed arrays without one), and the module keeps each alive. Taking them per
// call, clearing the header and allocating DataViews cost about 0.5 us of a 4-5 us single-fd round trip
// (bench/roundtrip.ts).
const hdrAddr = addressOf(hdr);
const ctrlAddr = addressOf(ctrl);
putU64(hdrView, M.iov, addressOf(iov));
putU64(hdrView, M.iovlen, 1);
putU64(iovView, abi.iovec.base, addressOf(data));

function ensureData(n: number): void {
  if (data.length >= n) return;
  data = scratch(Math.max(n, data.length * 2));
  putU64(iovView, abi.iovec.base, addressOf(data));
}

// msg_name stays NULL (connected sockets only) and recvmsg writes msg_flags, so only these change per call.
function setupHeader(dataLen: number, ctrlLen: number): void {
  putU64(iovView, abi.iovec.len, dataLen);
  putU64(hdrView, M.control, ctrlLen > 0 ? ctrlAddr : 0);
  putU64(hdrView, M.controllen, ctrlLen);
}

/** The fds of the control buffer after recvmsg: one SCM_RIGHTS message read in place, anything else parsed. */
function receivedFds(len: number): number[] {
  if (len === 0) return [];
  const clen = getU64(ctrlView, H.len);
  const only = clen >= H.size && cmsgSpace(clen - H.size) >= len && clen <= len;
  if (!only || ctrlView.getInt32(H.level, true) !== C.SOL_SOCKET || ctrlView.getInt32(H.type, true) !== C.SCM_RIGHTS)
    return rightsOf(parseControl(ctrl, len));
  const n = (clen - H.size) >> 2;
  const fds = new Array<number>(n);
  for (let i = 0; i < n; i++) fds[i] = ctrlView.getInt32(H.size + i * 4, true);
  return fds;
}

/**
 * sendmsg with `fds` in one SCM_RIGHTS message. Returns the bytes sent (possibly fewer than `payload` on a
 * stream socket: the fds travel with the first byte), or -1 when a non-blocking socket would block.
 * MSG_NOSIGNAL always: a vanished peer is an EPIPE error here, not a signal that kills the process.
 */
export function sendmsg(fd: number, payload: Uint8Array, fds: readonly number[] = [], flags = 0): number {
  // Rejected here because the kernel's EINVAL does not say which rule was broken.
  if (fds.length > C.SCM_MAX_FD) throw new SysError("sendmsg", E.E2BIG, `fd ${fd}`, `${fds.length} fds in one message; the kernel takes at most ${C.SCM_MAX_FD}`);
  if (fds.length > 0 && payload.length === 0) throw new SysError("sendmsg", E.EINVAL, `fd ${fd}`, "fds need at least one payload byte to travel with");
  ensureData(payload.length);
  // A payload that is this module's own buffer (what recvmsg returned with `copy` false, relayed as it is) is
  // already in place.
  if (payload.buffer !== data.buffer || payload.byteOffset !== 0) data.set(payload);
  const ctrlLen = fds.length > 0 ? writeRights(ctrlView, fds) : 0;
  for (;;) {
    setupHeader(payload.length, ctrlLen);
    const n = libc.sendmsg(fd, hdrAddr, flags | C.MSG_NOSIGNAL);
    if (n >= 0) return n;
    const errno = lastErrno();
    if (errno === E.EAGAIN) return -1;
    if (errno !== E.EINTR) throw sysError("sendmsg", `fd ${fd}`, fds.length ? `with ${fds.length} fds` : undefined);
  }
}

export interface Received {
  /** Payload bytes (a copy, or a view the next call overwrites); empty with no fds means end of stream. */
  data: Uint8Array;
  /** Received fds, owned by the caller, CLOEXEC. */
  fds: number[];
  /** MSG_CTRUNC: some fds were dropped by the kernel; every fd that did arrive was closed and `fds` is empty. */
  truncated: boolean;
  /** How many fds arrived and were closed because of truncation. */
  closedFds: number;
}

/**
 * recvmsg with MSG_CMSG_CLOEXEC, accepting up to `maxFds` fds and `maxBytes` payload bytes.
 * Returns null when a non-blocking socket has nothing to read. With `copy` false the payload is a view of this
 * module's buffer, valid until the next call: for a caller that parses or copies it at once (the broker's reader),
 * which saves allocating what would be garbage a moment later. The fds of a message the kernel truncated
 * (MSG_CTRUNC) are handed to `release` (default: closed here); a caller for whom closing a peer's fd may block
 * (the broker's loop) passes its own.
 */
export function recvmsg(
  fd: number, maxBytes: number, maxFds: number, flags = 0, copy = true, release: (fds: number[]) => void = closeAll,
): Received | null {
  if (maxFds > C.SCM_MAX_FD) maxFds = C.SCM_MAX_FD;
  ensureData(maxBytes);
  // The control buffer is sized to what the caller accepts, so the kernel itself enforces the limit (MSG_CTRUNC),
  // up to its 8-byte alignment: with an odd limit one fd more fits, and collect counts that as a truncation too.
  const ctrlLen = maxFds > 0 ? rightsSpace(maxFds) : 0;
  for (;;) {
    setupHeader(maxBytes, ctrlLen);
    const n = libc.recvmsg(fd, hdrAddr, flags | C.MSG_CMSG_CLOEXEC);
    if (n >= 0) return collect(n, copy, maxFds, release);
    const errno = lastErrno();
    if (errno === E.EAGAIN) return null;
    if (errno !== E.EINTR) throw sysError("recvmsg", `fd ${fd}`);
  }
}

function collect(n: number, copy: boolean, maxFds: number, release: (fds: number[]) => void): Received {
  const msgFlags = hdrView.getInt32(M.flags, true);
  const fds = receivedFds(getU64(hdrView, M.controllen));
  const payload = copy ? data.slice(0, n) : data.subarray(0, n);
  if (msgFlags & C.MSG_CTRUNC || fds.length > maxFds) {
    release(fds);
    return { data: payload, fds: [], truncated: true, closedFds: fds.length };
  }
  return { data: payload, fds, truncated: false, closedFds: 0 };
}

// What a relay (src/tap) needs beyond recvmsg/sendmsg above: the sender's address of a datagram, the destination of
// a reply, and MSG_TRUNC. msg_name is set only around these calls and cleared after, so the calls above keep
// running with it NULL as they assume.
const nameIn = scratch(abi.sockaddrUn.size);
const nameInAddr = addressOf(nameIn);
const nameOut = scratch(abi.sockaddrUn.size);
const nameOutAddr = addressOf(nameOut);

function clearName(): void {
  putU64(hdrView, M.name, 0);
  hdrView.setUint32(M.namelen, 0, true);
}

export interface ReceivedFrom extends Received {
  /** MSG_TRUNC: a datagram or seqpacket message longer than `maxBytes`, of which only `maxBytes` arrived. */
  payloadTruncated: boolean;
  /** The sender's address as the kernel wrote it (a datagram socket's), or null when not asked for. */
  sender: Uint8Array | null;
}

/** recvmsg (non-blocking, MSG_CMSG_CLOEXEC, same ownership rules) that also says MSG_TRUNC and, asked, the sender. */
export function recvmsgFrom(
  fd: number, maxBytes: number, maxFds: number, withSender: boolean, copy = true, release: (fds: number[]) => void = closeAll,
): ReceivedFrom | null {
  if (withSender) {
    putU64(hdrView, M.name, nameInAddr);
    hdrView.setUint32(M.namelen, nameIn.length, true);
  }
  try {
    const r = recvmsg(fd, maxBytes, maxFds, C.MSG_DONTWAIT, copy, release);
    if (r === null) return null;
    const flags = hdrView.getInt32(M.flags, true);
    const sender = withSender ? nameIn.slice(0, Math.min(hdrView.getUint32(M.namelen, true), nameIn.length)) : null;
    return { ...r, payloadTruncated: (flags & C.MSG_TRUNC) !== 0, sender };
  } finally {
    if (withSender) clearName();
  }
}

/** sendmsg (same rules) to `to`, an encoded sockaddr: a reply from an unconnected datagram socket. */
export function sendmsgTo(fd: number, payload: Uint8Array, fds: readonly number[], to: Uint8Array): number {
  if (to.length > nameOut.length) throw new SysError("sendmsg", E.EINVAL, `fd ${fd}`, `address of ${to.length} bytes`);
  nameOut.set(to);
  putU64(hdrView, M.name, nameOutAddr);
  hdrView.setUint32(M.namelen, to.length, true);
  try {
    return sendmsg(fd, payload, fds, C.MSG_DONTWAIT);
  } finally {
    clearName();
  }
}
